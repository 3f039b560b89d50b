"""Property tests of the BROJA PID over many random pmfs (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from interplay.data import pmfs
from interplay.pid import PIDResult, broja, broja_batch, mutual_information

TOL = 1e-9  # the identities hold to rounding (the atoms are exact to the certified gap)


@st.composite
def pmf(draw: st.DrawFn, max_side: int = 5) -> np.ndarray:
    shape = tuple(draw(st.integers(1, max_side)) for _ in range(3))
    weights = draw(arrays(np.float64, shape, elements=st.floats(0.0, 1.0, allow_subnormal=False)))
    zero = draw(arrays(np.bool_, shape))
    weights = np.where(zero, 0.0, weights)
    if weights.sum() <= 0:
        weights.flat[0] = 1.0
    # occasionally spread the values over many orders of magnitude
    if draw(st.booleans()):
        weights = weights ** draw(st.sampled_from([3.0, 10.0]))
        if weights.sum() <= 0:
            weights.flat[0] = 1.0
    return weights / weights.sum()


def atoms(r: PIDResult) -> np.ndarray:
    return np.array([r.redundancy, r.unique1, r.unique2, r.synergy])


# derandomize: the same examples on every run (CI must not depend on luck)
SETTINGS = settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(pmf())
def test_identities_and_signs(P: np.ndarray) -> None:
    r = broja(P)
    a = atoms(r)
    assert np.all(np.isfinite(a)) and np.all(a >= -TOL)
    i1 = mutual_information(P, (0,), (2,))
    i2 = mutual_information(P, (1,), (2,))
    i12 = mutual_information(P, (0, 1), (2,))
    assert r.redundancy + r.unique1 == pytest.approx(i1, abs=TOL)
    assert r.redundancy + r.unique2 == pytest.approx(i2, abs=TOL)
    assert a.sum() == pytest.approx(i12, abs=TOL)
    # certified to the default tolerance (1e-10 bits); on adversarial pmfs spanning many orders of
    # magnitude the solver may stop a little short of it, but never short of the 1e-6 requirement
    assert 0.0 <= r.gap <= 1e-6
    assert r.converged == (r.gap <= 1e-10)
    # the optimiser is feasible: same pair marginals as P, non-negative
    assert np.all(r.q >= 0)
    np.testing.assert_allclose(r.q.sum(1), P.sum(1), atol=1e-13)
    np.testing.assert_allclose(r.q.sum(0), P.sum(0), atol=1e-13)


@SETTINGS
@given(pmf())
def test_symmetry_under_swapping_sources(P: np.ndarray) -> None:
    r, s = broja(P), broja(P.transpose(1, 0, 2))
    np.testing.assert_allclose(atoms(s), atoms(r)[[0, 2, 1, 3]], atol=max(r.gap, s.gap) + 1e-9)


@SETTINGS
@given(pmf(), st.randoms(use_true_random=False))
def test_invariance_under_relabelling(P: np.ndarray, rnd) -> None:  # noqa: ANN001
    perms = [list(range(n)) for n in P.shape]
    for p in perms:
        rnd.shuffle(p)
    r, s = broja(P[np.ix_(*perms)]), broja(P)
    np.testing.assert_allclose(atoms(r), atoms(s), atol=max(r.gap, s.gap) + 1e-9)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(pmf(max_side=3), st.integers(0, 2), st.integers(0, 3))
def test_unused_values_change_nothing(P: np.ndarray, axis: int, where: int) -> None:
    where = min(where, P.shape[axis])
    r, s = broja(np.insert(P, where, 0.0, axis=axis)), broja(P)
    np.testing.assert_allclose(atoms(r), atoms(s), atol=max(r.gap, s.gap) + 1e-10)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.integers(0, 10_000))
def test_batch_equals_single(seed: int) -> None:
    rng = np.random.default_rng(seed)
    Ps = np.stack([pmfs.random_pmf((3, 2, 3), rng, zero_fraction=z) for z in (0.0, 0.3, 0.6, 0.0, 0.5)])
    rb = broja_batch(Ps)
    for i, P in enumerate(Ps):
        r = broja(P)
        np.testing.assert_allclose(atoms(rb[i]), atoms(r), atol=1e-9)


@pytest.mark.parametrize("flip", [0.0, 0.05, 0.2, 0.5])
@pytest.mark.parametrize("name", ["xor", "and", "rdn", "unq", "copy"])
def test_noisy_families(name: str, flip: float) -> None:
    """Label noise: the identities hold and the total information only decreases."""
    P = pmfs.noisy(pmfs.CANONICAL[name](), flip)
    r = broja(P)
    assert np.all(atoms(r) >= 0) and r.converged
    assert atoms(r).sum() <= broja(pmfs.CANONICAL[name]()).i_x1x2_y + 1e-9
