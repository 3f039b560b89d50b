"""One-class training (``train.mode=one_class``): Deep SVDD around any objective with a fused representation.

Deep SVDD (Ruff et al., ICML 2018) trains a network ``phi`` on normal samples only so that their
representations gather around a fixed centre ``c``; the anomaly score of a sample is its squared distance to it::

    c     = mean_i phi(x_i; W_0)                  (initial representation, training data, eval mode, no grad;
                                                   coordinates with |c_j| < eps are set to +-eps)
    one-class:      L = mean_i ||phi(x_i) - c||^2
    soft-boundary:  L = R^2 + (1 / nu) mean_i max(0, ||phi(x_i) - c||^2 - R^2)
                    (R: the (1 - nu)-quantile of the batch's distances ||phi(x_i) - c||, updated under no_grad
                    after ``radius_warmup`` epochs)
    score(x) = ||phi(x) - c||^2            (soft-boundary: ||phi(x) - c||^2 - R^2)

``phi`` is the *fused representation of the configured objective* (:class:`OneClass` wraps it): an objective that
defines ``representation(model, batch, state) -> (z (B, D), terms {name: scalar})`` supplies ``z`` and loss terms
that stay in the loss (OMIB: ``xi = CAN(zeta)`` and its bottleneck KL terms); one that predicts with the model's
own fusion (joint and the other losses on ``model.logits``) gives ``z = model.fuse(model.encode(x))`` and no terms.
``modality=m`` instead uses one encoder's features ``enc_m(x_m)`` alone (the single-modality baseline).

Bias-free network: a network with bias terms can map every input to ``c`` (a constant function is a trivial
minimiser of the one-class loss, Ruff et al. Prop. 2). With ``bias_free`` (default) every bias parameter of the
model and of the wrapped objective (every parameter whose own name starts with ``bias``: ``nn.Linear``,
``nn.LayerNorm``, attention projections) is set to 0 before the centre is computed and kept out of the optimiser,
and so are the parameters the objective lists in ``one_class_constants`` (input-independent constants such as
OMIB's CLS token and modality embeddings). An MLP encoder is then ``x -> W_L relu(... relu(W_1 x))``, positively
homogeneous, with no constant path.

The wrapped objective is a sub-module (``objective.inner.*`` in checkpoints); the centre, radius and the
validation threshold are buffers, so ``best.pt`` (weights only) holds everything a reloaded run needs.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ..config import MethodConfig, resolve_params, signature_schema
from ..data import Batch, DataSplits
from ..errors import ConfigError
from ..metrics import best_f1
from ..models import MultimodalModel
from ..objectives import EvalOutput, Objective, ObjectiveOutput, Prediction, Stage, TrainState, build_objective
from ..objectives import method_params as inner_method_params

#: ``train.mode`` values
TRAIN_MODES = ("supervised", "one_class")
#: method parameters of the one-class wrapper carry this prefix (``--set method.svdd_objective=soft-boundary``)
PREFIX = "svdd_"
#: the column of predictions.csv (and key of ``EvalOutput.extras``) holding the anomaly score
SCORE = "anomaly_score"


def _is_bias(name: str) -> bool:
    return name.rsplit(".", 1)[-1].startswith("bias")


class OneClass(Objective):
    """Deep SVDD on the fused representation of ``inner`` (see the module docstring for the math).

    Args:
        inner: the configured objective (its representation, and its loss terms where it has them).
        objective: ``one-class`` (mean squared distance) or ``soft-boundary`` (radius ``R`` and ``nu``).
        nu: soft-boundary: the share of training samples allowed outside the sphere, in (0, 1].
        eps: centre coordinates closer to 0 than this are moved to ``+-eps``.
        bias_free: zero and freeze every bias (and the objective's ``one_class_constants``).
        modality: use this modality's encoder features alone (single-modality baseline); None: the fused
            representation.
        regularisers: keep the wrapped objective's loss terms (e.g. OMIB's KL terms).
        radius_warmup: soft-boundary: epochs before ``R`` is first updated (``R = 0`` until then).
    """

    description = "Deep SVDD one-class training on an objective's fused representation (train.mode=one_class)"
    tasks: ClassVar[tuple[str, ...]] = ("classification",)
    centre: Tensor
    centre_set: Tensor
    radius: Tensor
    threshold: Tensor

    def __init__(self, inner: Objective, objective: Literal["one-class", "soft-boundary"] = "one-class",
                 nu: float = 0.1, eps: float = 0.1, bias_free: bool = True, modality: str | None = None,
                 regularisers: bool = True, radius_warmup: int = 1) -> None:
        super().__init__()
        if objective not in ("one-class", "soft-boundary"):
            raise ConfigError(f"method.{PREFIX}objective: expected one-class or soft-boundary, got {objective!r}")
        if not (math.isfinite(nu) and 0 < nu <= 1):
            raise ConfigError(f"method.{PREFIX}nu: expected a number in (0, 1], got {nu}")
        if not (math.isfinite(eps) and eps >= 0):
            raise ConfigError(f"method.{PREFIX}eps: expected a finite non-negative number, got {eps}")
        if radius_warmup < 0:
            raise ConfigError(f"method.{PREFIX}radius_warmup: expected a non-negative integer, got {radius_warmup}")
        self.inner = inner
        self.objective, self.nu, self.eps = objective, nu, eps
        self.bias_free, self.modality, self.regularisers = bias_free, modality, regularisers
        self.radius_warmup = radius_warmup
        self.register_buffer("centre", torch.zeros(0))
        self.register_buffer("centre_set", torch.zeros((), dtype=torch.bool))
        self.register_buffer("radius", torch.zeros(()))
        self.register_buffer("threshold", torch.zeros(()))
        self._frozen: set[str] = set()
        self._train_split: Any = None
        self._centre_ready = False
        self.n_train_normal: int | None = None
        self.n_train_dropped = 0

    @property
    def setup_needs_data(self) -> bool | None:
        """Reloading: whether the wrapped objective's setup needs the training data (None: its method's rule)."""
        return getattr(self.inner, "setup_needs_data", None)

    # ------------------------------------------------------------------ setup
    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        if data.info.task != "classification" or data.info.num_classes != 2:
            raise ConfigError(f"train.mode=one_class: dataset {data.info.name!r} is {data.info.task} with "
                              f"{data.info.num_classes} classes; expected a target that marks anomalies (0 = normal, "
                              f"1 = anomaly)")
        super().setup(model, data)
        if self.modality is not None and self.modality not in model.modalities:
            raise ConfigError(f"method.{PREFIX}modality: unknown modality {self.modality!r}; expected one of "
                              f"{', '.join(model.modalities)}")
        has_rep = callable(getattr(self.inner, "representation", None))
        if self.modality is None and not has_rep and type(self.inner).predict is not Objective.predict:
            raise ConfigError(f"train.mode=one_class: method {self.inner.registry_name!r} exposes no fused "
                              f"representation (no representation() and its own predict); use e.g. joint or omib")
        normal = data.train.target == 0
        self.n_train_dropped = int((~normal).sum())
        if self.n_train_dropped:  # Deep SVDD sees normal samples only
            data.train = data.train.subset(normal.nonzero()[:, 0].cpu(), data.train.name)
        self.n_train_normal = len(data.train)
        self.inner.setup(model, data)
        self._train_split = data.train
        if self.bias_free:
            constants = tuple(getattr(self.inner, "one_class_constants", ()))
            named = [(f"model.{n}", p) for n, p in model.named_parameters()]
            named += [(f"objective.inner.{n}", p) for n, p in self.inner.named_parameters()]
            with torch.no_grad():
                for name, p in named:
                    local = name.removeprefix("model.").removeprefix("objective.inner.")
                    if _is_bias(name) or (name.startswith("objective.inner.") and local in constants):
                        p.zero_()
                        self._frozen.add(name)

    def stages(self, epochs: int) -> list[Stage]:
        """One stage over every parameter except the frozen biases and constants (parameters the representation
        does not use, e.g. the classifier heads, receive no gradient)."""
        frozen = self._frozen
        return [Stage("one_class", epochs, trainable=lambda name: name not in frozen)]

    # ------------------------------------------------------------------ representation
    def represent(self, model: MultimodalModel, batch: Batch, state: TrainState) -> tuple[Tensor, dict[str, Tensor]]:
        """``(z (B, D), loss terms)``: see the module docstring."""
        if self.modality is not None:
            return model.encoders[self.modality](batch.inputs[self.modality]).float(), {}
        rep = getattr(self.inner, "representation", None)
        if callable(rep):
            z, terms = rep(model, batch, state)
            return z.float(), dict(terms)
        return model.fuse(model.encode(batch.inputs)).float(), {}

    @torch.no_grad()
    def init_centre(self, model: MultimodalModel) -> Tensor:
        """``c``: the mean initial representation of the training split (eval mode), small coordinates moved to
        ``+-eps``; stored in the ``centre`` buffer."""
        if self._train_split is None or len(self._train_split) == 0:
            raise ConfigError("train.mode=one_class: no training samples to place the centre")
        modes = [(m, m.training) for m in (*model.modules(), *self.modules())]
        model.eval()
        self.eval()
        try:
            total: Tensor | None = None
            for batch in self._train_split.batches(512):
                z, _ = self.represent(model, batch, TrainState())
                s = z.double().sum(0)
                total = s if total is None else total + s
        finally:
            for module, mode in modes:
                module.training = mode
        assert total is not None
        c = (total / len(self._train_split)).float()
        small = c.abs() < self.eps
        c = torch.where(small & (c < 0), torch.full_like(c, -self.eps), c)
        c = torch.where(small & (c >= 0), torch.full_like(c, self.eps), c)
        self.centre = c
        self.centre_set.fill_(True)
        self._centre_ready = True
        return c

    def _ready(self, model: MultimodalModel) -> None:
        if not self._centre_ready:  # one host read per process (a resumed run loaded the centre)
            if bool(self.centre_set) and self.centre.numel():
                self._centre_ready = True
            else:
                self.init_centre(model)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        key = prefix + "centre"
        if key in state_dict and state_dict[key].shape != self.centre.shape:
            self.centre = torch.empty_like(state_dict[key], device=self.centre.device)
        self._centre_ready = False
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def distance(self, z: Tensor) -> Tensor:
        """``(B,)`` squared distances ``||z - c||^2``."""
        return (z - self.centre).square().sum(-1)

    def score(self, dist: Tensor) -> Tensor:
        """Anomaly scores from squared distances (soft-boundary: minus ``R^2``)."""
        return dist - self.radius.square() if self.objective == "soft-boundary" else dist

    def svdd_loss(self, dist: Tensor) -> Tensor:
        if self.objective == "soft-boundary":
            r2 = self.radius.square()
            return r2 + torch.relu(dist - r2).mean() / self.nu
        return dist.mean()

    def _logits(self, score: Tensor) -> Tensor:
        """``(B, 2)`` logits ``[0, score - threshold]``: class 1 (anomaly) when the score is above the threshold."""
        return torch.stack([torch.zeros_like(score), score - self.threshold], -1)

    # ------------------------------------------------------------------ training and prediction
    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        self._ready(model)
        self.inner.reduce_epoch_sums = self.reduce_epoch_sums
        z, terms = self.represent(model, batch, state)
        dist = self.distance(z)
        svdd = self.svdd_loss(dist)
        loss = svdd + torch.stack(list(terms.values())).sum() if terms and self.regularisers else svdd
        if self.training and self.objective == "soft-boundary" and state.epoch >= self.radius_warmup:
            with torch.no_grad():
                self.radius.copy_(torch.quantile(dist.detach().sqrt(), 1 - self.nu))
        parts = {"svdd": svdd.detach(), **{k: v.detach() for k, v in terms.items()}}
        if self.objective == "soft-boundary":
            parts["radius"] = self.radius.detach().clone()
        return ObjectiveOutput(loss, self._logits(self.score(dist)).detach(), parts)

    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        z, _ = self.represent(model, batch, TrainState())
        s = self.score(self.distance(z))
        return Prediction(self._logits(s), extras={SCORE: s})

    def calibrate(self, out: EvalOutput) -> float:
        """Set the decision threshold from validation predictions: between the score that gives the best F1
        (anomaly: score at or above it) and the next lower score. Without anomalies in ``out``: just above its
        highest score. Returns the threshold."""
        s = out.extras[SCORE].double()
        _, t = best_f1(s, out.target)
        if math.isnan(t):
            t = float(s.max()) if s.numel() else 0.0
            thr = t + 1e-6 * max(abs(t), 1.0)
        else:
            lower = s[s < t]
            thr = (t + float(lower.max())) / 2 if lower.numel() else t - 1e-6 * max(abs(t), 1.0)
        self.threshold.fill_(thr)
        return thr

    def pop_epoch_logs(self) -> dict[str, float]:
        return {**super().pop_epoch_logs(), **self.inner.pop_epoch_logs()}

    def run_metrics(self) -> dict[str, Any]:
        out = dict(self.inner.run_metrics())
        out["one_class"] = {"objective": self.objective, "nu": self.nu, "eps": self.eps,
                            "bias_free": self.bias_free, "modality": self.modality,
                            "frozen_parameters": len(self._frozen), "n_train_normal": self.n_train_normal,
                            "n_train_anomalies_dropped": self.n_train_dropped,
                            "centre_norm": float(self.centre.norm()) if self.centre.numel() else None,
                            "radius": float(self.radius), "threshold": float(self.threshold)}
        return out


# ---------------------------------------------------------------------------------------- mode dispatch
def _split(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    own = {k[len(PREFIX):]: v for k, v in params.items() if k.startswith(PREFIX)}
    return own, {k: v for k, v in params.items() if not k.startswith(PREFIX)}


def check_mode(mode: str) -> None:
    if mode not in TRAIN_MODES:
        raise ConfigError(f"train.mode: expected one of {', '.join(TRAIN_MODES)}, got {mode!r}")


def mode_method_params(mode: str, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The method's hyperparameters validated and completed with defaults; with ``one_class`` also the wrapper's
    (``svdd_*``)."""
    check_mode(mode)
    if mode == "supervised":
        return inner_method_params(name, params)
    own, rest = _split(dict(params or {}))
    schema = {PREFIX + k: v for k, v in signature_schema(OneClass, skip=("inner",)).items()}
    resolved = resolve_params({PREFIX + k: v for k, v in own.items()}, schema, "method", "train.mode=one_class")
    return {**inner_method_params(name, rest), **resolved}


def build_mode_objective(mode: str, cfg: MethodConfig) -> Objective:
    """The objective of a resolved method config in training mode ``mode``."""
    check_mode(mode)
    if mode == "supervised":
        return build_objective(cfg)
    own, rest = _split(cfg.params)
    inner = build_objective(MethodConfig(cfg.name, rest))
    return OneClass(inner, **own)


__all__ = ["OneClass", "PREFIX", "SCORE", "TRAIN_MODES", "build_mode_objective", "check_mode", "mode_method_params"]
