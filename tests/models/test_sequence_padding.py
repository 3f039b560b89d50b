"""Sequence encoders see a sample's span only: outputs do not depend on the padding around it (front or back)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from interplay.models.sequence import GRUEncoder, TransformerEncoder, compact, spans

D = 3


def content(length: int, seed: int, interior_zero: bool = False) -> torch.Tensor:
    """``(length, D)`` steps with non-zero first and last rows (optionally an all-zero row inside)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(length, D, generator=g) + 0.1
    if interior_zero and length >= 3:
        x[length // 2] = 0.0
    return x


def padded(x: torch.Tensor, front: int, back: int) -> torch.Tensor:
    return torch.cat([torch.zeros(front, D), x, torch.zeros(back, D)])


def test_spans_and_compact_are_exact():
    x = torch.stack([padded(content(3, 0, True), 2, 1), padded(content(2, 1), 0, 4), torch.zeros(6, D)])
    start, length = spans(x)
    assert start.tolist() == [2, 0, 0] and length.tolist() == [3, 2, 0]
    out, lengths = compact(x)
    assert out.shape == (3, 3, D) and lengths.tolist() == [3, 2, 0]
    assert torch.equal(out[0], content(3, 0, True)) and torch.equal(out[1, :2], content(2, 1))
    assert not out[1, 2:].any() and not out[2].any()


@pytest.mark.parametrize("cls", [GRUEncoder, TransformerEncoder])
@pytest.mark.parametrize("hidden", [[8], [8, 8]])
def test_padding_front_or_back_gives_equal_outputs(cls, hidden):
    torch.manual_seed(0)
    enc = cls((12, D), hidden).eval()
    x = content(5, 3, interior_zero=True)
    layouts = [(0, 7), (7, 0), (3, 4), (1, 0), (0, 0)]
    with torch.no_grad():
        outs = [enc(padded(x, f, b).unsqueeze(0)) for f, b in layouts]
    for other in outs[1:]:
        assert torch.equal(outs[0], other)  # bit for bit: the layers see identical tensors
    assert outs[0].abs().sum() > 0


@pytest.mark.parametrize("cls", [GRUEncoder, TransformerEncoder])
def test_batched_samples_with_different_padding(cls):
    """Predictions of a batch are those of its samples alone, whatever the mix of front and back padding."""
    torch.manual_seed(1)
    enc = cls((10, D), [8]).eval()
    samples = [content(n, s) for s, n in enumerate([4, 1, 6, 3])]
    front = torch.stack([padded(x, 10 - len(x), 0) for x in samples])  # MultiBench: front padding
    back = torch.stack([padded(x, 0, 10 - len(x)) for x in samples])
    mixed = torch.stack([padded(x, (10 - len(x)) // 2, 10 - len(x) - (10 - len(x)) // 2) for x in samples])
    with torch.no_grad():
        a, b, c = enc(front), enc(back), enc(mixed)
        alone = torch.cat([enc(x.unsqueeze(0)) for x in samples])
    assert torch.equal(a, b) and torch.equal(a, c)
    assert torch.allclose(a, alone, atol=1e-6)


def test_gru_matches_a_plain_gru_over_the_span():
    """Independent reference: nn.GRU run on the unpadded span alone, states averaged by hand."""
    torch.manual_seed(2)
    enc = GRUEncoder((9, D), [6, 6]).eval()
    x = content(4, 7, interior_zero=True)
    with torch.no_grad():
        ref = enc.gru(x.unsqueeze(0))[0].mean(1)
        got = enc(padded(x, 3, 2).unsqueeze(0))
    assert torch.allclose(got, ref, atol=1e-6)


def test_all_zero_sample_encodes_without_error():
    enc = GRUEncoder((4, D), [4]).eval()
    with torch.no_grad():
        out = enc(torch.zeros(2, 4, D))
    assert out.shape == (2, 4) and not out.any()
    tr = TransformerEncoder((4, D), [4]).eval()
    with torch.no_grad():
        assert torch.isfinite(tr(torch.zeros(2, 4, D))).all()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(length=st.integers(1, 6), front=st.integers(0, 5), back=st.integers(0, 5), seed=st.integers(0, 100))
def test_property_gru_invariant_to_padding(length, front, back, seed):
    torch.manual_seed(0)
    enc = GRUEncoder((16, D), [4]).eval()
    x = content(length, seed, interior_zero=True)
    with torch.no_grad():
        assert torch.equal(enc(x.unsqueeze(0)), enc(padded(x, front, back).unsqueeze(0)))


def test_gradients_flow_through_packing():
    enc = GRUEncoder((6, D), [4])
    x = padded(content(3, 1), 2, 1).unsqueeze(0).requires_grad_(True)
    enc(x).sum().backward()
    assert x.grad is not None and x.grad[0, 2:5].abs().sum() > 0 and not x.grad[0, :2].any()
