"""MMPareto: Pareto integration of the multimodal and unimodal gradients (Wei & Hu, ICML 2024)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..data import Batch
from ..errors import ConfigError
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, TrainState


def min_norm_weights(g1: Tensor, g2: Tensor) -> tuple[float, float]:
    """The weights ``(w, 1 - w)``, ``w`` in ``[0, 1]``, of the minimum-norm point ``w g1 + (1 - w) g2`` of the
    segment between two gradient vectors (MGDA with two tasks, closed form):
    ``w = clip((g2 - g1) . g2 / ||g1 - g2||^2, 0, 1)``; ``(0.5, 0.5)`` when ``g1 == g2``."""
    diff = g1 - g2
    denom = float(diff.dot(diff))
    if denom <= 0.0:
        return 0.5, 0.5
    w = min(max(float((g2 - g1).dot(g2)) / denom, 0.0), 1.0)
    return w, 1.0 - w


def pareto_combination(g_mm: Tensor, g_uni: Tensor, gamma: float) -> tuple[float, float]:
    """MMPareto's coefficients ``(c_mm, c_uni)`` of one encoder's final gradient ``c_mm g_mm + c_uni g_uni``.

    ``g_mm`` / ``g_uni``: the flattened gradients of the multimodal and of the encoder's unimodal loss on the
    encoder's parameters. Non-conflicting (``g_mm . g_uni > 0``, as in the authors' code): equal weights
    ``(1/2, 1/2)``; conflicting: the min-norm (Pareto) weights. The combination ``2 (w_1 g_mm + w_2 g_uni)`` is then
    scaled up to the norm of the plain sum ``||g_mm + g_uni||`` when it is shorter, and by ``gamma`` (magnitude
    enhancement). All scalings are positive, so the final gradient has a non-negative inner product with both
    gradients (the paper's "common direction")."""
    if float(g_mm.dot(g_uni)) > 0:
        w_mm, w_uni = 0.5, 0.5
    else:
        w_mm, w_uni = min_norm_weights(g_mm, g_uni)
    new = 2 * w_mm * g_mm + 2 * w_uni * g_uni
    new_norm = float(new.norm())
    total_norm = float((g_mm + g_uni).norm())
    stretch = total_norm / new_norm if new_norm > 0 and total_norm > new_norm else 1.0
    return 2 * w_mm * stretch * gamma, 2 * w_uni * stretch * gamma


def _flat(grads: Sequence[Tensor | None], params: Sequence[torch.nn.Parameter]) -> Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                      for g, p in zip(grads, params)])


@METHODS.register("mmpareto")
class MMPareto(Objective):
    """Multimodal loss plus unimodal losses, each encoder's gradient integrated Pareto-wise.

    Loss ``L = CE(f(z), y) + sum_m CE(h_m(z_m), y)``. Encoder ``m``'s parameters receive the gradients ``g_mm`` of
    the multimodal loss and ``g_m`` of its own unimodal loss (no other loss reaches them). Per step and per encoder:
    if ``cos(g_mm, g_m) > 0`` the final gradient is ``g_mm + g_m``; otherwise the min-norm convex combination
    ``w g_mm + (1 - w) g_m`` (MGDA), doubled, and stretched to ``||g_mm + g_m||`` if shorter. Finally it is
    multiplied by ``gamma`` (the paper's magnitude enhancement, 1.5). Heads and the fusion module get their
    ordinary gradients. The combination is applied through :meth:`backward` (the extended step protocol): the
    gradients are taken separately with ``torch.autograd.grad`` on the encoder parameters, then one backward
    pass whose feature gradients are rescaled per modality produces ``c_mm g_mm + c_m g_m`` exactly (one
    reduction under DDP; accumulation and AMP scaling are respected). A loop that does not call
    :meth:`backward` trains the plain sum (``multi_loss`` with ``w = 1``).

    Args:
        gamma: magnitude enhancement factor (paper: 1.5).
    """

    description = "multimodal + unimodal losses, encoder gradients integrated Pareto-wise (Wei & Hu, ICML 2024)"
    trains_unimodal_heads = True

    def __init__(self, gamma: float = 1.5) -> None:
        super().__init__()
        if not gamma > 0:
            raise ConfigError(f"method.gamma: expected a positive number, got {gamma}")
        self.gamma = gamma
        self._coef: dict[tuple[str, str], float] = {}
        self._losses: dict[str, Tensor] = {}

    def _scaled(self, z: Tensor, key: tuple[str, str]) -> Tensor:
        """``z`` whose gradient is multiplied by ``self._coef[key]`` (read at backward time; 1 until set)."""
        alias = z.view_as(z)
        if alias.requires_grad:
            alias.register_hook(lambda g: g * self._coef.get(key, 1.0))
        return alias

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        self._coef = {}
        feats = model.encode(batch.inputs)
        logits = model.logits({m: self._scaled(z, (m, "mm")) for m, z in feats.items()})
        task = self.task_loss(logits, batch.target)
        uni = model.unimodal_logits({m: self._scaled(z, (m, "uni")) for m, z in feats.items()})
        self._losses = {"": task, **{m: self.task_loss(v, batch.target) for m, v in uni.items()}}
        loss = task + sum(self._losses[m] for m in uni)
        parts = {"task": task.detach(), **{f"uni_{m}": self._losses[m].detach() for m in uni}}
        return ObjectiveOutput(loss, logits, parts)

    def coefficients(self, model: MultimodalModel, scale: Callable[[Tensor], Tensor]) -> dict[tuple[str, str], float]:
        """Per modality, ``(m, "mm")`` and ``(m, "uni")`` gradient coefficients from the current graph."""
        coef: dict[tuple[str, str], float] = {}
        params = {m: [p for p in model.encoder_parameters(m) if p.requires_grad] for m in model.modalities}
        flat_params = [p for m in model.modalities for p in params[m]]
        if not flat_params:
            return coef
        g_all = torch.autograd.grad(scale(self._losses[""]), flat_params, retain_graph=True, allow_unused=True)
        start = 0
        for m in model.modalities:
            n = len(params[m])
            if n == 0:
                continue
            g_mm = _flat(g_all[start:start + n], params[m])
            start += n
            g_uni = _flat(torch.autograd.grad(scale(self._losses[m]), params[m], retain_graph=True,
                                              allow_unused=True), params[m])
            c_mm, c_uni = pareto_combination(g_mm, g_uni, self.gamma)
            coef[(m, "mm")], coef[(m, "uni")] = c_mm, c_uni
            self.log_epoch(f"cos_{m}", float(torch.nn.functional.cosine_similarity(g_mm, g_uni, dim=0)))
            self.log_epoch(f"conflict_{m}", float(float(g_mm.dot(g_uni)) <= 0))
        return coef

    def backward(self, model: MultimodalModel, out: ObjectiveOutput, state: TrainState,
                 scale: Callable[[Tensor], Tensor]) -> None:
        self._coef = self.coefficients(model, scale)
        scale(out.loss).backward()
        self._coef, self._losses = {}, {}
