"""Canonical discrete pmfs ``P[x1, x2, y]`` with known BROJA PID, and random / structured families.

Every constructor returns a float64 numpy array indexed ``P[x1, x2, y]`` (the target ``y`` last)
that sums to 1. Values are encoded as consecutive integers starting at 0; multi-bit variables are
packed most significant bit first (e.g. ``y = (x1, x2)`` is ``y = 2 x1 + x2``).

:data:`EXPECTED` holds the exact BROJA PID ``(R, U1, U2, S)`` in bits of every entry of
:data:`CANONICAL`, from closed forms (see ``docs/pid.md`` and the project spec, section 3 of
``synthetic.md`` and section 1 of ``pid.md``), for tests.

This module depends on numpy only (it is importable without the rest of :mod:`interplay.data`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "CANONICAL",
    "EXPECTED",
    "and_",
    "copy",
    "erase",
    "from_outcomes",
    "imperfect_rdn",
    "mixture",
    "noisy",
    "or_",
    "random_pmf",
    "rdn",
    "rdnunqxor",
    "rdnxor",
    "sum_",
    "unq",
    "w",
    "xor",
]


def from_outcomes(
    outcomes: Sequence[tuple[int, int, int]],
    probs: Sequence[float] | None = None,
    shape: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """pmf with mass ``probs[i]`` (uniform if ``None``) on outcome ``(x1, x2, y) = outcomes[i]``.

    ``shape`` defaults to the smallest shape holding all outcomes. Repeated outcomes add up.
    """
    outs = np.asarray(outcomes, dtype=np.int64).reshape(-1, 3)
    if probs is None:
        probs_arr = np.full(len(outs), 1.0 / len(outs))
    else:
        probs_arr = np.asarray(probs, dtype=np.float64)
    dims = shape if shape is not None else tuple(int(m) + 1 for m in outs.max(0))
    P = np.zeros(dims, dtype=np.float64)
    np.add.at(P, (outs[:, 0], outs[:, 1], outs[:, 2]), probs_arr)
    return P / P.sum()


def _function_pmf(f: Callable[[int, int], int], n1: int, n2: int, ny: int) -> np.ndarray:
    """``x1, x2`` independent and uniform on ``range(n1)``, ``range(n2)``; ``y = f(x1, x2)``."""
    outs = [(a, b, f(a, b)) for a in range(n1) for b in range(n2)]
    return from_outcomes(outs, shape=(n1, n2, ny))


def xor() -> np.ndarray:
    """XOR: ``y = x1 xor x2``, two uniform independent bits. PID: S = 1 bit, rest 0."""
    return _function_pmf(lambda a, b: a ^ b, 2, 2, 2)


def and_() -> np.ndarray:
    """AND: ``y = x1 and x2``, two uniform independent bits. PID: R = 1.5 - 0.75 log2 3, S = 0.5."""
    return _function_pmf(lambda a, b: a & b, 2, 2, 2)


def or_() -> np.ndarray:
    """OR: ``y = x1 or x2``, two uniform independent bits (same PID as AND)."""
    return _function_pmf(lambda a, b: a | b, 2, 2, 2)


def rdn() -> np.ndarray:
    """RDN: ``x1 = x2 = y``, one uniform bit. PID: R = 1 bit."""
    return from_outcomes([(0, 0, 0), (1, 1, 1)], shape=(2, 2, 2))


def unq() -> np.ndarray:
    """UNQ: ``y = x1``, ``x2`` an independent uniform bit. PID: U1 = 1 bit."""
    return _function_pmf(lambda a, b: a, 2, 2, 2)


def copy() -> np.ndarray:
    """COPY: ``y = (x1, x2) = 2 x1 + x2``, two uniform independent bits. PID: U1 = U2 = 1 bit."""
    return _function_pmf(lambda a, b: 2 * a + b, 2, 2, 4)


def sum_() -> np.ndarray:
    """SUM: ``y = x1 + x2`` (values 0, 1, 2), two uniform independent bits. PID: R = 0.5, S = 1."""
    return _function_pmf(lambda a, b: a + b, 2, 2, 3)


def rdnxor() -> np.ndarray:
    """RDNXOR (4x4x4): ``x1 = (r, a)``, ``x2 = (r, b)``, ``y = (r, a xor b)``, bits r, a, b uniform.

    Encoded ``x1 = 2r + a``, ``x2 = 2r + b``, ``y = 2r + (a xor b)``. PID: R = 1 (r), S = 1 (xor).
    """
    outs = [(2 * r + a, 2 * r + b, 2 * r + (a ^ b)) for r in range(2) for a in range(2) for b in range(2)]
    return from_outcomes(outs, shape=(4, 4, 4))


def rdnunqxor() -> np.ndarray:
    """RDNUNQXOR (8x8x16): ``x1 = (r, a, c1)``, ``x2 = (r, b, c2)``, ``y = (r, a, b, c1 xor c2)``.

    Five uniform independent bits r, a, b, c1, c2; encoded ``x1 = 4r + 2a + c1``,
    ``x2 = 4r + 2b + c2``, ``y = 8r + 4a + 2b + (c1 xor c2)``. PID: R = U1 = U2 = S = 1 bit.
    """
    outs = [
        (4 * r + 2 * a + c1, 4 * r + 2 * b + c2, 8 * r + 4 * a + 2 * b + (c1 ^ c2))
        for r in range(2)
        for a in range(2)
        for b in range(2)
        for c1 in range(2)
        for c2 in range(2)
    ]
    return from_outcomes(outs, shape=(8, 8, 16))


def w() -> np.ndarray:
    """W: outcomes ``(x1, x2, y) = 001, 010, 100``, uniform. PID: R = log2 3 - 4/3, S = 2/3."""
    return from_outcomes([(0, 0, 1), (0, 1, 0), (1, 0, 0)], shape=(2, 2, 2))


def imperfect_rdn() -> np.ndarray:
    """Imperfect RDN (Griffith): ``000`` w.p. 0.499, ``010`` w.p. 0.001, ``111`` w.p. 0.5.

    PID: R = I(X2; Y), U1 = 1 - I(X2; Y) (about 0.98959 and 0.01041), U2 = S = 0.
    """
    return from_outcomes([(0, 0, 0), (0, 1, 0), (1, 1, 1)], [0.499, 0.001, 0.5], shape=(2, 2, 2))


def erase() -> np.ndarray:
    """ERASE (dit's ``erase``): RDN with each of x1, x2, y independently erased w.p. 1/2.

    Alphabets ``{0, 1, e}`` with the erasure ``e`` encoded as 2 (15 outcomes with positive mass).
    PID: R = 0.25, S = 0.125, U1 = U2 = 0.
    """
    P = np.zeros((3, 3, 3))
    base = rdn()
    for x1, x2, y in zip(*np.nonzero(base)):
        for m1 in (0, 1):
            for m2 in (0, 1):
                for my in (0, 1):
                    P[2 if m1 else x1, 2 if m2 else x2, 2 if my else y] += base[x1, x2, y] / 8.0
    return P


def _h2(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


_I_X2_Y_IMPERFECT = 1.0 - 0.501 * _h2(0.001 / 0.501)  # I(X2; Y) of imperfect_rdn()
_R_AND = 1.5 - 0.75 * math.log2(3.0)

#: Canonical pmfs by name.
CANONICAL: dict[str, Callable[[], np.ndarray]] = {
    "xor": xor,
    "and": and_,
    "or": or_,
    "rdn": rdn,
    "unq": unq,
    "copy": copy,
    "sum": sum_,
    "rdnxor": rdnxor,
    "rdnunqxor": rdnunqxor,
    "w": w,
    "imperfect_rdn": imperfect_rdn,
    "erase": erase,
}

#: Exact BROJA PID ``(R, U1, U2, S)`` in bits of each :data:`CANONICAL` pmf.
EXPECTED: dict[str, tuple[float, float, float, float]] = {
    "xor": (0.0, 0.0, 0.0, 1.0),
    "and": (_R_AND, 0.0, 0.0, 0.5),
    "or": (_R_AND, 0.0, 0.0, 0.5),
    "rdn": (1.0, 0.0, 0.0, 0.0),
    "unq": (0.0, 1.0, 0.0, 0.0),
    "copy": (0.0, 1.0, 1.0, 0.0),
    "sum": (0.5, 0.0, 0.0, 1.0),
    "rdnxor": (1.0, 0.0, 0.0, 1.0),
    "rdnunqxor": (1.0, 1.0, 1.0, 1.0),
    "w": (math.log2(3.0) - 4.0 / 3.0, 0.0, 0.0, 2.0 / 3.0),
    "imperfect_rdn": (_I_X2_Y_IMPERFECT, 1.0 - _I_X2_Y_IMPERFECT, 0.0, 0.0),
    "erase": (0.25, 0.0, 0.0, 0.125),
}


# ----------------------------------------------------------------------------------------------
# random and structured families
# ----------------------------------------------------------------------------------------------


def random_pmf(
    shape: tuple[int, int, int],
    rng: np.random.Generator | int | None = None,
    zero_fraction: float = 0.0,
    alpha: float = 1.0,
) -> np.ndarray:
    """Random pmf of the given shape: Dirichlet(``alpha``) over all cells (``alpha = 1``: uniform
    on the simplex), then each cell set to 0 with probability ``zero_fraction`` and renormalised.
    At least one cell keeps its mass.

    Args:
        shape: ``(|X1|, |X2|, |Y|)``.
        rng: a numpy Generator or a seed.
        zero_fraction: probability that a cell is forced to 0 (structural zeros), in ``[0, 1)``.
        alpha: Dirichlet concentration (small values give very uneven pmfs).
    """
    if not 0.0 <= zero_fraction < 1.0:
        raise ValueError(f"random_pmf: zero_fraction must be in [0, 1), got {zero_fraction}")
    rng = np.random.default_rng(rng)
    n = int(np.prod(shape))
    P = rng.dirichlet(np.full(n, float(alpha)))
    if zero_fraction > 0:
        keep = rng.random(n) >= zero_fraction
        if not keep.any():
            keep[rng.integers(n)] = True
        P = np.where(keep, P, 0.0)
        if P.sum() <= 0:
            P[np.flatnonzero(keep)[0]] = 1.0
    return (P / P.sum()).reshape(shape)


def noisy(P: np.ndarray, flip: float) -> np.ndarray:
    """Pass the target through a symmetric channel: ``y`` is kept w.p. ``1 - flip`` and replaced
    by each other label w.p. ``flip / (|Y| - 1)`` (binary: flipped w.p. ``flip``).

    ``P'[x1, x2, y'] = sum_y P[x1, x2, y] T[y, y']``; ``|Y| = 1`` is returned unchanged.
    """
    if not 0.0 <= flip <= 1.0:
        raise ValueError(f"noisy: flip must be in [0, 1], got {flip}")
    P = np.asarray(P, dtype=np.float64)
    k = P.shape[2]
    if k == 1:
        return P.copy()
    T = np.full((k, k), flip / (k - 1))
    np.fill_diagonal(T, 1.0 - flip)
    return np.einsum("aby,yz->abz", P, T)


def mixture(
    components: Sequence[np.ndarray],
    weights: Sequence[float] | None = None,
    disjoint: bool = False,
) -> np.ndarray:
    """Mixture ``sum_i weights[i] P_i`` of pmfs ``P_i[x1, x2, y]`` (uniform weights by default).

    With ``disjoint=False`` the components share alphabets (each is zero-padded to the largest
    shape), so value ``v`` means the same in every component. With ``disjoint=True`` each
    component gets its own block of values on every axis (shape = sum of shapes): the mixture
    index is then known to x1, x2 and y alike (as in RDNXOR = mixture of two XORs).
    """
    comps = [np.asarray(c, dtype=np.float64) for c in components]
    if not comps:
        raise ValueError("mixture: need at least one component")
    wts = np.full(len(comps), 1.0 / len(comps)) if weights is None else np.asarray(weights, dtype=np.float64)
    if wts.shape != (len(comps),) or (wts < 0).any() or wts.sum() <= 0:
        raise ValueError(f"mixture: need {len(comps)} non-negative weights with a positive sum")
    wts = wts / wts.sum()
    if disjoint:
        shape = tuple(int(sum(c.shape[i] for c in comps)) for i in range(3))
        out = np.zeros(shape)
        o = [0, 0, 0]
        for c, wt in zip(comps, wts):
            out[o[0] : o[0] + c.shape[0], o[1] : o[1] + c.shape[1], o[2] : o[2] + c.shape[2]] += wt * c
            o = [o[i] + c.shape[i] for i in range(3)]
    else:
        shape = tuple(int(max(c.shape[i] for c in comps)) for i in range(3))
        out = np.zeros(shape)
        for c, wt in zip(comps, wts):
            out[: c.shape[0], : c.shape[1], : c.shape[2]] += wt * c
    return out / out.sum()
