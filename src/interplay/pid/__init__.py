"""Partial information decomposition (PID): exact BROJA PID of discrete pmfs and helpers.

Main entry points: :func:`broja` (one pmf ``P[x1, x2, y]``) and :func:`broja_batch` (a batch
``P[b, x1, x2, y]``, CPU or GPU), both returning the four atoms in bits with a duality-gap
certificate. See ``docs/pid.md``. Estimators for continuous data (``cluster``, ``lsmi`` and plugins')
are registered in :data:`ESTIMATORS` (:mod:`interplay.pid.estimator`; see ``docs/pid-estimators.md``).

A leaf library: nothing here imports the data, model, objective, engine, bench or command-line layers.
Modules: ``results`` (result types, input checks), ``solver`` (the interior-point method), ``information``,
``pointwise``, ``estimator`` (registry, settings), ``cluster``, ``lsmi``, ``reference`` (CVXPY check).
Units: bits by default everywhere; ``units="nats"`` on :func:`broja`, :func:`broja_batch`, the ``cluster`` and ``lsmi``
settings (and ``PIDResult.to_units``) reports nats, the PID repository's unit.
"""

from .estimator import ESTIMATORS, Estimator, LabelledData, LabelledSplits, make_settings, register_estimator
from .information import (
    conditional_mutual_information,
    entropy,
    marginal,
    mutual_information,
)
from .pointwise import PointwisePID, broja_torch, per_sample_pid, pointwise_pid
from .results import SUM_TOLERANCE, UNITS, PIDBatchResult, PIDInputError, PIDResult, unit_scale, validate_pmf
from .solver import broja, broja_batch

__all__ = [
    "ESTIMATORS",
    "SUM_TOLERANCE",
    "UNITS",
    "Estimator",
    "LabelledData",
    "LabelledSplits",
    "PIDBatchResult",
    "PIDInputError",
    "PIDResult",
    "PointwisePID",
    "broja",
    "broja_batch",
    "broja_torch",
    "conditional_mutual_information",
    "entropy",
    "make_settings",
    "marginal",
    "mutual_information",
    "per_sample_pid",
    "pointwise_pid",
    "register_estimator",
    "unit_scale",
    "validate_pmf",
]
