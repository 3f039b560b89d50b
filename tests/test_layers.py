"""interplay.layers.RunningStats: the one running mean/variance (SynIB's Gaussian fill, token-level noise)."""

import torch

from interplay.layers import RunningStats


def test_first_update_sets_then_ema_with_weights_equals_naive():
    g = torch.Generator().manual_seed(0)
    stats = RunningStats(3, momentum=0.9)
    a = torch.randn(5, 3, generator=g)
    stats.update(a)
    assert torch.allclose(stats.mean, a.mean(0)) and torch.allclose(stats.var, a.var(0, unbiased=False))
    b = torch.randn(6, 3, generator=g)
    valid = torch.tensor([1, 0, 1, 1, 0, 1], dtype=torch.bool)
    stats.update(b, valid)
    kept = b[valid]
    assert torch.allclose(stats.mean, 0.9 * a.mean(0) + 0.1 * kept.mean(0), atol=1e-6)
    assert torch.allclose(stats.var, 0.9 * a.var(0, unbiased=False) + 0.1 * kept.var(0, unbiased=False), atol=1e-6)
    one = RunningStats(3, momentum=0.5)
    one.update(a[:1])
    assert torch.equal(one.var, torch.zeros(3))  # a single row has no spread


def test_sample_has_the_shape_and_the_statistics():
    stats = RunningStats(4, momentum=0.0)
    stats.update(torch.tensor([[0.0, 1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0]]))  # mean 1..4, var 1
    torch.manual_seed(0)
    tokens = stats.sample(torch.zeros(2000, 3, 4))  # per last dimension
    assert tokens.shape == (2000, 3, 4)
    assert torch.allclose(tokens.reshape(-1, 4).mean(0), torch.tensor([1.0, 2.0, 3.0, 4.0]), atol=0.05)
    assert torch.allclose(tokens.reshape(-1, 4).std(0), torch.ones(4), atol=0.05)
    rows = stats.sample(torch.zeros(7, 2, 2, dtype=torch.float64))  # (B, *shape), prod(shape) == dim
    assert rows.shape == (7, 2, 2) and rows.dtype == torch.float64
