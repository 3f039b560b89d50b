"""AGM: adaptive gradient modulation with Shapley mono-modal responses (Li et al., ICCV 2023)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from ..data import Batch, DataSplits
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, TrainState


def shapley_responses(subset_logits: Mapping[frozenset[str], Tensor], modalities: list[str]) -> dict[str, Tensor]:
    """Mono-modal responses ``{m: (B, C)}``: the Shapley values of the players ``modalities`` in the game whose
    value of a coalition ``S`` is the model's output with only ``S`` present, ``subset_logits[S]`` ``(B, C)``
    (every subset, the empty one included)::

        phi_m = sum_{S subset of M \\ {m}} |S|! (|M| - |S| - 1)! / |M|! * (f(S + {m}) - f(S))

    Efficiency: ``sum_m phi_m = f(M) - f(empty)``."""
    n = len(modalities)
    out: dict[str, Tensor] = {}
    for m in modalities:
        others = [k for k in modalities if k != m]
        total = torch.zeros_like(subset_logits[frozenset(modalities)])
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for combo in itertools.combinations(others, size):
                s = frozenset(combo)
                total = total + weight * (subset_logits[s | {m}] - subset_logits[s])
        out[m] = total
    return out


def response_scores(responses: Mapping[str, Tensor], target: Tensor) -> Tensor:
    """``(M,)`` per-modality scores ``s_m = mean_batch -log softmax(phi_m)[y]`` (probabilities floored at 1e-8,
    as in the authors' code), in the order of ``responses``."""
    scores = []
    for r in responses.values():
        p = F.softmax(r.float(), -1).gather(1, target[:, None])[:, 0]
        scores.append(-torch.log(p.clamp_min(1e-8)).mean())
    return torch.stack(scores)


def modulation_coefficients(scores: Tensor, running: Tensor, alpha: float, clip: float) -> Tensor:
    """AGM's per-modality gradient coefficients ``(M,)`` from the current scores ``s`` and their running means
    ``s_hat`` (both ``(M,)``)::

        r_m   = exp(M / (M - 1) * (mean(s) - s_m))            # current relative strength
        eta_m = exp(M / (M - 1) * (mean(s_hat) - s_hat_m))    # its running reference
        k_m   = exp(alpha * min(eta_m - r_m, clip))

    A modality doing better than its usual share (``r_m > eta_m``) is slowed down (``k_m < 1``), one doing worse
    is sped up. For two modalities ``r_1 = exp(s_2 - s_1)``."""
    m = scores.numel()
    factor = m / (m - 1)
    r = torch.exp(factor * (scores.mean() - scores))
    eta = torch.exp(factor * (running.mean() - running))
    return torch.exp(alpha * torch.clamp(eta - r, max=clip))


@METHODS.register("agm")
class AGM(Objective):
    """Joint training whose encoder gradients are scaled per modality by AGM's coefficients.

    Each step: the fused loss ``CE(f(z), y)``; with the other modalities' features zeroed
    (``model.logits(z, present=S)`` for every subset ``S``, detached, fusion and head in evaluation mode) the
    Shapley mono-modal responses ``phi_m`` (:func:`shapley_responses`), their scores ``s_m`` (cross-entropy of
    ``phi_m``), and the coefficients ``k_m`` of :func:`modulation_coefficients` against the running means of the
    scores over all past steps. Encoder ``m``'s gradients are multiplied by ``k_m`` (in ``on_after_backward``),
    for ``start_epoch <= epoch < end_epoch``. Under DDP the scores are averaged across ranks.

    Args:
        alpha: modulation strength (per dataset in the paper; 0.1 here).
        clip: upper bound of ``eta_m - r_m`` in the exponent (authors' code: 10 for two modalities, 7 for three).
        start_epoch, end_epoch: 0-based epoch window of the modulation (``end_epoch=None``: to the end).
    """

    description = "joint fusion, encoder gradients scaled by Shapley mono-modal response coefficients (Li et al. 2023)"
    tasks = ("classification",)

    def __init__(self, alpha: float = 0.1, clip: float = 10.0, start_epoch: int = 0,
                 end_epoch: int | None = None) -> None:
        super().__init__()
        self.alpha = alpha
        self.clip = clip
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self._coeffs: Tensor | None = None
        self.running: Tensor
        self.iterations: Tensor

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        self.register_buffer("running", torch.zeros(len(model.modalities), dtype=torch.float64))
        self.register_buffer("iterations", torch.zeros((), dtype=torch.float64))

    def active(self, epoch: int) -> bool:
        return self.start_epoch <= epoch and (self.end_epoch is None or epoch < self.end_epoch)

    @torch.no_grad()
    def responses(self, model: MultimodalModel, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Shapley mono-modal responses ``{m: (B, C)}`` on detached features (fusion and head in eval mode)."""
        modules = [model.fusion, model.head]
        modes = [mod.training for mod in modules]
        for mod in modules:
            mod.eval()
        try:
            detached = {m: z.detach() for m, z in feats.items()}
            mods = model.modalities
            subsets = {frozenset(c): model.logits(detached, present=set(c))
                       for k in range(len(mods) + 1) for c in itertools.combinations(mods, k)}
        finally:
            for mod, mode in zip(modules, modes):
                mod.train(mode)
        return shapley_responses(subsets, mods)

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        feats = model.encode(batch.inputs)
        logits = model.logits(feats)
        loss = self.task_loss(logits, batch.target)
        scores = response_scores(self.responses(model, feats), batch.target).double()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(scores)
            scores = scores / dist.get_world_size()
        if self.training:
            running = self.running if hasattr(self, "running") else torch.zeros_like(scores)
            self._coeffs = modulation_coefficients(scores, running.to(scores.device), self.alpha, self.clip)
            if hasattr(self, "running"):  # running means over every step so far (the current one included after)
                self.iterations += 1
                self.running.mul_((self.iterations - 1) / self.iterations).add_(scores / self.iterations)
        parts = {"task": loss.detach(), **{f"score_{m}": s.float() for m, s in zip(model.modalities, scores)}}
        return ObjectiveOutput(loss, logits, parts)

    @torch.no_grad()
    def on_after_backward(self, model: MultimodalModel, state: TrainState) -> None:
        if self._coeffs is None:
            return
        coeffs, self._coeffs = self._coeffs, None
        for m, k in zip(model.modalities, coeffs):
            self.log_epoch(f"coeff_{m}", k)
            if not self.active(state.epoch):
                continue
            for p in model.encoder_parameters(m):
                if p.grad is not None:
                    p.grad.mul_(k.to(p.grad.dtype))
