"""MIB: multimodal information bottleneck, early / late / complete fusion (Mai, Zeng, Hu, "Multimodal information
bottleneck: learning minimal sufficient unimodal and multimodal representations", IEEE TMM 2022)."""

from __future__ import annotations

import typing
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch, DataSplits
from ..errors import ConfigError
from ..layers import gaussian_kl, gaussian_sample, mlp
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, Prediction, TrainState

FUSIONS = ("early", "late", "complete")


class Bottleneck(nn.Module):
    """A variational bottleneck ``q(z | h) = N(mu(h), diag(sigma(h)^2))``: ``h -> Linear -> ReLU`` (``hidden`` wide),
    then ``mu = Linear(.)`` and ``sigma = softplus(Linear(.) - 5)`` (the authors' parametrisation: the bottleneck
    starts nearly deterministic, ``sigma ~ 0.007``), ``latent_dim`` wide."""

    def __init__(self, in_dim: int, hidden: int, latent_dim: int) -> None:
        super().__init__()
        self.body = mlp([in_dim, hidden])
        self.mu = nn.Linear(hidden, latent_dim)
        self.raw_std = nn.Linear(hidden, latent_dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, logvar)``, each ``(B, latent_dim)``."""
        body = self.body(h)
        std = F.softplus(self.raw_std(body) - 5.0).clamp_min(1e-6)
        return self.mu(body), 2.0 * torch.log(std)


@METHODS.register("mib")
class MIB(Objective):
    """Information bottlenecks on the unimodal and/or the fused representation, chosen by ``fusion``.

    With encoders ``h_m = enc_m(x_m)`` (the model's), ``KL(q) = KL(q(z | .) || N(0, I))`` and ``L_task`` the
    cross-entropy (L1 for regression)::

        early    (E-MIB): z = IB_f(fuse(h_1..h_M));            L = L_task(D(z)) + beta KL(q(z))
        late     (L-MIB): z_m = IB_m(h_m), u = G(z_1..z_M);
                          L = L_task(D(u)) + sum_m [L_task(D_m(z_m)) + beta KL(q(z_m))]
        complete (C-MIB): z_m = IB_m(h_m), z = IB_f(G(z_1..z_M));
                          L = L_task(D(z)) + beta KL(q(z)) + sum_m [L_task(D_m(z_m)) + beta KL(q(z_m))]

    ``fuse`` is the model's fusion module (early fusion of the encoder features); ``G`` is a concatenation fusion of
    the latents (``Linear -> ReLU`` to ``latent_dim``); ``D``, ``D_m`` are linear decoders (predictors). Latents are
    sampled by reparameterisation when training and are the means at evaluation. The model's head and unimodal heads
    are unused; the late/complete variants report their unimodal decoders' predictions ``D_m(mu_m)``.

    Args:
        fusion: ``early`` (E-MIB), ``late`` (L-MIB) or ``complete`` (C-MIB).
        beta: weight of every KL term (the authors' 1e-3).
        latent_dim: width of every latent ``z`` (the authors' 50).
        hidden: width of each bottleneck's hidden layer (the authors' 1024).
        kl_reduction: ``mean`` (the authors': the KL averaged over latent dimensions and the batch) or ``sum``
            (summed over latent dimensions, averaged over the batch).
    """

    description = "multimodal information bottleneck on early-fused (E-MIB), unimodal (L-MIB) or both (C-MIB) latents"
    needs_feature_vectors = True

    def __init__(self, fusion: Literal["early", "late", "complete"] = "complete", beta: float = 1e-3,
                 latent_dim: int = 50, hidden: int = 1024, kl_reduction: Literal["mean", "sum"] = "mean") -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ConfigError(f"method.fusion: expected one of {', '.join(FUSIONS)} (E-MIB, L-MIB, C-MIB), "
                              f"got {fusion!r}")
        if kl_reduction not in ("mean", "sum"):
            raise ConfigError(f"method.kl_reduction: expected mean or sum, got {kl_reduction!r}")
        for name, value in (("beta", beta), ("latent_dim", latent_dim), ("hidden", hidden)):
            if not value >= (0 if name == "beta" else 1):
                raise ConfigError(f"method.{name}: expected a {'non-negative number' if name == 'beta' else 'positive'}"
                                  f" value, got {value!r}")
        self.fusion = fusion
        self.beta = beta
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.kl_reduction = kl_reduction
        self.order: list[str] = []

    @property
    def unimodal_bottlenecks(self) -> bool:
        return self.fusion in ("late", "complete")

    @property
    def fused_bottleneck(self) -> bool:
        return self.fusion in ("early", "complete")

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        self.order = list(model.modalities)
        out = data.info.num_classes
        dims = model.feature_dims()
        k = self.latent_dim
        if self.unimodal_bottlenecks:
            self.ib_uni = nn.ModuleDict({m: Bottleneck(dims[m], self.hidden, k) for m in self.order})
            self.dec_uni = nn.ModuleDict({m: nn.Linear(k, out) for m in self.order})
            self.latent_fusion = mlp([len(self.order) * k, k])
        if self.fused_bottleneck:
            fused_dim = k if self.fusion == "complete" else int(typing.cast(int, model.fusion.out_dim))
            self.ib_fused = Bottleneck(fused_dim, self.hidden, k)
            self.dec = nn.Linear(k, out)
        else:
            self.dec = nn.Linear(k, out)

    def kl(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """``KL(N(mu, e^logvar) || N(0, I))``: mean over the batch of the mean (``kl_reduction=mean``) or the sum
        (``sum``) over the latent dimensions; nats."""
        per_dim = gaussian_kl(mu, logvar)
        return per_dim.mean() if self.kl_reduction == "mean" else per_dim.sum(-1).mean()

    def _pass(self, model: MultimodalModel, batch: Batch, sample: bool) -> tuple[Tensor, dict[str, Tensor],
                                                                                 dict[str, Tensor]]:
        """Fused output ``(B, C)``, unimodal decoder outputs ``{m: (B, C)}`` (late/complete) and KL terms."""
        feats = model.encode(batch.inputs)
        kls: dict[str, Tensor] = {}
        uni: dict[str, Tensor] = {}
        if self.unimodal_bottlenecks:
            zs = []
            for m in self.order:
                mu, logvar = self.ib_uni[m](feats[m])
                z = gaussian_sample(mu, logvar) if sample else mu
                kls[f"kl_{m}"] = self.kl(mu, logvar)
                uni[m] = self.dec_uni[m](z)
                zs.append(z)
            h = self.latent_fusion(torch.cat(zs, -1))
        else:
            h = model.fuse(feats)
        if self.fused_bottleneck:
            mu, logvar = self.ib_fused(h)
            kls["kl_fused"] = self.kl(mu, logvar)
            h = gaussian_sample(mu, logvar) if sample else mu
        return self.dec(h), uni, kls

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        logits, uni, kls = self._pass(model, batch, sample=self.training)
        y = batch.target
        parts: dict[str, Tensor] = {"task": self.task_loss(logits, y)}
        for m, v in uni.items():
            parts[f"uni_{m}"] = self.task_loss(v, y)
        loss = torch.stack(list(parts.values())).sum()
        if kls:
            loss = loss + self.beta * torch.stack(list(kls.values())).sum()
        parts.update(kls)
        return ObjectiveOutput(loss, logits.detach(), {k: v.detach() for k, v in parts.items()})

    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        logits, uni, _ = self._pass(model, batch, sample=False)
        return Prediction(logits, uni or None)
