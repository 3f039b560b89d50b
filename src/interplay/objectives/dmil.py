"""DMIL: decomposition-based multimodal interaction learning (Yang, Wei, Ni, Xu, Hu; CVPR 2026).

Each sample's representation is decomposed into redundant (R), unique (U1, U2) and synergistic (S)
components with variational bottlenecks; a per-sample gate mixes the components' predictions. Three
stages: intra-modality decomposition (ID), consistency decomposition (CD) and gate with the ID part
frozen, then fine-tuning of everything. With more than two modalities only the ID part exists (the
paper's setting there): the labelled ``intra_modality_only`` variant gates the per-modality ID heads.
The paper's ablations are variants too: ``fc`` (deterministic layers instead of variational bottlenecks, no
KL terms) and ``cd_only`` (the CD components and gate on the projected features, without the ID module).
See ``docs/methods/dmil.md``.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch, DataSplits
from ..errors import ConfigError
from ..layers import gaussian_kl, gaussian_sample, mlp
from ..metrics import auroc
from ..models import MultimodalModel
from .base import (
    METHODS,
    EvalOutput,
    Objective,
    ObjectiveOutput,
    Prediction,
    Stage,
    TrainState,
    ensemble_prediction,
)

#: component of the full variant -> the pid-xor source it should pick up (``U1``/``U2``: sorted modalities)
FULL_COMPONENTS: dict[str, str] = {"R": "redundant", "U1": "unique1", "U2": "unique2", "S": "synergistic"}
#: parameters of these modules (and the model's encoders) form the intra-modality decomposition
ID_PREFIXES = ("objective.proj.", "objective.id_")
STAGE_INDEX = {"id": 1, "cd": 2, "gate": 2, "finetune": 3}
LOGVAR_BOUND = 10.0
INIT_LOGVAR = -4.0
#: accepted values of ``variant`` (``auto`` resolves to ``full`` or ``id_only``)
VARIANTS = ("auto", "full", "fc", "id_only", "cd_only")
#: variants with the R, U1, U2, S components (they need exactly two modalities)
DECOMPOSED = ("full", "fc", "cd_only")
#: accepted values of ``routing`` (``none``: the paper's gate, trained only through the mixed prediction)
ROUTINGS = ("none", "sufficiency")


class Latent(NamedTuple):
    """A variational latent: ``z`` (sample when training, else ``mu``), ``mu``, ``logvar``; each ``(B, d)``."""

    z: Tensor
    mu: Tensor
    logvar: Tensor


def _scale_preserving(layer: nn.Linear) -> nn.Linear:
    """LeCun-normal weights (``std = 1 / sqrt(fan_in)``), zero bias: a linear map that keeps the input's scale."""
    nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
    nn.init.zeros_(layer.bias)
    return layer


class VariationalBottleneck(nn.Module):
    """``Linear(in, 2d) -> (mu, logvar)``; ``z = mu + eps * exp(logvar / 2)`` when ``sample`` else ``mu``.

    ``mu`` starts scale-preserving and ``logvar`` at ``init_logvar`` (small noise): a latent that starts out
    orders of magnitude smaller than its noise, as PyTorch's default initialisation gives after two linear
    layers, cannot learn products such as the synergy component's ``N_1 * N_2``.
    """

    def __init__(self, in_dim: int, dim: int, init_logvar: float = INIT_LOGVAR) -> None:
        super().__init__()
        self.net = nn.Linear(in_dim, 2 * dim)
        with torch.no_grad():
            nn.init.normal_(self.net.weight[:dim], std=in_dim ** -0.5)
            nn.init.normal_(self.net.weight[dim:], std=0.01 * in_dim ** -0.5)
            self.net.bias[:dim].zero_()
            self.net.bias[dim:].fill_(init_logvar)

    def forward(self, x: Tensor, sample: bool) -> Latent:
        mu, logvar = self.net(x).chunk(2, dim=-1)
        logvar = logvar.clamp(-LOGVAR_BOUND, LOGVAR_BOUND)
        z = gaussian_sample(mu, logvar) if sample else mu
        return Latent(z, mu, logvar)


class DeterministicLatent(nn.Module):
    """The ``fc`` ablation's replacement of :class:`VariationalBottleneck`: ``z = mu = Linear(in, d)(x)``
    (scale-preserving initialisation), never sampled; ``logvar`` is a zero ``(1, 1)`` placeholder that no loss reads
    (the ``fc`` variant has no KL terms)."""

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.net = _scale_preserving(nn.Linear(in_dim, dim))

    def forward(self, x: Tensor, sample: bool) -> Latent:
        mu = self.net(x)
        return Latent(mu, mu, mu.new_zeros(1, 1))


def _total(terms: Iterable[Tensor]) -> Tensor:
    """``sum(terms)`` (Python's, from 0), typed as the tensor it is for a non-empty ``terms``."""
    return typing.cast(Tensor, sum(terms))


class Intra(NamedTuple):
    """Intra-modality decomposition of a batch: per modality ``Z_m``, ``M_m``, ``N_m`` and ID-head logits."""

    z: dict[str, Tensor]
    m: dict[str, Latent]
    n: dict[str, Latent]
    logits: dict[str, Tensor]


class Fused(NamedTuple):
    """Component logits ``(B, K, C)``, gate ``(B, K)`` (rows sum to 1), mixed prediction ``(B, C)`` and the
    CD latents (full variant; empty for the intra-modality-only variant)."""

    logits: Tensor
    gate: Tensor
    prediction: Tensor
    latents: dict[str, Latent]


@METHODS.register("dmil")
class DMIL(Objective):
    """DMIL (two modalities): ``y_hat = sum_c g_c(x) l_c`` over components ``c in {R, U1, U2, S}``.

    Modules (``d = dim``), on the model's encoder features ``h_m``:

    * ID: ``Z_m = proj_m(h_m)``; ``M_m = VB(Z_m)`` (task part, linear head), ``N_m = VB(Z_m)`` (rest); a decoder
      reconstructs ``Z_m`` from ``[M_m, N_m]``.
    * CD: ``R = VB([mu(M_1), mu(M_2)])``, ``U_m = VB(mu(M_m))``; decoders reconstruct ``mu(M_m)`` from
      ``[R, U_m]``; alignment ``sum_m KL(q(R | M_1, M_2) || v_m(R | M_m))`` with Gaussian heads ``v_m``.
    * Synergy: ``S = f([N_1, N_2, N_1 * N_2])`` with ``f = MLP(3d -> 4d -> d)`` (``synergy="mlp"``, default) or the
      authors' ``Linear(3d, d)`` (``synergy="linear"``). ``N`` is sampled when training (its mean in stage 2).
    * Linear heads ``l_R, l_U1, l_U2, l_S``; gate ``g = softmax(MLP(4d -> d -> 4)([R, U_1, U_2, S]))``.

    Losses (KLs to ``N(0, I)`` unless said, each averaged over the batch):

    * ``L1 = sum_m [CE(head(M_m)) + w_kl_id * (KL(M_m) + KL(N_m)) + w_rec_id * MSE(dec([M_m, N_m]), Z_m)]``
    * ``L2 = w_comp * sum_c CE(l_c) + w_kl_cd * (KL(R) + sum_m KL(U_m)) + alpha * sum_m KL(q(R) || v_m)
      + w_rec_cd * sum_m MSE(dec([R, U_m]), mu(M_m))``
    * stage ``id``: ``L1``; stage ``cd``: ``CE(y_hat) + L2`` with encoders, projections and ID modules
      frozen; stage ``finetune``: ``CE(y_hat) + beta * L1 + gamma * L2`` (the paper's ``L3``).

    Ablations (the paper's Table "FC / ID only / CD only"):

    * ``variant="fc"``: every ``VB`` is a deterministic ``Linear(in, d)`` (``z = mu``, no sampling) and every KL
      term is gone: ``L1 = sum_m [CE(head(M_m)) + w_rec_id * rec_m]``, ``L2 = w_comp * sum_c CE(l_c) + w_rec_cd *
      sum_m rec_m`` (no ``KL(R)``, ``KL(U_m)``, no alignment, which is a KL between Gaussians). Same stages.
    * ``variant="cd_only"``: no intra-modality decomposition (no ``M_m``, ``N_m``, ID heads, ``L1``): the CD
      module and the synergy map read ``Z_m`` directly (``R = VB([Z_1, Z_2])``, ``U_m = VB(Z_m)``, decoders
      reconstruct ``Z_m`` from ``[R, U_m]``, alignment heads ``v_m(R | Z_m)``, ``S = f([Z_1, Z_2, Z_1 * Z_2])``).
      One stage ``cd`` of ``train.epochs`` epochs trains encoders, projections and every CD module on
      ``CE(y_hat) + L2`` at ``stage2_lr_scale * train.lr`` (nothing would train the encoders otherwise). The
      unimodal predictions are ``l_U1`` and ``l_U2``.

    Reconstruction targets are detached (the decomposition describes ``Z_m``; it does not reshape it).
    With ``synergy_focus`` (an Interplay addition, not in the paper) S's cross-entropy is weighted per sample
    by how badly R, U1 and U2 predict it (``1 - max_c p_c(y)``, normalised to mean 1).
    ``kl_reduction="sum"`` sums KLs over latent dimensions (a proper bottleneck; the authors' code averages).

    Routing (an Interplay addition, not in the paper; ``routing="none"`` is the paper's gate, trained only through
    ``CE(y_hat)``): ``routing="sufficiency"`` adds ``w_route * CE(g, t)`` in stages ``cd`` and ``finetune``, a
    cross-entropy of the gate ``g (B, 4)`` against the cheapest sufficient component ``t`` (``R`` if either
    modality alone suffices, ``U_m`` if only modality ``m`` does, ``S`` if neither), where "modality ``m``
    suffices" is read softly from the unique component's detached probability of the label above chance
    (:meth:`_loss_route`).

    With more than two modalities (or ``variant="id_only"``) only the ID part exists: components are the
    ``M_m`` heads, the gate sees ``[M_1..M_K]``, stage 2 (``gate``) trains the gate alone on ``CE(y_hat)``,
    stage 3 minimises ``CE(y_hat) + beta * L1``.

    Stage lengths: ``stage1_epochs`` / ``stage2_epochs`` when given, else ``round(stage1_frac * epochs)`` /
    ``round(stage2_frac * epochs)`` (at least 1 each when the fraction is positive); stage 3 gets the rest of
    ``train.epochs``, so the total budget equals every other method's. Stage learning rates are
    ``stage<k>_lr_scale * train.lr``. Validation (best checkpoint) in stage 1 uses the mean of the ID heads'
    probabilities; later stages use ``y_hat``.

    Args:
        dim: latent width ``d``.
        variant: ``"auto"`` (``full`` for two modalities, ``id_only`` otherwise), ``"full"``, ``"id_only"``, or
            the ablations ``"fc"`` and ``"cd_only"`` (two modalities).
        combine: ``"logit"``: ``y_hat = sum_c g_c l_c``; ``"prob"``: ``log sum_c g_c softmax(l_c)``.
        kl_reduction: ``"sum"`` or ``"mean"`` of each KL over latent dimensions.
        stage1_frac, stage2_frac, stage1_epochs, stage2_epochs: stage lengths (see above).
        stage1_lr_scale, stage2_lr_scale, stage3_lr_scale: learning-rate multipliers per stage.
        w_kl_id, w_rec_id: KL and reconstruction weights inside ``L1``.
        w_comp, w_kl_cd, alpha, w_rec_cd: component CE, CD KL, alignment and reconstruction weights inside ``L2``
            (``alpha`` is the paper's alpha).
        beta, gamma: weights of ``L1`` and ``L2`` in the stage-3 loss (the paper's beta and gamma).
        synergy: ``"mlp"`` or ``"linear"`` map from ``[N_1, N_2, N_1 * N_2]`` to ``S``.
        synergy_focus: weight S's cross-entropy towards samples the other components get wrong.
        routing: ``"none"`` (the paper's gate) or ``"sufficiency"`` (the gate also learns to pick the cheapest
            sufficient component); needs the R, U1, U2, S components and a classification task.
        w_route: weight of the routing loss (0.3: chosen on validation over {0.3, 1}, docs/methods/dmil.md).
    """

    description = "DMIL: variational R/U/S decomposition, per-sample gate over component predictions, 3 stages"
    needs_feature_vectors = True
    stage_index: Tensor  # () buffer: the stage the weights belong to

    def __init__(self, dim: int = 32, variant: Literal["auto", "full", "fc", "id_only", "cd_only"] = "auto",
                 combine: Literal["logit", "prob"] = "logit", synergy: Literal["mlp", "linear"] = "mlp",
                 synergy_focus: bool = False, kl_reduction: Literal["sum", "mean"] = "sum",
                 stage1_frac: float = 0.1, stage2_frac: float = 0.1, stage1_epochs: int | None = None,
                 stage2_epochs: int | None = None, stage1_lr_scale: float = 1.0, stage2_lr_scale: float = 1.0,
                 stage3_lr_scale: float = 1.0, w_kl_id: float = 1e-3, w_rec_id: float = 0.1, w_comp: float = 0.5,
                 w_kl_cd: float = 1e-3, alpha: float = 1e-3, w_rec_cd: float = 0.1, beta: float = 0.5,
                 gamma: float = 1.0, routing: Literal["none", "sufficiency"] = "none", w_route: float = 0.3) -> None:
        super().__init__()
        if dim < 1:
            raise ConfigError(f"method.dim: expected a positive integer, got {dim}")
        if variant not in VARIANTS:
            raise ConfigError(f"method.variant: expected one of {', '.join(VARIANTS)}, got {variant!r}")
        if routing not in ROUTINGS:
            raise ConfigError(f"method.routing: expected one of {', '.join(ROUTINGS)}, got {routing!r}")
        for name, frac in (("stage1_frac", stage1_frac), ("stage2_frac", stage2_frac)):
            if not 0 <= frac <= 1:
                raise ConfigError(f"method.{name}: expected a fraction in [0, 1], got {frac}")
        if stage1_frac + stage2_frac > 1:
            raise ConfigError(f"method.stage1_frac + method.stage2_frac must not exceed 1, got "
                              f"{stage1_frac} + {stage2_frac}")
        for name, n in (("stage1_epochs", stage1_epochs), ("stage2_epochs", stage2_epochs)):
            if n is not None and n < 0:
                raise ConfigError(f"method.{name}: expected a non-negative integer, got {n}")
        weights = {"w_kl_id": w_kl_id, "w_rec_id": w_rec_id, "w_comp": w_comp, "w_kl_cd": w_kl_cd, "alpha": alpha,
                   "w_rec_cd": w_rec_cd, "beta": beta, "gamma": gamma, "w_route": w_route,
                   "stage1_lr_scale": stage1_lr_scale,
                   "stage2_lr_scale": stage2_lr_scale, "stage3_lr_scale": stage3_lr_scale}
        negative = [k for k, v in weights.items() if not v >= 0]
        if negative:
            raise ConfigError(f"method.{negative[0]}: expected a non-negative number, got {weights[negative[0]]}")
        self.dim = dim
        self.variant = variant
        self.combine = combine
        self.kl_reduction = kl_reduction
        self.stage1_frac, self.stage2_frac = stage1_frac, stage2_frac
        self.stage1_epochs, self.stage2_epochs = stage1_epochs, stage2_epochs
        self.lr_scales = (stage1_lr_scale, stage2_lr_scale, stage3_lr_scale)
        self.w_kl_id, self.w_rec_id = w_kl_id, w_rec_id
        self.w_comp, self.w_kl_cd, self.alpha, self.w_rec_cd = w_comp, w_kl_cd, alpha, w_rec_cd
        self.beta, self.gamma = beta, gamma
        self.synergy, self.synergy_focus = synergy, synergy_focus
        self.routing, self.w_route = routing, w_route
        self.modalities: list[str] = []
        self.components: list[str] = []
        self.full = True  # R, U1, U2, S components (variants full, fc, cd_only)
        self.kind = "full"  # the resolved variant: full, fc, id_only or cd_only
        self._plan: dict[str, int] = {}
        # which stage the weights belong to (1: ID heads predict; 2, 3: the gated mixture); saved with them
        self.register_buffer("stage_index", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ setup
    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        self.modalities = model.modalities
        k = len(self.modalities)
        if self.variant in DECOMPOSED and k != 2:
            raise ConfigError(f"method.variant: {self.variant!r} needs exactly two modalities, the data has {k}; "
                              f"use variant=id_only (the paper's intra-modality-only setting) or auto")
        self.kind = self.variant if self.variant != "auto" else ("full" if k == 2 else "id_only")
        self.full = self.kind in DECOMPOSED
        if self.routing != "none" and not self.full:
            raise ConfigError(f"method.routing: {self.routing!r} routes between the R, U1, U2, S components, which "
                              f"the {self.kind} variant does not have; use routing=none")
        if self.routing != "none" and data.info.task != "classification":
            raise ConfigError(f"method.routing: {self.routing!r} needs a classification task (it reads each unique "
                              f"component's probability of the label), the data's task is {data.info.task}")
        d, c = self.dim, data.info.num_classes
        dims = model.feature_dims()
        bottleneck = DeterministicLatent if self.kind == "fc" else VariationalBottleneck
        self.proj = nn.ModuleDict({m: _scale_preserving(nn.Linear(dims[m], d)) for m in self.modalities})
        if self.kind != "cd_only":
            self.id_m = nn.ModuleDict({m: bottleneck(d, d) for m in self.modalities})
            self.id_n = nn.ModuleDict({m: bottleneck(d, d) for m in self.modalities})
            self.id_dec = nn.ModuleDict({m: mlp([2 * d, d, d], last_activation=False) for m in self.modalities})
            self.id_head = nn.ModuleDict({m: nn.Linear(d, c) for m in self.modalities})
        if self.full:
            self.components = list(FULL_COMPONENTS)
            self.cd_r = bottleneck(2 * d, d)
            self.cd_u = nn.ModuleDict({m: bottleneck(d, d) for m in self.modalities})
            self.cd_dec = nn.ModuleDict({m: mlp([2 * d, d, d], last_activation=False) for m in self.modalities})
            if self.variational:
                self.cd_align = nn.ModuleDict({m: nn.Linear(d, 2 * d) for m in self.modalities})
            self.syn = nn.Linear(3 * d, d) if self.synergy == "linear" else \
                mlp([3 * d, 4 * d, d], last_activation=False)
            self.heads = nn.ModuleDict({comp: nn.Linear(d, c) for comp in self.components})
        else:
            self.components = list(self.modalities)
        self.gate = mlp([len(self.components) * d, d, len(self.components)], last_activation=False)

    @property
    def variant_label(self) -> str:
        return "intra_modality_only" if self.kind == "id_only" else self.kind

    @property
    def variational(self) -> bool:
        """Whether the latents are variational bottlenecks with KL terms (every variant but ``fc``)."""
        return self.kind != "fc"

    # ------------------------------------------------------------------ stages
    def stage_lengths(self, epochs: int) -> tuple[int, int, int]:
        """Epochs of stages 1, 2, 3 summing to ``epochs``."""
        def length(explicit: int | None, frac: float) -> int:
            if explicit is not None:
                return explicit
            return max(1, round(frac * epochs)) if frac > 0 else 0

        n1 = length(self.stage1_epochs, self.stage1_frac)
        n2 = length(self.stage2_epochs, self.stage2_frac)
        explicit = self.stage1_epochs is not None or self.stage2_epochs is not None
        if explicit and (self.stage1_epochs or 0) + (self.stage2_epochs or 0) > epochs:
            raise ConfigError(f"method.stage1_epochs + method.stage2_epochs exceed train.epochs={epochs}")
        n1 = min(n1, epochs)
        n2 = min(n2, epochs - n1)
        return n1, n2, epochs - n1 - n2

    @staticmethod
    def _trains_id(name: str) -> bool:
        return name.startswith("model.encoders.") or name.startswith(ID_PREFIXES)

    @staticmethod
    def _trains_fusion(name: str) -> bool:
        return name.startswith("objective.") and not name.startswith(ID_PREFIXES)

    @staticmethod
    def _trains_all(name: str) -> bool:
        # the model's fusion MLP, head and unimodal heads are unused by DMIL: they stay frozen
        return name.startswith(("model.encoders.", "objective."))

    def stages(self, epochs: int) -> list[Stage]:
        s1, s2, s3 = self.lr_scales
        if self.kind == "cd_only":  # no ID module to pre-train: one stage trains encoders and the CD part
            self._plan = {"cd": epochs}
            return [Stage("cd", epochs, s2, self._trains_all)] if epochs > 0 else []
        n1, n2, n3 = self.stage_lengths(epochs)
        plan = [Stage("id", n1, s1, self._trains_id),
                Stage("cd" if self.full else "gate", n2, s2, self._trains_fusion),
                Stage("finetune", n3, s3, self._trains_all)]
        self._plan = {s.name: s.epochs for s in plan}
        return [s for s in plan if s.epochs > 0]

    # ------------------------------------------------------------------ building blocks
    def _kl(self, mu: Tensor, logvar: Tensor, mu_p: Tensor | None = None, logvar_p: Tensor | None = None) -> Tensor:
        """``KL(N(mu, e^logvar) || N(mu_p, e^logvar_p))`` (default prior ``N(0, I)``; all ``(B, d)``), reduced over
        dimensions by ``kl_reduction`` and averaged over the batch: a scalar."""
        kl = gaussian_kl(mu, logvar, mu_p, logvar_p)
        kl = kl.sum(-1) if self.kl_reduction == "sum" else kl.mean(-1)
        return kl.mean()

    def _intra(self, feats: dict[str, Tensor], sample: bool) -> Intra:
        z = {m: self.proj[m](feats[m]) for m in self.modalities}
        if self.kind == "cd_only":  # no ID module: the CD part and the synergy map read Z_m (M_m = N_m = Z_m)
            same = {m: Latent(z[m], z[m], z[m].new_zeros(1, 1)) for m in self.modalities}
            return Intra(z, same, same, {})
        lat_m = {m: self.id_m[m](z[m], sample) for m in self.modalities}
        lat_n = {m: self.id_n[m](z[m], sample) for m in self.modalities}
        logits = {m: self.id_head[m](lat_m[m].z) for m in self.modalities}
        return Intra(z, lat_m, lat_n, logits)

    def _mix(self, gate_logits: Tensor, comp_logits: Tensor) -> tuple[Tensor, Tensor]:
        """Gate ``(B, K)`` and prediction ``(B, C)`` from gate logits and component logits ``(B, K, C)``."""
        gate = gate_logits.softmax(-1)
        if self.combine == "logit" or self.regression:
            return gate, (gate.unsqueeze(-1) * comp_logits).sum(1)
        log_p = gate_logits.log_softmax(-1).unsqueeze(-1) + comp_logits.log_softmax(-1)
        return gate, torch.logsumexp(log_p, dim=1)

    def _fuse(self, intra: Intra, sample: bool) -> Fused:
        if not self.full:
            comp = torch.stack([intra.logits[m] for m in self.modalities], 1)
            gate, pred = self._mix(self.gate(torch.cat([intra.m[m].z for m in self.modalities], -1)), comp)
            return Fused(comp, gate, pred, {})
        m1, m2 = self.modalities
        mu = {m: intra.m[m].mu for m in self.modalities}
        lat = {"R": self.cd_r(torch.cat([mu[m1], mu[m2]], -1), sample),
               "U1": self.cd_u[m1](mu[m1], sample), "U2": self.cd_u[m2](mu[m2], sample)}
        n1, n2 = intra.n[m1].z, intra.n[m2].z
        s = self.syn(torch.cat([n1, n2, n1 * n2], -1))
        codes = {"R": lat["R"].z, "U1": lat["U1"].z, "U2": lat["U2"].z, "S": s}
        comp = torch.stack([self.heads[c](codes[c]) for c in self.components], 1)
        gate, pred = self._mix(self.gate(torch.cat([codes[c] for c in self.components], -1)), comp)
        return Fused(comp, gate, pred, lat)

    def _id_prediction(self, logits: dict[str, Tensor]) -> Tensor:
        """Stage-1 prediction: mean of the ID heads' probabilities (mean of outputs for regression)."""
        return ensemble_prediction(logits, self.regression)

    # ------------------------------------------------------------------ losses
    def _loss_id(self, intra: Intra, target: Tensor, parts: dict[str, Tensor]) -> Tensor:
        ce = _total(self.task_loss(intra.logits[m], target) for m in self.modalities)
        kl = _total(self._kl(intra.m[m].mu, intra.m[m].logvar) + self._kl(intra.n[m].mu, intra.n[m].logvar)
                    for m in self.modalities) if self.variational else None
        rec = _total(F.mse_loss(self.id_dec[m](torch.cat([intra.m[m].z, intra.n[m].z], -1)), intra.z[m].detach())
                     for m in self.modalities)
        if kl is None:  # fc: no KL terms
            parts.update(ce_id=ce, rec_id=rec)
            return ce + self.w_rec_id * rec
        parts.update(ce_id=ce, kl_id=kl, rec_id=rec)
        return ce + self.w_kl_id * kl + self.w_rec_id * rec

    def _loss_cd(self, intra: Intra, fused: Fused, target: Tensor, parts: dict[str, Tensor]) -> Tensor:
        if not self.full:  # the components are the ID heads, trained by L1
            return torch.zeros((), device=target.device)
        ce_comp = [self.task_loss(fused.logits[:, i], target) for i in range(len(self.components))]
        if self.synergy_focus and not self.regression:
            ce_comp[-1] = (self._focus_weights(fused.logits, target)
                           * F.cross_entropy(fused.logits[:, -1], target, reduction="none")).mean()
        for name, v in zip(self.components, ce_comp):
            parts[f"ce_{name}"] = v
        parts["ce_comp"] = comp = _total(ce_comp)
        lat = fused.latents
        r = lat["R"]
        if not self.variational:  # fc: no KL of R, U_m, no alignment (a KL between Gaussians)
            rec = _total(F.mse_loss(self.cd_dec[m](torch.cat([r.z, lat[u].z], -1)), intra.m[m].mu.detach())
                         for m, u in zip(self.modalities, ("U1", "U2")))
            parts.update(rec_cd=rec)
            return self.w_comp * comp + self.w_rec_cd * rec
        kl = self._kl(r.mu, r.logvar) + self._kl(lat["U1"].mu, lat["U1"].logvar) + \
            self._kl(lat["U2"].mu, lat["U2"].logvar)
        align = rec = torch.zeros((), device=r.mu.device)
        for m, u in zip(self.modalities, ("U1", "U2")):
            mu_v, logvar_v = self.cd_align[m](intra.m[m].mu).chunk(2, -1)
            align = align + self._kl(r.mu, r.logvar, mu_v, logvar_v.clamp(-LOGVAR_BOUND, LOGVAR_BOUND))
            rec = rec + F.mse_loss(self.cd_dec[m](torch.cat([r.z, lat[u].z], -1)), intra.m[m].mu.detach())
        parts.update(kl_cd=kl, align=align, rec_cd=rec)
        return self.w_comp * comp + self.w_kl_cd * kl + self.alpha * align + self.w_rec_cd * rec

    def _loss_route(self, fused: Fused, target: Tensor, parts: dict[str, Tensor]) -> Tensor:
        """``routing="sufficiency"``: cross-entropy of the gate ``g (B, 4)`` against the cheapest sufficient
        component, ``w_route * mean_b [-sum_c t_bc log g_bc]``.

        Each unique component is a probe of whether its modality alone suffices for the sample: ``s_m =
        clip((p_Um(y) - 1/C) / (1 - 1/C), 0, 1)`` (its probability of the label above chance, detached). The target
        ``t = (s_1 s_2, s_1 (1 - s_2), (1 - s_1) s_2, (1 - s_1)(1 - s_2))`` over ``(R, U1, U2, S)`` puts the weight
        on ``R`` when either modality suffices, on ``U_m`` when only modality ``m`` does, and on ``S`` when neither
        does (the unimodal-agreement rule of interaction types, soft). The components are still trained on every
        sample; only the gate learns where to route.
        """
        with torch.no_grad():
            num_classes = fused.logits.shape[-1]
            probs = fused.logits[:, 1:3].softmax(-1)  # (B, 2, C): U1, U2
            p_y = probs.gather(2, target[:, None, None].expand(-1, 2, 1)).squeeze(-1)  # (B, 2)
            s = ((p_y - 1 / num_classes) / (1 - 1 / num_classes)).clamp(0, 1)
            s1, s2 = s[:, 0], s[:, 1]
            t = torch.stack([s1 * s2, s1 * (1 - s2), (1 - s1) * s2, (1 - s1) * (1 - s2)], 1)
        parts["route"] = route = -(t * fused.gate.clamp_min(1e-12).log()).sum(1).mean()
        return self.w_route * route

    @staticmethod
    @torch.no_grad()
    def _focus_weights(comp_logits: Tensor, target: Tensor) -> Tensor:
        """``synergy_focus``: per-sample weights ``(B,)`` of S's cross-entropy, ``1 - max_{c in R, U1, U2}
        p_c(y)`` normalised to mean 1: S learns what the redundant and unique components cannot predict."""
        k = comp_logits.shape[1] - 1
        p_y = comp_logits[:, :k].softmax(-1).gather(2, target[:, None, None].expand(-1, k, 1)).squeeze(-1)
        w = 1 - p_y.max(1).values
        return w / w.mean().clamp_min(1e-6)

    # ------------------------------------------------------------------ training
    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        stage = STAGE_INDEX.get(state.stage, 3)  # a loop without stages trains everything with the stage-3 loss
        if self.kind == "cd_only":  # one stage, everything trained: CE(y_hat) + L2 (no ID module, no L1)
            stage = 2
        self.stage_index.fill_(stage)
        target = batch.target
        parts: dict[str, Tensor] = {}
        if self.kind == "cd_only":
            intra = self._intra(model.encode(batch.inputs), self.training)
            fused = self._fuse(intra, self.training)
            parts["ce_fused"] = loss = self.task_loss(fused.prediction, target)
            loss = loss + self._loss_cd(intra, fused, target, parts)
            if self.routing != "none":
                loss = loss + self._loss_route(fused, target, parts)
            logits = fused.prediction
            for i, c in enumerate(self.components):
                self.log_epoch(f"gate_{c}", fused.gate[:, i].detach().mean(), len(batch))
        elif stage == 1:
            intra = self._intra(model.encode(batch.inputs), self.training)
            loss = self._loss_id(intra, target, parts)
            logits = self._id_prediction(intra.logits)
        else:
            if stage == 2:  # encoders, projections and ID modules are frozen: deterministic, no graph
                with torch.no_grad():
                    intra = self._intra(model.encode(batch.inputs), sample=False)
            else:
                intra = self._intra(model.encode(batch.inputs), self.training)
            fused = self._fuse(intra, self.training)
            parts["ce_fused"] = loss = self.task_loss(fused.prediction, target)
            if stage == 2:
                loss = loss + self._loss_cd(intra, fused, target, parts)
            else:
                loss = loss + self.beta * self._loss_id(intra, target, parts) \
                    + self.gamma * self._loss_cd(intra, fused, target, parts)
            if self.routing != "none":
                loss = loss + self._loss_route(fused, target, parts)
            logits = fused.prediction
            for i, c in enumerate(self.components):
                self.log_epoch(f"gate_{c}", fused.gate[:, i].detach().mean(), len(batch))
        return ObjectiveOutput(loss, logits.detach(), {k: v.detach() for k, v in parts.items()})

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        intra = self._intra(model.encode(batch.inputs), sample=False)
        fused = self._fuse(intra, sample=False)
        if self.kind == "cd_only":  # no ID heads: the unique components are the unimodal predictions
            logits = fused.prediction
            unimodal = {m: fused.logits[:, self.components.index(u)] for m, u in zip(self.modalities, ("U1", "U2"))}
        else:
            logits = self._id_prediction(intra.logits) if int(self.stage_index) <= 1 else fused.prediction
            unimodal = dict(intra.logits)
        extras = {f"gate_{c}": fused.gate[:, i] for i, c in enumerate(self.components)}
        if self.full:
            for i, c in enumerate(self.components):
                extras[f"pred_{c}"] = fused.logits[:, i, 0] if self.regression else fused.logits[:, i].argmax(-1)
        return Prediction(logits, unimodal, extras)

    def _sources(self) -> dict[str, str]:
        """Component -> the pid-xor source name it corresponds to."""
        if self.full:
            return dict(FULL_COMPONENTS)
        assert self.info is not None
        order = list(self.info.modalities)  # the generator's order: modality i carries source unique<i+1>
        return {m: f"unique{order.index(m) + 1}" for m in self.components}

    def test_metrics(self, out: EvalOutput) -> dict[str, Any]:
        """Gate statistics and component accuracies of a split (test; validation too, every epoch). Where sources
        are known:

        * ``gate_agreement``: the share of samples whose dominant gate component corresponds to their ground-truth
          source, with two references: ``gate_agreement_chance`` (``1 / K``, a uniformly random pick) and
          ``gate_agreement_constant`` (a gate that always picks the component of the most frequent source);
        * ``gate_agreement_macro``: the mean over the present sources of each source's recall (the share of its
          samples dominated by its component): 1 / K for any constant gate;
        * ``gate_auroc``: per component, the AUROC of its gate weight as a score for "the sample is of the
          component's source" (all samples; ``None`` where a class is absent); ``gate_s_auroc`` = ``S``'s
          (synergistic vs the rest);
        * ``component_accuracy_by_source``: the component x true-type accuracy matrix (each component's own
          prediction on each source's samples); ``gate.by_source``: mean gate weight per component per source."""
        gate = torch.stack([out.extras[f"gate_{c}"] for c in self.components], 1).float()
        entropy = -(gate * gate.clamp_min(1e-12).log()).sum(1)
        stats: dict[str, Any] = {"mean": {c: float(gate[:, i].mean()) for i, c in enumerate(self.components)},
                                 "entropy": float(entropy.mean())}
        metrics: dict[str, Any] = {"dmil_variant": self.variant_label, "gate": stats}
        correct: dict[str, Tensor] = {}
        if self.info is not None and self.info.task == "classification":
            preds = {c: out.extras[f"pred_{c}"] for c in self.components} if self.full else \
                {m: v.argmax(-1) for m, v in (out.unimodal_logits or {}).items()}
            correct = {c: p == out.target for c, p in preds.items()}
            metrics["component_accuracy"] = {c: float(v.float().mean()) for c, v in correct.items()}
        names = self.info.interactions if self.info is not None else None
        if names is None or "interaction" not in out.meta:
            return metrics
        source = out.meta["interaction"]
        dominant = gate.argmax(1)
        by_source, dominant_by_source, accuracy_by_source = {}, {}, {}
        for code, name in enumerate(names):
            mask = source == code
            if mask.any():
                by_source[name] = {c: float(gate[mask, i].mean()) for i, c in enumerate(self.components)}
                dominant_by_source[name] = {c: float((dominant[mask] == i).float().mean())
                                            for i, c in enumerate(self.components)}
                accuracy_by_source[name] = {c: float(v[mask].float().mean()) for c, v in correct.items()}
        stats["by_source"] = by_source
        stats["dominant_by_source"] = dominant_by_source
        if correct:
            metrics["component_accuracy_by_source"] = accuracy_by_source
        # samples whose source has a component (all of them for the full variant; unique sources for id_only)
        code_of = {name: code for code, name in enumerate(names)}
        comp_source = self._sources()
        expected = torch.tensor([code_of.get(comp_source[c], -1) for c in self.components])
        eligible = torch.isin(source, expected[expected >= 0])
        if eligible.any():
            metrics["gate_agreement"] = float((expected[dominant[eligible]] == source[eligible]).float().mean())
            # a gate picking uniformly at random, and the best gate that always picks the same component
            metrics["gate_agreement_chance"] = 1.0 / len(self.components)
            metrics["gate_agreement_constant"] = max(float((source[eligible] == e).float().mean()) for e in expected)
            metrics["gate_agreement_samples"] = int(eligible.sum())
            # recall of each present source (share of its samples dominated by its component), averaged
            recalls = [dominant_by_source[comp_source[c]][c] for c in self.components
                       if comp_source[c] in dominant_by_source]
            metrics["gate_agreement_macro"] = sum(recalls) / len(recalls)
        # each component's gate weight as a score for "this sample is of the component's source" (all samples)
        gate_auroc: dict[str, float | None] = {}
        for i, c in enumerate(self.components):
            if comp_source[c] in code_of:
                value = auroc(gate[:, i], source == code_of[comp_source[c]])
                gate_auroc[c] = None if math.isnan(value) else value
        metrics["gate_auroc"] = gate_auroc
        if "S" in gate_auroc:
            metrics["gate_s_auroc"] = gate_auroc["S"]
        return metrics

    def run_metrics(self) -> dict[str, Any]:
        return {"dmil": {"variant": self.variant_label, "components": list(self.components),
                         "stages": dict(self._plan), "combine": self.combine, "kl_reduction": self.kl_reduction,
                         "routing": self.routing}}
