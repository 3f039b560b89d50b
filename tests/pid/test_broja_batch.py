"""Batched BROJA PID: agreement with the single-pmf solver, numpy/torch in and out, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interplay.data import pmfs
from interplay.pid import PIDBatchResult, PIDResult, broja, broja_batch

FIELDS = ("redundancy", "unique1", "unique2", "synergy", "i_x1_y", "i_x2_y", "i_x1x2_y", "gap", "residual")


def _stack(shape: tuple[int, int, int], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    zf = [0.0, 0.3, 0.6]
    return np.stack([pmfs.random_pmf(shape, rng, zero_fraction=zf[i % 3]) for i in range(n)])


def test_batch_matches_single_numpy() -> None:
    Ps = _stack((4, 3, 5), 9, 0)
    rb = broja_batch(Ps)
    assert isinstance(rb, PIDBatchResult) and len(rb) == 9
    for name in FIELDS:
        assert isinstance(getattr(rb, name), np.ndarray) and getattr(rb, name).shape == (9,)
    assert rb.q.shape == Ps.shape and rb.lam.shape == (9, 4, 5) and rb.mu.shape == (9, 3, 5)
    for i, P in enumerate(Ps):
        r = broja(P)
        for a in ("redundancy", "unique1", "unique2", "synergy"):
            assert getattr(rb, a)[i] == pytest.approx(getattr(r, a), abs=2e-9)
        np.testing.assert_allclose(rb.q[i].sum(1), P.sum(1), atol=1e-14)
    assert bool(rb.converged.all()) and float(rb.gap.max()) <= 1e-9


def test_batch_mixes_canonical_and_degenerate() -> None:
    """Solved and trivially answered pmfs (XOR, RDN, constant Y) side by side in one batch."""
    shape = (2, 2, 2)
    const_y = np.zeros(shape)
    const_y[:, :, 1] = 0.25
    Ps = np.stack([pmfs.and_(), pmfs.xor(), pmfs.rdn(), const_y, pmfs.w(), pmfs.imperfect_rdn()])
    rb = broja_batch(Ps)
    names = ["and", "xor", "rdn", None, "w", "imperfect_rdn"]
    for i, name in enumerate(names):
        got = [rb.redundancy[i], rb.unique1[i], rb.unique2[i], rb.synergy[i]]
        want = pmfs.EXPECTED[name] if name else (0.0, 0.0, 0.0, 0.0)
        np.testing.assert_allclose(got, want, atol=1e-9)
    assert rb.iterations.dtype.kind == "i" and rb.iterations[1] == 0  # XOR needs no iteration


def test_torch_input_returns_tensors() -> None:
    Ps = torch.from_numpy(_stack((3, 3, 3), 4, 1))
    rb = broja_batch(Ps)
    for name in (*FIELDS, "q", "converged", "iterations"):
        value = getattr(rb, name)
        assert isinstance(value, torch.Tensor) and value.device == Ps.device
    assert rb.synergy.dtype == torch.float64
    # results are ordinary tensors (not inference tensors): usable in later autograd code
    assert not rb.synergy.is_inference()
    single = broja(Ps[2])
    assert float(rb.synergy[2]) == pytest.approx(single.synergy, abs=2e-9)


def test_indexing_and_iteration() -> None:
    rb = broja_batch(np.stack([pmfs.and_(), pmfs.noisy(pmfs.xor(), 0.1)]))
    items = list(rb)
    assert len(items) == 2 and all(isinstance(r, PIDResult) for r in items)
    assert items[0].synergy == pytest.approx(0.5, abs=1e-9)
    assert items[0].q.shape == (2, 2, 2)
    assert "synergy" in str(items[1])


def test_float32_and_list_input() -> None:
    Ps = _stack((2, 3, 2), 3, 5)
    r64 = broja_batch(Ps)
    r32 = broja_batch(Ps.astype(np.float32), normalize=True)
    np.testing.assert_allclose(r32.synergy, r64.synergy, atol=1e-6)
    rl = broja_batch(Ps.tolist())
    np.testing.assert_allclose(rl.synergy, r64.synergy, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    Ps = torch.from_numpy(_stack((6, 5, 4), 16, 2))
    cpu = broja_batch(Ps)
    gpu = broja_batch(Ps.cuda())
    assert gpu.synergy.device.type == "cuda"
    torch.testing.assert_close(gpu.synergy.cpu(), cpu.synergy, atol=1e-8, rtol=0)
    torch.testing.assert_close(gpu.unique1.cpu(), cpu.unique1, atol=1e-8, rtol=0)
    assert bool(gpu.converged.all())


def test_device_argument() -> None:
    Ps = torch.from_numpy(_stack((3, 2, 2), 2, 3))
    rb = broja_batch(Ps, device="cpu")
    assert rb.synergy.device.type == "cpu"
