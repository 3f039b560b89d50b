"""Confidence penalty on clean inputs (Pereyra et al., 2017)."""

from __future__ import annotations

import torch.nn.functional as F

from ..data import Batch
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, TrainState, entropy


@METHODS.register("conf_penalty")
class ConfPenalty(Objective):
    """``L = CE(f(z), y) - beta * H(softmax(f(z)))``, entropy in nats, on clean inputs only.

    SynIB's calibration confound: it separates the effect of masking from plain under-confidence.
    """

    description = "joint fusion with a confidence (entropy) penalty on clean inputs (Pereyra et al. 2017)"
    tasks = ("classification",)

    def __init__(self, beta: float = 0.5) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        logits = model.logits(model.encode(batch.inputs))
        task = self.task_loss(logits, batch.target)
        h = entropy(F.log_softmax(logits, dim=-1)).mean()
        loss = task - self.beta * h
        return ObjectiveOutput(loss, logits, {"task": task.detach(), "entropy": h.detach()})
