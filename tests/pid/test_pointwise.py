"""Pointwise (per-sample) BROJA PID from the dual optimum, and the differentiable twin broja_torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from interplay.data import pmfs
from interplay.pid import (
    PIDInputError,
    PointwisePID,
    broja,
    broja_batch,
    broja_torch,
    per_sample_pid,
    pointwise_pid,
)

ATOMS = ("redundancy", "unique1", "unique2", "synergy")
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def full_support_pmf(draw: st.DrawFn, max_side: int = 4) -> np.ndarray:
    shape = tuple(draw(st.integers(2, max_side)) for _ in range(3))
    weights = draw(arrays(np.float64, shape, elements=st.floats(0.01, 1.0, allow_subnormal=False)))
    if draw(st.booleans()):  # uneven pmfs, still full support
        weights = weights ** draw(st.sampled_from([2.0, 4.0]))
    return weights / weights.sum()


def pointwise_mi(P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log2 p(y|x1)/p(y)``, ``log2 p(y|x2)/p(y)``, ``log2 p(y|x1,x2)/p(y)`` on the grid of P."""
    py = P.sum((0, 1))
    p1y, p2y, p12 = P.sum(1), P.sum(0), P.sum(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        i1 = np.log2(p1y / p1y.sum(1, keepdims=True) / py)[:, None, :]
        i2 = np.log2(p2y / p2y.sum(1, keepdims=True) / py)[None, :, :]
        i12 = np.log2(P / p12[..., None] / py)
    return np.broadcast_to(i1, P.shape), np.broadcast_to(i2, P.shape), i12


# ----------------------------------------------------------------------------------------------
# canonical pmfs: pointwise terms known by hand
# ----------------------------------------------------------------------------------------------

# pmf -> pointwise (r, u1, u2, s) in bits, the same on every outcome with P > 0
CONSTANT_TERMS = {
    "xor": (0.0, 0.0, 0.0, 1.0),  # Q* uniform: phi = log 1/2, s = log2 1 / (1/2)
    "rdn": (1.0, 0.0, 0.0, 0.0),  # phi = 0: r = -log2 p(y)
    "unq": (0.0, 1.0, 0.0, 0.0),  # y = x1: phi = log p(y|x1) = 0, u1 = -log2 p(y|x2) = 1
    "copy": (0.0, 1.0, 1.0, 0.0),  # one allowed y per pair: phi = 0
    "rdnxor": (1.0, 0.0, 0.0, 1.0),
    "rdnunqxor": (1.0, 1.0, 1.0, 1.0),
}


@pytest.mark.parametrize("name", sorted(CONSTANT_TERMS))
def test_canonical_constant_terms(name: str) -> None:
    P = pmfs.CANONICAL[name]()
    pw = pointwise_pid(P)
    pos = P > 0
    for atom, want in zip(ATOMS, CONSTANT_TERMS[name], strict=True):
        vals = getattr(pw, atom)
        np.testing.assert_allclose(vals[pos], want, atol=1e-9, err_msg=f"{name}: {atom}")
        assert np.isnan(vals[~pos]).all()
    assert pw.determined[pos].all()
    assert pw.max_error <= pw.gap + 1e-12


def test_and_terms_by_hand() -> None:
    # y = x1 AND x2. Q* moves the y = 0 mass of the pairs (0, 1), (1, 0) onto (0, 0), (1, 1): phi is
    # pinned on (0, 0, 0) (= 0) and (1, 1, y) (= log 1/2); on (0, 1, 0), (1, 0, 0) any phi in
    # [-1, 0] bits is optimal and the symmetric choice (log p(y|x1) + log p(y|x2)) / 2 = -1/2 bit is used.
    pw = pointwise_pid(pmfs.and_())
    b = math.log2(3.0)  # p(y = 0) = 3/4, p(y = 0 | x = 0) = 1, p(y = 0 | x = 1) = 1/2
    want = {  # (r, u1, u2, s)
        (0, 0, 0): (2 - b, 0.0, 0.0, 0.0),  # phi = 0
        (0, 1, 0): (1.5 - b, 0.5, -0.5, 0.5),  # phi = -1/2: x1 = 0 alone gives y = 0
        (1, 0, 0): (1.5 - b, -0.5, 0.5, 0.5),
        (1, 1, 1): (1.0, 0.0, 0.0, 1.0),  # phi = -1, p(y) = 1/4
    }
    for cell, terms in want.items():
        got = [float(getattr(pw, a)[cell]) for a in ATOMS]
        np.testing.assert_allclose(got, terms, atol=1e-9, err_msg=str(cell))
    assert pw.dual_source == "x1+x2"
    det = pw.determined
    assert det[0, 0, 0] and det[1, 1, 1] and not det[0, 1, 0] and not det[1, 0, 0]
    means = pw.means()
    for a, want_atom in zip(ATOMS, pmfs.EXPECTED["and"], strict=True):
        assert means[a] == pytest.approx(want_atom, abs=1e-9)


@pytest.mark.parametrize("name", sorted(pmfs.CANONICAL))
def test_canonical_means_are_the_atoms(name: str) -> None:
    pw = pointwise_pid(pmfs.CANONICAL[name]())
    means = pw.means()
    for a, want in zip(ATOMS, pmfs.EXPECTED[name], strict=True):
        assert means[a] == pytest.approx(want, abs=1e-9), a
    assert pw.gap <= 1e-9


# ----------------------------------------------------------------------------------------------
# properties on random full-support pmfs
# ----------------------------------------------------------------------------------------------


@SETTINGS
@given(full_support_pmf())
def test_means_equal_atoms_within_gap(P: np.ndarray) -> None:
    pw = pointwise_pid(P)
    r = broja(P)  # an independent solve at the default tolerance
    means = pw.means()
    assert pw.gap <= pw.result.gap + 1e-12  # never worse than the solver's certificate
    assert pw.max_error <= pw.gap + 1e-12
    for a in ATOMS:
        assert abs(means[a] - getattr(r, a)) <= pw.gap + r.gap + 1e-12, a
    assert all(np.isfinite(getattr(pw, a)).all() for a in ATOMS)


@SETTINGS
@given(full_support_pmf())
def test_pointwise_identities(P: np.ndarray) -> None:
    pw = pointwise_pid(P)
    i1, i2, i12 = pointwise_mi(P)
    np.testing.assert_allclose(pw.redundancy + pw.unique1, i1, atol=1e-10)
    np.testing.assert_allclose(pw.redundancy + pw.unique2, i2, atol=1e-10)
    np.testing.assert_allclose(pw.redundancy + pw.unique1 + pw.unique2 + pw.synergy, i12, atol=1e-10)
    # s = log p(y|x1,x2) - phi: the dual point is feasible (sum_y exp(phi) <= 1 for every pair)
    assert np.logaddexp.reduce(pw.phi, axis=2).max() <= 1e-12


@SETTINGS
@given(full_support_pmf(max_side=3))
def test_complementary_slackness(P: np.ndarray) -> None:
    # at the optimum phi(x1, x2, .) = log Q*(. | x1, x2) on every pair carrying mass under Q*
    pw = pointwise_pid(P)
    q = pw.result.q
    qk = q.sum(2)
    sup = qk > 1e-3
    err = np.abs(pw.phi - np.log(q / qk[..., None]))[sup]
    assert err.max() <= 1e-5
    assert pw.determined[sup].all()


def test_symmetry_swapping_x1_x2() -> None:
    P = pmfs.random_pmf((3, 4, 3), 7)
    pw, pw_t = pointwise_pid(P), pointwise_pid(P.transpose(1, 0, 2))
    np.testing.assert_allclose(pw.redundancy, pw_t.redundancy.transpose(1, 0, 2), atol=1e-9)
    np.testing.assert_allclose(pw.synergy, pw_t.synergy.transpose(1, 0, 2), atol=1e-9)
    np.testing.assert_allclose(pw.unique1, pw_t.unique2.transpose(1, 0, 2), atol=1e-9)


def test_reuses_result_and_handles_zeros() -> None:
    P = pmfs.random_pmf((3, 3, 4), 3, zero_fraction=0.3)
    r = broja(P, tol=1e-12)
    pw = pointwise_pid(P, r)
    assert pw.result is r
    assert np.isnan(pw.synergy[P == 0]).all() and np.isfinite(pw.synergy[P > 0]).all()
    means = pw.means()
    assert max(abs(means[a] - getattr(r, a)) for a in ATOMS) <= pw.gap + 1e-12
    assert isinstance(pw, PointwisePID)


def test_per_sample_means_are_the_atoms_of_the_empirical_pmf() -> None:
    rng = np.random.default_rng(0)
    P = pmfs.random_pmf((3, 2, 3), rng)
    idx = rng.choice(P.size, size=500, p=P.ravel())
    x1, x2, y = np.unravel_index(idx, P.shape)
    counts = np.zeros(P.shape)
    np.add.at(counts, (x1, x2, y), 1.0)
    emp = counts / counts.sum()
    out = per_sample_pid(emp, torch.from_numpy(x1), torch.from_numpy(x2), torch.from_numpy(y))
    r = broja(emp, tol=1e-12)
    for a in ATOMS:
        assert out[a].shape == (500,) and out[a].dtype == torch.float64
        assert float(out[a].mean()) == pytest.approx(getattr(r, a), abs=1e-9), a
    assert out["determined"].dtype == torch.bool
    # XOR samples: synergy 1 bit each
    xo = per_sample_pid(pmfs.xor(), np.array([0, 1]), np.array([1, 1]), np.array([1, 0]))
    np.testing.assert_allclose(xo["synergy"].numpy(), [1.0, 1.0], atol=1e-9)


# ----------------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------------


def _theta(shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, dtype=torch.float64, generator=g, requires_grad=True)


def _softmax_pmf(theta: torch.Tensor) -> torch.Tensor:
    return torch.softmax(theta.flatten(), 0).reshape(theta.shape)


@pytest.mark.parametrize(("shape", "seed"), [((2, 2, 2), 1), ((2, 3, 2), 1), ((3, 2, 3), 0)])
def test_gradcheck(shape: tuple[int, int, int], seed: int) -> None:
    theta = _theta(shape, seed)

    def f(th: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = broja_torch(_softmax_pmf(th))
        return tuple(out[a] for a in ATOMS)

    assert torch.autograd.gradcheck(f, (theta,), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("seed", [0, 2, 4])
def test_directional_derivative_matches_broja(seed: int) -> None:
    theta = _theta((3, 3, 2), seed)
    v = torch.randn(theta.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(100 + seed))
    out = broja_torch(_softmax_pmf(theta))
    eps = 1e-5
    rp = broja(_softmax_pmf(theta.detach() + eps * v).numpy(), tol=1e-13)
    rm = broja(_softmax_pmf(theta.detach() - eps * v).numpy(), tol=1e-13)
    for a in ATOMS:
        (g,) = torch.autograd.grad(out[a], theta, retain_graph=True)
        fd = (getattr(rp, a) - getattr(rm, a)) / (2 * eps)
        assert float((g * v).sum()) == pytest.approx(fd, abs=1e-6), a


def test_values_match_broja_and_batch() -> None:
    Ps = torch.stack([_softmax_pmf(_theta((2, 3, 3), s)).detach() for s in range(3)])
    out = broja_torch(Ps)
    ref = broja_batch(Ps)
    for a in ATOMS:
        assert out[a].shape == (3,)
        torch.testing.assert_close(out[a], getattr(ref, a), atol=1e-9, rtol=0.0)
    one = broja_torch(Ps[1])
    assert one["synergy"].shape == () and float(one["synergy"]) == pytest.approx(float(ref.synergy[1]), abs=1e-9)
    # batched gradient == per-pmf gradients
    P = Ps.clone().requires_grad_(True)
    (gb,) = torch.autograd.grad(broja_torch(P)["synergy"].sum(), P)
    P1 = Ps[1].clone().requires_grad_(True)
    (g1,) = torch.autograd.grad(broja_torch(P1)["synergy"], P1)
    torch.testing.assert_close(gb[1], g1, atol=1e-9, rtol=0.0)
    # the atoms depend on P / sum(P) only: gradients are tangent to the simplex
    assert abs(float((gb * Ps).sum((1, 2, 3)).abs().max())) <= 1e-9


def test_zero_unique_information_has_zero_gradient() -> None:
    # seed 0 on 2x2x2 has U1 = 0 (I* = I(X2;Y)): the solver-free dual log p(y|x2) is exact there
    theta = _theta((2, 2, 2), 0)
    P = _softmax_pmf(theta)
    assert pointwise_pid(P.detach()).dual_source == "x2"
    out = broja_torch(P)
    assert float(out["unique1"].detach()) == 0.0
    (g,) = torch.autograd.grad(out["unique1"], theta)
    assert float(g.abs().max()) <= 1e-9


def test_gradient_step_increases_synergy() -> None:
    theta = _theta((3, 3, 3), 5)
    s0 = broja(_softmax_pmf(theta).detach().numpy()).synergy
    (g,) = torch.autograd.grad(broja_torch(_softmax_pmf(theta))["synergy"], theta)
    lr = 0.05
    s1 = broja(_softmax_pmf(theta.detach() + lr * g).numpy()).synergy
    assert s1 > s0 + 0.5 * lr * float(g.square().sum())  # at least half the first-order gain


def test_zero_entries_get_zero_gradient() -> None:
    P = torch.from_numpy(pmfs.random_pmf((3, 3, 3), 11, zero_fraction=0.2)).requires_grad_(True)
    out = broja_torch(P)
    (g,) = torch.autograd.grad(out["synergy"] + out["redundancy"], P)
    assert torch.isfinite(g).all()
    assert bool((g[P.detach() == 0] == 0).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:
    theta = _theta((3, 2, 3), 0)
    P = _softmax_pmf(theta).detach()
    Pc = P.cuda().requires_grad_(True)
    Pp = P.clone().requires_grad_(True)
    (gc,) = torch.autograd.grad(broja_torch(Pc)["synergy"], Pc)
    (gp,) = torch.autograd.grad(broja_torch(Pp)["synergy"], Pp)
    torch.testing.assert_close(gc.cpu(), gp, atol=1e-8, rtol=0.0)


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------


def _msg(fn, *args, **kwargs) -> str:  # noqa: ANN001
    with pytest.raises(PIDInputError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and msg
    return msg


def test_error_messages() -> None:
    P = pmfs.xor()  # P(0, 0, 1) = 0
    ok = np.array([0])
    assert "expected 3 axes" in _msg(pointwise_pid, np.ones((2, 2)) / 4)
    assert "sums to" in _msg(pointwise_pid, 2 * P)
    assert "PIDResult" in _msg(pointwise_pid, P, result="nope")
    assert "shape" in _msg(pointwise_pid, P, broja(pmfs.copy()))
    assert "out of range" in _msg(per_sample_pid, P, np.array([2]), ok, ok)
    assert "out of range" in _msg(per_sample_pid, P, ok, ok, np.array([-1]))
    assert "integer codes" in _msg(per_sample_pid, P, np.array([0.0]), ok, ok)
    assert "1-D" in _msg(per_sample_pid, P, np.zeros((1, 1), dtype=int), ok, ok)
    assert "one length" in _msg(per_sample_pid, P, np.array([0, 1]), ok, ok)
    assert "P = 0" in _msg(per_sample_pid, P, ok, ok, np.array([1]))
    assert "different pmf" in _msg(per_sample_pid, P, ok, ok, ok, pointwise=pointwise_pid(pmfs.and_()))
    assert "torch.Tensor" in _msg(broja_torch, P)
    assert "axes" in _msg(broja_torch, torch.ones(4) / 4)
    assert "negative" in _msg(broja_torch, torch.tensor([[[1.5, -0.5]]]))
