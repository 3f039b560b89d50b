"""Unimodal ensemble: independently trained unimodal models, predictions averaged."""

from __future__ import annotations

from typing import Literal

import torch

from ..data import Batch
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, Prediction, TrainState, ensemble_prediction


@METHODS.register("ensemble")
class Ensemble(Objective):
    """``L = sum_m CE(h_m(z_m), y)``: no shared parameters, so each unimodal model trains independently.

    Prediction: ``log mean_m softmax(h_m(z_m))`` (``combine="prob"``) or ``mean_m h_m(z_m)``
    (``combine="logit"``). The fusion head is unused. Cannot represent synergy by construction.
    """

    description = "unimodal ensemble: independent unimodal models, mean of their probabilities"
    trains_unimodal_heads = True

    def __init__(self, combine: Literal["prob", "logit"] = "prob") -> None:
        super().__init__()
        self.combine = combine

    def _combine(self, uni: dict[str, torch.Tensor]) -> torch.Tensor:
        return ensemble_prediction(uni, self.regression, self.combine)

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        uni = model.unimodal_logits(model.encode(batch.inputs))
        parts = {f"uni_{m}": self.task_loss(v, batch.target) for m, v in uni.items()}
        loss = torch.stack(list(parts.values())).sum()
        return ObjectiveOutput(loss, self._combine(uni).detach(), {k: v.detach() for k, v in parts.items()})

    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        uni = model.unimodal_logits(model.encode(batch.inputs))
        return Prediction(self._combine(uni), uni)
