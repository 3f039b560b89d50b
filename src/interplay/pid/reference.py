"""The CVXPY exponential-cone formulation of BROJA's ``min_Q I_Q(X1, X2; Y)``: the accuracy reference that the
tests and ``benchmarks/pid_speed.py`` compare the solver against. Needs the ``reference`` extra (cvxpy)."""

from __future__ import annotations

import math

import numpy as np


def cvxpy_i_min(P: np.ndarray) -> tuple[float, np.ndarray]:
    """``min_Q I_Q(X1, X2; Y)`` in bits over ``Q`` with ``P``'s pair marginals, and the minimiser ``Q[x1, x2, y]``:
    ``sum_y rel_entr(Q_y, p(y) sum_y' Q_y')`` minimised by CVXPY with Clarabel."""
    import cvxpy as cp

    A, C, Y = P.shape
    py, p1, p2 = P.sum((0, 1)), P.sum(1), P.sum(0)
    qs = [cp.Variable((A, C), nonneg=True) for _ in range(Y)]
    cons = []
    for y in range(Y):
        cons += [cp.sum(qs[y], axis=1) == p1[:, y], cp.sum(qs[y], axis=0) == p2[:, y]]
    q_pair = sum(qs)
    obj = sum(cp.sum(cp.rel_entr(qs[y], py[y] * q_pair)) for y in range(Y) if py[y] > 0)
    prob = cp.Problem(cp.Minimize(obj), cons)
    prob.solve(solver="CLARABEL")
    if prob.status != "optimal":
        raise RuntimeError(f"CVXPY reference did not solve to optimality: {prob.status}")
    return float(prob.value) / math.log(2), np.stack([np.asarray(q.value) for q in qs], -1)
