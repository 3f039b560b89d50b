"""MCR: the multimodal competition regularizer (Kontras, Strypsteen, Chatzichristos, Liang, Blaschko, De Vos,
"Balancing multimodal training through game-theoretic regularization", NeurIPS 2025; arXiv 2411.07335)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch, DataSplits
from ..errors import ConfigError
from ..models import MultimodalModel
from .base import METHODS, Objective, ObjectiveOutput, Prediction, TrainState

#: the game's k: each encoder's gradient is grad(L_MIPD_own) + k * grad(sum of the other modalities' L_MIPD)
GAMES = {"greedy": -1.0, "independent": 0.0, "collaborative": 1.0}


def js_divergence(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """``(B,)`` Jensen-Shannon divergence (nats) between the categorical distributions ``softmax(p_logits)`` and
    ``softmax(q_logits)``, ``(B, C)`` each: ``JSD = (KL(p || m) + KL(q || m)) / 2`` with ``m = (p + q) / 2``."""
    logp, logq = F.log_softmax(p_logits, -1), F.log_softmax(q_logits, -1)
    logm = torch.logsumexp(torch.stack([logp, logq]), 0) - math.log(2.0)
    return 0.5 * ((logp.exp() * (logp - logm)).sum(-1) + (logq.exp() * (logq - logm)).sum(-1))


def supervised_nt_xent(views: list[Tensor], labels: Tensor, temperature: float) -> Tensor:
    """Supervised NT-Xent over the features of every modality (``views``: ``V`` tensors ``(B, d)``, stacked into
    ``N = V B`` embeddings, L2-normalised): for every anchor ``a`` and positive ``p != a`` with the same label,
    ``-log(exp(s_ap / t) / (exp(s_ap / t) + sum_{n: y_n != y_a} exp(s_an / t)))``, averaged over the positive pairs
    (cosine similarities ``s``). Pulls same-class features of all modalities together (MCR's ``L_Con``)."""
    z = F.normalize(torch.cat(views), dim=-1)
    y = labels.repeat(len(views))
    sim = z @ z.T / temperature
    same = y[:, None] == y[None, :]
    eye = torch.eye(len(y), dtype=torch.bool, device=z.device)
    pos = same & ~eye
    if not bool(pos.any()):
        return sim.new_zeros(())
    neg_exp = torch.where(same, torch.zeros_like(sim), sim.exp()).sum(-1, keepdim=True)  # (N, 1)
    # -log(e^s / (e^s + sum_neg)) = log(e^s + sum_neg) - s
    per_pair = torch.log(sim.exp() + neg_exp) - sim
    return per_pair[pos].mean()


@METHODS.register("mcr")
class MCR(Objective):
    """Joint fusion plus the multimodal competition regularizer, a game between the modality encoders.

    Unique task information of modality ``m``, ``I(X_m; Y | X_rest)``, is measured by the permutation divergence
    ``JSD_m = mean JSD(f(z with z_m permuted across the batch), f(z))`` over ``num_samples`` random permutations
    (``f``: the model's fusion and head; the clean prediction ``f(z)`` is computed from detached features, so it is a
    fixed target). ``L_MIPD_m = -JSD_m``: an encoder gains by making its modality matter. The game decides which
    encoder gets which gradient: encoder ``i`` follows ``grad_i(L_MIPD_i) + k * grad_i(sum_{j != i} L_MIPD_j)``
    with ``k = -1`` (``greedy``: each modality also wants the others to matter less), ``0`` (``independent``) or
    ``+1`` (``collaborative``). Implemented with detached copies: for each ``m`` the permuted prediction is computed
    twice, once with only ``z_m`` live (``JSD_m^own``) and once with only the others live (``JSD_m^oth``), and::

        L = CE(f(z), y) + w_uni sum_m CE(h_m(z_m), y)
            + lam * sum_m (-JSD_m^own - k JSD_m^oth)                   # L_MIPD (its value is -(1 + k) lam sum_m JSD_m)
            + w_con * SupNTXent(z_1..z_M; y, temperature)              # L_Con: shared task information
            + w_ceb * ||R(f(z).detach()) - [z_1; ...; z_M]||^2         # L_CEB as in the authors' code (MSE, mean)

    The fusion head receives the gradients of every term. Classification only (JSD of class distributions).

    Args:
        lam: weight of ``L_MIPD`` (the authors' CREMA-D setting 0.1).
        game: ``greedy`` (k = -1, the authors' default), ``independent`` (0) or ``collaborative`` (+1).
        num_samples: permutations per batch (the authors' CREMA-D setting 6).
        w_uni: weight of the unimodal-head cross-entropies (the authors' configs: 1).
        w_con: weight of the supervised contrastive term (needs equal feature widths across modalities).
        temperature: contrastive temperature.
        w_ceb: weight of the feature-reconstruction term ``L_CEB`` (0: off, as in the released configs).
    """

    description = "MCR: joint fusion + game-theoretic permutation-divergence regularizer per modality (Kontras et al.)"
    tasks = ("classification",)

    def __init__(self, lam: float = 0.1, game: Literal["greedy", "independent", "collaborative"] = "greedy",
                 num_samples: int = 6, w_uni: float = 1.0, w_con: float = 0.0, temperature: float = 0.5,
                 w_ceb: float = 0.0) -> None:
        super().__init__()
        if game not in GAMES:
            raise ConfigError(f"method.game: expected one of {', '.join(GAMES)}, got {game!r}")
        checks = {"lam": lam >= 0, "num_samples": num_samples >= 1, "w_uni": w_uni >= 0, "w_con": w_con >= 0,
                  "temperature": temperature > 0, "w_ceb": w_ceb >= 0}
        for name, ok in checks.items():
            if not ok:
                kind = "positive" if name in ("num_samples", "temperature") else "non-negative"
                raise ConfigError(f"method.{name}: expected a {kind} value, got {locals()[name]!r}")
        self.lam, self.game, self.k = lam, game, GAMES[game]
        self.num_samples = num_samples
        self.w_uni, self.w_con, self.temperature, self.w_ceb = w_uni, w_con, temperature, w_ceb
        self.trains_unimodal_heads = w_uni > 0

    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        super().setup(model, data)
        dims = model.feature_dims()
        if self.w_con > 0 and len(set(dims.values())) > 1:
            raise ConfigError(f"method.w_con: the contrastive term needs equal feature widths across modalities, got "
                              f"{dims}; set method.w_con=0 or give every encoder the same model.encoder_hidden[-1]")
        if self.w_ceb > 0:
            width = sum(dims.values())
            c = data.info.num_classes
            self.reconstruct = nn.Sequential(nn.Linear(c, width, bias=False), nn.ReLU(),
                                             nn.Linear(width, width, bias=False))

    def mipd(self, model: MultimodalModel, feats: dict[str, Tensor],
             perms: list[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """``L_MIPD = sum_m (-JSD_m^own - k JSD_m^oth)`` (scalar, before ``lam``) and the per-modality ``JSD_m``
        values (detached) for permutations ``perms`` (each ``(B,)``)."""
        detached = {m: z.detach() for m, z in feats.items()}
        rep = torch.cat([torch.arange(len(p), device=p.device) for p in perms])
        shuf = torch.cat(perms)
        with torch.no_grad():
            base = model.logits({m: z[rep] for m, z in detached.items()})
        total = base.new_zeros(())
        jsd: dict[str, Tensor] = {}
        for m in model.modalities:
            own = {j: (feats[j][shuf] if j == m else detached[j][rep]) for j in model.modalities}
            jsd_own = js_divergence(model.logits(own), base).mean()
            total = total - jsd_own
            jsd[m] = jsd_own.detach()
            if self.k != 0:
                oth = {j: (detached[j][shuf] if j == m else feats[j][rep]) for j in model.modalities}
                total = total - self.k * js_divergence(model.logits(oth), base).mean()
        return total, jsd

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        feats = model.encode(batch.inputs)
        logits = model.logits(feats)
        y = batch.target
        parts: dict[str, Tensor] = {"task": F.cross_entropy(logits, y)}
        loss = parts["task"]
        if self.w_uni > 0:
            for m, v in model.unimodal_logits(feats).items():
                parts[f"uni_{m}"] = F.cross_entropy(v, y)
                loss = loss + self.w_uni * parts[f"uni_{m}"]
        if self.lam > 0 and len(y) > 1:
            perms = [torch.randperm(len(y), device=y.device) for _ in range(self.num_samples)]
            reg, jsd = self.mipd(model, feats, perms)
            parts["mipd"] = reg
            loss = loss + self.lam * reg
            for m, v in jsd.items():
                parts[f"jsd_{m}"] = v
        if self.w_con > 0:
            parts["con"] = supervised_nt_xent([feats[m] for m in model.modalities], y, self.temperature)
            loss = loss + self.w_con * parts["con"]
        if self.w_ceb > 0:
            target = torch.cat([feats[m] for m in model.modalities], -1)
            parts["ceb"] = F.mse_loss(self.reconstruct(logits.detach()), target)
            loss = loss + self.w_ceb * parts["ceb"]
        return ObjectiveOutput(loss, logits.detach(), {k: v.detach() for k, v in parts.items()})

    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        feats = model.encode(batch.inputs)
        uni = model.unimodal_logits(feats) if self.trains_unimodal_heads else None
        return Prediction(model.logits(feats), uni)
