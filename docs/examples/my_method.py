"""An Interplay method defined outside the package: joint late fusion plus a penalty on large logits.

Use it with ``interplay --plugin docs/examples/my_method.py train --method my_joint ...`` (or
``INTERPLAY_PLUGINS=docs/examples/my_method.py``, or an entry point in the group ``interplay.methods``).
Its constructor's typed keyword arguments are its hyperparameters: ``--set method.penalty=0.1``.
"""

from __future__ import annotations

from interplay.data import Batch
from interplay.models import MultimodalModel
from interplay.objectives import METHODS, Objective, ObjectiveOutput, TrainState


@METHODS.register("my_joint")
class MyJoint(Objective):
    """``L = CE(head(fuse(z_1..z_M)), y) + penalty * mean(logits^2)``."""

    description = "joint late fusion with a penalty on large logits (example plugin)"

    def __init__(self, penalty: float = 0.01) -> None:
        super().__init__()
        self.penalty = penalty

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        logits = model.logits(model.encode(batch.inputs))
        task = self.task_loss(logits, batch.target)
        size = logits.pow(2).mean()
        loss = task + self.penalty * size
        # every entry of ``parts`` is logged per epoch in log.jsonl
        return ObjectiveOutput(loss, logits, {"task": task.detach(), "logit_size": size.detach()})
