"""Evaluation metrics (functional; tensors in, Python floats out) and the rule that orients them for model
selection. Ground floor: the engine, the bench and the PID estimators all use these."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import DataError


def accuracy(pred: Tensor, target: Tensor) -> float:
    """Fraction of ``pred == target`` (``(N,)`` each); NaN for empty input."""
    return float((pred == target).float().mean()) if target.numel() else float("nan")


def macro_f1(pred: Tensor, target: Tensor, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``target`` or ``pred``
    (scikit-learn's ``f1_score(average="macro")``; a class with no true or predicted positives is
    skipped, one with precision + recall = 0 counts as 0)."""
    if target.numel() == 0:
        return float("nan")
    pred, target = pred.long().cpu(), target.long().cpu()
    tp = torch.bincount(target[pred == target], minlength=num_classes).double()
    n_pred = torch.bincount(pred, minlength=num_classes).double()
    n_true = torch.bincount(target, minlength=num_classes).double()
    present = (n_pred + n_true) > 0
    f1 = 2 * tp / (n_pred + n_true).clamp_min(1)
    return float(f1[present].mean())


def accuracy_by_group(correct: Tensor, groups: Tensor, names: Sequence[str]) -> dict[str, float | None]:
    """Accuracy within each group code (``groups[i]`` indexes ``names``); ``None`` for an empty group."""
    out: dict[str, float | None] = {}
    for code, name in enumerate(names):
        mask = groups == code
        out[name] = float(correct[mask].float().mean()) if mask.any() else None
    return out


def agreement_groups(correct: Tensor, unimodal_correct: Mapping[str, Tensor]) -> dict[str, dict[str, float | None]]:
    """Group samples by which unimodal models are right and report the multimodal accuracy per group.

    Groups: ``none_right`` (every unimodal model wrong: the *synergy subset*), ``only_<m>`` (only m's
    model right), ``all_right``, and for more than two modalities ``some_right`` (several but not all).
    Each entry: ``{"n": count, "fraction": share of samples, "accuracy": multimodal accuracy or None}``.
    """
    names = sorted(unimodal_correct)
    stacked = torch.stack([unimodal_correct[m].bool() for m in names])  # (M, N)
    count = stacked.sum(0)
    masks = {"none_right": count == 0}
    for i, m in enumerate(names):
        masks[f"only_{m}"] = (count == 1) & stacked[i]
    if len(names) > 2:
        masks["some_right"] = (count > 1) & (count < len(names))
    masks["all_right"] = count == len(names)
    n = correct.numel()
    return {g: {"n": int(mask.sum()), "fraction": float(mask.sum()) / max(n, 1),
                "accuracy": float(correct[mask].float().mean()) if mask.any() else None}
            for g, mask in masks.items()}


def weighted_f1(pred: Tensor, target: Tensor) -> float:
    """Support-weighted mean of per-class F1 (scikit-learn's ``average="weighted"``; the MOSI convention)."""
    pred, target = pred.long().cpu(), target.long().cpu()
    k = int(max(pred.max(), target.max())) + 1 if target.numel() else 1
    tp = torch.bincount(target[pred == target], minlength=k).double()
    n_pred = torch.bincount(pred, minlength=k).double()
    n_true = torch.bincount(target, minlength=k).double()
    f1 = 2 * tp / (n_pred + n_true).clamp_min(1)
    return float((f1 * n_true).sum() / n_true.sum().clamp_min(1))


def regression_metrics(pred: Tensor, target: Tensor) -> dict[str, float]:
    """MOSI-style metrics of sentiment scores in ``[-3, 3]`` (``(N,)`` each).

    ``mae``; ``corr`` (Pearson); ``acc7`` (both rounded to integers after clipping to [-3, 3]);
    ``acc2`` / ``f1`` (negative vs positive, samples with a zero label excluded: "non-zero");
    ``acc2_has0`` / ``f1_has0`` (negative vs non-negative, every sample); ``acc2_gt0`` / ``f1_gt0`` (MultiBench's
    convention: positive (``> 0``) vs the rest, every sample, so a zero label counts as negative); ``accuracy`` =
    ``acc2``.
    """
    pred, target = pred.double().cpu(), target.double().cpu()
    if target.numel() == 0:
        return {k: float("nan") for k in ("mae", "corr", "acc7", "acc2", "f1", "acc2_has0", "f1_has0", "acc2_gt0",
                                          "f1_gt0", "accuracy")}
    mae = float((pred - target).abs().mean())
    pc, tc = pred - pred.mean(), target - target.mean()
    denom = float(pc.norm() * tc.norm())
    corr = float((pc * tc).sum()) / denom if denom > 0 else float("nan")
    acc7 = float((pred.clamp(-3, 3).round() == target.clamp(-3, 3).round()).double().mean())
    nz = target != 0
    p2, t2 = (pred[nz] > 0).long(), (target[nz] > 0).long()
    acc2 = float((p2 == t2).double().mean()) if nz.any() else float("nan")
    f1 = weighted_f1(p2, t2) if nz.any() else float("nan")
    p0, t0 = (pred >= 0).long(), (target >= 0).long()
    pg, tg = (pred > 0).long(), (target > 0).long()
    return {"mae": mae, "corr": corr, "acc7": acc7, "acc2": acc2, "f1": f1,
            "acc2_has0": float((p0 == t0).double().mean()), "f1_has0": weighted_f1(p0, t0),
            "acc2_gt0": float((pg == tg).double().mean()), "f1_gt0": weighted_f1(pg, tg), "accuracy": acc2}


def auroc(scores: Any, labels: Any) -> float:
    r"""Area under the ROC curve of positive-class ``scores`` ``(N,)`` against binary ``labels`` ``(N,)``
    (tensors, arrays or lists; positive = true/1).

    Mann-Whitney form with average ranks for ties (tied scores count half)::

        AUROC = (sum_{n positive} rank_n - P (P + 1) / 2) / (P Q)

    (``P`` positives, ``Q`` negatives, ranks 1..N ascending). ``nan`` when one class is absent (written as
    ``null`` in JSON); :class:`~interplay.errors.DataError` for different lengths or NaN scores.
    """
    s = np.asarray(scores.detach().cpu() if isinstance(scores, Tensor) else scores, dtype=np.float64).ravel()
    y = np.asarray(labels.detach().cpu() if isinstance(labels, Tensor) else labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise DataError(f"auroc: scores and labels differ in length ({s.size} vs {y.size})")
    if np.isnan(s).any():
        raise DataError("auroc: scores contain NaN")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _scores_and_labels(scores: Any, labels: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` float64 scores and bool labels from tensors, arrays or lists; one-line :class:`DataError` for
    different lengths or NaN scores."""
    s = np.asarray(scores.detach().cpu() if isinstance(scores, Tensor) else scores, dtype=np.float64).ravel()
    y = np.asarray(labels.detach().cpu() if isinstance(labels, Tensor) else labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise DataError(f"{name}: scores and labels differ in length ({s.size} vs {y.size})")
    if np.isnan(s).any():
        raise DataError(f"{name}: scores contain NaN")
    return s, y


def precision_recall_points(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positive counts ``(K,)`` when every sample with ``score >= t`` is called positive, for each
    of the ``K`` distinct scores ``t`` in descending order (``thresholds`` ``(K,)``): ``(tp, fp, thresholds)``.
    Tied scores enter together (scikit-learn's ``precision_recall_curve`` convention)."""
    s, y = _scores_and_labels(scores, labels, "precision_recall_points")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1] if s.size else np.zeros(0, dtype=np.int64)
    tp = np.cumsum(y)[last].astype(np.float64)
    fp = (last + 1) - tp
    return tp, fp, s[last]


def auprc(scores: Any, labels: Any) -> float:
    r"""Area under the precision-recall curve as average precision (scikit-learn's ``average_precision_score``):

    .. math:: AP = \sum_k (R_k - R_{k-1}) P_k

    over the distinct thresholds in descending order (``R_0 = 0``; a sample is positive when its score is at
    least the threshold). ``scores``, ``labels`` ``(N,)``; ``nan`` when there is no positive."""
    tp, fp, _ = precision_recall_points(scores, labels)
    n_pos = tp[-1] if tp.size else 0.0
    if n_pos == 0:
        return math.nan
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def best_f1(scores: Any, labels: Any) -> tuple[float, float]:
    """The best F1 over every threshold ``t`` (positive: ``score >= t``) and that threshold: ``(f1, t)``
    (``F1 = 2 TP / (2 TP + FP + FN)``; the highest ``t`` among ties). ``(nan, nan)`` without positives."""
    tp, fp, thresholds = precision_recall_points(scores, labels)
    n_pos = tp[-1] if tp.size else 0.0
    if n_pos == 0:
        return math.nan, math.nan
    f1 = 2 * tp / (tp + fp + n_pos)
    k = int(np.argmax(f1))
    return float(f1[k]), float(thresholds[k])


def f1_at(scores: Any, labels: Any, threshold: float) -> float:
    """F1 of calling ``score >= threshold`` positive (``2 TP / (2 TP + FP + FN)``; 0 when there is nothing to
    find and nothing called positive is right)."""
    s, y = _scores_and_labels(scores, labels, "f1_at")
    pred = s >= threshold
    tp = float(np.sum(pred & y))
    denom = 2 * tp + float(np.sum(pred & ~y)) + float(np.sum(~pred & y))
    return 2 * tp / denom if denom > 0 else 0.0


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` ``(N,)`` in ascending order, tied values sharing the mean of their ranks
    (``scipy.stats.rankdata``'s default, without importing scipy.stats: about a second at start-up)."""
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first position of each run of ties
    ends = np.r_[starts[1:], x.size]
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # run [a, b) holds ranks a+1 .. b
    return ranks


# ------------------------------------------------------------------------------------------ model selection
#: validation metrics that are minimised when picking the best epoch or the best hyperparameters; every other
#: metric is maximised
LOWER_IS_BETTER = frozenset({"loss", "mae"})


def selection_metric(select_metric: str, regression: bool) -> str:
    """The metric ``train.select_metric`` names; ``auto``: ``mae`` for regression, ``accuracy`` otherwise."""
    if select_metric != "auto":
        return select_metric
    return "mae" if regression else "accuracy"


def selection_score(key: str, value: float | None) -> float:
    """``value`` of metric ``key`` oriented so that higher is better (negated for :data:`LOWER_IS_BETTER`);
    a missing or NaN value scores ``-inf`` (never selected over a real one)."""
    if value is None or math.isnan(value):
        return -math.inf
    return -value if key in LOWER_IS_BETTER else value


def fit_temperature(logits: Tensor, target: Tensor, lo: float = -5.0, hi: float = 5.0, steps: int = 80) -> float:
    r"""The temperature ``T`` minimising the NLL of ``softmax(logits / T)`` on held-out samples (``logits``
    ``(N, C)``, ``target`` ``(N,)``; computed in the logits' dtype): golden-section search of ``log T`` in
    ``[lo, hi]`` (the NLL is convex in ``1 / T``). 1.0 for no samples."""
    if len(target) == 0:
        return 1.0
    y = target.long()

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits / math.exp(log_t), y))

    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(steps):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(d)
    return math.exp((a + b) / 2)
