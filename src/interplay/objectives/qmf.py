"""QMF: quality-aware multimodal fusion (Zhang, Wu, Zhang, Hu, Fu, Zhou, Peng, "Provable dynamic fusion for
low-quality multimodal data", ICML 2023)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data import Batch, DataSplits
from ..errors import ConfigError
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, Prediction, TrainState


def energy_confidence(logits: Tensor, temperature: float = 10.0) -> Tensor:
    """``(B,)`` confidence of a classifier from its logits ``(B, C)``: the negative free energy
    ``-E(x) = logsumexp_c f_c(x)`` divided by ``temperature`` (the authors' ``-0.1 * energy``: ``temperature=10``).
    Larger for confident, in-distribution inputs; it falls when the logits shrink (a noisy modality)."""
    return torch.logsumexp(logits, -1) / temperature


def qmf_fusion(unimodal: Mapping[str, Tensor], temperature: float = 10.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Dynamic late fusion ``sum_m w_m(x) f_m(x)`` with ``w_m = energy_confidence(f_m)``: ``(B, C)`` fused logits and
    the weights ``{m: (B,)}``."""
    weights = {m: energy_confidence(v, temperature) for m, v in unimodal.items()}
    fused = torch.stack([weights[m][:, None] * v for m, v in unimodal.items()]).sum(0)
    return fused, weights


def ranking_loss(confidence: Tensor, history_loss: Tensor) -> Tensor:
    """The confidence-ranking regulariser of QMF (after Moon et al.'s correctness ranking loss): pair every sample
    ``i`` with the next one in the batch (``j = i + 1``, cyclic); with ``l`` the samples' historical losses
    normalised to ``[0, 1]``, ``s_ij = sign(l_i - l_j)`` and ``d_ij = |l_i - l_j|``::

        L_rank = mean_i max(0, s_ij (c_i - c_j) - d_ij)

    so a sample with the larger historical loss is penalised when its confidence exceeds the other's by more than
    the loss gap (the authors' implementation; pairs with equal history contribute 0). ``confidence``: ``(B,)``;
    ``history_loss``: ``(B,)`` normalised historical losses of the same samples."""
    c_j = torch.roll(confidence, -1)
    l_j = torch.roll(history_loss, -1)
    sign = torch.sign(history_loss - l_j)
    gap = (history_loss - l_j).abs()
    return F.relu(sign * (confidence - c_j) - gap).mean()


@METHODS.register("qmf")
class QMF(Objective):
    """Uncertainty-weighted late fusion of the unimodal classifiers (the model's unimodal heads ``f_m``)::

        w_m(x) = logsumexp_c f_m(x)_c / T                     # negative energy, scaled (T = 10: the authors' 0.1)
        f(x)   = sum_m w_m(x) f_m(x)                          # fused logits; the prediction
        L      = CE(f(x), y) + sum_m CE(f_m(x_m), y) + w_rank * sum_m L_rank(w_m, history_m)

    ``history_m`` holds every training sample's cumulative cross-entropy of ``f_m`` (updated with the batch's losses
    before the ranking term is computed, as in the authors' code) and is normalised by its min and max over the
    training set; :func:`ranking_loss` asks samples with a larger historical loss for a lower confidence. The fusion
    weights are not detached (the authors' RGB-D code), so the fused loss also trains the confidences. The model's
    fusion head is unused. Classification only (the energy needs class logits).

    Args:
        temperature: ``T`` in the confidence ``logsumexp / T``.
        w_rank: weight of the ranking regulariser (0: off).
        w_uni: weight of the unimodal cross-entropies.
    """

    description = "QMF: energy-confidence-weighted late fusion + confidence ranking regulariser (Zhang et al. 2023)"
    tasks = ("classification",)
    trains_unimodal_heads = True
    history: Tensor  # (M, N_train) cumulative per-sample unimodal losses, modality order of `order`

    def __init__(self, temperature: float = 10.0, w_rank: float = 1.0, w_uni: float = 1.0) -> None:
        super().__init__()
        for name, value, ok in (("temperature", temperature, temperature > 0), ("w_rank", w_rank, w_rank >= 0),
                                ("w_uni", w_uni, w_uni >= 0)):
            if not ok:
                raise ConfigError(f"method.{name}: expected a {'positive' if name == 'temperature' else 'non-negative'}"
                                  f" number, got {value!r}")
        self.temperature = temperature
        self.w_rank = w_rank
        self.w_uni = w_uni
        self.order: list[str] = []

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        self.order = list(model.modalities)
        self.register_buffer("history", torch.zeros(len(self.order), len(data.train)))

    def normalised_history(self, k: int, index: Tensor) -> Tensor:
        """``(B,)`` the samples' historical losses for modality ``order[k]``, min-max normalised over the training
        set (zeros while every sample has the same history)."""
        h = self.history[k]
        lo, hi = h.min(), h.max()
        return torch.where(hi > lo, (h[index] - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(h[index]))

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        feats = model.encode(batch.inputs)
        uni = model.unimodal_logits(feats)
        fused, weights = qmf_fusion(uni, self.temperature)
        y = batch.target
        parts: dict[str, Tensor] = {"fused": F.cross_entropy(fused, y)}
        loss = parts["fused"]
        for m, v in uni.items():
            parts[f"uni_{m}"] = F.cross_entropy(v, y)
            loss = loss + self.w_uni * parts[f"uni_{m}"]
        if self.training and self.w_rank > 0:
            index = batch.index.to(self.history.device).long()
            rank = fused.new_zeros(())
            for k, m in enumerate(self.order):
                with torch.no_grad():
                    self.history[k].index_add_(0, index, F.cross_entropy(uni[m], y, reduction="none").detach()
                                               .to(self.history.dtype))
                rank = rank + ranking_loss(weights[m], self.normalised_history(k, index).to(weights[m].dtype))
            parts["rank"] = rank
            loss = loss + self.w_rank * rank
        for m, w in weights.items():
            self.log_epoch(f"weight_{m}", w.detach().mean(), len(y))
        return ObjectiveOutput(loss, fused.detach(), {k: v.detach() for k, v in parts.items()})

    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        uni = model.unimodal_logits(model.encode(batch.inputs))
        fused, weights = qmf_fusion(uni, self.temperature)
        return Prediction(fused, uni, {f"weight_{m}": w for m, w in weights.items()})
