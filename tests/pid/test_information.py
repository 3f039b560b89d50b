"""Entropy and mutual information helpers (numpy and torch, batched)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from interplay.data import pmfs
from interplay.pid import conditional_mutual_information, entropy, marginal, mutual_information


def test_entropy_basics() -> None:
    assert entropy(np.full(8, 1 / 8)) == pytest.approx(3.0)
    assert entropy(np.array([1.0, 0.0, 0.0])) == 0.0
    assert entropy(np.array([0.5, 0.5]), base=math.e) == pytest.approx(math.log(2))
    assert entropy(pmfs.xor()) == pytest.approx(2.0)


def test_mutual_information_canonical() -> None:
    P = pmfs.xor()
    assert mutual_information(P, (0,), (2,)) == pytest.approx(0.0, abs=1e-15)
    assert mutual_information(P, (0, 1), (2,)) == pytest.approx(1.0)
    P = pmfs.copy()
    assert mutual_information(P, (0,), (2,)) == pytest.approx(1.0)
    assert mutual_information(P, (0, 1), (2,)) == pytest.approx(2.0)
    assert conditional_mutual_information(P, (0,), (2,), (1,)) == pytest.approx(1.0)
    assert conditional_mutual_information(pmfs.xor(), (0,), (2,), (1,)) == pytest.approx(1.0)


def test_chain_rule_random() -> None:
    P = pmfs.random_pmf((3, 4, 5), 0, zero_fraction=0.3)
    i12 = mutual_information(P, (0, 1), (2,))
    i2 = mutual_information(P, (1,), (2,))
    assert i12 == pytest.approx(i2 + conditional_mutual_information(P, (0,), (2,), (1,)), abs=1e-12)


def test_batched_and_torch() -> None:
    Ps = np.stack([pmfs.xor(), pmfs.and_(), pmfs.rdn()])
    got = mutual_information(Ps, (0, 1), (2,), batch_dims=1)
    assert isinstance(got, np.ndarray) and got.shape == (3,)
    np.testing.assert_allclose(got, [1.0, entropy(np.array([0.75, 0.25])), 1.0], atol=1e-12)
    t = mutual_information(torch.from_numpy(Ps), (0, 1), (2,), batch_dims=1)
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), got, atol=1e-15)


def test_marginal_and_errors() -> None:
    P = pmfs.and_()
    np.testing.assert_allclose(marginal(P, (2,)), [0.75, 0.25])
    assert marginal(P, (0, 2)).shape == (2, 2)
    with pytest.raises(ValueError, match="disjoint"):
        mutual_information(P, (0,), (0, 2))
