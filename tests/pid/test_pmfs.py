"""Canonical pmfs and random / structured families of :mod:`interplay.data.pmfs`."""

from __future__ import annotations

import numpy as np
import pytest

from interplay.data import pmfs


@pytest.mark.parametrize("name", sorted(pmfs.CANONICAL))
def test_canonical_are_pmfs(name: str) -> None:
    P = pmfs.CANONICAL[name]()
    assert P.dtype == np.float64 and P.ndim == 3
    assert P.sum() == pytest.approx(1.0, abs=1e-15) and (P >= 0).all()
    assert name in pmfs.EXPECTED and len(pmfs.EXPECTED[name]) == 4


def test_shapes_and_definitions() -> None:
    assert pmfs.rdnxor().shape == (4, 4, 4) and pmfs.rdnunqxor().shape == (8, 8, 16)
    assert pmfs.copy().shape == (2, 2, 4) and pmfs.sum_().shape == (2, 2, 3)
    assert pmfs.sum_()[1, 1, 2] == 0.25 and pmfs.copy()[1, 0, 2] == 0.25
    assert pmfs.w()[0, 0, 1] == pytest.approx(1 / 3)
    assert (pmfs.erase() > 0).sum() == 15 and pmfs.erase()[2, 2, 2] == pytest.approx(0.125)
    np.testing.assert_allclose(pmfs.mixture([pmfs.xor(), pmfs.xor()], disjoint=True), pmfs.rdnxor())


def test_erase_matches_dit() -> None:
    dit = pytest.importorskip("dit")
    from dit.pid.distributions import bivariates

    d = bivariates["erase"]
    P = pmfs.erase()
    index = {"0": 0, "1": 1, "_": 2}
    for outcome, prob in zip(d.outcomes, d.pmf):
        assert P[tuple(index[c] for c in outcome)] == pytest.approx(prob)
    assert len(d.outcomes) == (P > 0).sum()
    del dit


def test_random_pmf() -> None:
    P = pmfs.random_pmf((3, 4, 5), 0)
    assert P.shape == (3, 4, 5) and P.sum() == pytest.approx(1.0) and (P > 0).all()
    Z = pmfs.random_pmf((3, 4, 5), 0, zero_fraction=0.7)
    assert 0.4 < (Z == 0).mean() < 0.95 and Z.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(pmfs.random_pmf((2, 2, 2), 3), pmfs.random_pmf((2, 2, 2), 3))
    tiny = pmfs.random_pmf((1, 1, 1), 0, zero_fraction=0.99)
    assert tiny.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        pmfs.random_pmf((2, 2, 2), 0, zero_fraction=1.0)


def test_noisy() -> None:
    P = pmfs.noisy(pmfs.xor(), 0.1)
    assert P.sum() == pytest.approx(1.0)
    assert P[0, 0, 0] == pytest.approx(0.25 * 0.9) and P[0, 0, 1] == pytest.approx(0.25 * 0.1)
    np.testing.assert_allclose(pmfs.noisy(pmfs.copy(), 0.0), pmfs.copy())
    uniform = pmfs.noisy(pmfs.copy(), 0.75)  # |Y| = 4: 3/4 spread over 3 other labels
    np.testing.assert_allclose(uniform, np.full((2, 2, 4), 1 / 16))
    with pytest.raises(ValueError):
        pmfs.noisy(pmfs.xor(), 1.5)


def test_mixture() -> None:
    M = pmfs.mixture([pmfs.xor(), pmfs.copy()], [3, 1])
    assert M.shape == (2, 2, 4) and M.sum() == pytest.approx(1.0)
    assert M[1, 1, 3] == pytest.approx(0.25 * 0.25)
    with pytest.raises(ValueError):
        pmfs.mixture([])
    with pytest.raises(ValueError):
        pmfs.mixture([pmfs.xor()], [-1.0])


def test_from_outcomes() -> None:
    P = pmfs.from_outcomes([(0, 0, 0), (1, 1, 1), (1, 1, 1)])
    assert P.shape == (2, 2, 2) and P[1, 1, 1] == pytest.approx(2 / 3)
