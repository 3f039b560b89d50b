"""Running a trained model over a split and turning its predictions into metrics."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..data import DataInfo, MultimodalDataset
from ..metrics import (
    accuracy,
    accuracy_by_group,
    agreement_groups,
    auprc,
    auroc,
    best_f1,
    f1_at,
    macro_f1,
    regression_metrics,
)
from ..models import MultimodalModel
from ..objectives import EvalOutput, Objective, is_correct, pred_correct, to_prediction
from .one_class import SCORE, OneClass


def concat_batches(parts: list[dict[str, Tensor] | None] | list[dict[str, Tensor]]) -> dict[str, Tensor] | None:
    """Per-key concatenation of per-batch ``{name: (B, ...)}`` dicts; ``None`` unless every batch has a
    non-empty one."""
    present = [p for p in parts if p]
    if not present or len(present) != len(parts):
        return None
    return {k: torch.cat([p[k] for p in present]) for k in present[0]}


@torch.no_grad()
def evaluate(objective: Objective, model: MultimodalModel, dataset: MultimodalDataset, batch_size: int,
             device: torch.device | str = "cpu") -> EvalOutput:
    """Deterministic predictions of ``objective.predict`` over ``dataset`` (model and objective in eval mode;
    their training modes are restored afterwards)."""
    modes = [(m, m.training) for m in (*model.modules(), *objective.modules())]
    model.eval()
    objective.eval()
    try:
        logits, extras, uni = [], [], []
        for batch in dataset.batches(batch_size):
            p = objective.predict(model, batch.to(device))
            logits.append(p.logits.float().cpu())
            extras.append({k: v.cpu() for k, v in p.extras.items()})
            uni.append({k: v.float().cpu() for k, v in p.unimodal_logits.items()} if p.unimodal_logits else None)
    finally:
        for module, mode in modes:
            module.training = mode
    cat = torch.cat
    return EvalOutput(
        logits=cat(logits), target=dataset.target.cpu(), index=torch.arange(len(dataset)),
        meta={k: v.cpu() for k, v in dataset.meta.items()},
        unimodal_logits=concat_batches(uni),
        extras=concat_batches(extras) or {},
        task=getattr(objective.info, "task", "classification"))


def split_metrics(out: EvalOutput, info: DataInfo, objective: Objective, detailed: bool = False) -> dict[str, Any]:
    """``accuracy``, ``macro_f1`` and ``loss`` (regression: the MOSI metrics of
    :func:`~interplay.engine.metrics.regression_metrics` and ``loss``), ``accuracy_by_interaction`` (where
    sources are known: each epoch's log.jsonl row has it); with ``detailed`` also ``unimodal_accuracy`` and
    ``agreement_groups`` (where unimodal predictions exist; for regression "right" means the right sign). A
    one-class objective (``train.mode=one_class``) gets :func:`anomaly_metrics` instead."""
    if isinstance(objective, OneClass):
        return anomaly_metrics(out, info, float(objective.threshold), detailed)
    pred = out.pred
    if info.task == "regression":
        metrics: dict[str, Any] = regression_metrics(pred, out.target)
    else:
        metrics = {"accuracy": accuracy(pred, out.target), "macro_f1": macro_f1(pred, out.target, info.num_classes)}
        if info.num_classes == 2:  # the official metric of binary benchmarks such as Hateful Memes
            metrics["auroc"] = auroc(torch.softmax(out.logits.float(), -1)[:, 1], out.target)
    metrics["loss"] = float(objective.task_loss(out.logits, out.target))
    correct = out.correct
    if info.interactions is not None and "interaction" in out.meta:  # every epoch's row too (loggers plot it)
        metrics["accuracy_by_interaction"] = accuracy_by_group(correct, out.meta["interaction"], info.interactions)
    if not detailed:
        return metrics
    uni_correct = None
    if out.reference_pred:  # separately trained unimodal models (preferred)
        uni_correct = {m: pred_correct(v, out.target, info.task) for m, v in out.reference_pred.items()}
        metrics["agreement_source"] = "reference"
    elif out.unimodal_logits and len(out.unimodal_logits) == len(info.modalities):  # the method's own heads
        uni_correct = {m: is_correct(v, out.target, info.task) for m, v in out.unimodal_logits.items()}
        metrics["agreement_source"] = "heads"
    if uni_correct is not None:
        metrics["unimodal_accuracy"] = {m: float(c.float().mean()) for m, c in uni_correct.items()}
        metrics["agreement_groups"] = agreement_groups(correct, uni_correct)
    return metrics


def anomaly_metrics(out: EvalOutput, info: DataInfo, threshold: float, detailed: bool = False) -> dict[str, Any]:
    """Anomaly-detection metrics of a split from ``out.extras["anomaly_score"]`` ``(N,)`` and ``out.target``
    (1 = anomaly): ``auroc``, ``auprc`` (average precision); ``f1`` (anomaly class), ``accuracy`` and
    ``macro_f1`` of calling ``score >= threshold`` an anomaly (the threshold chosen on validation,
    :func:`calibrate`); ``best_f1`` (the best F1 of any threshold on this split: an optimistic reference),
    ``threshold``, ``loss`` (mean score of the split's normal samples: the one-class loss) and
    ``anomaly_fraction``. With ``detailed`` and known anomaly types (``info.interactions``,
    ``meta["interaction"]``): ``auroc_by_type`` (each type against the normal samples) and
    ``accuracy_by_interaction``."""
    s, y = out.extras[SCORE].double(), out.target.long()
    called = (s >= threshold).long()
    normal = s[y == 0]
    metrics: dict[str, Any] = {
        "auroc": auroc(s, y), "auprc": auprc(s, y), "f1": f1_at(s, y, threshold), "accuracy": accuracy(called, y),
        "macro_f1": macro_f1(called, y, 2),
        "best_f1": best_f1(s, y)[0], "threshold": threshold,
        "loss": float(normal.mean()) if normal.numel() else float("nan"),
        "anomaly_fraction": float(y.float().mean()) if y.numel() else float("nan")}
    if detailed and info.interactions is not None and "interaction" in out.meta:
        types = out.meta["interaction"]
        normal_code = info.interactions.index("normal") if "normal" in info.interactions else None
        by_type: dict[str, float | None] = {}
        for code, name in enumerate(info.interactions):
            if code == normal_code:
                continue
            mask = (types == code) | (y == 0)
            by_type[name] = auroc(s[mask], y[mask]) if bool((types == code).any()) else None
        metrics["auroc_by_type"] = by_type
        metrics["accuracy_by_interaction"] = accuracy_by_group(called == y, types, info.interactions)
    return metrics


def calibrate(objective: Objective, out: EvalOutput) -> None:
    """Let an objective with a decision threshold (a one-class objective) choose it on validation predictions."""
    hook = getattr(objective, "calibrate", None)
    if callable(hook):
        hook(out)


def prediction_rows(out: EvalOutput, info: DataInfo) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of ``predictions.csv``: ``index,target,pred,prob_*`` (no ``prob_*`` for regression),
    ``interaction`` where known,
    ``pred_<m>`` per unimodal head prediction, ``ref_pred_<m>`` per unimodal reference model, then
    method-specific columns."""
    header = ["index", "target", "pred"]
    cols: list[list[Any]] = [out.index.tolist(), out.target.tolist(), out.pred.tolist()]
    if info.task != "regression":
        probs = torch.softmax(out.logits, -1)
        header += [f"prob_{c}" for c in range(probs.shape[1])]
        cols += [[round(v, 6) for v in probs[:, c].tolist()] for c in range(probs.shape[1])]
    if info.interactions is not None and "interaction" in out.meta:
        header.append("interaction")
        cols.append([info.interactions[c] for c in out.meta["interaction"].tolist()])
    for m, v in sorted((out.unimodal_logits or {}).items()):
        header.append(f"pred_{m}")
        cols.append(to_prediction(v, info.task).tolist())
    for m, v in sorted((out.reference_pred or {}).items()):
        header.append(f"ref_pred_{m}")
        cols.append(v.tolist())
    for name, v in out.extras.items():
        header.append(name)
        cols.append([round(x, 6) if isinstance(x, float) else x for x in v.tolist()])
    return header, [list(r) for r in zip(*cols)]
