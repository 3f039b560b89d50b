r"""Per-outcome (per-sample) BROJA PID read off the dual optimum, and a differentiable BROJA PID.

Notation (nats inside, bits in every public output). ``P[x1, x2, y]`` is a pmf, ``p(.)`` its
marginals and conditionals, ``I* = min_{Q in Delta_P} I_Q(X1, X2; Y)`` the BROJA minimum (see
:mod:`interplay.pid.solver`), ``lam[x1, y]``, ``mu[x2, y]`` the multipliers of the constraints
``Q(x1, y) = P(x1, y)``, ``Q(x2, y) = P(x2, y)`` and, on the allowed cells
(``P(x1, y) > 0`` and ``P(x2, y) > 0``)::

    phi(x1, x2, y) = lam[x1, y] + mu[x2, y].

Derivation (KKT of the program the solver solves). With ``Q(y) = P(y)`` fixed,
``I_Q(X1, X2; Y) = H(Y) + F(Q)``, ``F(Q) = sum Q log Q(y | x1, x2)``. Its dual is

    max_{lam, mu}  D = sum P(x1, y) lam[x1, y] + sum P(x2, y) mu[x2, y]
    s.t.           log sum_y exp(phi(x1, x2, y)) <= 0   for every pair (x1, x2),

with strong duality and, for every optimal ``(Q*, lam*, mu*)``:

1. ``I* = H(Y) + D* = E_P[phi* - log p(y)]``, because ``phi`` is a sum of an ``(x1, y)`` and an
   ``(x2, y)`` term, so ``E_P[phi] = E_Q[phi] = D`` for every ``Q`` in ``Delta_P``: the
   expectation under ``P`` equals the one under ``Q*`` although ``P != Q*``.
2. Complementary slackness: ``phi*(x1, x2, .) = log Q*(. | x1, x2)`` on every pair with
   ``Q*(x1, x2) > 0`` (the constraint is active there); pairs with ``Q*(x1, x2) = 0`` only have
   ``sum_y exp(phi*) <= 0``.

So ``i*(x1, x2, y) = phi*(x1, x2, y) - log p(y)`` is a pointwise version of ``I*`` and, with the
pointwise mutual informations ``i1 = log p(y|x1)/p(y)``, ``i2 = log p(y|x2)/p(y)``,
``i12 = log p(y|x1,x2)/p(y)``, the atom formulas ``S = I12 - I*``, ``U1 = I* - I2``,
``U2 = I* - I1``, ``R = I1 + I2 - I*`` hold pointwise in expectation::

    s  = log p(y|x1,x2) - phi                        (= log p(y|x1,x2) / Q*(y|x1,x2) where Q*(x1,x2) > 0)
    u1 = phi - log p(y|x2)
    u2 = phi - log p(y|x1)
    r  = log p(y|x1) + log p(y|x2) - log p(y) - phi

These are exactly the formulas of the project spec (``pid.md``, section 1), with ``phi = lam + mu`` in
the solver's normalisation (constraint ``log sum_y exp(phi) <= 0``, no extra offset; the gauge
``lam[., y] + c, mu[., y] - c`` leaves ``phi`` unchanged). Pointwise, whatever ``phi`` is,
``r + u1 = i1``, ``r + u2 = i2`` and ``r + u1 + u2 + s = i12``; and for any *feasible* dual point,
``E_P[s], E_P[u1], ...`` are the atoms computed with ``H(Y) + D`` in place of ``I*``, so they differ
from the atoms by at most ``I_Q - (H(Y) + D)`` (the duality gap of that dual point, reported as
``gap``).

Which dual point. Besides the solver's dual, ``phi = log p(y|x1)`` (``D = I(X1;Y) - H(Y)``) and
``phi = log p(y|x2)`` are always feasible; the one with the largest ``D`` is used (ties between the
two simple ones: their average, which is feasible by convexity). This makes the pointwise ``gap``
never larger than the solver's certificate, and gives the exact optimum where ``I* = max(I(X1;Y),
I(X2;Y))`` (one unique information is 0; the solver's dual is then only approximate, and for
degenerate pmfs such as XOR or UNQ no solve is run at all).

Non-uniqueness. ``phi*`` is pinned by complementary slackness only on cells ``(x1, x2, y)`` whose
``x1`` and ``x2`` are connected in the bipartite graph of the pairs with ``Q*(x1, x2) > 0`` allowed
at ``y`` (:attr:`PointwisePID.determined`). Elsewhere the dual optimum may leave a range (AND: on
the outcomes ``(0, 1, 0)`` and ``(1, 0, 0)``, ``phi`` can be anything in ``[-1, 0]`` bits); the
values returned there are one valid choice, not *the* pointwise decomposition. Only the means are
invariant.

Gradients. ``I*(P) = H_P(Y) + max_{(lam, mu) feasible} <P, phi>`` with a feasible set that does not
depend on ``P`` (for full support), so by Danskin's theorem (the envelope theorem)
``dI*/dP(x1, x2, y) = phi*(x1, x2, y) - log p(y) - 1`` wherever ``phi*`` is unique; otherwise it
is a subgradient (``D*`` is convex in ``P``). The atoms are ``I*`` plus or minus the mutual
informations of ``P``, which are differentiated with ordinary autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .results import PIDInputError, PIDResult, validate_pmf
from .solver import broja, broja_batch

__all__ = ["PointwisePID", "broja_torch", "per_sample_pid", "pointwise_pid"]

LN2 = math.log(2.0)
ATOMS = ("redundancy", "unique1", "unique2", "synergy")
#: Relative tolerance under which the two simple dual points count as equally good.
_TIE = 1e-13
#: Names of the dual points :func:`_select_dual` chooses from.
_SOURCES = ("solver", "x1", "x2", "x1+x2")


# ----------------------------------------------------------------------------------------------
# shared helpers
# ----------------------------------------------------------------------------------------------


def _log_cond(P: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``log p(y|x1)``, ``log p(y|x2)``, ``log p(y|x1,x2)``, ``log p(y)`` for ``P (B, A, C, Y)``,
    broadcast to ``(B, A, C, Y)`` (``-inf``/nan where the conditioning event or outcome is 0)."""
    p1y, p2y, p12, py = P.sum(2), P.sum(1), P.sum(3), P.sum((1, 2))
    l1 = torch.log(p1y) - torch.log(p1y.sum(-1, keepdim=True))  # (B, A, Y)
    l2 = torch.log(p2y) - torch.log(p2y.sum(-1, keepdim=True))  # (B, C, Y)
    l12 = torch.log(P) - torch.log(p12)[..., None]
    ly = torch.log(py)
    return l1[:, :, None, :].expand_as(P), l2[:, None, :, :].expand_as(P), l12, ly[:, None, None, :].expand_as(P)


def _select_dual(
    P: torch.Tensor, lam: torch.Tensor, mu: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The best known feasible dual point as ``phi (B, A, C, Y)`` (nats, nan off the allowed cells).

    Candidates: the solver's ``(lam, mu)`` (shapes ``(B, A, Y)``, ``(B, C, Y)``, all nan when no
    solve ran), shifted down by ``max(0, max_k g_k)`` so that it is feasible despite rounding;
    ``log p(y|x1)``; ``log p(y|x2)``; their average when the two tie. The largest
    ``D = E_P[phi]`` wins (a simple candidate wins ties against the solver's).

    Returns ``phi``, ``D (B,)`` in nats and the source per pmf (int64 ``(B,)``, an index into
    :data:`_SOURCES`).
    """
    B, A, C, Y = P.shape
    allowed = (P.sum(2) > 0)[:, :, None, :] & (P.sum(1) > 0)[:, None, :, :]
    l1, l2, _, _ = _log_cond(P)
    l1 = torch.where(allowed, l1, math.nan)
    l2 = torch.where(allowed, l2, math.nan)

    def dual_value(phi: torch.Tensor) -> torch.Tensor:
        return torch.where(P > 0, P * phi, 0.0).sum((1, 2, 3))

    d1, d2 = dual_value(l1), dual_value(l2)
    tie = (d1 - d2).abs() <= _TIE * torch.maximum(d1.abs(), d2.abs()).clamp_min(1.0)
    simple = torch.where(tie[:, None, None, None], 0.5 * (l1 + l2), torch.where((d1 > d2)[:, None, None, None], l1, l2))
    d_simple = dual_value(simple)
    source = torch.where(tie, 3, torch.where(d1 > d2, 1, 2))

    solved = ~torch.isnan(lam).flatten(1).all(1)
    if bool(solved.any()):
        phi_s = torch.where(allowed, lam[:, :, None, :] + mu[:, None, :, :], math.nan)
        g = torch.logsumexp(torch.where(allowed, phi_s, -math.inf), -1)  # (B, A, C), -inf for empty pairs
        shift = torch.nan_to_num(g, nan=-math.inf, neginf=-math.inf).flatten(1).amax(1).clamp_min(0.0)
        phi_s = phi_s - shift[:, None, None, None]
        d_s = torch.where(solved, dual_value(phi_s), -math.inf)
        use_s = d_s > d_simple
        phi = torch.where(use_s[:, None, None, None], phi_s, simple)
        d = torch.where(use_s, d_s, d_simple)
        source = torch.where(use_s, 0, source)
    else:
        phi, d = simple, d_simple
    return phi, d, source


def _i_q_nats(q: torch.Tensor) -> torch.Tensor:
    """``I_Q(X1, X2; Y)`` in nats for ``q (B, A, C, Y)``."""

    def h(t: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        return -torch.where(t > 0, t * torch.log(torch.where(t > 0, t, 1.0)), 0.0).sum(dims)

    return h(q.sum(3), (1, 2)) + h(q.sum((1, 2)), (1,)) - h(q, (1, 2, 3))


def _determined(q: np.ndarray, allowed: np.ndarray, support_tol: float) -> np.ndarray:
    """Cells ``(x1, x2, y)`` whose ``phi`` is pinned by complementary slackness: ``x1`` and ``x2``
    connected, in slice ``y``, through pairs with ``Q*(x1, x2) > support_tol`` allowed at ``y``.

    Shapes: ``q``, ``allowed``: ``(A, C, Y)``; returns a bool array of the same shape.
    """
    from scipy.sparse import coo_matrix  # here, not at import: scipy.sparse costs ~0.3 s of start-up
    from scipy.sparse.csgraph import connected_components

    A, C, Y = q.shape
    supported = q.sum(2) > support_tol  # (A, C)
    out = np.zeros((A, C, Y), dtype=bool)
    for y in range(Y):
        edges = supported & allowed[:, :, y]
        i, j = np.nonzero(edges)
        graph = coo_matrix((np.ones(len(i)), (i, A + j)), shape=(A + C, A + C))
        _, comp = connected_components(graph, directed=False)
        out[:, :, y] = (comp[:A, None] == comp[None, A:]) & allowed[:, :, y]
    return out


# ----------------------------------------------------------------------------------------------
# pointwise PID
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PointwisePID:
    r"""Pointwise BROJA PID of a pmf ``P[x1, x2, y]`` (bits); see the module docstring.

    Attributes:
        redundancy, unique1, unique2, synergy: pointwise terms ``r, u1, u2, s``, numpy float64 of
            shape ``(|X1|, |X2|, |Y|)``, ``nan`` where ``P = 0``. A single outcome's term can be
            negative; only the ``P``-weighted means are PID atoms.
        phi: the dual point used, ``lam[x1, y] + mu[x2, y]`` in **nats**, shape ``(|X1|, |X2|, |Y|)``
            (``nan`` off the allowed cells).
        determined: bool ``(|X1|, |X2|, |Y|)``: cells where ``phi`` (hence every pointwise term) is
            pinned by complementary slackness; elsewhere it is one choice out of a range of optimal
            duals (see the module docstring).
        gap: bits, ``max(I_q, I*) - (H(Y) + E_P[phi])`` with ``q`` the solver's feasible primal
            point: an upper bound on ``|mean - atom|`` for all four terms (plus rounding).
        dual_source: which dual point was used: ``"solver"``, ``"x1"`` (``phi = log p(y|x1)``),
            ``"x2"`` or ``"x1+x2"`` (their average).
        result: the :class:`~interplay.pid.results.PIDResult` the terms were computed from.
        p: the validated pmf (numpy float64, sums to 1).
    """

    redundancy: np.ndarray
    unique1: np.ndarray
    unique2: np.ndarray
    synergy: np.ndarray
    phi: np.ndarray
    determined: np.ndarray
    gap: float
    dual_source: str
    result: PIDResult
    p: np.ndarray

    def terms(self) -> dict[str, np.ndarray]:
        """The four pointwise arrays by atom name."""
        return {name: getattr(self, name) for name in ATOMS}

    def means(self) -> dict[str, float]:
        """``E_P[term]`` for each of the four terms (bits); each is within :attr:`gap` of its atom."""
        m = self.p > 0
        return {name: float((self.p[m] * arr[m]).sum()) for name, arr in self.terms().items()}

    @property
    def max_error(self) -> float:
        """``max |E_P[term] - atom|`` over the four atoms of :attr:`result` (bits; ``<= gap`` + rounding)."""
        means = self.means()
        return max(abs(means[name] - getattr(self.result, name)) for name in ATOMS)


def pointwise_pid(
    P: Any,
    result: PIDResult | None = None,
    *,
    tol: float = 1e-12,
    normalize: bool = False,
    support_tol: float = 1e-8,
) -> PointwisePID:
    r"""Per-outcome BROJA PID terms of ``P[x1, x2, y]`` from the dual optimum (bits).

    For every outcome with ``P(x1, x2, y) > 0`` (``phi = lam[x1, y] + mu[x2, y]``, see the module
    docstring for the derivation)::

        s  = log2 p(y|x1,x2) - phi / ln 2
        u1 = phi / ln 2 - log2 p(y|x2)
        u2 = phi / ln 2 - log2 p(y|x1)
        r  = log2 p(y|x1) + log2 p(y|x2) - log2 p(y) - phi / ln 2

    so that ``r + u1 = log2 p(y|x1)/p(y)``, ``r + u2 = log2 p(y|x2)/p(y)``,
    ``r + u1 + u2 + s = log2 p(y|x1,x2)/p(y)`` pointwise and ``E_P[r] = R`` etc. up to ``gap``.

    Args:
        P: pmf ``(|X1|, |X2|, |Y|)`` (numpy, torch or nested sequence), checked by
            :func:`~interplay.pid.results.validate_pmf`.
        result: a :class:`PIDResult` of the same ``P`` to reuse (otherwise ``broja(P, tol=tol)``).
        tol: target duality gap (bits) of the solve; the pointwise terms are as accurate as the gap.
        normalize: divide ``P`` by its total instead of requiring a total of 1.
        support_tol: pairs with ``Q*(x1, x2) <= support_tol`` count as unsupported in
            :attr:`PointwisePID.determined`.

    Returns:
        :class:`PointwisePID`.

    Raises:
        PIDInputError: malformed ``P``, or a ``result`` of another shape.
    """
    t = validate_pmf(P, normalize=normalize).cpu()
    if result is None:
        result = broja(t, tol=tol)
    elif not isinstance(result, PIDResult):
        raise PIDInputError(f"result: expected a PIDResult from broja(P), got {type(result).__name__}")
    elif tuple(result.q.shape) != tuple(t.shape):
        raise PIDInputError(f"result: is for a pmf of shape {tuple(result.q.shape)}, P has shape {tuple(t.shape)}")
    Pb = t[None]
    shape = tuple(t.shape)
    if result.lam is None:
        lam = torch.full((1, shape[0], shape[2]), math.nan, dtype=torch.float64)
        mu = torch.full((1, shape[1], shape[2]), math.nan, dtype=torch.float64)
    else:
        lam, mu = torch.from_numpy(result.lam)[None], torch.from_numpy(result.mu)[None]
    phi, d, source = _select_dual(Pb, lam, mu)
    l1, l2, l12, ly = _log_cond(Pb)
    pos = Pb > 0
    nats = {
        "redundancy": l1 + l2 - ly - phi,
        "unique1": phi - l2,
        "unique2": phi - l1,
        "synergy": l12 - phi,
    }
    terms = {k: torch.where(pos, v, math.nan)[0].numpy() / LN2 for k, v in nats.items()}
    py = Pb.sum((1, 2))
    hy = -torch.where(py > 0, py * torch.log(torch.where(py > 0, py, 1.0)), 0.0).sum(1)
    i_q = float(_i_q_nats(torch.from_numpy(result.q)[None])[0]) / LN2
    gap = max(i_q, result.i_min) - float(hy[0] + d[0]) / LN2
    allowed = ((Pb.sum(2) > 0)[:, :, None, :] & (Pb.sum(1) > 0)[:, None, :, :])[0].numpy()
    return PointwisePID(
        **terms,
        phi=phi[0].numpy(),
        determined=_determined(result.q, allowed, support_tol),
        gap=max(gap, 0.0),
        dual_source=_SOURCES[int(source[0])],
        result=result,
        p=t.numpy(),
    )


def _codes(v: Any, name: str, size: int) -> torch.Tensor:
    """Integer codes ``(B,)`` as int64 (CPU), range-checked against ``size``."""
    if isinstance(v, torch.Tensor):
        if v.dtype.is_floating_point or v.is_complex() or v.dtype == torch.bool:
            raise PIDInputError(f"{name}: expected integer codes, got dtype {v.dtype}")
        t = v.detach().cpu().to(torch.int64)
    else:
        arr = np.asarray(v)
        if arr.dtype.kind not in "iu":
            raise PIDInputError(f"{name}: expected integer codes, got dtype {arr.dtype}")
        t = torch.from_numpy(arr.astype(np.int64))
    if t.ndim != 1:
        raise PIDInputError(f"{name}: expected a 1-D array of codes (B,), got shape {tuple(t.shape)}")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= size):
        bad = int(t[(t < 0) | (t >= size)][0])
        raise PIDInputError(f"{name}: code {bad} out of range, expected 0 <= code < {size}")
    return t


def per_sample_pid(
    P: Any,
    x1: Any,
    x2: Any,
    y: Any,
    *,
    pointwise: PointwisePID | None = None,
    tol: float = 1e-12,
    normalize: bool = False,
) -> dict[str, torch.Tensor]:
    """Pointwise PID terms of integer-coded samples: a dataset's per-sample interaction profile.

    Args:
        P: pmf ``(|X1|, |X2|, |Y|)`` the samples are scored under (e.g. the empirical pmf).
        x1, x2, y: integer codes, shape ``(B,)`` each (numpy or torch).
        pointwise: a :class:`PointwisePID` of ``P`` to reuse (otherwise computed).
        tol, normalize: passed to :func:`pointwise_pid`.

    Returns:
        ``{"redundancy", "unique1", "unique2", "synergy"}``: float64 tensors ``(B,)`` in bits, and
        ``"determined"``: bool ``(B,)`` (see :attr:`PointwisePID.determined`); on the device of
        ``x1`` when it is a tensor, else on the CPU. Their means over samples drawn from ``P``
        estimate the atoms.

    Raises:
        PIDInputError: malformed ``P``, codes that are not 1-D integers of one length, out of
            range, or naming an outcome with ``P(x1, x2, y) = 0``.
    """
    pw = pointwise if pointwise is not None else pointwise_pid(P, tol=tol, normalize=normalize)
    if pointwise is not None:
        t = validate_pmf(P, normalize=normalize).cpu().numpy()
        if t.shape != pw.p.shape or not np.allclose(t, pw.p, rtol=0.0, atol=1e-12):
            raise PIDInputError("pointwise: was computed for a different pmf than P")
    A, C, Y = pw.p.shape
    c1, c2, cy = _codes(x1, "x1", A), _codes(x2, "x2", C), _codes(y, "y", Y)
    if not (c1.shape == c2.shape == cy.shape):
        raise PIDInputError(f"x1, x2, y: expected codes of one length, got {c1.shape[0]}, {c2.shape[0]}, {cy.shape[0]}")
    p = torch.from_numpy(pw.p)[c1, c2, cy]
    if bool((p <= 0).any()):
        k = int(torch.nonzero(p <= 0)[0, 0])
        raise PIDInputError(
            f"sample {k}: outcome (x1, x2, y) = ({int(c1[k])}, {int(c2[k])}, {int(cy[k])}) has P = 0; "
            "expected outcomes with positive probability"
        )
    dev = x1.device if isinstance(x1, torch.Tensor) else torch.device("cpu")
    out = {name: torch.from_numpy(arr)[c1, c2, cy].to(dev) for name, arr in pw.terms().items()}
    out["determined"] = torch.from_numpy(pw.determined)[c1, c2, cy].to(dev)
    return out


# ----------------------------------------------------------------------------------------------
# differentiable BROJA
# ----------------------------------------------------------------------------------------------


class _IStar(torch.autograd.Function):
    """``I* (B,)`` in nats of normalised pmfs ``P (B, A, C, Y)``; backward by Danskin's theorem:
    ``dI*/dP = phi - log p(y) - 1`` on cells with ``P > 0``, 0 on cells with ``P = 0``."""

    @staticmethod
    def forward(ctx: Any, P: torch.Tensor, tol: float, max_iter: int) -> torch.Tensor:  # noqa: D102
        Pd = P.detach()
        res = broja_batch(Pd, tol=tol, max_iter=max_iter)
        i_star = (res.i_x1x2_y - res.synergy) * LN2
        phi, _, _ = _select_dual(Pd, res.lam, res.mu)
        py = Pd.sum((1, 2))[:, None, None, :]
        grad = torch.where(Pd > 0, phi - torch.log(torch.where(py > 0, py, 1.0)) - 1.0, 0.0)
        ctx.save_for_backward(torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0))
        return i_star.to(P.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # noqa: D102
        (grad,) = ctx.saved_tensors
        return grad_out[:, None, None, None] * grad, None, None


def _entropy(t: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``-sum t log t`` over ``dims`` with ``0 log 0 = 0`` and a zero (not nan) gradient at 0."""
    pos = t > 0
    return -torch.where(pos, t * torch.log(torch.where(pos, t, 1.0)), 0.0).sum(dims)


def broja_torch(
    P: torch.Tensor,
    *,
    tol: float = 1e-12,
    max_iter: int = 200,
    normalize: bool = False,
) -> dict[str, torch.Tensor]:
    r"""Differentiable BROJA PID (bits): atoms as functions of ``P`` that autograd can go through.

    Forward: the atoms of :func:`~interplay.pid.solver.broja_batch` (same values). Backward: with
    ``I1, I2, I12`` the mutual informations of ``P`` (ordinary autograd) and
    ``I* = min_{Q in Delta_P} I_Q(X1,X2;Y)``, ``S = I12 - I*``, ``U1 = I* - I2``, ``U2 = I* - I1``,
    ``R = I1 + I2 - I*``; the gradient of ``I*`` comes from the dual optimum (envelope theorem),
    ``dI*/dP(x1,x2,y) = lam*[x1,y] + mu*[x2,y] - log p(y) - 1`` (nats), computed once in the forward
    pass. The atoms are functions of ``P / P.sum()``, so gradients are tangent to the simplex
    (``sum P * grad = 0``).

    Caveats: the gradient is defined for full-support ``P``; entries with ``P = 0`` get gradient 0
    (the true one-sided derivative is typically infinite there), so parametrise ``P`` to keep full
    support (e.g. ``softmax``). Where the dual optimum is not unique (e.g. exactly at AND, or where
    ``I(X1;Y) = I(X2;Y) = I*``) ``I*`` is not differentiable and the gradient is a subgradient
    (``I* - H(Y)`` is convex in ``P``). The solver clamps atoms at 0 to remove rounding; here that
    clamp acts on the value only (straight-through), so an atom that is exactly 0 still carries the
    gradient of its formula. Its accuracy is that of the solve (``tol``); only first derivatives.

    Args:
        P: tensor ``(|X1|, |X2|, |Y|)`` or a batch ``(B, |X1|, |X2|, |Y|)``, any float dtype/device.
        tol: target duality gap (bits) of the solve.
        max_iter: interior-point iteration cap.
        normalize: accept any positive total (otherwise it must be 1 within ``SUM_TOLERANCE``).

    Returns:
        ``{"redundancy", "unique1", "unique2", "synergy", "i_x1_y", "i_x2_y", "i_x1x2_y"}``: 0-d
        tensors (``(B,)`` for a batch), float64, bits, on ``P``'s device.

    Raises:
        PIDInputError: ``P`` not a real tensor, or malformed (see ``validate_pmf``).
    """
    if not isinstance(P, torch.Tensor):
        raise PIDInputError(f"P: expected a torch.Tensor (|X1|, |X2|, |Y|) or (B, ...), got {type(P).__name__}")
    if P.ndim not in (3, 4):
        raise PIDInputError(f"P: expected 3 axes P[x1, x2, y] or 4 axes P[b, x1, x2, y], got shape {tuple(P.shape)}")
    batched = P.ndim == 4
    validate_pmf(P, batched=batched, normalize=normalize)
    Pb = (P if batched else P[None]).to(torch.float64)
    Pb = torch.where(Pb > 0, Pb, Pb.detach())  # no gradient through zero entries
    Pn = Pb / Pb.sum((1, 2, 3), keepdim=True)
    hy = _entropy(Pn.sum((1, 2)), (1,))
    i1 = _entropy(Pn.sum((2, 3)), (1,)) + hy - _entropy(Pn.sum(2), (1, 2))
    i2 = _entropy(Pn.sum((1, 3)), (1,)) + hy - _entropy(Pn.sum(1), (1, 2))
    i12 = _entropy(Pn.sum(3), (1, 2)) + hy - _entropy(Pn, (1, 2, 3))
    i_star = _IStar.apply(Pn, tol, max_iter)

    def clamp0(x: torch.Tensor) -> torch.Tensor:
        return x + (x.clamp_min(0.0) - x).detach()

    out = {
        "redundancy": clamp0((i1 + i2 - i_star) / LN2),
        "unique1": clamp0((i_star - i2) / LN2),
        "unique2": clamp0((i_star - i1) / LN2),
        "synergy": clamp0((i12 - i_star) / LN2),
        "i_x1_y": i1 / LN2,
        "i_x2_y": i2 / LN2,
        "i_x1x2_y": i12 / LN2,
    }
    return out if batched else {k: v[0] for k, v in out.items()}
