"""Multi-loss: joint fusion loss plus unimodal-head losses on the shared encoders."""

from __future__ import annotations

from ..data import Batch
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, TrainState


@METHODS.register("multi_loss")
class MultiLoss(Objective):
    """``L = CE(f(z_1..z_M), y) + w * sum_m CE(h_m(z_m), y)`` (Kontras et al.)."""

    description = "joint fusion loss + w * unimodal-head losses on the shared encoders"
    trains_unimodal_heads = True

    def __init__(self, w: float = 1.0) -> None:
        super().__init__()
        self.w = w

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        feats = model.encode(batch.inputs)
        logits = model.logits(feats)
        task = self.task_loss(logits, batch.target)
        parts = {"task": task}
        loss = task
        for m, v in model.unimodal_logits(feats).items():
            parts[f"uni_{m}"] = self.task_loss(v, batch.target)
            loss = loss + self.w * parts[f"uni_{m}"]
        return ObjectiveOutput(loss, logits, {k: v.detach() for k, v in parts.items()})
