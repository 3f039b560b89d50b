"""MLA: multimodal learning with alternating unimodal adaptation (Zhang et al., CVPR 2024)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch, DataSplits
from ..errors import ConfigError
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, Prediction, TrainState


def projector_update(p: Tensor, r: Tensor, alpha: float) -> Tensor:
    """One step of MLA's head-gradient projector (recursive least squares, as in orthogonal weight
    modification): with the mean feature ``r`` ``(d,)`` of the step's modality, ``k = P r``,
    ``P <- P - k k^T / (alpha + r . k)``, then ``P <- P / ||P||_F``. Returns the new ``(d, d)`` matrix."""
    k = p @ r
    new = p - torch.outer(k, k) / (alpha + r.dot(k))
    return new / torch.linalg.matrix_norm(new)


def entropy_weights(logits: Mapping[str, Tensor]) -> Tensor:
    """``(M, B)`` test-time fusion weights: per sample, ``softmax_m(-H(softmax(logits_m)))``, so the more certain
    modality counts more (MLA's uncertainty-based dynamic fusion)."""
    ent = torch.stack([-(F.softmax(v, -1) * F.log_softmax(v, -1)).sum(-1) for v in logits.values()])
    return F.softmax(-ent, 0)


@METHODS.register("mla")
class MLA(Objective):
    """Alternating unimodal training through one shared head, with head-gradient modification and
    test-time entropy-weighted fusion.

    Per batch, one optimiser step per modality in turn (the extended protocol's :meth:`phases`): modality ``m``'s
    encoder and the shared linear head ``W`` (owned by this objective, ``d -> C``) minimise ``CE(W z_m, y)``.
    Before each step except the very first, the head's weight gradient is projected, ``grad_W <- grad_W P^T``,
    with ``P`` (``d x d``, starting at the identity) updated from the step's mean feature ``r = mean_batch z_m`` by
    :func:`projector_update` with ``alpha = 0.1 ** (batch_index / num_batches + 1)``, so the head keeps what the
    other modalities taught it. Prediction: ``sum_m w_m(x) W z_m`` with ``w = softmax_m(-H_m)`` the per-sample
    entropy weights (:func:`entropy_weights`). The model's fusion module and heads are not used. A loop without
    phases gets one step on the sum of the unimodal losses, without the projection.

    Needs every modality's features to have the same width (one shared head).

    Args:
        modify_gradient: apply the head-gradient projection (the paper's ablation switches it off).
    """

    description = "alternating unimodal steps via one shared head, projected head gradients (Zhang et al. 2024)"
    needs_feature_vectors = True
    tasks = ("classification",)

    def __init__(self, modify_gradient: bool = True) -> None:
        super().__init__()
        self.modify_gradient = modify_gradient
        self.shared_head: nn.Linear | None = None
        self.projector: Tensor
        self.updates: Tensor
        self._mean_feature: Tensor | None = None

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        dims = model.feature_dims()
        if len(set(dims.values())) != 1:
            raise ConfigError(f"method 'mla' shares one head between modalities, so their features need one width; "
                              f"got {dims}")
        d = next(iter(dims.values()))
        self.shared_head = nn.Linear(d, data.info.num_classes)
        self.register_buffer("projector", torch.eye(d))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def phases(self, state: TrainState) -> tuple[str, ...]:
        return tuple(self.info.modalities) if self.info is not None else ("",)

    def _head(self) -> nn.Linear:
        if self.shared_head is None:
            raise RuntimeError("method 'mla': call setup(model, data) first")
        return self.shared_head

    def fused(self, unimodal: Mapping[str, Tensor]) -> Tensor:
        """``(B, C)``: ``sum_m w_m * logits_m`` with the entropy weights."""
        w = entropy_weights(unimodal)
        return (w[..., None] * torch.stack(list(unimodal.values()))).sum(0)

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        head = self._head()
        mods = model.modalities if state.phase == "" else [state.phase]
        parts: dict[str, Tensor] = {}
        loss = torch.zeros((), device=batch.target.device)
        uni: dict[str, Tensor] = {}
        for m in model.modalities:
            if m in mods:
                z = model.encoders[m](batch.inputs[m])
                uni[m] = head(z)
                parts[f"uni_{m}"] = self.task_loss(uni[m], batch.target)
                loss = loss + parts[f"uni_{m}"]
                self._mean_feature = z.detach().float().mean(0) if state.phase else None
            else:
                with torch.no_grad():
                    uni[m] = head(model.encoders[m](batch.inputs[m]))
        with torch.no_grad():
            logits = self.fused({m: v.detach() for m, v in uni.items()})
        return ObjectiveOutput(loss, logits, {k: v.detach() for k, v in parts.items()})

    @torch.no_grad()
    def on_after_backward(self, model: MultimodalModel, state: TrainState) -> None:
        r, self._mean_feature = self._mean_feature, None
        if r is None or not self.modify_gradient:
            return
        weight = self._head().weight
        if self.updates > 0 and weight.grad is not None:
            alpha = 0.1 ** (state.batch_index / max(state.num_batches, 1) + 1)
            self.projector.copy_(projector_update(self.projector, r.to(self.projector.dtype), alpha))
            weight.grad.copy_(weight.grad @ self.projector.T.to(weight.grad.dtype))
        self.updates += 1

    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        feats = model.encode(batch.inputs)
        uni = {m: self._head()(z) for m, z in feats.items()}
        return Prediction(self.fused(uni), uni)
