"""Exact BROJA PID on the canonical test vectors, degenerate inputs, and cross-checks with dit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interplay.data import pmfs
from interplay.pid import PIDResult, broja, entropy, mutual_information

ATOL = 1e-6  # required; the solver typically gets within 1e-10


def atoms(r: PIDResult) -> np.ndarray:
    return np.array([r.redundancy, r.unique1, r.unique2, r.synergy])


@pytest.mark.parametrize("name", sorted(pmfs.CANONICAL))
def test_canonical_vectors(name: str) -> None:
    P = pmfs.CANONICAL[name]()
    r = broja(P)
    np.testing.assert_allclose(atoms(r), pmfs.EXPECTED[name], atol=ATOL, rtol=0)
    np.testing.assert_allclose(atoms(r), pmfs.EXPECTED[name], atol=1e-8, rtol=0)  # the aim
    assert r.converged and r.gap <= 1e-10
    assert r.residual <= 1e-12
    assert r.q.shape == P.shape


def test_spec_table_values() -> None:
    """Numbers as printed in the project spec (6 decimals)."""
    assert broja(pmfs.and_()).redundancy == pytest.approx(0.311278, abs=1e-6)
    assert broja(pmfs.w()).redundancy == pytest.approx(0.251629, abs=1e-6)
    r = broja(pmfs.imperfect_rdn())
    assert (r.redundancy, r.unique1) == pytest.approx((0.989590, 0.010410), abs=1e-6)
    assert broja(pmfs.or_()).synergy == pytest.approx(broja(pmfs.and_()).synergy, abs=1e-9)


def test_and_optimiser_and_certificate() -> None:
    """AND: the optimiser empties the pairs (x1, x2) = (0, 1) and (1, 0): Q(0,1,0) = Q(1,0,0) = 0."""
    r = broja(pmfs.and_())
    q = r.q
    assert q[1, 1, 1] == pytest.approx(0.25, abs=1e-12)
    assert q[0, 1, 0] + q[1, 0, 0] < 1e-6
    assert q[1, 1, 0] == pytest.approx(0.25, abs=1e-6)
    # the optimiser has P's pair marginals
    P = pmfs.and_()
    np.testing.assert_allclose(q.sum(1), P.sum(1), atol=1e-14)
    np.testing.assert_allclose(q.sum(0), P.sum(0), atol=1e-14)
    # I_q(X1, X2; Y) is the minimum, R + U1 + U2
    assert mutual_information(q, (0, 1), (2,)) == pytest.approx(r.i_min, abs=1e-9)


def test_str_table() -> None:
    text = str(broja(pmfs.xor()))
    assert "synergy" in text and "1.000000000" in text and "gap" in text
    assert len(text.splitlines()) >= 9


# --- degenerate inputs: exact answers, no NaN --------------------------------------------------


def _finite(r: PIDResult) -> bool:
    vals = [*atoms(r), r.i_x1_y, r.i_x2_y, r.i_x1x2_y, r.gap, r.residual]
    return all(math.isfinite(v) for v in vals) and bool(np.isfinite(r.q).all())


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 2, 1), (2, 3, 4)])
def test_constant_y(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(0)
    P = np.zeros(shape)
    P[:, :, 0] = rng.dirichlet(np.ones(shape[0] * shape[1])).reshape(shape[:2])
    r = broja(P)
    assert _finite(r) and r.converged
    np.testing.assert_array_equal(atoms(r), 0.0)


def test_point_mass() -> None:
    P = np.zeros((3, 4, 5))
    P[1, 2, 3] = 1.0
    r = broja(P)
    assert _finite(r)
    np.testing.assert_array_equal(atoms(r), 0.0)
    np.testing.assert_allclose(r.q, P)


@pytest.mark.parametrize("seed", range(4))
def test_deterministic_y(seed: int) -> None:
    """Y = f(X1, X2) for a random f: S + R + U1 + U2 = H(Y), all finite, certified."""
    rng = np.random.default_rng(seed)
    a, c, k = rng.integers(2, 6, size=3)
    f = rng.integers(0, k, size=(a, c))
    px = rng.dirichlet(np.ones(a * c)).reshape(a, c)
    P = np.zeros((a, c, k))
    for i in range(a):
        for j in range(c):
            P[i, j, f[i, j]] = px[i, j]
    r = broja(P)
    assert _finite(r) and r.converged
    h_y = entropy(P.sum((0, 1)))
    assert atoms(r).sum() == pytest.approx(h_y, abs=1e-9)


def test_empty_values_and_structural_zeros() -> None:
    """Unused values of x1, x2 or y change nothing; the optimiser is zero where P(x1, y) or P(x2, y) is."""
    core = pmfs.and_()
    P = np.zeros((4, 3, 5))
    P[1:3, 0:2, 2:4] = core  # x1 in {1, 2}, x2 in {0, 1}, y in {2, 3}
    r, r0 = broja(P), broja(core)
    np.testing.assert_allclose(atoms(r), atoms(r0), atol=1e-10)
    assert _finite(r)
    assert r.q[0].sum() == 0 and r.q[3].sum() == 0 and r.q[:, 2].sum() == 0
    assert r.q[:, :, [0, 1, 4]].sum() == 0
    # structural zeros: Q can only be positive where P(x1, y) > 0 and P(x2, y) > 0
    rng = np.random.default_rng(3)
    P = pmfs.random_pmf((5, 4, 3), rng, zero_fraction=0.5)
    r = broja(P)
    allowed = (P.sum(1)[:, None, :] > 0) & (P.sum(0)[None, :, :] > 0)
    assert np.all(r.q[~allowed] == 0)
    assert _finite(r) and r.converged


def test_single_value_sources() -> None:
    """|X1| = 1: X1 carries nothing, so R = U1 = S = 0 and U2 = I(X2; Y)."""
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.ones(12)).reshape(1, 4, 3)
    r = broja(P)
    assert (r.redundancy, r.unique1, r.synergy) == pytest.approx((0, 0, 0), abs=1e-12)
    assert r.unique2 == pytest.approx(r.i_x2_y, abs=1e-12)


def test_torch_and_list_input() -> None:
    torch = pytest.importorskip("torch")
    P = pmfs.sum_()
    r1, r2, r3 = broja(P), broja(torch.from_numpy(P)), broja(P.tolist())
    np.testing.assert_allclose(atoms(r1), atoms(r2), atol=1e-14)
    np.testing.assert_allclose(atoms(r1), atoms(r3), atol=1e-14)
    assert isinstance(r2.q, np.ndarray)


def test_tight_and_loose_tolerance() -> None:
    P = pmfs.random_pmf((6, 5, 4), 7)
    tight, loose = broja(P, tol=1e-11), broja(P, tol=1e-4)
    assert tight.gap <= 1e-11 and loose.gap <= 1e-4
    assert loose.iterations <= tight.iterations
    np.testing.assert_allclose(atoms(tight), atoms(loose), atol=1e-4)


def test_dual_variables_give_the_bound() -> None:
    """lam, mu are dual feasible (all log-sum-exp constraints <= 0): H(Y) + D <= I_min, and close."""
    P = pmfs.random_pmf((4, 3, 3), 11, zero_fraction=0.2)
    r = broja(P)
    lam, mu = r.lam, r.mu
    assert lam is not None and mu is not None
    a = lam[:, None, :] + mu[None, :, :]
    allowed = np.isfinite(a)
    with np.errstate(invalid="ignore"):
        g = np.log(np.where(allowed, np.exp(np.where(allowed, a, -np.inf)), 0).sum(-1))
    active = allowed.any(-1)
    assert np.all(g[active] <= 1e-12)
    dual = np.sum(P.sum(1) * np.nan_to_num(lam)) + np.sum(P.sum(0) * np.nan_to_num(mu))
    py = P.sum((0, 1))
    h_y = -np.sum(py[py > 0] * np.log(py[py > 0]))
    bound_bits = (h_y + dual) / math.log(2)
    assert bound_bits <= r.i_min + 1e-12
    # the reported gap may use the (sometimes tighter) bound max(I(X1;Y), I(X2;Y)) instead
    assert r.i_min - bound_bits <= max(r.gap, 1e-8)


# --- independent reference: dit ------------------------------------------------------------------
# dit's default bivariate route (SLSQP with random restarts) is nondeterministic and inexact (it
# reports U = 0.67 on W, and U = 0.004 on XOR on some runs); its ``method="admui"`` route
# (alternating divergence minimisation, Banerjee et al. 2018) is deterministic and accurate.


def _dit_pid(P: np.ndarray, **kwargs) -> np.ndarray:
    dit = pytest.importorskip("dit")
    from dit.pid import PID_BROJA

    p = PID_BROJA(dit.Distribution.from_ndarray(P), **kwargs)
    return np.array([p.get_pi(((0,), (1,))), p.get_pi(((0,),)), p.get_pi(((1,),)), p.get_pi(((0, 1),))])


@pytest.mark.parametrize("name", ["and", "xor", "rdn", "unq", "sum", "copy", "imperfect_rdn"])
def test_against_dit_canonical(name: str) -> None:
    P = pmfs.CANONICAL[name]()
    np.testing.assert_allclose(atoms(broja(P)), _dit_pid(P, method="admui"), atol=1e-5)


def test_dit_default_route_is_wrong_on_w() -> None:
    """dit's default route reports U = 0.667 on W (spec); our certificate proves U = 0."""
    P = pmfs.w()
    d, r = _dit_pid(P, rng=np.random.default_rng(0)), broja(P)
    assert r.unique1 == pytest.approx(0.0, abs=1e-9) and r.gap < 1e-9
    assert d[1] > 0.5  # dit's value, far from the certified optimum
    # dit's value is that of a point with a larger I_Q(X1, X2; Y) than ours
    assert r.i_x1_y + d[2] > r.i_min + 0.5


@pytest.mark.parametrize("shape", [(2, 2, 2), (2, 2, 2), (2, 2, 2), (3, 3, 3)])
def test_against_dit_random(shape: tuple[int, int, int], request: pytest.FixtureRequest) -> None:
    seed = int(request.node.callspec.indices["shape"])
    P = pmfs.random_pmf(shape, seed, zero_fraction=0.15 * (seed % 2))
    np.testing.assert_allclose(atoms(broja(P)), _dit_pid(P, method="admui"), atol=1e-6)
