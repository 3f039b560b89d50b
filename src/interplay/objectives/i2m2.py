"""I2M2: inter- and intra-modality modelling (Madaan, Makino, Chopra, Cho, "Jointly modeling inter- & intra-modality
dependencies for multi-modal learning", NeurIPS 2024)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data import Batch
from ..errors import ConfigError
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, Prediction, Stage, TrainState


def product_of_experts(joint: Tensor, unimodal: Mapping[str, Tensor]) -> Tensor:
    """``(B, C)`` normalised log-probabilities of the product of the joint (inter-modality) classifier and the
    unimodal (intra-modality) classifiers: ``log_softmax(log p_joint + sum_m log p_m)``, i.e.
    ``p(y | x_1..x_M) = p_joint(y | x) prod_m p_m(y | x_m) / Z(x)`` with ``Z`` the sum over the classes."""
    total = F.log_softmax(joint, -1)
    for v in unimodal.values():
        total = total + F.log_softmax(v, -1)
    return F.log_softmax(total, -1)


@METHODS.register("i2m2")
class I2M2(Objective):
    """Product of the inter-modality classifier ``f(z_1..z_M)`` (the model's fusion head) and one intra-modality
    classifier ``h_m(z_m)`` per modality (the model's unimodal heads), trained end to end on the product::

        log p(y | x) = log_softmax( log_softmax(f(z)) + sum_m log_softmax(h_m(z_m)) )
        L = CE(log p(y | x), y)

    The prediction is that normalised product. The paper reports that initialising the classifiers from separately
    trained inter- and intra-modality models helps: ``pretrain_epochs > 0`` adds a first stage (``pretrain``) in which
    every classifier is trained on its own cross-entropy, ``CE(f(z)) + sum_m CE(h_m(z_m))`` (each classifier's loss
    reaches only its own head; the encoders are shared), before the product is trained (stage ``main``).

    Args:
        pretrain_epochs: epochs of the per-classifier warm-up stage (0: train the product from the start).
        pretrain_reload_best: start the main stage from the warm-up's best-validation checkpoint.
    """

    description = "I2M2: product of the joint (inter) and unimodal (intra-modality) classifiers (Madaan et al. 2024)"
    tasks = ("classification",)
    trains_unimodal_heads = True

    def __init__(self, pretrain_epochs: int = 0, pretrain_reload_best: bool = False) -> None:
        super().__init__()
        if pretrain_epochs < 0:
            raise ConfigError(f"method.pretrain_epochs: expected a non-negative integer, got {pretrain_epochs!r}")
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_reload_best = pretrain_reload_best

    def stages(self, epochs: int) -> list[Stage]:
        w = min(self.pretrain_epochs, max(epochs - 1, 0))
        main = Stage("main", epochs - w, reload_best=self.pretrain_reload_best)
        return [Stage("pretrain", w), main] if w else [main]

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        feats = model.encode(batch.inputs)
        joint = model.logits(feats)
        uni = model.unimodal_logits(feats)
        logp = product_of_experts(joint, uni)
        parts: dict[str, Tensor] = {}
        if state.stage == "pretrain":
            parts["joint"] = F.cross_entropy(joint, batch.target)
            for m, v in uni.items():
                parts[f"uni_{m}"] = F.cross_entropy(v, batch.target)
            loss = torch.stack(list(parts.values())).sum()
        else:
            loss = F.nll_loss(logp, batch.target)
            parts["product"] = loss
            with torch.no_grad():  # the components' own losses, for the log only
                parts["joint"] = F.cross_entropy(joint, batch.target)
                for m, v in uni.items():
                    parts[f"uni_{m}"] = F.cross_entropy(v, batch.target)
        return ObjectiveOutput(loss, logp.detach(), {k: v.detach() for k, v in parts.items()})

    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        feats = model.encode(batch.inputs)
        uni = model.unimodal_logits(feats)
        return Prediction(product_of_experts(model.logits(feats), uni), uni)
