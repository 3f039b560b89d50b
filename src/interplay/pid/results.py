"""What the BROJA solver returns and what it accepts: the result types and the input validation.

* :class:`PIDResult` (one pmf) and :class:`PIDBatchResult` (a batch, indexable into :class:`PIDResult`);
* :func:`validate_pmf`, the checks every solver entry point runs first, raising :class:`PIDInputError`
  with a one-line message; :data:`SUM_TOLERANCE` is its tolerance on a pmf's total.

The interior-point machinery that produces the results lives in :mod:`interplay.pid.solver`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "SUM_TOLERANCE",
    "UNITS",
    "PIDBatchResult",
    "PIDInputError",
    "PIDResult",
    "unit_scale",
    "validate_pmf",
]

#: Absolute tolerance on ``|sum(P) - 1|`` accepted without ``normalize=True``.
SUM_TOLERANCE = 1e-6


class PIDInputError(ValueError):
    """A pmf handed to the PID solver is malformed (shape, sign, NaN/inf, normalisation)."""


#: information units accepted by every PID entry point: ``bits`` (log base 2, the default) or ``nats`` (natural
#: log, the unit of the PID repository of Liang et al. and of most papers' tables); 1 bit = ln 2 nats.
UNITS: tuple[str, ...] = ("bits", "nats")


def unit_scale(units: str, name: str = "units") -> float:
    """The factor converting bits to ``units``: ``1`` for ``bits``, ``ln 2 = 0.693147...`` for ``nats``.

    Raises:
        ValueError: ``units`` is not ``bits`` or ``nats`` (the message names ``name``).
    """
    if units == "bits":
        return 1.0
    if units == "nats":
        return math.log(2.0)
    raise ValueError(f"{name}: expected 'bits' or 'nats', got {units!r}")


_SCALED = ("redundancy", "unique1", "unique2", "synergy", "i_x1_y", "i_x2_y", "i_x1x2_y", "gap")


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PIDResult:
    """BROJA PID of one pmf ``P[x1, x2, y]``; all information values in :attr:`units` (bits unless converted).

    Attributes:
        redundancy, unique1, unique2, synergy: the four atoms ``R, U1, U2, S``.
        i_x1_y, i_x2_y, i_x1x2_y: ``I(X1;Y)``, ``I(X2;Y)``, ``I(X1,X2;Y)`` of ``P``.
        q: the optimiser ``Q`` (numpy float64, same shape as ``P``), in ``Delta_P`` up to
            ``residual``.
        gap: duality gap in bits, ``I_q(X1,X2;Y) - dual bound`` (>= 0); each atom is within
            ``gap`` (plus float rounding) of its exact value.
        residual: max absolute violation of the marginal constraints by ``q``.
        iterations: interior-point iterations (0 when the answer needed no solve).
        converged: whether the requested tolerance was reached.
        lam, mu: dual variables, shapes ``(|X1|, |Y|)`` and ``(|X2|, |Y|)`` in nats, ``nan``
            where ``P(x1, y) = 0`` (resp. ``P(x2, y) = 0``); ``None`` when no solve was needed.
        units: ``"bits"`` or ``"nats"``: the unit of the atoms, the mutual informations and ``gap``
            (:meth:`to_units` converts; ``lam`` and ``mu`` stay in nats).
    """

    redundancy: float
    unique1: float
    unique2: float
    synergy: float
    i_x1_y: float
    i_x2_y: float
    i_x1x2_y: float
    q: np.ndarray
    gap: float
    residual: float
    iterations: int
    converged: bool
    lam: np.ndarray | None = None
    mu: np.ndarray | None = None
    units: str = "bits"

    @property
    def i_min(self) -> float:
        """``min_{Q in Delta_P} I_Q(X1, X2; Y)`` in :attr:`units` (``= R + U1 + U2``)."""
        return self.i_x1x2_y - self.synergy

    def to_units(self, units: str) -> PIDResult:
        """The same result with the atoms, mutual informations and ``gap`` in ``units`` (``bits`` / ``nats``)."""
        factor = unit_scale(units) / unit_scale(self.units)
        if factor == 1.0:
            return dataclasses.replace(self, units=units)
        return dataclasses.replace(self, units=units, **{k: getattr(self, k) * factor for k in _SCALED})

    def as_dict(self) -> dict[str, float]:
        """The scalar fields (atoms, mutual informations, certificate) as a plain dict."""
        return {
            "redundancy": self.redundancy,
            "unique1": self.unique1,
            "unique2": self.unique2,
            "synergy": self.synergy,
            "i_x1_y": self.i_x1_y,
            "i_x2_y": self.i_x2_y,
            "i_x1x2_y": self.i_x1x2_y,
            "gap": self.gap,
            "residual": self.residual,
            "iterations": float(self.iterations),
            "converged": float(self.converged),
        }

    def __str__(self) -> str:
        rows = [
            ("redundancy", self.redundancy),
            ("unique1", self.unique1),
            ("unique2", self.unique2),
            ("synergy", self.synergy),
            ("I(X1;Y)", self.i_x1_y),
            ("I(X2;Y)", self.i_x2_y),
            ("I(X1,X2;Y)", self.i_x1x2_y),
        ]
        shape = "x".join(str(s) for s in self.q.shape)
        lines = [f"BROJA PID of a {shape} pmf ({self.units})", "-" * 26]
        lines += [f"{name:<12}{value:>14.9f}" for name, value in rows]
        lines.append("-" * 26)
        status = "converged" if self.converged else "NOT converged"
        lines.append(f"gap {self.gap:.2e} {self.units}  residual {self.residual:.1e}  {self.iterations} it, {status}")
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class PIDBatchResult:
    """BROJA PID of a batch of pmfs ``P[b, x1, x2, y]`` (in :attr:`units`, bits unless converted).

    Every field holds one value per pmf: shape ``(B,)`` for scalars, ``(B, |X1|, |X2|, |Y|)`` for
    ``q``, ``(B, |X1|, |Y|)`` / ``(B, |X2|, |Y|)`` for the duals ``lam`` / ``mu`` (nats, ``nan``
    where undefined or not solved). Torch tensors on the input's device when the input was a
    tensor, numpy arrays otherwise. ``result[i]`` is the :class:`PIDResult` of pmf ``i``.
    """

    redundancy: Any
    unique1: Any
    unique2: Any
    synergy: Any
    i_x1_y: Any
    i_x2_y: Any
    i_x1x2_y: Any
    q: Any
    gap: Any
    residual: Any
    iterations: Any
    converged: Any
    lam: Any
    mu: Any
    units: str = "bits"

    def to_units(self, units: str) -> PIDBatchResult:
        """The same results with the atoms, mutual informations and ``gap`` in ``units`` (``bits`` / ``nats``)."""
        factor = unit_scale(units) / unit_scale(self.units)
        if factor == 1.0:
            return dataclasses.replace(self, units=units)
        return dataclasses.replace(self, units=units, **{k: getattr(self, k) * factor for k in _SCALED})

    def __len__(self) -> int:
        return int(self.redundancy.shape[0])

    def __getitem__(self, i: int) -> PIDResult:
        def np_(x: Any) -> np.ndarray:
            return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)

        lam, mu = np_(self.lam[i]), np_(self.mu[i])
        solved = not bool(np.isnan(lam).all())
        return PIDResult(
            redundancy=float(self.redundancy[i]),
            unique1=float(self.unique1[i]),
            unique2=float(self.unique2[i]),
            synergy=float(self.synergy[i]),
            i_x1_y=float(self.i_x1_y[i]),
            i_x2_y=float(self.i_x2_y[i]),
            i_x1x2_y=float(self.i_x1x2_y[i]),
            q=np_(self.q[i]).copy(),
            gap=float(self.gap[i]),
            residual=float(self.residual[i]),
            iterations=int(self.iterations[i]),
            converged=bool(self.converged[i]),
            lam=lam.copy() if solved else None,
            mu=mu.copy() if solved else None,
            units=self.units,
        )

    def __iter__(self) -> Iterator[PIDResult]:
        return (self[i] for i in range(len(self)))


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------


def validate_pmf(
    P: Any, *, batched: bool = False, normalize: bool = False, name: str = "P"
) -> torch.Tensor:
    """Check a pmf ``P[x1, x2, y]`` (or a batch ``P[b, x1, x2, y]``) and return it as float64.

    Rules (each violation raises :class:`PIDInputError` with a one-line message):

    * numeric (real) numpy array, torch tensor or nested sequence; 3 axes (4 when batched), none
      of length 0;
    * every entry finite (no NaN / inf) and ``>= 0``;
    * each pmf sums to 1 within :data:`SUM_TOLERANCE` (absolute); with ``normalize=True`` any
      positive total is accepted. In both cases the pmf is divided by its total.

    Returns:
        A float64 tensor (same device as a tensor input, CPU otherwise), normalised to sum 1.
    """
    if isinstance(P, torch.Tensor):
        if P.is_complex():
            raise PIDInputError(f"{name}: expected a real-valued pmf, got dtype {P.dtype}")
        t = P.detach().to(torch.float64)
    else:
        try:
            arr = np.asarray(P)
        except Exception as exc:  # ragged nested lists etc.
            raise PIDInputError(f"{name}: cannot be converted to an array ({exc})") from None
        if arr.dtype.kind not in "biuf":
            raise PIDInputError(f"{name}: expected a real numeric pmf, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))
    want = 4 if batched else 3
    what = "P[b, x1, x2, y]" if batched else "P[x1, x2, y]"
    if t.ndim != want:
        raise PIDInputError(f"{name}: expected {want} axes {what}, got shape {tuple(t.shape)}")
    if any(s == 0 for s in t.shape):
        raise PIDInputError(f"{name}: every axis needs length >= 1, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise PIDInputError(f"{name}: contains NaN or inf entries")
    if bool((t < 0).any()):
        raise PIDInputError(f"{name}: has negative entries (min {float(t.min()):.3g}); a pmf must be >= 0")
    event = (-3, -2, -1)
    total = t.sum(dim=event, keepdim=True)
    if normalize:
        if bool((total <= 0).any()):
            raise PIDInputError(f"{name}: cannot normalize a pmf whose entries are all zero")
    else:
        err = (total - 1.0).abs()
        if bool((err > SUM_TOLERANCE).any()):
            worst = float(total.flatten()[int(err.flatten().argmax())])
            raise PIDInputError(
                f"{name}: sums to {worst:.9g}, expected 1 within {SUM_TOLERANCE:g} "
                "(pass normalize=True to rescale)"
            )
    return t / total
