"""Joint late fusion: cross-entropy on the fused prediction."""

from __future__ import annotations

from ..data import Batch
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, TrainState


@METHODS.register("joint")
class Joint(Objective):
    """``L = CE(head(fuse(z_1..z_M)), y)`` with ``z_m = enc_m(x_m)``."""

    description = "joint late fusion: cross-entropy on the fused prediction"

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        logits = model.logits(model.encode(batch.inputs))
        loss = self.task_loss(logits, batch.target)
        return ObjectiveOutput(loss, logits, {"task": loss.detach()})
