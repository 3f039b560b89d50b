"""Training objectives. One module per method; the module name is the registry key.

Every module in this package is imported on first use, so adding ``objectives/NAME.py`` with
``@METHODS.register("NAME")`` is all it takes to add a method.
"""

from __future__ import annotations

from ..config import MethodConfig, resolve_params, signature_schema
from .base import (
    METHODS,
    EvalOutput,
    Objective,
    ObjectiveOutput,
    Prediction,
    Stage,
    TrainState,
    is_correct,
    mean_of_probabilities,
    pred_correct,
    to_prediction,
)


def method_params(name: str, params: dict | None = None) -> dict:
    """Every hyperparameter of method ``name``: ``params`` validated and completed with defaults."""
    return resolve_params(params or {}, signature_schema(METHODS.get(name)), "method", f"method {name!r}")


def build_objective(cfg: MethodConfig) -> Objective:
    """Instantiate the objective named ``cfg.name`` with ``cfg.params`` (validated)."""
    return METHODS.get(cfg.name)(**method_params(cfg.name, cfg.params))


__all__ = ["METHODS", "EvalOutput", "Objective", "ObjectiveOutput", "Prediction", "Stage", "TrainState",
           "build_objective", "is_correct", "mean_of_probabilities", "method_params", "pred_correct", "to_prediction"]
