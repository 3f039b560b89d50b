"""ReconBoost: alternating boosting of modality learners (Hua et al., ICML 2024)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data import Batch, DataSplits
from ..errors import ConfigError
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, Prediction, TrainState


def boosting_loss(learner: Tensor, others: Tensor | None, target: Tensor, w1: float, w2: float) -> Tensor:
    """ReconBoost's loss of the learner being boosted, per sample ``(B,)``::

        l_i = -(1 / C) * (w1 - w2 * q_i) * log softmax(learner_i)[y_i]

    ``q_i = softmax(others_i)[y_i]``, the probability that the current ensemble of the *other* learners
    (``others``: the sum of their logits, treated as a constant) gives the true class; ``q_i = 1`` when there is
    no other learner yet (the authors' first stage). The ``w2`` term is the KL reconcilement regulariser: it
    lowers the weight of the samples the others already get right, so the new learner corrects their errors
    (gradient boosting). ``1 / C`` is the authors' mean over the one-hot classes."""
    logp = F.log_softmax(learner, -1).gather(1, target[:, None])[:, 0]
    if others is None:
        q = torch.ones_like(logp)
    else:
        q = F.softmax(others.detach().float(), -1).gather(1, target[:, None])[:, 0].to(logp.dtype)
    return -(w1 - w2 * q) * logp / learner.shape[-1]


@METHODS.register("reconboost")
class ReconBoost(Objective):
    """Modality learners (encoder ``m`` + unimodal head ``h_m``) trained one at a time, boosting-style, the
    ensemble ``F = sum_m h_m(z_m)`` (sum of logits) rectified jointly after each.

    Epoch schedule, in cycles of ``boost_epochs + rectify_epochs``: cycle ``s`` picks modality
    ``modalities[s % M]``; during its first ``boost_epochs`` epochs only that learner is trained, on
    :func:`boosting_loss` against the ensemble of the other learners trained so far; during the next
    ``rectify_epochs`` (global rectification) every learner trained so far is trained on ``CE(F, y)``. Learners
    join the ensemble when first boosted; prediction is the ensemble of the learners that have joined.

    Args:
        w1: weight of the learner's own cross-entropy (authors' default 5.0).
        w2: weight of the reconcilement regulariser (authors' default 1.0).
        boost_epochs: epochs per learner per cycle (authors' ``epochs_per_stage``, 4).
        rectify_epochs: epochs of global rectification per cycle (authors' ``correct_epoch``, 4).
    """

    description = "alternating boosting of modality learners + KL reconcilement, global rectification (Hua et al. 2024)"
    tasks = ("classification",)
    trains_unimodal_heads = True

    def __init__(self, w1: float = 5.0, w2: float = 1.0, boost_epochs: int = 4, rectify_epochs: int = 4) -> None:
        super().__init__()
        if boost_epochs < 1 or rectify_epochs < 0:
            raise ConfigError(f"method.boost_epochs / method.rectify_epochs: expected >= 1 / >= 0, got "
                              f"{boost_epochs} / {rectify_epochs}")
        self.w1 = w1
        self.w2 = w2
        self.boost_epochs = boost_epochs
        self.rectify_epochs = rectify_epochs
        self.joined: Tensor

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        self.register_buffer("joined", torch.zeros(len(model.modalities), dtype=torch.bool))

    def schedule(self, epoch: int, modalities: list[str]) -> tuple[str, str]:
        """``(modality, phase)`` of a 0-based epoch: phase ``"boost"`` or ``"rectify"``."""
        cycle = self.boost_epochs + self.rectify_epochs
        stage, within = divmod(epoch, cycle)
        return modalities[stage % len(modalities)], "boost" if within < self.boost_epochs else "rectify"

    def _members(self, model: MultimodalModel) -> list[str]:
        joined = [m for m, j in zip(model.modalities, self.joined.tolist()) if j] if hasattr(self, "joined") else []
        return joined or list(model.modalities)

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        mods = model.modalities
        current, phase = self.schedule(state.epoch, mods)
        if self.training and hasattr(self, "joined"):
            self.joined[mods.index(current)] = True
        members = self._members(model)
        train = [current] if phase == "boost" else members
        logits: dict[str, Tensor] = {}
        for m in members if current in members else [*members, current]:
            with torch.set_grad_enabled(m in train and torch.is_grad_enabled()):
                logits[m] = model.unimodal_heads[m](model.encoders[m](batch.inputs[m]))  # type: ignore[index]
        ensemble = torch.stack([logits[m] for m in members]).sum(0)
        if phase == "boost":
            others = [logits[m] for m in members if m != current]
            per_sample = boosting_loss(logits[current], torch.stack(others).sum(0) if others else None,
                                       batch.target, self.w1, self.w2)
            loss = per_sample.mean()
            parts = {f"boost_{current}": loss.detach()}
        else:
            loss = F.cross_entropy(ensemble, batch.target)
            parts = {"rectify": loss.detach()}
        return ObjectiveOutput(loss, ensemble.detach(), parts)

    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        feats = model.encode(batch.inputs)
        uni = model.unimodal_logits(feats)
        return Prediction(torch.stack([uni[m] for m in self._members(model)]).sum(0), uni)
