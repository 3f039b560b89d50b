"""OGM-GE: on-the-fly gradient modulation with generalisation enhancement (Peng et al., CVPR 2022)."""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..data import Batch
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, TrainState


@METHODS.register("ogm_ge")
class OGMGE(Objective):
    """Joint training whose dominant modality's encoder gradients are damped each step.

    Per batch, modality m's share of the fused prediction is ``o_m = head(fuse(z with only m present))``
    (the other modalities' features zeroed: for a linear fusion head, ``model.fusion_hidden=[]``, this
    is ``W_m z_m + b``, the paper's split up to the bias share), and its score
    ``s_m = sum_batch softmax(o_m)[y]``. The ratio ``rho_m = s_m / mean_{k != m} s_k`` (for two
    modalities the paper's ``s_1 / s_2``) marks the dominant modality (``rho_m > 1``), whose encoder
    gradients are scaled by ``k_m = 1 - tanh(alpha * rho_m)``; the others keep 1. Generalisation
    enhancement (``ge=True``): after scaling, every encoder parameter's gradient gets Gaussian noise
    with the gradient's own standard deviation. Active for ``start_epoch <= epoch < end_epoch``
    (``end_epoch=None``: until the end). Under DDP the scores are summed across ranks first.

    Args:
        alpha: modulation strength (dataset dependent, about 0.1-1).
        start_epoch, end_epoch: 0-based epoch window of the modulation.
        ge: add the generalisation-enhancement noise.
    """

    description = "joint fusion with on-the-fly gradient modulation + generalisation enhancement (Peng et al. 2022)"
    tasks = ("classification",)

    def __init__(self, alpha: float = 0.5, start_epoch: int = 0, end_epoch: int | None = None,
                 ge: bool = True) -> None:
        super().__init__()
        self.alpha = alpha
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.ge = ge
        self._scores: torch.Tensor | None = None

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        feats = model.encode(batch.inputs)
        logits = model.logits(feats)
        loss = self.task_loss(logits, batch.target)
        with torch.no_grad():
            detached = {m: z.detach() for m, z in feats.items()}
            scores = torch.stack([
                F.softmax(model.logits(detached, present={m}), -1).gather(1, batch.target[:, None]).sum()
                for m in model.modalities])
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(scores)
        self._scores = scores
        return ObjectiveOutput(loss, logits, {"task": loss.detach()})

    def coefficients(self, scores: torch.Tensor) -> list[float]:
        """Gradient scale per modality from the per-modality scores ``(M,)``."""
        m = scores.numel()
        total = float(scores.sum())
        coeffs = []
        for i in range(m):
            others = (total - float(scores[i])) / (m - 1)
            rho = float(scores[i]) / max(others, 1e-12)
            coeffs.append(1.0 - math.tanh(self.alpha * rho) if rho > 1 else 1.0)
        return coeffs

    def active(self, epoch: int) -> bool:
        return self.start_epoch <= epoch and (self.end_epoch is None or epoch < self.end_epoch)

    @torch.no_grad()
    def on_after_backward(self, model: MultimodalModel, state: TrainState) -> None:
        if self._scores is None or not self.active(state.epoch):
            return
        for m, k in zip(model.modalities, self.coefficients(self._scores)):
            self.log_epoch(f"coeff_{m}", k)
            for p in model.encoder_parameters(m):
                if p.grad is None:
                    continue
                p.grad.mul_(k)
                if self.ge and p.grad.numel() > 1:
                    noise = torch.randn_like(p.grad) * p.grad.std()
                    if dist.is_available() and dist.is_initialized():
                        dist.broadcast(noise, src=0)  # identical noise on every rank keeps replicas in sync
                    p.grad.add_(noise)
