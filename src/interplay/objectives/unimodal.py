"""A unimodal model: one named modality through its encoder and unimodal head."""

from __future__ import annotations

import torch

from ..data import Batch, DataSplits
from ..errors import ConfigError
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, Prediction, TrainState


@METHODS.register("unimodal")
class Unimodal(Objective):
    """``L = CE(h_m(enc_m(x_m)), y)`` for the modality ``modality`` (default: the first by name).

    Args:
        modality: the modality to use; ``None`` picks the first modality in sorted order.
    """

    description = "unimodal model: one named modality (method.modality) through its encoder and head"
    trains_unimodal_heads = True

    def __init__(self, modality: str | None = None) -> None:
        super().__init__()
        self.modality = modality

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        if self.modality is None:
            self.modality = model.modalities[0]
        if self.modality not in model.modalities:
            raise ConfigError(f"method.modality: unknown modality {self.modality!r}; expected one of "
                              f"{', '.join(model.modalities)}")

    @property
    def chosen(self) -> str:
        """The modality this model uses (known once :meth:`setup` has run)."""
        if self.modality is None:
            raise ConfigError("method unimodal: no modality chosen yet; call setup(model, data) first")
        return self.modality

    def _logits(self, model: MultimodalModel, batch: Batch) -> torch.Tensor:
        m = self.chosen
        if m not in batch.inputs:
            model.encode(batch.inputs)  # raises the standard missing-modality error
        if model.unimodal_heads is None:
            raise ConfigError("method unimodal: needs the model's unimodal heads (model.unimodal_heads=true)")
        return model.unimodal_heads[m](model.encoders[m](batch.inputs[m]))

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        logits = self._logits(model, batch)
        loss = self.task_loss(logits, batch.target)
        return ObjectiveOutput(loss, logits, {"task": loss.detach()})

    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        logits = self._logits(model, batch)
        return Prediction(logits, {self.chosen: logits})
