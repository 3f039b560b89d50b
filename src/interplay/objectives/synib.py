"""SynIB: synergistic information bottleneck (Kontras et al., arXiv 2606.09853).

Predict well from all modalities and be *unconfident* whenever one modality's information is withheld, so that
confidence can only come from cross-modal (synergistic) evidence. See ``docs/methods/synib.md``.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch, DataSplits
from ..errors import ConfigError
from ..models import MultimodalModel, Replacement, Shuffled
from .base import METHODS, Objective, ObjectiveOutput, TrainState, mean_of_probabilities

Mask = Literal["whole", "random", "learned", "oracle"]
Fill = Literal["shuffle", "gaussian", "zero"]
Divergence = Literal["prior_kl", "uniform_kl", "gaussian", "unimodal_anchor"]

#: divergences that depend only on the masked prediction itself (no label, no per-modality reference)
_SYMMETRIC = ("prior_kl", "uniform_kl", "gaussian")


class RunningStats(nn.Module):
    """Per-feature mean and variance, exponential moving average (``momentum`` of the old value)."""

    def __init__(self, dim: int, momentum: float) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        x = x.detach().flatten(1).float()
        mean = x.mean(0)
        var = x.var(0, unbiased=False) if x.shape[0] > 1 else torch.zeros_like(mean)
        if not bool(self.seen):
            self.mean.copy_(mean)
            self.var.copy_(var)
            self.seen.fill_(True)
        else:
            self.mean.lerp_(mean, 1 - self.momentum)
            self.var.lerp_(var, 1 - self.momentum)

    def sample(self, like: Tensor) -> Tensor:
        flat = torch.randn(like.shape[0], self.mean.numel(), device=like.device)
        return (self.mean + self.var.clamp_min(0).sqrt() * flat).to(like.dtype).view_as(like)


class _StepRecord(NamedTuple):
    """One training step's masked-pass outputs, kept for the batched per-epoch reduction."""

    layout: tuple  # (n, ((modality, pass, plain target?), ...), gate names): steps of one layout reduce together
    logits: Tensor  # ((1 + K) n, C) detached: the clean pass, then the K masked passes
    target: Tensor  # (n,)
    indices: list[Tensor | None]  # per masked entry: its rows are scored against target[index] (None: target)
    pen: Tensor  # (K,) mean penalty per masked pass
    gate_means: Tensor | None  # (G,) learned masks' mean gate per modality


def cyclic_derangement(n: int, device: torch.device | str = "cpu") -> Tensor:
    """A random permutation ``idx`` of ``range(n)`` with no fixed point (for ``n > 1``): row ``i`` of
    ``x[idx]`` comes from another row. Built by cycling a random ordering one step."""
    order = torch.randperm(n, device=device)
    idx = torch.empty_like(order)
    idx[order] = order.roll(-1)
    return idx


@METHODS.register("synib")
class SynIB(Objective):
    """``L = CE(f(z), y) + w_uni sum_m CE(h_m(z_m), y) + w_aug sum_m CE(f(z with R(z_m)), y)
    + lam(epoch) sum_m mean_batch D(softmax(f(z with M(z_m))))``.

    Encoders run once; masking acts on encoder outputs ``z_m`` (``oracle``: on the input's synergy block,
    re-encoded in the same encoder call). The clean pass and all masked / augmented passes go through the
    fusion head in one call, ``model.fuse_variants`` (a shuffled modality is passed as :class:`Shuffled`, so the
    concat fusion reuses its first-layer product).

    Args:
        lam: weight of the SynIB penalty (tune on validation; 1-10 on pid-xor).
        mask: ``whole`` (all of ``z_m``), ``random`` (each feature with probability ``p``), ``learned``
            (per-example gates from ``steps`` inner Adam steps against the unimodal head), ``oracle``
            (the input's synergy block, datasets with a block map only).
        p: feature-replacement probability of ``random`` masking and of the ``w_aug`` augmentation.
        fill: what replaces withheld features: ``shuffle`` (the same features of another sample of the batch),
            ``gaussian`` (``N(mean, var)`` from running per-feature statistics, EMA ``ema``), ``zero``.
        divergence: ``prior_kl`` (``KL(p_masked || empirical train label prior)``), ``uniform_kl``,
            ``gaussian`` (the authors' Gaussian on logits with a learned log-variance head,
            ``KL(N(logits, diag e^s) || N(0, I))``, about ``||logits||^2 / 2``; for reproduction),
            ``unimodal_anchor`` (SynIB-U: ``KL(p_uni(-m) || p_masked)``, the complementary modalities' unimodal
            prediction as anchor).
        hinge: penalise only ``max(0, D(p_masked) - D(p_uni(-m)))`` per sample (``prior_kl``/``uniform_kl``).
        w_uni: weight of unimodal-head CE on the shared encoders (0: heads that a reference needs are trained
            as probes on detached features, leaving the encoders' objective unchanged).
        w_aug: weight of the random-mask augmentation CE.
        warmup_epochs: linear warm-up of ``lam`` over the first epochs (0: none).
        off_epoch: 0-based epoch from which ``lam`` is 0 (None: never).
        steps, mask_lr, tau, sparsity: ``learned`` masking: inner Adam steps, their learning rate, gate
            temperature, weight of ``mean(1 - g)``.
        ema: momentum of the ``gaussian`` fill's running statistics.
    """

    description = "SynIB: fused CE + lambda * divergence of predictions with one modality masked (Kontras et al.)"
    tasks = ("classification",)

    def __init__(self, lam: float = 1.0, mask: Mask = "whole", p: float = 0.5, fill: Fill = "shuffle",
                 divergence: Divergence = "prior_kl", hinge: bool = False, w_uni: float = 0.0, w_aug: float = 0.0,
                 warmup_epochs: int = 0, off_epoch: int | None = None, steps: int = 20, mask_lr: float = 0.1,
                 tau: float = 1.0, sparsity: float = 1.0, ema: float = 0.99) -> None:
        super().__init__()
        for name, value, options in (("mask", mask, Mask), ("fill", fill, Fill),
                                     ("divergence", divergence, Divergence)):
            allowed = typing.get_args(options)
            if value not in allowed:
                raise ConfigError(f"method.{name}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        for name, value, ok, what in (
                ("lam", lam, lam >= 0, "a non-negative number"),
                ("p", p, 0 < p <= 1, "a probability in (0, 1]"),
                ("w_uni", w_uni, w_uni >= 0, "a non-negative number"),
                ("w_aug", w_aug, w_aug >= 0, "a non-negative number"),
                ("warmup_epochs", warmup_epochs, warmup_epochs >= 0, "a non-negative integer"),
                ("off_epoch", off_epoch, off_epoch is None or off_epoch >= 0, "null or a non-negative integer"),
                ("steps", steps, steps >= 1, "a positive integer"),
                ("mask_lr", mask_lr, mask_lr > 0, "a positive number"),
                ("tau", tau, tau > 0, "a positive number"),
                ("sparsity", sparsity, sparsity >= 0, "a non-negative number"),
                ("ema", ema, 0 <= ema < 1, "a number in [0, 1)")):
            if not ok:
                raise ConfigError(f"method.{name}: expected {what}, got {value!r}")
        if hinge and divergence not in ("prior_kl", "uniform_kl"):
            raise ConfigError(f"method.hinge: the hinge needs divergence 'prior_kl' or 'uniform_kl', "
                              f"got {divergence!r}")
        self.lam, self.mask, self.p, self.fill, self.divergence, self.hinge = lam, mask, p, fill, divergence, hinge
        self.w_uni, self.w_aug, self.warmup_epochs, self.off_epoch = w_uni, w_aug, warmup_epochs, off_epoch
        self.steps, self.mask_lr, self.tau, self.sparsity, self.ema = steps, mask_lr, tau, sparsity, ema
        #: the penalty compares with the unimodal prediction of the other modalities (anchor, hinge)
        self.uses_reference = divergence == "unimodal_anchor" or hinge
        #: unimodal heads must be trained: for the reference, the learned mask, or the w_uni term
        self.needs_heads = self.uses_reference or mask == "learned" or w_uni > 0
        self.stats: nn.ModuleDict | None = None
        self.logvar: nn.Linear | None = None
        self.register_buffer("log_prior", torch.zeros(0))
        self.modalities: list[str] = []
        self._records: list[_StepRecord] = []  # the epoch's steps not yet reduced

    @property
    def trains_unimodal_heads(self) -> bool:  # type: ignore[override]
        """The unimodal heads are trained when ``w_uni > 0`` or a reference/learned mask needs them."""
        return self.needs_heads

    # ------------------------------------------------------------------ lifecycle
    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        info = data.info
        self.modalities = list(model.modalities)
        if self.mask == "oracle":
            bm = info.block_map
            if not bm or any("synergy" not in bm.get(m, {}) for m in self.modalities):
                raise ConfigError(f"method.mask: 'oracle' needs a dataset with a synergy block map (e.g. pid-xor); "
                                  f"{info.name!r} has none")
            for i, m in enumerate(self.modalities):
                self.register_buffer(f"oracle_idx_{i}", torch.as_tensor(bm[m]["synergy"], dtype=torch.long),
                                     persistent=False)
        counts = torch.bincount(data.train.target.long().cpu(), minlength=info.num_classes).double()
        self.log_prior = (counts.clamp_min(1) / counts.clamp_min(1).sum()).log().float()
        if self.fill == "gaussian":
            if self.mask == "oracle":  # the oracle fills input coordinates
                dims = {m: math.prod(info.modalities[m]) for m in self.modalities}
            else:
                dims = model.feature_dims()
            self.stats = nn.ModuleDict({str(i): RunningStats(dims[m], self.ema) for i, m in enumerate(self.modalities)})
        if self.divergence == "gaussian":
            width = getattr(model.fusion, "out_dim", None) or model.head.in_features
            self.logvar = nn.Linear(int(width), info.num_classes)
            nn.init.zeros_(self.logvar.weight)
            nn.init.zeros_(self.logvar.bias)

    def lam_at(self, epoch: int) -> float:
        """Effective ``lam`` at 0-based ``epoch``: linear warm-up, then constant, 0 from ``off_epoch``."""
        if self.off_epoch is not None and epoch >= self.off_epoch:
            return 0.0
        if self.warmup_epochs > 0:
            return self.lam * min(1.0, (epoch + 1) / self.warmup_epochs)
        return self.lam

    # ------------------------------------------------------------------ masking
    def _fill_for(self, i: int, x: Tensor) -> Tensor:
        """Replacement values for ``x`` (``(B, ...)``, modality index ``i``), row by row."""
        if self.fill == "shuffle":
            return x[cyclic_derangement(x.shape[0], x.device)]
        if self.fill == "zero":
            return torch.zeros_like(x)
        assert self.stats is not None
        return self.stats[str(i)].sample(x)

    def _random_mask(self, i: int, z: Tensor) -> Tensor:
        replace = (torch.rand_like(z) < self.p).to(z.dtype)
        return torch.lerp(z, self._fill_for(i, z), replace)  # exact for weights 0/1; no `where` in backward

    def _oracle_inputs(self, batch: Batch) -> dict[str, Tensor]:
        """Each modality's input with its synergy block replaced by the fill (every sample)."""
        out = {}
        for i, m in enumerate(self.modalities):
            x = batch.inputs[m]
            flat = x.flatten(1)
            idx = getattr(self, f"oracle_idx_{i}")
            fill = self._fill_for(i, flat)
            masked = flat.clone()
            masked[:, idx] = fill[:, idx]
            out[m] = masked.view_as(x)
        return out

    def _learned_mask(self, model: MultimodalModel, i: int, z: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Per-example gates for modality ``i`` found with the model frozen; returns (masked z, gates)."""
        m = self.modalities[i]
        head = model.unimodal_heads[m]  # type: ignore[index]
        fill = self._fill_for(i, z)
        zd, fd = z.detach(), fill.detach()
        logit = torch.ones_like(zd, requires_grad=True)
        m1, m2 = torch.zeros_like(zd), torch.zeros_like(zd)  # Adam moments (betas 0.9, 0.999)
        with torch.enable_grad():
            for t in range(1, self.steps + 1):
                g = torch.sigmoid(logit / self.tau)
                inner = -F.cross_entropy(head(g * zd + (1 - g) * fd), target) + self.sparsity * (1 - g).mean()
                (grad,) = torch.autograd.grad(inner, [logit])  # the model's parameters get no gradient
                with torch.no_grad():
                    m1.lerp_(grad, 0.1)
                    m2.lerp_(grad * grad, 0.001)
                    step = (m1 / (1 - 0.9**t)) / ((m2 / (1 - 0.999**t)).sqrt() + 1e-8)
                    logit -= self.mask_lr * step
        g = torch.sigmoid(logit.detach() / self.tau)
        return torch.lerp(fill, z, g), g  # g * z + (1 - g) * fill

    # ------------------------------------------------------------------ divergences
    def _divergence(self, logits: Tensor, ref_logp: Tensor | None, logvar: Tensor | None) -> Tensor:
        """Per-sample ``D`` of the masked prediction ``logits`` ``(B, C)`` (``logvar``: ``(B, C)``, gaussian)."""
        logp = F.log_softmax(logits, -1)
        if self.divergence in ("prior_kl", "uniform_kl"):
            d = self._kl_to_base(logp)
        elif self.divergence == "gaussian":
            assert logvar is not None
            # KL(N(logits, diag exp(logvar)) || N(0, I)); at its optimum logvar = 0 it is ||logits||^2 / 2
            d = 0.5 * (logits.pow(2) + logvar.exp() - logvar - 1).sum(-1)
        else:  # unimodal_anchor: KL(p_ref || p_masked)
            assert ref_logp is not None
            d = (ref_logp.exp() * (ref_logp - logp)).sum(-1)
        if self.hinge:
            assert ref_logp is not None
            d = (d - self._kl_to_base(ref_logp).detach()).clamp_min(0)
        return d

    def _kl_to_base(self, logp: Tensor) -> Tensor:
        """``KL(p || prior)`` (``prior_kl``) or ``KL(p || uniform)`` per sample, from log-probabilities."""
        if self.divergence == "prior_kl":
            return F.kl_div(self.log_prior.to(logp.dtype), logp, reduction="none", log_target=True).sum(-1)
        return (logp.exp() * logp).sum(-1) + math.log(logp.shape[-1])

    def _reference(self, uni: Mapping[str, Tensor], m: str) -> Tensor:
        """Log-probabilities of the unimodal prediction of every modality but ``m`` (detached)."""
        others = {k: v.detach() for k, v in uni.items() if k != m}
        if len(others) == 1:
            return F.log_softmax(next(iter(others.values())), -1)
        return mean_of_probabilities(others)

    # ------------------------------------------------------------------ per-epoch statistics
    def _log_masked(self, logits: Tensor, target: Tensor, masked_for: list[tuple[str, int, Tensor | None]],
                    pen: Tensor, gates: Mapping[str, Tensor]) -> None:
        """Keep one step's masked-pass outputs; :meth:`_reduce_records` turns a run of steps into epoch statistics
        in a few batched operations (a per-step reduction would cost SynIB about 5% of a small model's step).

        ``logits``: ``((1 + K) n, C)`` detached, the clean pass then the ``K`` masked passes; ``masked_for``:
        ``(modality, pass, index)``, the rows of pass ``k`` score modality ``m``'s masking against
        ``target[index]`` (``index`` None: ``target``); ``pen``: ``(K,)`` mean penalty per masked pass.
        """
        n = target.shape[0]
        layout = (n, tuple((m, k, index is None) for m, k, index in masked_for), tuple(gates))
        if self._records and (self._records[0].layout != layout or len(self._records) * logits.numel() > 1 << 22):
            self._reduce_records()  # a new layout, or 16 MB kept
        gate_means = torch.stack([g.mean() for g in gates.values()]).detach() if gates else None
        self._records.append(_StepRecord(layout, logits, target, [i for *_, i in masked_for], pen.detach(),
                                         gate_means))

    @torch.no_grad()
    def _reduce_records(self) -> None:
        """Epoch statistics of the kept steps (all of one layout): the clean confidence and, per masked modality,
        the masked pass's mean max-probability and accuracy, the penalty and the learned gates' mean."""
        if not self._records:
            return
        records = self._records
        n, entries, gate_names = records[0].layout
        steps = len(records)
        logits = torch.stack([r.logits for r in records]).float()  # (S, (1 + K) n, C)
        conf, pred = logits.softmax(-1).max(-1)
        passes = conf.shape[1] // n
        conf, pred = conf.view(steps, passes, n).mean((0, 2)).tolist(), pred.view(steps, passes, n)
        target = torch.stack([r.target for r in records])  # (S, n)
        weight = steps * n
        self.log_epoch("clean_conf", conf[0], weight)
        pen = torch.stack([r.pen for r in records]).float().mean(0).tolist()
        for e, (m, k, plain) in enumerate(entries):
            t = target if plain else target.gather(1, torch.stack([r.indices[e] for r in records]))
            self.log_epoch(f"masked_conf_{m}", conf[k], weight)
            self.log_epoch(f"masked_acc_{m}", (pred[:, k] == t).float().mean(), weight)
            self.log_epoch(f"penalty_{m}", pen[k - 1], weight)
        if gate_names:
            means = torch.stack([r.gate_means for r in records]).float().mean(0).tolist()
            for m, value in zip(gate_names, means):
                self.log_epoch(f"gate_mean_{m}", value, weight)
        self._records = []

    def pop_epoch_logs(self) -> dict[str, float]:
        self._reduce_records()
        return super().pop_epoch_logs()

    # ------------------------------------------------------------------ the objective
    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        mods, target, n = self.modalities, batch.target, len(batch)
        lam = self.lam_at(state.epoch)
        penalise = lam > 0

        if self.mask == "oracle" and penalise:
            if self.stats is not None and self.training:
                for i, m in enumerate(mods):
                    self.stats[str(i)].update(batch.inputs[m])
            masked_inputs = self._oracle_inputs(batch)
            both = model.encode({m: torch.cat([batch.inputs[m], masked_inputs[m]]) for m in mods})
            feats = {m: v[:n] for m, v in both.items()}
            oracle_feats = {m: v[n:] for m, v in both.items()}
        else:
            feats = model.encode(batch.inputs)
            if self.stats is not None and self.training and self.mask != "oracle":
                for i, m in enumerate(mods):
                    self.stats[str(i)].update(feats[m])

        parts: dict[str, Tensor] = {}
        loss_extra: list[Tensor] = []
        uni: dict[str, Tensor] | None = None
        if self.w_uni > 0:
            uni = model.unimodal_logits(feats)
            parts["uni"] = torch.stack([self.task_loss(v, target) for v in uni.values()]).sum()
            loss_extra.append(self.w_uni * parts["uni"])
        elif self.needs_heads:  # heads trained as probes: no gradient into the encoders
            uni = model.unimodal_logits({m: z.detach() for m, z in feats.items()})
            parts["probe"] = torch.stack([self.task_loss(v, target) for v in uni.values()]).sum()
            loss_extra.append(parts["probe"])

        # variants of the clean features, fused with it in one call: one masked pass per modality (or one
        # shared pass), then the augmentation passes
        variants: list[dict[str, Replacement]] = []
        masked_for: list[tuple[str, int, Tensor | None]] = []  # (modality, pass, rows' targets: target[index])
        gates: dict[str, Tensor] = {}
        if penalise:
            shared = (len(mods) == 2 and self.mask == "whole" and self.fill == "shuffle"
                      and self.divergence in _SYMMETRIC and not self.hinge)
            if shared:
                # f(z_1[pi], z_2) is "x1 masked" for sample i and "x2 masked" for sample pi(i): with a target-free
                # divergence, one pass counted twice equals two passes with coupled shuffles (pi, pi^-1).
                idx = cyclic_derangement(n, target.device)
                variants.append({mods[0]: Shuffled(idx)})
                masked_for += [(mods[0], 1, None), (mods[1], 1, idx)]
            else:
                for i, m in enumerate(mods):
                    zm: Replacement
                    if self.mask == "whole":
                        zm = Shuffled(cyclic_derangement(n, target.device)) if self.fill == "shuffle" \
                            else self._fill_for(i, feats[m])
                    elif self.mask == "random":
                        zm = self._random_mask(i, feats[m])
                    elif self.mask == "learned":
                        zm, gates[m] = self._learned_mask(model, i, feats[m], target)
                    else:
                        zm = oracle_feats[m]
                    variants.append({m: zm})
                    masked_for.append((m, len(variants), None))
        aug_first = 1 + len(variants)
        if self.w_aug > 0:
            variants += [{m: self._random_mask(i, feats[m])} for i, m in enumerate(mods)]

        fused = model.fuse_variants(feats, variants) if variants else model.fuse(feats)
        all_logits = model.head(fused)
        all_logvar = self.logvar(fused) if self.logvar is not None and penalise else None
        logits = all_logits[:n]
        task = self.task_loss(logits, target)
        parts["task"] = task
        loss = task + sum(loss_extra) if loss_extra else task

        if self.w_aug > 0:
            aug = all_logits[aug_first * n:]
            parts["aug"] = self.task_loss(aug, target.repeat(aug.shape[0] // n)) * len(mods)
            loss = loss + self.w_aug * parts["aug"]

        if penalise:
            # the masked passes are rows [n, (1 + K) n): one divergence call over all of them
            k_passes = aug_first - 1
            rows = slice(n, aug_first * n)
            ref = None
            if self.uses_reference and uni is not None:
                ref = torch.cat([self._reference(uni, m) for m, *_ in masked_for])
            lv = all_logvar[rows] if all_logvar is not None else None
            pen = self._divergence(all_logits[rows], ref, lv).view(k_passes, n).mean(1)  # (K,)
            parts["penalty"] = pen.sum() * (len(masked_for) // k_passes)  # the shared pass counts for both
            loss = loss + lam * parts["penalty"]
            self._log_masked(all_logits[:aug_first * n].detach(), target, masked_for, pen, gates)
        self.log_epoch("lam", lam, n)
        return ObjectiveOutput(loss, logits, {k: v.detach() for k, v in parts.items()})
