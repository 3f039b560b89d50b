"""OMIB: optimal multimodal information bottleneck (Wu, Shao, Wang, Sun, ICML 2025; arXiv 2505.19996).

No official code exists; this follows ``shared/spec/omib.md`` and ``docs/methods/omib.md`` (which lists
every choice made where the paper is silent).
"""

from __future__ import annotations

import math
import typing
import warnings
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch, DataSplits
from ..errors import ConfigError
from ..estimators import EstimatorSettings, InformationReport, information_report
from ..layers import gaussian_kl, gaussian_sample, mlp
from ..models import MultimodalModel
from .base import (
    METHODS,
    Objective,
    ObjectiveOutput,
    Prediction,
    Stage,
    TrainState,
    categorical_kl,
    ensemble_prediction,
)


def beta_bounds(report: InformationReport) -> tuple[float, float]:
    """OMIB's ``(M_l, M_u)`` from entropies in nats: ``M_u = 1 / ((2M - 1) H(v_1..v_M))`` and
    ``M_l = 1 / ((2M - 1) sum_i H(v_i))`` for M views (M = 2: the paper's ``1 / (3 (H_1 + H_2 - I_12))`` and
    ``1 / (3 (H_1 + H_2))``; ``2M - 1`` bounds ``1 + sum_j r_j`` since every ``r_j < 2``)."""
    factor = 2 * len(report.H) - 1
    return 1.0 / (factor * report.H_sum), 1.0 / (factor * report.H_joint)


def r_closed_form(k_ref: Tensor, k: Tensor, eps: float = 1e-8) -> Tensor:
    """``r = 1 - tanh(ln(K / K_ref)) = 2 K_ref^2 / (K_ref^2 + K^2)`` (with ``eps`` added to both K), in (0, 2)."""
    a, b = k_ref + eps, k + eps
    return 2 * a * a / (a * a + b * b)


class _Block(nn.Module):
    """Pre-norm transformer block over a short token sequence (CLS + one token per modality)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.ffn = mlp([width, 2 * width, width], last_activation=False, activation=nn.GELU)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.ffn(self.norm2(x))


class AttentionFusion(nn.Module):
    """``xi = CAN(zeta_1..zeta_M)``: each ``zeta_m`` is projected to a token (plus a learned modality
    embedding), a learned CLS token is prepended, and ``layers`` attention blocks let every token attend to
    every other modality's token; ``xi`` is the (layer-normed) CLS output, ``(B, width)``."""

    def __init__(self, modalities: list[str], latent_dim: int, width: int, heads: int, layers: int) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.proj = nn.ModuleDict({m: nn.Linear(latent_dim, width) for m in self.modalities})
        self.modality_embedding = nn.Parameter(0.02 * torch.randn(len(self.modalities), width))
        self.cls = nn.Parameter(0.02 * torch.randn(1, 1, width))
        self.blocks = nn.ModuleList([_Block(width, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(width)

    def forward(self, zetas: dict[str, Tensor]) -> Tensor:
        tokens = torch.stack([self.proj[m](zetas[m]) for m in self.modalities], 1) + self.modality_embedding
        x = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], 1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, 0])


class LatentConcatFusion(nn.Module):
    """``xi = MLP([zeta_1, ..., zeta_M])`` (the paper's weaker ablation; ``Linear -> ReLU -> Linear``), ``(B, width)``
    from the bottleneck latents ``zeta_m`` ``(B, latent_dim)``, concatenated in :attr:`modalities` order."""

    def __init__(self, modalities: list[str], latent_dim: int, width: int) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.net = mlp([len(self.modalities) * latent_dim, width, width], last_activation=False)

    def forward(self, zetas: dict[str, Tensor]) -> Tensor:
        return self.net(torch.cat([zetas[m] for m in self.modalities], -1))


@METHODS.register("omib")
class OMIB(Objective):
    """Per-modality variational bottlenecks fused by attention, with task-relevance branches and a dynamic
    KL weight per modality (Wu et al., ICML 2025).

    Modules (created in :meth:`setup`; the model's encoders are used, its fusion and heads are not):
    ``VAE_m: z_m -> (mu_m, logvar_m)`` (linear, ``latent_dim`` wide), ``zeta_m = mu_m + sigma_m * eps``
    when training and ``mu_m`` at evaluation; ``xi = CAN(zeta)`` (:class:`AttentionFusion` or
    :class:`LatentConcatFusion`, ``fusion_dim`` wide); fused head ``dDec(xi)``; task-relevance heads
    ``Dec_m([z_m, c])``.

    Stages: ``warmup`` (``c ~ N(0, I)``; trains the encoders and ``Dec_m`` on ``sum_m L_task(Dec_m)``),
    then ``main`` (``c = xi.detach()``; everything)::

        L = L_task(dDec(xi)) + beta * (KL_1 + sum_{j>1} r_j KL_j) + trb_weight * sum_m L_task(Dec_m([z_m, xi.detach()]))

    with ``KL_m = KL(q(zeta_m | z_m) || N(0, I))`` summed over latent dims, batch mean, nats, and
    ``r_j = 1 - tanh(ln(K_j / K_1))``, ``K_m = E[KL(p(y_hat_m | xi, z_m) || p(y_hat | xi))]`` from EMA-smoothed
    batch means (stop-gradient; summed over ranks under torch.distributed). Regression uses a Laplace (L1,
    default) or Gaussian (squared error) predictive with fixed ``regression_scale`` (with the Gaussian, r does
    not depend on the scale). ``beta=None`` uses the estimated bound ``M_l`` (see :func:`beta_bounds`).

    Args:
        beta: KL weight; None: ``M_l`` from the entropy estimator (``fallback_beta`` if its bound is invalid).
        latent_dim: width of each ``zeta_m``.
        fusion: ``attention`` (CLS token over modality tokens) or ``concat`` (MLP on the concatenation).
        fusion_dim: width of ``xi`` (and of the warm-up noise ``c``).
        heads, attention_layers: attention fusion size (``heads`` must divide ``fusion_dim``).
        head_hidden: hidden width of ``dDec`` and of every ``Dec_m``.
        trb_weight: weight of the task-relevance-branch losses in the main stage.
        warmup_fraction: share of the epochs spent in warm-up (at least one when >0 and epochs >= 2).
        warmup_epochs: warm-up epochs (overrides ``warmup_fraction``; 0: no warm-up).
        warmup_reload_best: start the main stage from the warm-up's best-validation checkpoint (selected on
            the TRB ensemble's prediction with ``c = 0``), else from its last epoch.
        dynamic_r: False fixes every ``r_j = 1`` (ablation).
        r_momentum: EMA decay of the batch ``K_m`` (0: use each batch's own values).
        r_eps: added to every ``K_m`` before the ratio.
        init_logvar: initial bias of every ``logvar_m`` (``-4``: ``sigma ~ 0.14``, so training starts close to
            deterministic and the KL term opens the bottleneck; ``0`` starts at the prior's width).
        reference_modality: modality whose KL has weight 1 (default: the first in sorted order).
        estimator: entropy / MI backend for the bound: ``gaussian`` (log-det, Ledoit-Wolf), ``knn``
            (Kozachenko-Leonenko + KSG) or ``mine`` (the paper's: Donsker-Varadhan MINE with ``H(v) = I(v; v)``,
            which saturates just below ``log(estimator_mine_batch_size)``); a ``knn`` / ``mine`` result with
            non-positive entropies falls back to ``gaussian``.
        estimator_k, estimator_max_samples, estimator_shrinkage: backend settings (see ``interplay.estimators``).
        estimator_mine_batch_size, estimator_mine_steps: MINE's batch size ``N`` (every entropy is ``<= log N``)
            and training steps.
        fallback_beta: beta used when ``beta=None`` and no backend gives positive entropies.
        regression_likelihood: ``laplace`` (task loss ``|y - mu| / s``, MOSI's L1) or ``gaussian``
            (``(y - mu)^2 / (2 s^2)``), ``s = regression_scale``.
    """

    description = "optimal multimodal information bottleneck: per-modality VIBs, attention fusion, dynamic KL weights"
    needs_feature_vectors = True
    # buffers (created in setup, saved with the objective)
    k_ema: Tensor  # (M,) EMA of K_m, order of `order`
    k_seen: Tensor  # () bool: the EMA holds a value
    r: Tensor  # (M - 1,) KL weights r_j of order[1:]
    main_stage: Tensor  # () bool: the main stage has started
    tasks = ("classification", "regression")

    def __init__(self, beta: float | None = None, latent_dim: int = 64,
                 fusion: Literal["attention", "concat"] = "attention", fusion_dim: int = 64, heads: int = 4,
                 attention_layers: int = 1, head_hidden: int = 128, trb_weight: float = 1.0,
                 warmup_fraction: float = 0.1, warmup_epochs: int | None = None, warmup_reload_best: bool = True,
                 dynamic_r: bool = True, r_momentum: float = 0.9, r_eps: float = 1e-8,
                 init_logvar: float = -4.0, reference_modality: str | None = None,
                 estimator: Literal["gaussian", "knn", "mine"] = "gaussian",
                 estimator_k: int = 3, estimator_max_samples: int = 4000, estimator_shrinkage: float | None = None,
                 estimator_mine_batch_size: int = 256, estimator_mine_steps: int = 500,
                 fallback_beta: float = 1e-3, regression_likelihood: Literal["laplace", "gaussian"] = "laplace",
                 regression_scale: float = 1.0) -> None:
        super().__init__()
        checks = {"beta": beta is None or (math.isfinite(beta) and beta >= 0), "latent_dim": latent_dim >= 1,
                  "fusion_dim": fusion_dim >= 1, "heads": heads >= 1 and fusion_dim % max(heads, 1) == 0,
                  "attention_layers": attention_layers >= 1, "head_hidden": head_hidden >= 1,
                  "trb_weight": trb_weight >= 0, "warmup_fraction": 0 <= warmup_fraction < 1,
                  "warmup_epochs": warmup_epochs is None or warmup_epochs >= 0, "r_momentum": 0 <= r_momentum < 1,
                  "r_eps": r_eps > 0, "estimator_k": estimator_k >= 1,
                  "estimator_max_samples": estimator_max_samples > 1,
                  "estimator_shrinkage": estimator_shrinkage is None or 0 <= estimator_shrinkage <= 1,
                  "estimator_mine_batch_size": estimator_mine_batch_size >= 2,
                  "estimator_mine_steps": estimator_mine_steps >= 1,
                  "fallback_beta": fallback_beta >= 0, "regression_scale": regression_scale > 0}
        expected = {"heads": f"a positive divisor of fusion_dim={fusion_dim}",
                    "estimator_mine_batch_size": "an integer >= 2", "warmup_fraction": "a number in [0, 1)",
                    "r_momentum": "a number in [0, 1)", "estimator_shrinkage": "null or a number in [0, 1]",
                    "beta": "null or a non-negative number"}
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"method.{name}: expected {expected.get(name, 'a positive value')}, "
                                  f"got {locals()[name]!r}")
        self.beta_option = beta
        self.latent_dim, self.fusion_kind, self.fusion_dim = latent_dim, fusion, fusion_dim
        self.heads, self.attention_layers, self.head_hidden = heads, attention_layers, head_hidden
        self.trb_weight = trb_weight
        self.warmup_fraction, self.warmup_epochs, self.warmup_reload_best = warmup_fraction, warmup_epochs, \
            warmup_reload_best
        self.dynamic_r, self.r_momentum, self.r_eps = dynamic_r, r_momentum, r_eps
        self.reference_modality = reference_modality
        self.init_logvar = init_logvar
        self.estimator_settings = EstimatorSettings(backend=estimator, k=estimator_k,
                                                    max_samples=estimator_max_samples, shrinkage=estimator_shrinkage,
                                                    mine_batch_size=estimator_mine_batch_size,
                                                    mine_steps=estimator_mine_steps)
        self.fallback_beta = fallback_beta
        self.regression_likelihood, self.regression_scale = regression_likelihood, regression_scale
        self.beta = float(beta) if beta is not None else float("nan")
        self.bound: dict[str, Any] = {}
        self.order: list[str] = []

    # ------------------------------------------------------------------ setup
    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        mods = model.modalities
        ref = self.reference_modality or mods[0]
        if ref not in mods:
            raise ConfigError(f"method.reference_modality: {ref!r} is not a modality; expected one of "
                              f"{', '.join(mods)}")
        self.order = [ref, *[m for m in mods if m != ref]]  # KL weight 1 for order[0], r_j for the rest
        dims = model.feature_dims()
        out = data.info.num_classes
        self.vae = nn.ModuleDict({m: nn.Linear(dims[m], 2 * self.latent_dim) for m in mods})
        with torch.no_grad():
            for layer in self.vae.values():
                typing.cast(nn.Linear, layer).bias[self.latent_dim:].fill_(self.init_logvar)
        if self.fusion_kind == "attention":
            self.can: nn.Module = AttentionFusion(mods, self.latent_dim, self.fusion_dim, self.heads,
                                                  self.attention_layers)
        else:
            self.can = LatentConcatFusion(mods, self.latent_dim, self.fusion_dim)
        self.fused_head = mlp([self.fusion_dim, self.head_hidden, out], last_activation=False)
        self.trb = nn.ModuleDict({m: mlp([dims[m] + self.fusion_dim, self.head_hidden, out], last_activation=False)
                                  for m in mods})
        # persistent state (saved in checkpoints, so resuming continues the same EMA)
        self.register_buffer("k_ema", torch.zeros(len(mods)))
        self.register_buffer("k_seen", torch.zeros((), dtype=torch.bool))
        self.register_buffer("r", torch.ones(len(mods) - 1))
        self.register_buffer("main_stage", torch.zeros((), dtype=torch.bool))
        self._estimate_bound(data)

    def _estimate_bound(self, data: DataSplits) -> None:
        views = {m: data.train.inputs[m] for m in self.order}
        settings = self.estimator_settings
        report = information_report(views, settings)
        fallback = None
        if not report.valid and settings.backend != "gaussian":
            fallback = (f"{settings.backend} estimate gave non-positive or non-finite entropies "
                        f"(joint {report.H_joint:.4g}, sum {report.H_sum:.4g}); used the gaussian backend")
            first = report.to_dict()
            report = information_report(views, EstimatorSettings(**{**settings.__dict__, "backend": "gaussian"}))
            report.extra["first_attempt"] = first
        m_l, m_u = beta_bounds(report) if report.valid else (None, None)
        if self.beta_option is not None:
            self.beta, source = float(self.beta_option), "config"
        elif m_l is not None:
            self.beta, source = m_l, "M_l"
        else:
            self.beta, source = self.fallback_beta, "fallback_beta"
            fallback = ((fallback + "; ") if fallback else "") + (
                f"no backend gave positive entropies (joint {report.H_joint:.4g}); beta = fallback_beta")
            warnings.warn(f"omib: entropy bound undefined on {data.info.name}; using beta={self.fallback_beta}",
                          stacklevel=2)
        info = report.to_dict()
        self.bound = {"M_l": m_l, "M_u": m_u, "beta": self.beta, "beta_source": source,
                      "bound_factor": 2 * len(self.order) - 1, "H": info.pop("H"), "I": info.pop("I"),
                      "valid": info.pop("valid"), "fallback": fallback, "reference_modality": self.order[0],
                      "estimator": {**info.pop("settings"), **info, "inputs": "training split, standardised"}}

    # ------------------------------------------------------------------ stages
    def num_warmup(self, epochs: int) -> int:
        if epochs < 2:
            return 0
        if self.warmup_epochs is not None:
            return min(self.warmup_epochs, epochs - 1)
        if self.warmup_fraction <= 0:
            return 0
        return min(max(1, round(self.warmup_fraction * epochs)), epochs - 1)

    def stages(self, epochs: int) -> list[Stage]:
        def warm(name: str) -> bool:
            return name.startswith(("model.encoders.", "objective.trb."))

        def main(name: str) -> bool:  # the model's own fusion / heads are unused by OMIB
            return name.startswith(("model.encoders.", "objective."))

        w = self.num_warmup(epochs)
        main_stage = Stage("main", epochs - w, trainable=main, reload_best=self.warmup_reload_best)
        return [Stage("warmup", w, trainable=warm), main_stage] if w else [main_stage]

    # ------------------------------------------------------------------ losses
    def task_loss(self, logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
        """Cross-entropy; for regression the negative log-likelihood (up to a constant) of a Laplace (L1)
        or Gaussian predictive with scale ``regression_scale``."""
        if not self.regression:
            return super().task_loss(logits, target, reduction)
        diff = (logits[..., 0] - target.float()) / self.regression_scale
        loss = diff.abs() if self.regression_likelihood == "laplace" else 0.5 * diff.square()
        return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss

    def prediction_kl(self, p_logits: Tensor, q_logits: Tensor) -> Tensor:
        """``(B,)`` ``KL(p || q)`` between predictive distributions: categorical (softmax of the logits), or
        for regression Laplace / Gaussian with means ``p_logits[:, 0]``, ``q_logits[:, 0]`` and the fixed scale
        (Gaussian: ``d^2 / (2 s^2)``; Laplace: ``|d|/s + exp(-|d|/s) - 1``)."""
        if self.regression:
            d = (p_logits[..., 0] - q_logits[..., 0]) / self.regression_scale
            if self.regression_likelihood == "gaussian":
                return 0.5 * d.square()
            a = d.abs()
            return a + torch.exp(-a) - 1.0
        return categorical_kl(F.log_softmax(p_logits, -1), F.log_softmax(q_logits, -1))

    def _zeta(self, feats: dict[str, Tensor], sample: bool) -> tuple[dict[str, Tensor], dict[str, Tensor],
                                                                        dict[str, Tensor]]:
        mu, logvar, zeta = {}, {}, {}
        for m in self.order:
            mu[m], lv = self.vae[m](feats[m]).chunk(2, -1)
            logvar[m] = lv.clamp(-12.0, 8.0)
            zeta[m] = gaussian_sample(mu[m], logvar[m]) if sample else mu[m]
        return mu, logvar, zeta

    @torch.no_grad()
    def update_r(self, k_batch_sum: Tensor, count: int) -> Tensor:
        """Fold one batch's summed ``K_m`` (``(M,)``, order of :attr:`order`) into the EMA and return ``r``."""
        k_sum = k_batch_sum.detach().float()
        stats = torch.cat([k_sum, torch.full((1,), float(count), dtype=k_sum.dtype, device=k_sum.device)])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)
        k = stats[:-1] / stats[-1].clamp_min(1.0)
        if self.r_momentum > 0:  # the first batch initialises the EMA (no host sync: torch.where on the flag)
            k = torch.where(self.k_seen, self.r_momentum * self.k_ema + (1 - self.r_momentum) * k, k)
        self.k_ema.copy_(k)
        self.k_seen.fill_(True)
        if self.dynamic_r:
            self.r.copy_(r_closed_form(self.k_ema[0], self.k_ema[1:], self.r_eps))
        return self.r

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        feats = model.encode(batch.inputs)
        y = batch.target
        n = y.shape[0]
        if state.stage == "warmup":
            self.main_stage.fill_(False)
            noise = torch.randn(n, self.fusion_dim, device=y.device, dtype=feats[self.order[0]].dtype)
            trb = {m: self.trb[m](torch.cat([feats[m], noise], -1)) for m in self.order}
            parts = {f"trb_{m}": self.task_loss(v, y) for m, v in trb.items()}
            loss = torch.stack(list(parts.values())).sum()
            return ObjectiveOutput(loss, ensemble_prediction(trb, self.regression).detach(),
                                   {k: v.detach() for k, v in parts.items()})

        self.main_stage.fill_(True)
        mu, logvar, zeta = self._zeta(feats, sample=self.training)
        xi = self.can(zeta)
        logits = self.fused_head(xi)
        task = self.task_loss(logits, y)
        kl = {m: gaussian_kl(mu[m], logvar[m]).sum(-1).mean() for m in self.order}  # summed over latent dims
        c = xi.detach()
        trb = {m: self.trb[m](torch.cat([feats[m], c], -1)) for m in self.order}
        trb_loss = {m: self.task_loss(v, y) for m, v in trb.items()}
        with torch.no_grad():
            k_sum = torch.stack([self.prediction_kl(trb[m], logits).sum() for m in self.order])
            r = self.update_r(k_sum, n) if self.training else self.r
        weighted_kl = kl[self.order[0]] + sum(r[j - 1] * kl[m] for j, m in enumerate(self.order) if j > 0)
        loss = task + self.beta * weighted_kl + self.trb_weight * torch.stack(list(trb_loss.values())).sum()
        parts = {"task": task, "kl_weighted": self.beta * weighted_kl,
                 **{f"kl_{m}": v for m, v in kl.items()}, **{f"trb_{m}": v for m, v in trb_loss.items()}}
        if self.training:
            for j, m in enumerate(self.order):
                self.log_epoch(f"K_{m}", self.k_ema[j], n)
                if j > 0:
                    self.log_epoch(f"r_{m}", r[j - 1], n)
        return ObjectiveOutput(loss, logits.detach(), {k: v.detach() for k, v in parts.items()})

    #: input-independent parameters that act as biases (zeroed and frozen by ``train.mode=one_class``)
    one_class_constants = ("can.cls", "can.modality_embedding")

    def representation(self, model: MultimodalModel, batch: Batch, state: TrainState) -> tuple[Tensor,
                                                                                           dict[str, Tensor]]:
        """The fused representation for ``train.mode=one_class``: ``xi = CAN(zeta)`` ``(B, fusion_dim)`` (``zeta``
        sampled when training, ``mu`` at evaluation) and the bottleneck term ``{"kl_weighted": beta * (KL_1 +
        sum_j r_j KL_j)}``. Without a task there are no predictive distributions, so ``r`` keeps its value (1)."""
        feats = model.encode(batch.inputs)
        mu, logvar, zeta = self._zeta(feats, sample=self.training)
        kl = {m: gaussian_kl(mu[m], logvar[m]).sum(-1).mean() for m in self.order}
        weighted = kl[self.order[0]] + sum(self.r[j - 1] * kl[m] for j, m in enumerate(self.order) if j > 0)
        return self.can(zeta), {"kl_weighted": self.beta * weighted}

    @torch.no_grad()
    def fused_representation(self, model: MultimodalModel, inputs: dict[str, Tensor]) -> Tensor:
        """The deterministic fused representation ``xi = CAN(mu_1, ..., mu_M)`` ``(B, fusion_dim)`` of ``inputs``
        (``{modality: (B, ...)}``), the input of the fused head at evaluation (for probes such as
        ``benchmarks/omib_sweep.py``'s factor probe)."""
        _, _, zeta = self._zeta(model.encode(inputs), sample=False)
        return self.can(zeta)

    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        """Deterministic: ``dDec(CAN(mu_1..mu_M))`` (no sampling); before the main stage has started, the
        task-relevance heads' ensemble with ``c = 0`` (the warm-up noise's mean)."""
        feats = model.encode(batch.inputs)
        if not bool(self.main_stage):
            n = next(iter(feats.values())).shape[0]
            c = feats[self.order[0]].new_zeros(n, self.fusion_dim)
            trb = {m: self.trb[m](torch.cat([feats[m], c], -1)) for m in self.order}
            return Prediction(ensemble_prediction(trb, self.regression))
        _, _, zeta = self._zeta(feats, sample=False)
        return Prediction(self.fused_head(self.can(zeta)))

    def run_metrics(self) -> dict[str, Any]:
        out = dict(self.bound)
        if self.order:
            out["r"] = {m: float(self.r[j - 1]) for j, m in enumerate(self.order) if j > 0}
            out["K"] = {m: float(self.k_ema[j]) for j, m in enumerate(self.order)}
        return {"omib": out}
