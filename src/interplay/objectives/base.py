"""The objective interface: a loss that receives the model.

An :class:`Objective` is an ``nn.Module`` (it may own extra modules: bottlenecks, gates) whose
``forward(model, batch, state)`` returns the loss, the clean-input logits and every loss term. It runs
in Interplay's training loop or in anyone's::

    objective = METHODS.get("synib")(lam=10)
    objective.setup(model, splits)                       # once, before the optimiser is built
    out = objective(model, batch, state)                 # ObjectiveOutput(loss, logits, parts)
    out.loss.backward()
    objective.on_after_backward(model, state)            # e.g. OGM-GE's gradient modulation
    optimizer.step()

That loop is all most methods need. Methods that need more than one loss and one step per batch (MMPareto's
per-loss gradients, MLA's alternating unimodal steps, PMR's prototypes from the training set) use the
*extended step protocol*, three optional hooks whose defaults reduce to the loop above, so a loop that ignores
them still trains every method (the documented fallback of each method then applies)::

    objective.on_train_epoch_start(model, train_split, state)   # once per epoch, before the first batch
    for batch in batches:
        for phase in objective.phases(state):                    # default ("",): one step per batch
            state.phase = phase
            out = objective(model, batch, state)
            objective.backward(model, out, state, scale)         # default: scale(out.loss).backward()
            objective.on_after_backward(model, state)
            optimizer.step(); optimizer.zero_grad()

``scale`` maps a loss to what is back-propagated (the engine's gradient-accumulation division and AMP loss
scaling; the identity in a plain loop). Interplay's engine honours all three (``engine/trainer.py``, step loop;
``state.batch_index`` / ``state.num_batches`` say where in the epoch a step is). Another loop (e.g. a Lightning
module) honours them by calling ``on_train_epoch_start`` with the train split and, for a method with several
phases or its own ``backward``, by manual optimisation: per phase ``out = objective(...)``,
``objective.backward(model, out, state, scale=lambda loss: loss)``, ``objective.on_after_backward(...)``,
``optimizer.step()``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Batch, DataInfo, DataSplits, MultimodalDataset
from ..errors import ConfigError
from ..registry import Registry

if TYPE_CHECKING:
    from ..models import MultimodalModel

METHODS: Registry[type[Objective]] = Registry("method", package="interplay.objectives", group="interplay.methods",
                                              skip=("base",))


@dataclass
class TrainState:
    """Where training is: passed to every objective call."""

    epoch: int = 0  # 0-based epoch over the whole run
    stage: str = "main"
    stage_epoch: int = 0  # 0-based epoch within the stage
    stage_epochs: int = 1
    step: int = 0  # optimiser steps so far
    num_epochs: int = 1
    #: the current phase of the batch (see :meth:`Objective.phases`); "" for the default single phase
    phase: str = ""
    #: 0-based index of the current batch within the epoch, and the epoch's number of batches
    batch_index: int = 0
    num_batches: int = 1


@dataclass
class ObjectiveOutput:
    """``loss``: scalar to minimise; ``logits``: ``(B, C)`` clean-input prediction (for training metrics);
    ``parts``: every loss term, for logging."""

    loss: Tensor
    logits: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class EvalOutput:
    """Predictions on a whole split (CPU tensors): ``logits`` ``(N, C)``, ``target`` / ``index`` ``(N,)``,
    per-sample ``meta``, ``unimodal_logits`` ``{m: (N, C)}`` when the method has them, method ``extras``."""

    logits: Tensor
    target: Tensor
    index: Tensor
    meta: dict[str, Tensor] = field(default_factory=dict)
    unimodal_logits: dict[str, Tensor] | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)
    task: str = "classification"
    #: predictions ``{m: (N,)}`` of separately trained unimodal reference models on the same samples
    reference_pred: dict[str, Tensor] | None = None

    @property
    def pred(self) -> Tensor:
        """``(N,)`` predicted classes, or predicted values for regression."""
        return to_prediction(self.logits, self.task)

    @property
    def correct(self) -> Tensor:
        """``(N,)`` bool: right class; for regression, right sign (the Acc2 notion of correct)."""
        return is_correct(self.logits, self.target, self.task)


def to_prediction(logits: Tensor, task: str) -> Tensor:
    return logits[..., 0] if task == "regression" else logits.argmax(-1)


def is_correct(logits: Tensor, target: Tensor, task: str) -> Tensor:
    return pred_correct(to_prediction(logits, task), target, task)


def pred_correct(pred: Tensor, target: Tensor, task: str) -> Tensor:
    """``(N,)`` bool from predicted classes (or values: right sign, for regression)."""
    if task == "regression":
        return (pred > 0) == (target > 0)
    return pred == target


@dataclass
class Prediction:
    """Evaluation output for a batch: ``logits`` ``(B, C)``; ``unimodal_logits`` ``{m: (B, C)}`` where the
    method has unimodal predictions; ``extras``: per-sample tensors ``(B,)`` written to predictions.csv."""

    logits: Tensor
    unimodal_logits: dict[str, Tensor] | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class Stage:
    """A training stage: ``epochs`` epochs with a fresh optimiser over the parameters ``trainable``
    accepts (qualified names, ``"model."`` / ``"objective."`` prefixed; None: all), at learning rate
    ``lr_scale * train.lr``. Frozen modules are put in eval mode. With ``reload_best`` the stage starts
    from the best-validation checkpoint of the previous stage."""

    name: str
    epochs: int
    lr_scale: float = 1.0
    trainable: Callable[[str], bool] | None = None
    reload_best: bool = True


class Objective(nn.Module):
    """Base class of every training objective. Subclasses set ``description`` (one line, shown by
    ``interplay methods``) and implement :meth:`forward`; constructor keyword arguments (typed, with
    defaults) are the method's hyperparameters, settable as ``--set method.NAME=VALUE``."""

    description: ClassVar[str] = ""
    registry_name: ClassVar[str] = ""
    #: the dataset tasks the method supports
    tasks: ClassVar[tuple[str, ...]] = ("classification", "regression")
    #: ``True`` when the method needs one feature vector ``(B, d_m)`` per modality and sample (its own bottlenecks,
    #: projections or prototypes on features): refused with one line on token-level models
    needs_feature_vectors: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.info: DataInfo | None = None
        self._epoch_sums: dict[str, Tensor | float] = defaultdict(float)
        self._epoch_counts: dict[str, float] = defaultdict(float)
        #: set by the engine under DDP: sums a float64 tensor across ranks (the epoch statistics' sums and counts)
        self.reduce_epoch_sums: Callable[[Tensor], Tensor] | None = None

    # ------------------------------------------------------------------ lifecycle
    def setup(self, model: MultimodalModel, data: DataSplits) -> None:
        """Called once before the optimiser is built; may create modules sized from ``model`` / ``data``."""
        if data.info.task not in self.tasks:
            raise ConfigError(f"method {self.registry_name!r} supports {' and '.join(self.tasks)} data; dataset "
                              f"{data.info.name!r} is {data.info.task}")
        if self.needs_feature_vectors and model.token_level:
            raise ConfigError(f"method {self.registry_name!r} works on one feature vector per modality; the "
                              f"token-level model (model.backbone) gives token sequences: use a method that only "
                              f"withholds modalities (e.g. joint, synib, multi_loss) or a feature-level model")
        if self.trains_unimodal_heads and model.unimodal_heads is None:
            raise ConfigError(f"method {self.registry_name!r} needs unimodal heads; set model.unimodal_heads=true")
        self.info = data.info

    def stages(self, epochs: int) -> list[Stage]:
        """Training stages; one stage of all ``epochs`` by default."""
        return [Stage("main", epochs)]

    def forward(self, model: MultimodalModel, batch: Batch, state: TrainState) -> ObjectiveOutput:
        raise NotImplementedError

    def on_after_backward(self, model: MultimodalModel, state: TrainState) -> None:
        """Hook between ``loss.backward()`` and ``optimizer.step()``."""

    # ------------------------------------------------------------------ extended step protocol (optional)
    def phases(self, state: TrainState) -> tuple[str, ...]:
        """The optimiser steps of one training batch, by name. For each phase, in order, the loop sets
        ``state.phase``, calls :meth:`forward`, :meth:`backward`, :meth:`on_after_backward` and takes one
        optimiser step (gradients zeroed before each phase). Default ``("",)``: one step per batch. A method that
        alternates (e.g. MLA: one unimodal step per modality) returns several names; with more than one phase the
        engine refuses gradient accumulation (``train.accumulate > 1``). A loop that does not honour phases calls
        :meth:`forward` with ``state.phase == ""``, which such a method must still accept (its fallback)."""
        return ("",)

    def backward(self, model: MultimodalModel, out: ObjectiveOutput, state: TrainState,
                 scale: Callable[[Tensor], Tensor]) -> None:
        """Back-propagate ``out`` (called once per phase, between :meth:`forward` and :meth:`on_after_backward`).

        ``scale(loss)`` is what the loop back-propagates for a loss (gradient-accumulation division, AMP loss
        scaling; identity in a plain loop). Default: ``scale(out.loss).backward()``. A method that needs the
        gradients of several losses separately (e.g. MMPareto) may take them with ``torch.autograd.grad`` (on
        ``scale``-d losses, ``retain_graph=True``) and must end with exactly one ``.backward()`` of a scaled loss,
        so that data-parallel gradient reduction sees one backward pass; it must leave in ``.grad`` the gradient
        it wants applied, added to what is already there (gradient accumulation)."""
        scale(out.loss).backward()

    def on_train_epoch_start(self, model: MultimodalModel, train: MultimodalDataset, state: TrainState) -> None:
        """Called once at the start of every training epoch, before its first batch, with the training split
        (on the training device). The model may still be in evaluation mode (after validation); the loop puts
        it in training mode afterwards. E.g. PMR computes its class prototypes here."""

    @torch.no_grad()
    def predict(self, model: MultimodalModel, batch: Batch) -> Prediction:
        """Deterministic evaluation prediction (model in eval mode)."""
        feats = model.encode(batch.inputs)
        uni = model.unimodal_logits(feats) if model.unimodal_heads is not None else None
        return Prediction(model.logits(feats), uni if self.trains_unimodal_heads else None)

    #: whether the method trains the model's unimodal heads (their predictions are then meaningful; the model
    #: must have them): a class default that a method whose hyperparameters decide it sets per instance
    trains_unimodal_heads: bool = False

    def test_metrics(self, out: EvalOutput) -> dict[str, Any]:
        """Method-specific metrics from a split's predictions (merged into ``metrics["test"]``, and for the
        validation split into ``metrics["val"]`` and every epoch's log.jsonl ``val`` row)."""
        return {}

    def run_metrics(self) -> dict[str, Any]:
        """Method-specific run-level entries for ``metrics.json`` (e.g. OMIB's ``{"omib": {...}}``)."""
        return {}

    # ------------------------------------------------------------------ helpers
    @property
    def regression(self) -> bool:
        """Whether the data given to :meth:`setup` is a regression task (outputs ``(B, 1)``); False before."""
        return self.info is not None and self.info.task == "regression"

    def task_loss(self, logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
        """Cross-entropy for classification; L1 for regression (``logits`` ``(B, 1)``; MOSI's usual loss)."""
        if self.regression:
            return F.l1_loss(logits[..., 0], target.float(), reduction=reduction)
        return F.cross_entropy(logits, target, reduction=reduction)

    def log_epoch(self, name: str, value: Tensor | float, weight: float = 1.0) -> None:
        """Accumulate a weighted mean over the epoch (reported in log.jsonl by the engine). A tensor ``value``
        is accumulated on its device (float64, detached): logging never waits for the device."""
        if isinstance(value, Tensor):
            self._epoch_sums[name] = self._epoch_sums[name] + value.detach().double() * weight
        else:
            self._epoch_sums[name] += float(value) * weight
        self._epoch_counts[name] += weight

    def pop_epoch_logs(self) -> dict[str, float]:
        """The epoch's weighted means (summed over every rank under DDP: sums and weights, through
        :attr:`reduce_epoch_sums`), and a fresh epoch. Reads the device once."""
        keys = sorted(self._epoch_sums)
        out: dict[str, float] = {}
        if keys:
            sums = [torch.as_tensor(self._epoch_sums[k], dtype=torch.float64).reshape(()) for k in keys]
            device = next((v.device for v in sums if v.device.type != "cpu"), torch.device("cpu"))
            counts = torch.tensor([float(self._epoch_counts[k]) for k in keys], dtype=torch.float64)
            packed = torch.cat([torch.stack([v.to(device) for v in sums]), counts.to(device)])
            if self.reduce_epoch_sums is not None:
                packed = self.reduce_epoch_sums(packed)
            values = packed.tolist()
            n = len(keys)
            means = {k: values[i] / max(values[n + i], 1e-12) for i, k in enumerate(keys)}
            out = {k: means[k] for k in self._epoch_sums}  # in logging order
        self._epoch_sums.clear()
        self._epoch_counts.clear()
        return out


def mean_of_probabilities(logits: Mapping[str, Tensor]) -> Tensor:
    """``log(mean_m softmax(logits_m))``: ``(B, C)`` log-probabilities of a unimodal ensemble."""
    stacked = torch.stack([F.log_softmax(v, dim=-1) for v in logits.values()])
    return torch.logsumexp(stacked, 0) - torch.log(torch.tensor(float(len(logits))))


def ensemble_prediction(logits: Mapping[str, Tensor], regression: bool = False,
                        combine: Literal["prob", "logit"] = "prob") -> Tensor:
    """The prediction ``(B, C)`` of an ensemble of per-modality predictions ``{m: (B, C)}``: for classification
    with ``combine="prob"`` the log of the mean probability, :func:`mean_of_probabilities`; for regression or
    ``combine="logit"`` the mean output ``mean_m logits_m``."""
    if regression or combine == "logit":
        return torch.stack(list(logits.values())).mean(0)
    return mean_of_probabilities(logits)


def categorical_kl(logp: Tensor, logq: Tensor) -> Tensor:
    """``KL(p || q) = sum_c p_c (log p_c - log q_c)`` over the last axis, from log-probabilities ``(..., C)``
    (``logq`` broadcasts, e.g. a ``(C,)`` prior): ``(...)`` nats."""
    return (logp.exp() * (logp - logq)).sum(-1)


def entropy(logp: Tensor) -> Tensor:
    """``H(p) = -sum_c p_c log p_c`` over the last axis, from log-probabilities ``(..., C)``: ``(...)`` nats."""
    return -(logp.exp() * logp).sum(-1)
