import pytest
import torch
from torch import nn

from interplay.models import MultimodalModel
from interplay.models.fusion import ConcatFusion, Shuffled, stack_variants

DIMS = {"c": 2, "a": 4, "b": 3}


def variants_for(feats, gen):
    n = feats["a"].shape[0]
    perm = torch.randperm(n, generator=gen)
    return [{"a": Shuffled(perm)},
            {"b": torch.randn(n, DIMS["b"], generator=gen)},
            {"a": Shuffled(perm.flip(0)), "c": torch.randn(n, DIMS["c"], generator=gen)},
            {"b": Shuffled(perm), "c": Shuffled(perm.roll(1))}]


def grads(loss, tensors):
    return torch.autograd.grad(loss, tensors)


@pytest.mark.parametrize("hidden", [[], [6], [6, 5]])
def test_fuse_variants_equals_fusing_the_stacked_variants(hidden):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    fusion = ConcatFusion(DIMS, hidden)
    feats = {m: torch.randn(5, d, requires_grad=True) for m, d in DIMS.items()}
    variants = variants_for(feats, gen)
    fast = fusion.fuse_variants(feats, variants)
    slow = fusion(stack_variants(feats, variants))
    assert fast.shape == (5 * 5, fusion.out_dim)
    assert torch.allclose(fast, slow, atol=1e-6)
    weights = torch.randn(fast.shape, generator=gen)
    inputs = [*feats.values(), *fusion.parameters()]
    for g_fast, g_slow in zip(grads((fast * weights).sum(), inputs), grads((slow * weights).sum(), inputs)):
        assert torch.allclose(g_fast, g_slow, atol=1e-5)


def test_clean_rows_come_first_and_equal_forward():
    fusion = ConcatFusion(DIMS, [6])
    feats = {m: torch.randn(4, d) for m, d in DIMS.items()}
    out = fusion.fuse_variants(feats, [{"a": Shuffled(torch.tensor([1, 2, 3, 0]))}])
    assert torch.allclose(out[:4], fusion(feats), atol=1e-6)
    assert torch.allclose(out[4:], fusion({**feats, "a": feats["a"][[1, 2, 3, 0]]}), atol=1e-6)


class SumFusion(nn.Module):
    """A fusion without its own ``fuse_variants``: the model falls back to stacking."""

    out_dim = 3

    def forward(self, feats, present=None):
        return sum(feats.values())


def test_model_falls_back_to_stacking_for_other_fusions():
    encoders = nn.ModuleDict({m: nn.Linear(2, 3) for m in ("x", "y")})
    model = MultimodalModel(encoders, SumFusion(), nn.Linear(3, 2))
    feats = {m: torch.randn(4, 3) for m in ("x", "y")}
    idx = torch.tensor([3, 0, 1, 2])
    out = model.fuse_variants(feats, [{"x": Shuffled(idx)}, {"y": torch.zeros(4, 3)}])
    assert torch.allclose(out, torch.cat([feats["x"] + feats["y"], feats["x"][idx] + feats["y"], feats["x"]]))
