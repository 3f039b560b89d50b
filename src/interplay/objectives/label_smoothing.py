"""Label smoothing on the fused prediction."""

from __future__ import annotations

import torch.nn.functional as F

from ..data import Batch
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, TrainState


@METHODS.register("label_smoothing")
class LabelSmoothing(Objective):
    """``L = CE(f(z), (1 - eps) * onehot(y) + eps / C)``: calibration baseline for SynIB."""

    description = "joint fusion with label-smoothed cross-entropy (method.epsilon)"
    tasks = ("classification",)

    def __init__(self, epsilon: float = 0.1) -> None:
        super().__init__()
        self.epsilon = epsilon

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        logits = model.logits(model.encode(batch.inputs))
        loss = F.cross_entropy(logits, batch.target, label_smoothing=self.epsilon)
        return ObjectiveOutput(loss, logits, {"task": loss.detach()})
