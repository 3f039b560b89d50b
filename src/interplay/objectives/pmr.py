"""PMR: prototypical modal rebalance (Fan et al., CVPR 2023)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data import Batch, DataSplits, MultimodalDataset
from ..errors import ConfigError
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, TrainState


def class_means(feats: Tensor, target: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Per-class sums divided by counts: ``(C, d)`` means (zero rows for absent classes) and ``(C,)`` counts."""
    sums = torch.zeros(num_classes, feats.shape[1], dtype=feats.dtype, device=feats.device)
    sums.index_add_(0, target, feats)
    counts = torch.bincount(target, minlength=num_classes).to(feats.dtype)
    return sums / counts.clamp_min(1)[:, None], counts


def prototype_logits(feats: Tensor, prototypes: Tensor) -> Tensor:
    """``(B, C)``: minus the Euclidean distance of each feature ``(B, d)`` to each class prototype ``(C, d)``."""
    return -torch.cdist(feats, prototypes.to(feats.dtype))


def rebalance_coefficients(scores: Tensor) -> Tensor:
    """``(M,)`` coefficients from the prototype scores ``s_m = sum_batch softmax(-d(z_m, c^m))[y]``: the modality
    with the highest score (dominant) gets 0, every other ``rho_m = clip(s_dom / s_m - 1, 0, 1)``. For two
    modalities this is the paper's ``rho = s_1 / s_2``: ``beta_2 = clip(rho - 1, 0, 1)`` if ``rho >= 1``, else
    ``beta_1 = clip(1 / rho - 1, 0, 1)``."""
    dom = int(torch.argmax(scores))
    rho = (scores[dom] / scores.clamp_min(1e-12) - 1).clamp(0, 1)
    rho[dom] = 0
    return rho


@METHODS.register("pmr")
class PMR(Objective):
    """Joint training plus prototype-based losses that speed up the slow modalities and slow down the fast one.

    Prototypes: at the start of every epoch (the extended protocol's ``on_train_epoch_start``), per modality and
    class, the mean encoder feature ``c_k^m = mean_{i: y_i = k} z_m(x_i)`` over the training set (model in
    evaluation mode), blended with the previous epoch's as ``(1 - momentum) c_new + momentum c_old`` (first
    epoch: ``c_new``). Per step, with ``p_m = softmax(-||z_m - c^m||)`` (prototypical classifier) and the scores
    ``s_m = sum_batch p_m[y]``, the coefficients ``rho_m`` of :func:`rebalance_coefficients` (0 for the dominant
    modality ``d``) give::

        L = CE(f(z), y) + alpha * sum_m rho_m * CE(-||z_m - c^m||, y)
            - mu * [epoch < start_epoch + per_epochs] * rho_weak * H(p_d)

    (prototypical cross-entropy on the slow modalities; prototype entropy regularisation, PER, on the dominant one
    in the early epochs, ``rho_weak`` the largest ``rho``). Active for ``start_epoch <= epoch < end_epoch``.
    A loop without ``on_train_epoch_start`` gets prototypes from the first batch's class means, refreshed with the
    same momentum every batch.

    Args:
        alpha: weight of the prototypical cross-entropy (authors' default 1.0).
        mu: weight of the entropy regulariser (ours: 0.01; the paper tunes it per dataset).
        per_epochs: number of epochs (from ``start_epoch``) with the entropy regulariser.
        momentum: prototype momentum (authors' default 0.2).
        fraction: share of the training batches used for the prototypes (the authors' code uses 0.1 for speed;
            1.0: the whole training set, the paper's definition).
        start_epoch, end_epoch: 0-based epoch window of the rebalancing (``None``: to the end).
    """

    description = "joint fusion + prototype cross-entropy on slow modalities, entropy on the dominant (Fan et al. 2023)"
    needs_feature_vectors = True
    tasks = ("classification",)

    def __init__(self, alpha: float = 1.0, mu: float = 0.01, per_epochs: int = 10, momentum: float = 0.2,
                 fraction: float = 1.0, start_epoch: int = 0, end_epoch: int | None = None) -> None:
        super().__init__()
        if not 0 < fraction <= 1 or not 0 <= momentum <= 1:
            raise ConfigError(f"method.fraction / method.momentum: expected in (0, 1] / [0, 1], got {fraction} / "
                              f"{momentum}")
        self.alpha = alpha
        self.mu = mu
        self.per_epochs = per_epochs
        self.momentum = momentum
        self.fraction = fraction
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.prototypes: Tensor
        self.ready: Tensor

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        dims = model.feature_dims()  # one stacked buffer, as wide as the widest modality (the rest zero-padded)
        self.register_buffer("prototypes", torch.zeros(len(dims), data.info.num_classes, max(dims.values())))
        self.register_buffer("ready", torch.zeros((), dtype=torch.bool))

    def active(self, epoch: int) -> bool:
        return self.start_epoch <= epoch and (self.end_epoch is None or epoch < self.end_epoch)

    def _update(self, model: MultimodalModel, counts: Tensor, means: dict[str, Tensor]) -> None:
        """Blend the new class means into the prototypes (classes absent from the data keep theirs)."""
        present = counts > 0
        for i, m in enumerate(model.modalities):
            d = means[m].shape[1]
            old = self.prototypes[i, :, :d]
            new = means[m].to(old.dtype)
            blended = new if not bool(self.ready) else (1 - self.momentum) * new + self.momentum * old
            old[present] = blended[present]
        self.ready.fill_(True)

    @torch.no_grad()
    def on_train_epoch_start(self, model: MultimodalModel, train: MultimodalDataset, state: TrainState) -> None:
        if self.info is None:
            return
        model.eval()
        c = self.info.num_classes
        sums = {m: torch.zeros(c, d, device=self.prototypes.device) for m, d in model.feature_dims().items()}
        counts = torch.zeros(c, device=self.prototypes.device)
        batches = list(train.index_batches(256))
        for idx in batches[:max(1, math.ceil(self.fraction * len(batches)))]:
            batch = train.batch(idx)
            feats = model.encode(batch.inputs)
            for m, z in feats.items():
                mean, n = class_means(z.float(), batch.target, c)
                sums[m] += mean * n[:, None]
            counts += torch.bincount(batch.target, minlength=c).float()
        means = {m: s / counts.clamp_min(1)[:, None] for m, s in sums.items()}
        self._update(model, counts, means)
        self._epoch_hook = True

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        feats = model.encode(batch.inputs)
        logits = model.logits(feats)
        task = self.task_loss(logits, batch.target)
        parts = {"task": task.detach()}
        if not self.active(state.epoch) or not hasattr(self, "prototypes"):
            return ObjectiveOutput(task, logits, parts)
        c = self.info.num_classes if self.info is not None else logits.shape[1]
        if self.training and not self._epoch_hook:  # fallback: prototypes follow the batches
            with torch.no_grad():
                stats = {m: class_means(z.detach().float(), batch.target, c) for m, z in feats.items()}
                self._update(model, next(iter(stats.values()))[1], {m: v[0] for m, v in stats.items()})
        sims = {m: prototype_logits(z, self.prototypes[i, :, :z.shape[1]]) for i, (m, z) in
                enumerate(feats.items())}
        with torch.no_grad():
            scores = torch.stack([F.softmax(s.float(), -1).gather(1, batch.target[:, None]).sum()
                                  for s in sims.values()])
            rho = rebalance_coefficients(scores)
        loss = task
        for (m, s), r in zip(sims.items(), rho):
            pce = F.cross_entropy(s, batch.target)
            parts[f"pce_{m}"] = pce.detach()
            loss = loss + self.alpha * r * pce
            self.log_epoch(f"rho_{m}", r)
        if self.mu and state.epoch < self.start_epoch + self.per_epochs:
            dom = list(sims)[int(torch.argmax(scores))]
            logp = F.log_softmax(sims[dom], -1)
            per = -(logp.exp() * logp).sum(-1).mean()
            parts["per"] = per.detach()
            loss = loss - self.mu * rho.max() * per
        return ObjectiveOutput(loss, logits, parts)

    #: whether ``on_train_epoch_start`` has computed the prototypes (else they follow the batches)
    _epoch_hook = False
