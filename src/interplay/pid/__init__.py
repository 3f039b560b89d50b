"""Partial information decomposition (PID): exact BROJA PID of discrete pmfs and helpers.

Main entry points: :func:`broja` (one pmf ``P[x1, x2, y]``) and :func:`broja_batch` (a batch
``P[b, x1, x2, y]``, CPU or GPU), both returning the four atoms in bits with a duality-gap
certificate. See ``docs/pid.md``.
"""

from .information import (
    conditional_mutual_information,
    entropy,
    marginal,
    mutual_information,
)
from .pointwise import PointwisePID, broja_torch, per_sample_pid, pointwise_pid
from .solver import (
    SUM_TOLERANCE,
    PIDBatchResult,
    PIDInputError,
    PIDResult,
    broja,
    broja_batch,
    validate_pmf,
)

__all__ = [
    "SUM_TOLERANCE",
    "PIDBatchResult",
    "PIDInputError",
    "PIDResult",
    "PointwisePID",
    "broja",
    "broja_batch",
    "broja_torch",
    "conditional_mutual_information",
    "entropy",
    "marginal",
    "mutual_information",
    "per_sample_pid",
    "pointwise_pid",
    "validate_pmf",
]
