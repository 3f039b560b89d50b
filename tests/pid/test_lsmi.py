"""The per-sample ``lsmi`` estimator: pointwise algebra, AUROC, densities, the zero_grad fix, behaviour on pid-xor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from interplay.data import MultimodalDataset, pid_xor
from interplay.errors import ConfigError, DataError
from interplay.metrics import auroc
from interplay.pid.lsmi import (
    GaussianMixture,
    KernelMixture,
    dataset_shift,
    lsmi,
    lsmi_splits,
    lsmi_terms,
)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_pointwise_identities_hold_per_sample() -> None:
    g = torch.Generator().manual_seed(0)
    i1, i2, i12, h1, h2 = (torch.randn(50, generator=g, dtype=torch.float64) for _ in range(5))
    d = lsmi_terms(i1, i2, i12, h1, h2)
    torch.testing.assert_close(d["r"] + d["u1"], i1)
    torch.testing.assert_close(d["r"] + d["u2"], i2)
    torch.testing.assert_close(d["r"] + d["u1"] + d["u2"] + d["s"], i12)
    # with non-negative informations r lies between min(i1, i2) and max(i1, i2)
    a, b = i1.abs(), i2.abs()
    r = lsmi_terms(a, b, i12, h1, h2)["r"]
    assert bool((r >= torch.minimum(a, b) - 1e-12).all() and (r <= torch.maximum(a, b) + 1e-12).all())


def test_pointwise_canonical_samples() -> None:
    h = t(3.0)
    xor = lsmi_terms(t(0.0), t(0.0), t(1.0), h, h)
    assert (float(xor["r"]), float(xor["s"])) == (0.0, 1.0)
    rdn = lsmi_terms(t(1.0), t(1.0), t(1.0), h, h)
    assert (float(rdn["r"]), float(rdn["u1"]), float(rdn["s"])) == (1.0, 0.0, 0.0)
    # unique to x1: only counted as unique when x1 is the more surprising modality by at least i1 (the caveat)
    unq = lsmi_terms(t(1.0), t(0.0), t(1.0), t(5.0), t(3.0))
    assert (float(unq["r"]), float(unq["u1"]), float(unq["s"])) == (0.0, 1.0, 0.0)
    flipped = lsmi_terms(t(1.0), t(0.0), t(1.0), t(3.0), t(5.0))
    assert (float(flipped["r"]), float(flipped["s"])) == (1.0, 1.0)


def test_dataset_shift_keeps_identities_and_makes_means_non_negative() -> None:
    terms = {"r": t(-0.2, 0.0), "u1": t(0.5, 0.5), "u2": t(0.4, 0.6), "s": t(0.1, -0.3)}  # means -0.1, .5, .5, -0.1
    c, msg = dataset_shift(terms)
    assert c == pytest.approx(0.1) and msg is None
    assert dataset_shift({"r": t(1.0), "u1": t(1.0), "u2": t(1.0), "s": t(1.0)}) == (0.0, None)
    # negative unique means are fixed by a negative shift when r and s can afford it
    c, msg = dataset_shift({"r": t(0.5), "u1": t(-0.2), "u2": t(0.5), "s": t(0.3)})
    assert c == pytest.approx(-0.2) and msg is None
    c, msg = dataset_shift({"r": t(-1.0), "u1": t(0.2), "u2": t(0.5), "s": t(0.0)})
    assert c == pytest.approx(0.6) and "no dataset-level shift" in msg


def test_gaussian_mixture_density() -> None:
    from scipy.stats import multivariate_normal

    g = torch.Generator().manual_seed(0)
    cov = torch.tensor([[1.0, 0.6], [0.6, 2.0]], dtype=torch.float64)
    x = torch.randn(4000, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    one = GaussianMixture(1, reg=0.0).fit(x)
    ref = multivariate_normal(one.means[0].numpy(), (one.chol[0] @ one.chol[0].T).numpy())
    np.testing.assert_allclose(one.log_prob(x[:20]).numpy(), ref.logpdf(x[:20].numpy()), rtol=1e-9)
    entropy = 0.5 * math.log(((2 * math.pi * math.e) ** 2) * float(torch.linalg.det(cov)))
    mix = GaussianMixture(4, seed=1).fit(x)
    assert float(-mix.log_prob(x).mean()) == pytest.approx(entropy, abs=0.05)


def test_kernel_mixture_zero_grad_fix() -> None:
    """With lr = 0 the parameters stay put, so after several full-batch steps the gradient must equal one step's
    gradient; the authors' loop (no zero_grad) would hold the sum of all steps' gradients."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g, dtype=torch.float64)
    km = KernelMixture(x[:5])
    km.fit(x, steps=4, lr=0.0, batch_size=1000)
    got = km.means.grad.clone()
    fresh = KernelMixture(x[:5])
    (-fresh.log_prob(x).mean()).backward()
    torch.testing.assert_close(got, fresh.means.grad)
    losses = KernelMixture(x[:5]).fit(x, steps=200, lr=0.05, batch_size=1000)
    assert losses[-1] < losses[0] - 0.1


def test_lsmi_on_pid_xor_ranks_synergy_and_sorts_sources() -> None:
    """Equal four-way mix, 1000 train / 1000 test. Measured (seed 0): AUROC of s for synergistic vs other test
    samples 0.81 (0.85 for seed 1); per-source means: synergistic s 0.75, redundant r 0.75, unique1 u1 0.72,
    unique2 u2 0.85 bits."""
    splits = pid_xor(seed=0, n_train=1000, n_test=1000, mix="unique1=.25,unique2=.25,redundant=.25,synergistic=.25")
    res = lsmi_splits(splits, epochs=50, seed=0)
    names = splits.info.interactions
    inter = res.meta["interaction"]
    assert res.s.shape == (1000,) and res.settings["eval_split"] == "pid-xor/test"
    torch.testing.assert_close(res.r + res.u1 + res.u2 + res.s, res.i12)
    value = auroc(res.s, inter == names.index("synergistic"))
    assert value > 0.72
    g = res.by_group(inter, names)
    assert max(g, key=lambda k: g[k]["s"]) == "synergistic"
    assert max(g, key=lambda k: g[k]["r"]) == "redundant"
    assert g["unique1"]["u1"] > 0.4 > g["unique1"]["u2"]
    assert g["unique2"]["u2"] > 0.4 > g["unique2"]["u1"]
    assert res.accuracy["joint"] > 0.9 and res.units == "bits"
    assert res.means["s"] == pytest.approx(float(res.s.mean()))


def _noise_dataset(n: int, p1: float, seed: int, name: str) -> MultimodalDataset:
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < p1).long()
    return MultimodalDataset({"a": torch.randn(n, 3, generator=g), "b": torch.randn(n, 2, generator=g)}, y,
                             name=name)


def test_prior_comes_from_the_data_not_uniform() -> None:
    """Uninformative features, P(y = 1) = 0.8: the pointwise informations average to about 0 bits; a uniform
    prior would give about 0.28 bits."""
    train, test = _noise_dataset(600, 0.8, 0, "noise/train"), _noise_dataset(600, 0.8, 1, "noise/test")
    res = lsmi(train, test, epochs=15, hidden=(16,), components=2, density_dim=2, seed=0, units="nats")
    prior = res.settings["prior"]
    assert prior[1] == pytest.approx(float(train.target.float().mean()), abs=0.02)
    for k in ("i1", "i2", "i12"):
        assert abs(res.means[k]) < 0.05, (k, res.means)
    assert res.units == "nats" and set(res.accuracy) == {"a", "b", "joint"}


def test_shift_and_knife_density_options() -> None:
    splits = pid_xor(seed=2, n_train=300, n_test=200, mix="redundant=.5,synergistic=.5")
    res = lsmi_splits(splits, epochs=5, hidden=(32,), density="knife", components=8, density_steps=30, shift=True)
    torch.testing.assert_close(res.r + res.u1, res.i1)
    torch.testing.assert_close(res.r + res.u1 + res.u2 + res.s, res.i12)
    assert not res.warnings
    for k in ("r", "u1", "u2", "s"):
        assert res.means[k] >= -1e-9, res.means
    assert res.settings["density"]["kind"] == "knife"


def test_bad_arguments() -> None:
    splits = pid_xor(seed=0, n_train=60, n_test=40, mix="redundant=1")
    with pytest.raises(ConfigError):
        lsmi_splits(splits, units="dits")
    with pytest.raises(ConfigError):
        lsmi_splits(splits, density="kde")
    three = pid_xor(seed=0, n_train=60, n_test=40, mix="redundant=1", modalities=3)
    with pytest.raises(DataError, match="name the pair"):
        lsmi_splits(three, epochs=1)
    reg = MultimodalDataset({"a": torch.randn(10, 2), "b": torch.randn(10, 2)}, torch.randn(10), name="reg")
    with pytest.raises(DataError, match="regression"):
        lsmi(reg, reg)
