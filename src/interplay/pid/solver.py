r"""Exact BROJA partial information decomposition of discrete pmfs.

Definition (Bertschinger, Rauh, Olbrich, Jost, Ay 2014). For a joint pmf ``P[x1, x2, y]`` let
``Delta_P`` be the pmfs ``Q`` with the pair marginals of ``P``: ``Q(x1, y) = P(x1, y)`` and
``Q(x2, y) = P(x2, y)``. With ``I* = min_{Q in Delta_P} I_Q(X1, X2; Y)``::

    S  = I_P(X1, X2; Y) - I*          U1 = I* - I(X2; Y)          U2 = I* - I(X1; Y)
    R  = I(X1; Y) + I(X2; Y) - I*

(``I(X1; Y)`` and ``I(X2; Y)`` are the same for every Q in ``Delta_P``.)

Primal. Because ``Q(y) = P(y)`` is fixed, ``I_Q(X1, X2; Y) = H(Y) + F(Q)`` with

    F(Q) = sum_{x1, x2, y} Q(x1, x2, y) log( Q(x1, x2, y) / Q(x1, x2) )   (= -H_Q(Y | X1, X2)),

a convex, positively homogeneous function, minimised over the product over y of transportation
polytopes (row sums ``P(x1, y)``, column sums ``P(x2, y)``). ``Q`` can only be positive on the
*allowed* cells ``A = {(x1, x2, y) : P(x1, y) > 0 and P(x2, y) > 0}``.

Dual. Let ``lam[x1, y]`` and ``mu[x2, y]`` be multipliers of the two marginal constraints
(only entries with ``P(x1, y) > 0``, resp. ``P(x2, y) > 0``, exist). Minimising the Lagrangian
over each pair block ``Q(x1, x2, .)`` is finite (and then 0) iff the log-sum-exp constraint
holds, so the dual is the geometric program

    maximise  D(lam, mu) = sum_{x1,y} P(x1, y) lam[x1, y] + sum_{x2,y} P(x2, y) mu[x2, y]
    subject to g_k = log sum_{y: (x1,x2,y) in A} exp(lam[x1, y] + mu[x2, y]) <= 0
               for every pair k = (x1, x2) with at least one allowed y,

with strong duality (P is feasible and the dual is strictly feasible). The multiplier of
constraint ``k`` is the pair marginal ``Q(x1, x2)``, and at the optimum
``Q(x1, x2, y) = Q(x1, x2) softmax_y(lam[x1, .] + mu[x2, .])``. The dual has a one-dimensional
gauge per y (``lam[., y] += c``, ``mu[., y] -= c``), fixed here by freezing one ``mu`` per y.

Solver. Interior-point methods on the dual, in float64 and batched over a leading axis (any
torch device). A Mehrotra predictor-corrector method on the slack form ``g_k + s_k = 0``
(:func:`_run_mehrotra`, typically 8-15 iterations) runs first; the rare pmfs it leaves uncertified
(values spanning tens of orders of magnitude) are re-solved from a uniform start, then by a
primal-dual method that keeps the dual strictly feasible (:func:`_run_feasible`, Boyd &
Vandenberghe, Convex Optimization, 11.7). The main runs start from a point built from
``Q0 = P(x1|y) P(x2|y) P(y)`` (primal and dual feasible, on the right logarithmic scale) and
follow a central path weighted by ``Q0(x1, x2)``.
Each iteration factors one Newton matrix of size ``(|X1| + |X2|) |Y|``: its ``lam``-block is
block diagonal, so it is eliminated block by block and only the Schur complement, of size
``|X2| |Y|`` (the smaller side), is factored densely (:meth:`_Dual.factor`). The primal
``Q = w * softmax`` is recovered from the multipliers ``w`` (the pair marginals) and projected
onto ``Delta_P`` (:func:`_project`: proportional fitting, then Newton steps on the scaling
factors), so its ``I_Q`` is an upper bound on ``I*``; any ``(lam, mu)``, shifted to satisfy the
constraints (:meth:`_Dual.repair`), gives the lower bound ``H(Y) + D``.

Certificate. ``gap = I_Q - max(H(Y) + D, max(I(X1;Y), I(X2;Y)))`` (bits) bounds the error of
``I*``, hence of each of the four atoms (each is ``I*`` plus or minus known mutual
informations); it is evaluated exactly at the returned, exactly feasible ``Q``. ``I*`` is also
clamped into the interval ``[max(I(X1;Y), I(X2;Y)), min(I_P(X1,X2;Y), I(X1;Y) + I(X2;Y))]``
that provably contains it (P and ``P(x1|y) P(x2|y) P(y)`` are feasible), so the four atoms are
non-negative and ``R + U1 = I(X1;Y)``, ``R + U2 = I(X2;Y)``, ``R + U1 + U2 + S = I(X1,X2;Y)``
hold to rounding. Cases where that interval has zero width (e.g. constant Y, ``Y = X1``, RDN)
are answered without running the solver.

The result types (:class:`~interplay.pid.results.PIDResult`, :class:`~interplay.pid.results.PIDBatchResult`)
and the input checks (:func:`~interplay.pid.results.validate_pmf`) live in :mod:`interplay.pid.results`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .information import xlogx_sum
from .results import PIDBatchResult, PIDResult, unit_scale, validate_pmf

__all__ = ["broja", "broja_batch"]

LN2 = math.log(2.0)
#: Proximal term (relative to the duality measure) added to the Newton matrix of the fallback
#: method: it keeps flat directions of degenerate duals from absorbing the steps.
_FALLBACK_PROX = 1e-4


# ----------------------------------------------------------------------------------------------
# interior-point solver on the dual
# ----------------------------------------------------------------------------------------------


@dataclass
class _IPMOut:
    q: torch.Tensor  # (B, A, C, Y) best certified primal point, projected onto Delta_P
    lam: torch.Tensor  # (B, A, Y) dual, shifted to be feasible (nan where P(x1, y) = 0)
    mu: torch.Tensor  # (B, C, Y) dual (nan where P(x2, y) = 0)
    dual: torch.Tensor  # (B,) certified lower bound on min F (nats)
    gap: torch.Tensor  # (B,) F(q) - dual (nats)
    iterations: torch.Tensor  # (B,) int64
    converged: torch.Tensor  # (B,) bool


@dataclass
class _Factor:
    """Factored Newton matrix (see :meth:`_Dual.factor`); everything Jacobi-scaled."""

    h_ll: torch.Tensor  # (B, A, Y, Y) diagonal blocks of M_ll
    h_mm: torch.Tensor  # (B, C, Y, Y) diagonal blocks of M_mm
    h_lm: torch.Tensor  # (B, A Y, C Y) M_lm
    dl: torch.Tensor  # (B, A, Y) scaling of lam entries
    dm: torch.Tensor  # (B, C, Y) scaling of mu entries
    L_ll: torch.Tensor  # (B, A, Y, Y) Cholesky factors of the M_ll blocks
    Z: torch.Tensor  # (B, A Y, C Y) L_ll^-1 M_lm
    L_s: torch.Tensor  # (B, C Y, C Y) Cholesky factor of the Schur complement


def _cholesky(M: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
    """Batched Cholesky factor of symmetric positive (semi)definite ``M (..., k, k)`` with unit
    diagonal scale; matrices that fail get an increasing diagonal shift (1e-12, 1e-10, ...)."""
    L, info = torch.linalg.cholesky_ex(M)
    reg = 1e-12
    while bool((info > 0).any()) and reg < 1.0:
        bad = info > 0
        L2, info2 = torch.linalg.cholesky_ex(M + bad.to(M.dtype)[..., None, None] * reg * eye)
        L = torch.where(bad[..., None, None], L2, L)
        info = torch.where(bad, info2, info)
        reg *= 100.0
    return L


class _Dual:
    """The BROJA dual of a batch ``P (B, A, C, Y)``: masks, evaluations, Newton systems, certificate.

    Variables ``v = (lam, mu)`` of shape ``(B, n)``, ``n = (A + C) Y`` (``lam[x1, y]`` first).
    Pair quantities ``g, w, s`` have shape ``(B, A, C)``; ``p (B, A, C, Y)`` is the per-pair
    softmax over the allowed y (0 elsewhere). One ``mu`` per y is frozen (gauge), as is every
    entry whose marginal is 0.
    """

    def __init__(self, P: torch.Tensor, lower: torch.Tensor) -> None:
        B, A, C, Y = P.shape
        self.B, self.A, self.C, self.Y = B, A, C, Y
        self.dev, self.dt = P.device, P.dtype
        self.nl, self.nm = A * Y, C * Y
        self.n = self.nl + self.nm
        self.lower = lower
        self.P1 = P.sum(2)  # (B, A, Y)  P(x1, y)
        self.P2 = P.sum(1)  # (B, C, Y)  P(x2, y)
        self.px1, self.px2 = self.P1.sum(-1), self.P2.sum(-1)
        self.m1, self.m2 = self.P1 > 0, self.P2 > 0
        self.allowed = self.m1[:, :, None, :] & self.m2[:, None, :, :]  # (B, A, C, Y)
        self.not_allowed = ~self.allowed
        self.active = self.allowed.any(-1)  # (B, A, C)
        self.first = torch.argmax(self.m2.to(torch.uint8), dim=1)  # (B, Y) gauge: first x2 in use
        gauge = torch.zeros_like(self.m2)
        gauge.scatter_(1, self.first[:, None, :], True)
        gauge &= self.m2
        self.present = torch.cat([self.m1.reshape(B, -1), self.m2.reshape(B, -1)], 1)
        self.free = torch.cat([self.m1.reshape(B, -1), (self.m2 & ~gauge).reshape(B, -1)], 1).to(self.dt)
        self.bvec = torch.cat([self.P1.reshape(B, -1), self.P2.reshape(B, -1)], 1)
        self.eye_y = torch.eye(Y, dtype=self.dt, device=self.dev)
        self.eye_s = torch.eye(self.nm, dtype=self.dt, device=self.dev)

    # --- elementary maps -----------------------------------------------------------------------
    def split(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``v (B, n)`` -> ``lam (B, A, Y)``, ``mu (B, C, Y)`` (views)."""
        lam = v[:, : self.nl].reshape(self.B, self.A, self.Y)
        return lam, v[:, self.nl :].reshape(self.B, self.C, self.Y)

    def evaluate(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``g_k = LSE_y(lam[x1, y] + mu[x2, y])`` over allowed y (0 for empty pairs) and softmax ``p``."""
        lam, mu = self.split(v)
        a = (lam[:, :, None, :] + mu[:, None, :, :]).masked_fill(self.not_allowed, -math.inf)
        g = torch.where(self.active, torch.logsumexp(a, -1), 0.0)
        return g, torch.exp(a - g[..., None])

    def lift(self, x: torch.Tensor) -> torch.Tensor:
        """Adjoint of ``v -> lam[x1, y] + mu[x2, y]``: (B, A, C, Y) -> (B, n)."""
        return torch.cat([x.sum(2).reshape(self.B, -1), x.sum(1).reshape(self.B, -1)], 1)

    def pair_dot(self, p: torch.Tensor, dv: torch.Tensor) -> torch.Tensor:
        """``grad g_k . dv = sum_y p_k(y) (dlam[x1, y] + dmu[x2, y])``: (B, A, C)."""
        dlam, dmu = self.split(dv)
        return (p * (dlam[:, :, None, :] + dmu[:, None, :, :])).sum(-1)

    def marginal_residual(self, w: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Marginals of ``Q = w p`` minus those of P, on the entries in use: (B, n)."""
        return (self.lift(w[..., None] * p) - self.bvec) * self.present

    def start(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``v`` with ``softmax_k = Q0(y | x1, x2)`` and ``g_k = log Q0(x1, x2) - 1``, and the pair
        weights ``omega = Q0(x1, x2)`` (see :func:`_ipm`)."""
        py = self.P1.sum(1)
        py_safe = torch.where(py > 0, py, 1.0)
        lam = torch.log(torch.where(self.m1, self.P1, 1.0)) - 1.0
        mu = torch.log(torch.where(self.m2, self.P2, 1.0)) - torch.log(py_safe)[:, None, :]
        shift = torch.gather(mu, 1, self.first[:, None, :])  # gauge: mu = 0 at `first`
        lam = (lam + shift) * self.m1
        mu = (mu - shift) * self.m2
        v = torch.cat([lam.reshape(self.B, -1), mu.reshape(self.B, -1)], 1)
        g, _ = self.evaluate(v)
        omega = torch.where(self.active, torch.exp(g + 1.0), 0.0)
        omega = omega / omega.sum((1, 2), keepdim=True)
        return v, omega

    # --- Newton systems ------------------------------------------------------------------------
    def factor(
        self, w: torch.Tensor, c: torch.Tensor, p: torch.Tensor, prox: torch.Tensor | None = None
    ) -> _Factor:
        """Factor ``M = sum_k E_k^T [w_k diag(p_k) + (c_k - w_k) p_k p_k^T] E_k`` (``E_k`` maps v to
        the pair's ``lam[x1, .] + mu[x2, .]``), restricted to the free entries.

        ``M = [[M_ll, M_lm], [M_lm^T, M_mm]]`` with ``M_ll`` block diagonal (one ``Y x Y`` block per
        x1) and ``M_mm`` block diagonal per x2. After Jacobi scaling, ``M_ll`` is factored block by
        block and the Schur complement ``S = M_mm - M_lm^T M_ll^-1 M_lm`` (size ``|X2| Y``) by one
        dense Cholesky. A tiny relative ridge (plus ``prox``, if given) keeps entries of negligible
        curvature in place; fixed entries get identity rows.
        """
        B, A, C, Y = self.B, self.A, self.C, self.Y
        fl = self.free[:, : self.nl].reshape(B, A, Y)
        fm = self.free[:, self.nl :].reshape(B, C, Y)
        wp = w[..., None] * p  # (B, A, C, Y)
        cp = (c - w)[..., None] * p
        cwp = cp * p + wp
        diag_l = cwp.sum(2) * fl  # diagonals of M_ll and M_mm
        diag_m = cwp.sum(1) * fm
        ridge = 1e-20 * torch.maximum(diag_l.flatten(1).amax(1), diag_m.flatten(1).amax(1))
        if prox is not None:
            ridge = ridge + prox
        ridge = ridge[:, None, None]
        dl = (diag_l + fl * ridge + (1.0 - fl)).rsqrt()  # (B, A, Y) Jacobi scaling
        dm = (diag_m + fm * ridge + (1.0 - fm)).rsqrt()  # (B, C, Y)
        el = (dl * fl)[:, :, None, :]  # scaled masks: fixed entries get zero rows, unit diagonal
        em = (dm * fm)[:, None, :, :]
        cpl = cp * el
        pm = p * em
        h_ll = torch.einsum("bacy,bacz->bayz", cpl, p * el)  # (B, A, Y, Y)
        h_mm = torch.einsum("bacy,bacz->bcyz", cp * em, pm)  # (B, C, Y, Y)
        h_ll.diagonal(dim1=-2, dim2=-1).fill_(1.0)
        h_mm.diagonal(dim1=-2, dim2=-1).fill_(1.0)
        h_lm = torch.einsum("bacy,bacz->baycz", cpl, pm)  # (B, A, Y, C, Y)
        h_lm.diagonal(dim1=2, dim2=4).add_(wp * el * em)
        h_lm = h_lm.reshape(B, A, Y, C * Y)
        L_ll = _cholesky(h_ll, self.eye_y)  # (B, A, Y, Y)
        Z = torch.linalg.solve_triangular(L_ll, h_lm, upper=False).reshape(B, A * Y, C * Y)
        S = -(Z.transpose(1, 2) @ Z)  # Schur complement M_mm - M_lm^T M_ll^-1 M_lm
        S.view(B, C, Y, C, Y).diagonal(dim1=1, dim2=3).add_(h_mm.permute(0, 2, 3, 1))
        L_s = _cholesky(S, self.eye_s)
        return _Factor(h_ll, h_mm, h_lm.reshape(B, A * Y, C * Y), dl, dm, L_ll, Z, L_s)

    def solve(self, fac: _Factor, rhs: torch.Tensor, refine: bool = True) -> torch.Tensor:
        """Solve ``M dv = rhs`` on the free entries by block elimination (plus one step of
        iterative refinement when ``refine``)."""
        B, A, C, Y = self.B, self.A, self.C, self.Y
        rhs = rhs * self.free
        rl = rhs[:, : self.nl].reshape(B, A, Y) * fac.dl
        rm = rhs[:, self.nl :].reshape(B, C * Y) * fac.dm.reshape(B, C * Y)

        def block_solve(rl: torch.Tensor, rm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            u = torch.linalg.solve_triangular(fac.L_ll, rl[..., None], upper=False).reshape(B, A * Y, 1)
            rs = rm[..., None] - fac.Z.transpose(1, 2) @ u  # (B, C Y, 1)
            xm = torch.linalg.solve_triangular(fac.L_s, rs, upper=False)
            xm = torch.linalg.solve_triangular(fac.L_s.transpose(1, 2), xm, upper=True)
            u = (u - fac.Z @ xm).reshape(B, A, Y, 1)
            xl = torch.linalg.solve_triangular(fac.L_ll.transpose(-1, -2), u, upper=True)
            return xl.reshape(B, A, Y), xm.squeeze(-1)

        xl, xm = block_solve(rl, rm)
        if not refine:
            return torch.cat([(xl * fac.dl).reshape(B, -1), xm * fac.dm.reshape(B, -1)], 1) * self.free
        # residual of the scaled system, then one correction
        res_l = rl - (fac.h_ll @ xl[..., None]).squeeze(-1) - (fac.h_lm @ xm[..., None]).reshape(B, A, Y)
        hm_x = (fac.h_mm @ xm.reshape(B, C, Y, 1)).reshape(B, C * Y)
        res_m = rm - (xl.reshape(B, 1, A * Y) @ fac.h_lm).squeeze(1) - hm_x
        cl, cm = block_solve(res_l, res_m)
        xl, xm = xl + cl, xm + cm
        dv = torch.cat([(xl * fac.dl).reshape(B, -1), xm * fac.dm.reshape(B, -1)], 1)
        return dv * self.free

    # --- certificate ---------------------------------------------------------------------------
    def repair(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cheapest of three shifts making ``v`` dual feasible (all ``g_k <= 0``): every ``lam`` down
        by ``max g``; ``lam[x1, .]`` down by ``max_x2 g+``; or ``mu[x2, .]`` down by ``max_x1 g+``.

        Returns the cost (decrease of ``b.v``) and the shifts of ``lam`` rows and ``mu`` rows.
        """
        gp = torch.where(self.active, g, -math.inf)
        gmax = gp.amax((1, 2))
        d1 = gp.amax(2).clamp_min(0.0)  # (B, A)
        d2 = gp.amax(1).clamp_min(0.0)  # (B, C)
        c1, c2 = (self.px1 * d1).sum(1), (self.px2 * d2).sum(1)
        use1 = (c1 <= c2) & (c1 < gmax)
        use2 = ~use1 & (c2 < gmax)
        cost = torch.where(use1, c1, torch.where(use2, c2, gmax))
        s1 = torch.where(use1[:, None], d1, torch.where(use2, 0.0, gmax)[:, None].expand_as(d1))
        s2 = torch.where(use2[:, None], d2, 0.0)
        return cost, s1, s2

    def certify(self, w: torch.Tensor, p: torch.Tensor, g: torch.Tensor, v: torch.Tensor):
        """Project ``Q = w p`` onto ``Delta_P``; return ``(F(Q_proj) - bound, Q_proj, bound)``."""
        q = _project((w[..., None] * p).masked_fill(self.not_allowed, 0.0), self.P1, self.P2)
        f = xlogx_sum(q, batch_dims=1) - xlogx_sum(q.sum(-1), batch_dims=1)
        bound = torch.maximum((self.bvec * v).sum(1) - self.repair(g)[0], self.lower)
        return f - bound, q, bound


class _Best:
    """Best certified iterate per pmf (smallest gap), filled in as the iterations go."""

    def __init__(self, prob: _Dual, v: torch.Tensor) -> None:
        B, dt, dev = prob.B, prob.dt, prob.dev
        self.prob = prob
        self.gap = torch.full((B,), math.inf, dtype=dt, device=dev)
        self.q = torch.zeros(B, prob.A, prob.C, prob.Y, dtype=dt, device=dev)
        self.v = v.clone()
        self.dual = torch.full((B,), -math.inf, dtype=dt, device=dev)
        self.history: list[torch.Tensor] = []

    def stalled(self) -> torch.Tensor:
        """Record the current best gaps; true where a certified gap below 1e-6 has not halved over
        the last 12 records (further iterations are unlikely to pay off)."""
        self.history.append(self.gap.clone())
        if len(self.history) <= 12:
            return torch.zeros_like(self.gap, dtype=torch.bool)
        old = self.history[-13]
        return (self.gap < 1e-6) & (self.gap > 0.5 * old)

    def offer(self, mask: torch.Tensor, w: torch.Tensor, p: torch.Tensor, g: torch.Tensor, v: torch.Tensor):
        if not bool(mask.any()):
            return
        gap, q, dual = self.prob.certify(w, p, g, v)
        better = mask & (gap < self.gap)
        self.gap = torch.where(better, gap, self.gap)
        self.q = torch.where(better[:, None, None, None], q, self.q)
        self.v = torch.where(better[:, None], v, self.v)
        self.dual = torch.where(better, dual, self.dual)


def _should_certify(est: torch.Tensor, rd: torch.Tensor, tol: float, it: int) -> torch.Tensor:
    """Certify (project and evaluate exactly) when the estimated gap ``est`` plus the marginal
    residual is within ``10 tol``, and every 5th iteration once it is below 1e-6 (so that a
    stalled estimate does not hide a good certificate)."""
    err = est.abs() + rd.abs().sum(1)
    return (err <= 10 * tol) | ((err <= 1e-6) & (it % 5 == 4))


def _max_step2(
    s: torch.Tensor, ds: torch.Tensor, w: torch.Tensor, dw: torch.Tensor, active: torch.Tensor
) -> torch.Tensor:
    """Largest ``a <= 1`` keeping both ``s + a ds >= 0`` and ``w + a dw >= 0`` on the active pairs."""
    rs = torch.where((ds < 0) & active, -s / ds, math.inf)
    rw = torch.where((dw < 0) & active, -w / dw, math.inf)
    return torch.minimum(rs, rw).amin((1, 2)).clamp(max=1.0)


def _max_step(active: torch.Tensor, x: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Largest ``a <= 1`` with ``x + a dx >= 0`` on the active pairs: (B,)."""
    neg = (dx < 0) & active
    ratio = torch.where(neg, -x / torch.where(neg, dx, -1.0), math.inf)
    return ratio.amin((1, 2)).clamp(max=1.0)


def _run_mehrotra(
    prob: _Dual, best: _Best, tol: float, max_iter: int, uniform: bool = False
) -> torch.Tensor:
    """Mehrotra predictor-corrector on the slack form of the dual; returns iterations used (B,).

    ``minimise -b.v  s.t.  g_k(v) + s_k = 0, s >= 0`` with multipliers ``w >= 0``, along the
    weighted central path ``s_k w_k = mu omega_k``. One factorisation and two solves per iteration,
    a backtracking line search on the residual norm (non-monotone, accepting a decrease of either
    the plain norm or the one with pair residuals weighted by ``sqrt(w + omega)``).

    Newton system (``rd`` marginal residual, ``rp = g + s``, ``rc`` complementarity residual,
    ``c = w / s``): ``M dv = -rd - sum_k grad g_k (w_k rp_k - rc_k) / s_k`` with
    ``M = sum_k w_k hess g_k + c_k grad g_k grad g_k^T`` (:meth:`_Dual.factor`), then
    ``ds = -rp - grad g . dv`` and ``dw = c (grad g . dv + rp) - rc / s``.

    ``uniform=True`` starts from constant duals and uniform pair weights instead of the
    ``Q0``-based point (:meth:`_Dual.start`): a second attempt for pmfs the first one leaves.
    """
    B, dt, dev = prob.B, prob.dt, prob.dev
    act = prob.active.to(dt)
    if uniform:  # constant duals and uniform pair weights: a start far from P's scales
        v = torch.where(prob.present, -(1.0 + math.log(prob.Y)) / 2.0, 0.0).to(dt)
        omega = act / act.sum((1, 2), keepdim=True)
    else:
        v, omega = prob.start()
    g, p = prob.evaluate(v)
    s = -g * act
    w = omega.clone()
    done = best.gap <= tol
    iters = torch.zeros(B, dtype=torch.int64, device=dev)
    last_step = torch.ones(B, dtype=dt, device=dev)
    hist = torch.zeros(B, 8, 2, dtype=dt, device=dev)  # recent residual norms
    floor = torch.full((B,), 0.01 * tol, dtype=dt, device=dev)

    def resnorm(rdf, rp, w, s, tgt):  # noqa: ANN001, ANN202
        rp2 = rp.square()
        base = rdf.square().sum(1) + ((s * w - tgt) * act).square().sum((1, 2))
        return torch.stack([base + rp2.sum((1, 2)), base + (rp2 * (w + omega)).sum((1, 2))], 1).sqrt()

    for it in range(max_iter):
        rd = prob.marginal_residual(w, p)
        rp = (g + s) * act
        comp = (s * w).sum((1, 2))
        # estimated gap F(w p) - (b.v - max g) = rd.v + w.s - w.rp + max g  (exact when rd = 0)
        gmax = torch.where(prob.active, g, -math.inf).amax((1, 2))
        est = (rd * v).sum(1) + comp - (w * rp).sum((1, 2)) + gmax
        best.offer(_should_certify(est, rd, tol, it) & ~done, w, p, g, v)
        done = done | (best.gap <= tol) | best.stalled()
        if bool(done.all()):
            break
        iters += (~done).to(torch.int64)

        s_safe = s + (1.0 - act)
        c = w / s_safe * act
        fac = prob.factor(w, c, p)

        def direction(rc: torch.Tensor, refine: bool, p=p, w=w, rp=rp, rd=rd, s_safe=s_safe, c=c, fac=fac):  # noqa: ANN001
            k = (w * rp - rc) / s_safe
            dv = prob.solve(fac, -rd - prob.lift(k[..., None] * p), refine)
            gd = prob.pair_dot(p, dv)
            return dv, (c * (gd + rp) - rc / s_safe) * act, (-rp - gd) * act

        sw = s * w
        dv_a, dw_a, ds_a = direction(sw, False)
        a_aff = _max_step2(s, ds_a, w, dw_a, prob.active)[:, None, None]
        mu_aff = ((s + a_aff * ds_a) * (w + a_aff * dw_a)).sum((1, 2))
        sigma = (mu_aff / comp.clamp_min(1e-300)).clamp(0.0, 1.0) ** 3
        sigma = torch.maximum(sigma, 0.3 * (1.0 - last_step))  # short last step: centre more
        # complementarity must not outrun feasibility, nor go below what the tolerance needs
        infeas = rd.abs().sum(1) + (w * rp).abs().sum((1, 2))
        target = torch.maximum(torch.maximum(sigma * comp, 0.01 * infeas), floor)
        tgt = target[:, None, None] * omega
        late = bool((comp < 1e-4).any())  # iterative refinement pays off only near the end
        dv, dw, ds = direction((sw + ds_a * dw_a - tgt) * act, late)
        step = 0.995 * _max_step2(s, ds, w, dw, prob.active).clamp(max=1 / 0.995)
        step = torch.where(done, 0.0, step)
        r0 = torch.maximum(resnorm(rd * prob.free, rp, w, s, tgt), hist.amax(1))
        for _ls in range(40):
            v_n = v + step[:, None] * dv
            w_n = w + step[:, None, None] * dw
            s_n = s + step[:, None, None] * ds
            g_n, p_n = prob.evaluate(v_n)
            rdf_n = (prob.lift(w_n[..., None] * p_n) - prob.bvec) * prob.free
            r_n = resnorm(rdf_n, (g_n + s_n) * act, w_n, s_n, tgt)
            ok = (r_n <= (1.0 - 0.01 * step[:, None]) * r0).any(1) | done
            if bool(ok.all()):
                break
            step = torch.where(ok, step, 0.5 * step)
        last_step = step
        finite = torch.isfinite(r_n).all(1)
        if bool(finite.all()):
            v, w, s, g, p = v_n, w_n, s_n, g_n, p_n
        else:  # numerical breakdown: stop that pmf, keep its best certified iterate
            done = done | ~finite
            v = torch.where(finite[:, None], v_n, v)
            w = torch.where(finite[:, None, None], w_n, w)
            s = torch.where(finite[:, None, None], s_n, s)
            g, p = prob.evaluate(v)
            r_n = torch.where(finite[:, None], r_n, 0.0)
        hist = torch.cat([hist[:, 1:], r_n[:, None]], 1)
    best.offer(torch.isinf(best.gap), w, p, g, v)
    return iters


def _run_feasible(prob: _Dual, best: _Best, tol: float, max_iter: int) -> torch.Tensor:
    """Primal-dual interior-point method keeping the dual strictly feasible (all ``g_k < 0``).

    Boyd & Vandenberghe, Convex Optimization, 11.7, with the weighted central path
    ``w_k (-g_k) = omega_k / t`` and ``t = 10 / eta`` (``eta = sum_k w_k (-g_k)``): slower than
    :func:`_run_mehrotra` (steps are cut to keep ``g < 0``) but robust; used as its fallback.
    Returns iterations used (B,).
    """
    B, dev, active = prob.B, prob.dev, prob.active
    v, omega = prob.start()
    g, p = prob.evaluate(v)
    w = omega.clone()
    done = best.gap <= tol
    iters = torch.zeros(B, dtype=torch.int64, device=dev)

    def resnorm(w, g, p, t):  # noqa: ANN001, ANN202
        rd = (prob.lift(w[..., None] * p) - prob.bvec) * prob.free
        rc = torch.where(active, -w * g - omega / t[:, None, None], 0.0)
        return torch.sqrt(rd.square().sum(1) + rc.square().sum((1, 2)))

    for _ in range(max_iter):
        neg_g = torch.where(active, -g, 1.0)
        rd = prob.marginal_residual(w, p)
        eta = (w * neg_g * active).sum((1, 2))
        est = (rd * v).sum(1) + eta
        best.offer(_should_certify(est, rd, tol, int(iters.max())) & ~done, w, p, g, v)
        done = done | (best.gap <= tol) | best.stalled()
        if bool(done.all()):
            break
        iters += (~done).to(torch.int64)
        t = 10.0 / eta.clamp_min(1e-300)
        c = torch.where(active, w / neg_g, 0.0)
        fac = prob.factor(w, c, p, _FALLBACK_PROX * eta)
        bar = torch.where(active, omega / (t[:, None, None] * neg_g), 0.0)  # barrier weights
        dv = prob.solve(fac, prob.bvec - prob.lift(bar[..., None] * p))
        gd = prob.pair_dot(p, dv)
        dw = torch.where(active, w * gd / neg_g - w + bar, 0.0)
        step = 0.99 * _max_step(active, w, dw).clamp(max=1 / 0.99)
        step = torch.where(done, 0.0, step)
        r0 = resnorm(w, g, p, t)
        for _ls in range(60):
            v_n = v + step[:, None] * dv
            w_n = w + step[:, None, None] * dw
            g_n, p_n = prob.evaluate(v_n)
            feasible = torch.where(active, g_n, -1.0).amax((1, 2)) < 0
            ok = feasible & (resnorm(w_n, g_n, p_n, t) <= (1.0 - 0.01 * step) * r0) | done
            if bool(ok.all()):
                break
            step = torch.where(ok, step, 0.5 * step)
        move = ok & ~done & torch.isfinite(v_n).all(1) & torch.isfinite(w_n).all((1, 2))
        done = done | ~ok  # no acceptable step: stop, keep the best certified iterate
        v = torch.where(move[:, None], v_n, v)
        w = torch.where(move[:, None, None], w_n, w)
        g, p = prob.evaluate(v)
    best.offer(torch.isinf(best.gap), w, p, g, v)
    return iters


def _ipm(P: torch.Tensor, tol: float, max_iter: int, lower: torch.Tensor) -> _IPMOut:
    """Interior-point solve of the BROJA dual for a batch ``P (B, A, C, Y)`` (module docstring).

    Start (both methods): with ``Q0 = P(x1|y) P(x2|y) P(y)`` (strictly positive on the allowed
    cells and feasible), ``lam = log P(x1, y) - 1`` and ``mu = log P(x2, y) - log P(y)`` give
    ``softmax_k = Q0(y | x1, x2)`` and ``g_k = log Q0(x1, x2) - 1 < 0``; with
    ``w = omega = Q0(x1, x2)`` the start is primal and dual feasible and on the right
    logarithmic scale even when P spans many orders of magnitude.

    :func:`_run_mehrotra` runs first (typically 8-15 iterations). Pmfs it leaves uncertified after
    ``min(max_iter, 60)`` iterations (only seen when P spans many orders of magnitude) are
    re-solved by :func:`_run_mehrotra` from a uniform start, and what is still uncertified by
    :func:`_run_feasible`. Each method certifies iterates whose estimated gap is small by
    projecting ``Q = w softmax`` onto ``Delta_P`` and evaluating ``F(Q_proj) - bound`` exactly;
    the best certified point over all methods is kept.

    Args:
        P: float64 pmfs, shape ``(B, A, C, Y)``.
        tol: target duality gap in nats.
        max_iter: iteration cap (per method).
        lower: ``(B,)`` a known lower bound on ``min F`` (nats), used in the certificate.
    """
    prob = _Dual(P, lower)
    v0, _ = prob.start()
    best = _Best(prob, v0)
    iters = _run_mehrotra(prob, best, tol, min(max_iter, 60))
    fallbacks: list[Callable[[_Dual, _Best], torch.Tensor]] = [
        lambda sub, b: _run_mehrotra(sub, b, tol, min(max_iter, 60), uniform=True),
        lambda sub, b: _run_feasible(sub, b, tol, max_iter),
    ]
    for run in fallbacks:
        left = torch.nonzero(best.gap > tol).flatten()
        if left.numel() == 0 or max_iter <= 0:
            break
        sub = _Dual(P[left], lower[left])
        best_sub = _Best(sub, v0[left])
        iters[left] += run(sub, best_sub)
        better = best_sub.gap < best.gap[left]
        idx = left[better]
        best.gap[idx] = best_sub.gap[better]
        best.q[idx] = best_sub.q[better]
        best.v[idx] = best_sub.v[better]
        best.dual[idx] = best_sub.dual[better]
    g, _ = prob.evaluate(best.v)
    _, s1, s2 = prob.repair(g)
    lam, mu = prob.split(best.v)
    lam = (lam - s1[:, :, None]).masked_fill(~prob.m1, math.nan)
    mu = (mu - s2[:, :, None]).masked_fill(~prob.m2, math.nan)
    return _IPMOut(
        q=best.q, lam=lam, mu=mu, dual=best.dual, gap=best.gap, iterations=iters, converged=best.gap <= tol
    )


def _project(q: torch.Tensor, P1: torch.Tensor, P2: torch.Tensor) -> torch.Tensor:
    """Rescale each slice ``q[b, :, :, y]`` to row sums ``P1[b, :, y]`` and column sums
    ``P2[b, :, y]`` (zeros stay zero): a few sweeps of iterative proportional fitting, then Newton
    steps for the scaling factors, ``q <- q (1 + alpha[x1] + beta[x2])`` with
    ``[[diag(rows), q], [q^T, diag(cols)]] [alpha; beta] = residuals`` solved per slice, which
    converge quadratically where IPF can crawl (tiny cells next to large ones).

    Shapes: ``q (B, A, C, Y)``, ``P1 (B, A, Y)``, ``P2 (B, C, Y)``.
    """
    B, A, C, Y = q.shape
    # a 1e-12 trace of the feasible, strictly positive Q0 = P(x1, y) P(x2, y) / P(y) keeps every allowed
    # row and column of q usable (cells of q can underflow to 0; the trace moves F by ~1e-12 nats)
    py = P1.sum(1)
    q = q + 1e-12 * (P1[:, :, None, :] * P2[:, None, :, :] / torch.where(py > 0, py, 1.0)[:, None, None, :])

    def ipf(q: torch.Tensor) -> torch.Tensor:
        rows = q.sum(2)
        q = q * (P1 / torch.where(rows > 0, rows, 1.0))[:, :, None, :]
        cols = q.sum(1)
        return q * (P2 / torch.where(cols > 0, cols, 1.0))[:, None, :, :]

    for _ in range(3):
        q = ipf(q)
    used = torch.cat([P1 > 0, P2 > 0], 1).permute(0, 2, 1)  # (B, Y, A + C)
    # gauge (alpha + c, beta - c): pin beta at the heaviest column of each slice
    heavy = torch.nn.functional.one_hot(P2.argmax(1), C).to(q.dtype)  # (B, Y, C)
    pin = torch.cat([torch.zeros(B, Y, A, dtype=q.dtype, device=q.device), heavy], -1)
    for _ in range(12):
        res = torch.cat([P1 - q.sum(2), P2 - q.sum(1)], 1).permute(0, 2, 1)  # (B, Y, A + C)
        if float(res.abs().max()) <= 1e-17:
            break
        qy = q.permute(0, 3, 1, 2)  # (B, Y, A, C)
        diag = torch.cat([qy.sum(-1), qy.sum(-2)], -1)  # (B, Y, A + C)
        diag = torch.where(used, diag + pin * diag.amax(-1, keepdim=True), 1.0)
        d = diag.rsqrt()  # Jacobi scaling: tiny rows keep their own equations
        M = torch.zeros(B, Y, A + C, A + C, dtype=q.dtype, device=q.device)
        M[:, :, :A, A:] = qy
        M[:, :, A:, :A] = qy.transpose(-1, -2)
        M = M * d[..., :, None] * d[..., None, :] + torch.diag_embed(torch.ones_like(diag) * (1.0 + 1e-13))
        x = torch.linalg.solve(M, (res * used * d)[..., None]).squeeze(-1) * d  # (B, Y, A + C)
        f = 1.0 + x[..., :A].transpose(1, 2)[:, :, None, :] + x[..., A:].transpose(1, 2)[:, None, :, :]
        q = q * f.clamp(0.01, 100.0)
    return ipf(q)


def _mi_terms(P: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``H(Y), I(X1;Y), I(X2;Y), I(X1,X2;Y)`` in nats for a batch ``P (B, A, C, Y)``."""
    h = lambda x: -xlogx_sum(x, batch_dims=1)  # noqa: E731
    hy = h(P.sum((1, 2)))
    h1, h2 = h(P.sum((2, 3))), h(P.sum((1, 3)))
    h12 = h(P.sum(3))
    i1 = h1 + hy - h(P.sum(2))
    i2 = h2 + hy - h(P.sum(1))
    i12 = h12 + hy - h(P)
    return hy, i1, i2, i12


def _i_q(q: torch.Tensor, hy: torch.Tensor) -> torch.Tensor:
    """``I_Q(X1, X2; Y) = H(Y) + sum Q log Q - sum Q(x1,x2) log Q(x1,x2)`` (nats), Q(y) = P(y)."""
    return hy + xlogx_sum(q, batch_dims=1) - xlogx_sum(q.sum(3), batch_dims=1)


def _broja_tensor(P: torch.Tensor, tol_bits: float, max_iter: int) -> dict[str, torch.Tensor]:
    """Core batched solve on a validated float64 tensor ``P (B, A, C, Y)``; values in bits."""
    B, A, C, Y = P.shape
    dev, dt = P.device, P.dtype
    hy, i1, i2, i12 = _mi_terms(P)
    P1, P2 = P.sum(2), P.sum(1)
    py = P.sum((1, 2))  # (B, Y)
    # Q0 = P(x1|y) P(x2|y) P(y) is feasible with I_Q0 <= I1 + I2
    q0 = P1[:, :, None, :] * P2[:, None, :, :] / torch.where(py > 0, py, 1.0)[:, None, None, :]
    lo = torch.maximum(i1, i2)
    hi = torch.minimum(i12, i1 + i2)
    trivial = (hi - lo <= 1e-15) | ((py > 0).sum(1) <= 1)

    q = torch.where((i12 <= i1 + i2)[:, None, None, None], P, q0)
    lam = torch.full((B, A, Y), math.nan, dtype=dt, device=dev)
    mu = torch.full((B, C, Y), math.nan, dtype=dt, device=dev)
    dual = lo.clone()  # valid lower bound on I* (nats)
    iters = torch.zeros(B, dtype=torch.int64, device=dev)

    idx = torch.nonzero(~trivial).flatten()
    if idx.numel() > 0:
        tol_nats = tol_bits * LN2
        sub = P[idx]
        swap = A < C  # the Newton system is reduced onto the x2 side: make it the smaller one
        if swap:
            sub = sub.transpose(1, 2).contiguous()
        out = _ipm(sub, tol=tol_nats, max_iter=max_iter, lower=(lo - hy)[idx])
        if swap:
            q[idx] = out.q.transpose(1, 2)
            lam[idx], mu[idx] = out.mu, out.lam
        else:
            q[idx] = out.q
            lam[idx], mu[idx] = out.lam, out.mu
        dual[idx] = torch.maximum(hy[idx] + out.dual, lo[idx])
        iters[idx] = out.iterations

    i_q = _i_q(q, hy)
    # the returned q must be the best feasible point known: fall back to P when it is better
    use_p = i12 < i_q
    q = torch.where(use_p[:, None, None, None], P, q)
    i_q = torch.where(use_p, i12, i_q)
    i_star = torch.minimum(torch.maximum(i_q, lo), hi)
    gap = (i_q - dual).clamp_min(0.0) / LN2
    residual = torch.maximum(
        (q.sum(2) - P1).abs().amax((1, 2)), (q.sum(1) - P2).abs().amax((1, 2))
    )
    conv = gap <= tol_bits
    # the exact atoms are >= 0; clipping removes float rounding of order 1e-16
    return {
        "redundancy": ((i1 + i2 - i_star) / LN2).clamp_min(0.0),
        "unique1": ((i_star - i2) / LN2).clamp_min(0.0),
        "unique2": ((i_star - i1) / LN2).clamp_min(0.0),
        "synergy": ((i12 - i_star) / LN2).clamp_min(0.0),
        "i_x1_y": i1 / LN2,
        "i_x2_y": i2 / LN2,
        "i_x1x2_y": i12 / LN2,
        "q": q,
        "gap": gap,
        "residual": residual,
        "iterations": iters,
        "converged": conv,
        "lam": lam,
        "mu": mu,
    }


# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------


def broja_batch(
    P: Any,
    *,
    tol: float = 1e-10,
    max_iter: int = 200,
    normalize: bool = False,
    device: torch.device | str | None = None,
    units: str = "bits",
) -> PIDBatchResult:
    """Exact BROJA PID of a batch of pmfs ``P[b, x1, x2, y]`` of one shape (bits).

    Args:
        P: numpy array or torch tensor of shape ``(B, |X1|, |X2|, |Y|)``. Zeros are allowed.
        tol: target duality gap in bits for every pmf (bounds the error of each atom).
        max_iter: interior-point iteration cap.
        normalize: divide each pmf by its total instead of requiring a total of 1.
        device: where to solve; default: the tensor's device (CPU for numpy input).
        units: ``"bits"`` (default) or ``"nats"``: the unit of the returned atoms, informations and gaps
            (``tol`` is in bits either way).

    Returns:
        :class:`PIDBatchResult`: torch tensors on the solve device for tensor input, numpy arrays
        otherwise.

    Raises:
        PIDInputError: malformed input (see :func:`validate_pmf`).
    """
    unit_scale(units)
    as_torch = isinstance(P, torch.Tensor)
    t = validate_pmf(P, batched=True, normalize=normalize)
    if device is not None:
        t = t.to(device)
    with torch.inference_mode():  # less per-operation overhead; outputs are cloned below
        out = _broja_tensor(t, tol, max_iter)
    out = {k: v.clone() for k, v in out.items()}
    fields: dict[str, Any] = {k: v.cpu().numpy() for k, v in out.items()} if not as_torch else dict(out)
    return PIDBatchResult(**fields).to_units(units)


def broja(
    P: Any,
    *,
    tol: float = 1e-10,
    max_iter: int = 200,
    normalize: bool = False,
    units: str = "bits",
) -> PIDResult:
    """Exact BROJA PID of one joint pmf ``P[x1, x2, y]`` (bits), with an optimality certificate.

    Values of x1, x2 or y that never occur are removed before solving (they change nothing) and
    restored, as zeros, in ``q``.

    Args:
        P: numpy array, torch tensor or nested sequence of shape ``(|X1|, |X2|, |Y|)``.
        tol: target duality gap in bits (bounds the error of each atom; default 1e-10).
        max_iter: interior-point iteration cap.
        normalize: divide by the total instead of requiring a total of 1 (e.g. for counts).
        units: ``"bits"`` (default) or ``"nats"``: the unit of the returned atoms, informations and gap
            (``tol`` is in bits either way).

    Returns:
        :class:`PIDResult`.

    Raises:
        PIDInputError: malformed input (see :func:`validate_pmf`).

    Example:
        >>> import numpy as np
        >>> P = np.zeros((2, 2, 2)); P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 1] = P[1, 1, 0] = 0.25
        >>> r = broja(P)  # XOR: pure synergy
        >>> round(r.synergy, 9), round(r.redundancy, 9)
        (1.0, 0.0)
    """
    unit_scale(units)
    t = validate_pmf(P, batched=False, normalize=normalize).cpu()
    k1 = torch.nonzero(t.sum((1, 2)) > 0).flatten()
    k2 = torch.nonzero(t.sum((0, 2)) > 0).flatten()
    ky = torch.nonzero(t.sum((0, 1)) > 0).flatten()
    sub = t[k1][:, k2][:, :, ky]
    with torch.inference_mode():
        out = _broja_tensor(sub[None], tol, max_iter)
    shape = tuple(t.shape)
    q = np.zeros(shape)
    ix = np.ix_(k1.numpy(), k2.numpy(), ky.numpy())
    q[ix] = out["q"][0].numpy()
    lam = np.full((shape[0], shape[2]), np.nan)
    mu = np.full((shape[1], shape[2]), np.nan)
    solved = not bool(torch.isnan(out["lam"][0]).all())
    if solved:
        lam[np.ix_(k1.numpy(), ky.numpy())] = out["lam"][0].numpy()
        mu[np.ix_(k2.numpy(), ky.numpy())] = out["mu"][0].numpy()
    return PIDResult(
        redundancy=float(out["redundancy"][0]),
        unique1=float(out["unique1"][0]),
        unique2=float(out["unique2"][0]),
        synergy=float(out["synergy"][0]),
        i_x1_y=float(out["i_x1_y"][0]),
        i_x2_y=float(out["i_x2_y"][0]),
        i_x1x2_y=float(out["i_x1x2_y"][0]),
        q=q,
        gap=float(out["gap"][0]),
        residual=float(out["residual"][0]),
        iterations=int(out["iterations"][0]),
        converged=bool(out["converged"][0]),
        lam=lam if solved else None,
        mu=mu if solved else None,
    ).to_units(units)
