"""Agreement with an independent exponential-cone formulation solved by CVXPY (Clarabel).

Reference: minimise ``sum_y sum_{x1,x2} rel_entr(Q_y, p(y) Q(x1, x2))`` (= I_Q(X1, X2; Y) in
nats) over ``Q_y >= 0`` with row sums ``P(x1, y)`` and column sums ``P(x2, y)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from interplay.data import pmfs
from interplay.pid import broja

pytest.importorskip("cvxpy")

from interplay.pid.reference import cvxpy_i_min  # noqa: E402


def _check(P: np.ndarray, atol: float = 1e-6) -> None:
    r = broja(P)
    ref, _ = cvxpy_i_min(P)
    assert r.converged
    assert r.i_min == pytest.approx(ref, abs=atol)
    # the atoms follow from I_min and the mutual informations, so they agree as well
    assert r.synergy == pytest.approx(r.i_x1x2_y - ref, abs=atol)
    assert r.unique1 == pytest.approx(ref - r.i_x2_y, abs=atol)


@pytest.mark.parametrize("seed", range(6))
def test_random_small(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(k) for k in rng.integers(2, 6, size=3))
    _check(pmfs.random_pmf(shape, rng))


@pytest.mark.parametrize("seed", range(6))
def test_random_small_with_zeros(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    shape = tuple(int(k) for k in rng.integers(2, 7, size=3))
    _check(pmfs.random_pmf(shape, rng, zero_fraction=0.5))


@pytest.mark.parametrize("seed", range(3))
def test_random_uneven(seed: int) -> None:
    """Dirichlet(0.2): many tiny probabilities."""
    _check(pmfs.random_pmf((4, 5, 3), 200 + seed, alpha=0.2))


def test_structured_families() -> None:
    _check(pmfs.noisy(pmfs.and_(), 0.1))
    _check(pmfs.mixture([pmfs.xor(), pmfs.rdn(), pmfs.unq()], [0.5, 0.3, 0.2]))
    _check(pmfs.noisy(pmfs.mixture([pmfs.sum_(), pmfs.copy()], disjoint=True), 0.05))


@pytest.mark.slow
@pytest.mark.parametrize("k,zero_fraction", [(8, 0.0), (10, 0.3), (12, 0.0)])
def test_random_large(k: int, zero_fraction: float) -> None:
    _check(pmfs.random_pmf((k, k, k), k, zero_fraction=zero_fraction))


def test_certificate_brackets_the_reference() -> None:
    """The reference optimum lies within [I_min - gap, I_min] up to the reference's own accuracy."""
    P = pmfs.random_pmf((5, 4, 4), 5, zero_fraction=0.2)
    r = broja(P, tol=1e-5)
    ref, _ = cvxpy_i_min(P)
    assert r.i_min - r.gap - 1e-7 <= ref <= r.i_min + 1e-7
