r"""Per-sample interaction types: which kind of information decides each sample's label, and how well an
estimate of it matches ground truth.

Every estimator here takes the per-sample evidence of ``N`` test samples and returns a :class:`TypeEstimate`:
one type per sample out of :func:`type_names` (``redundant``, ``unique:<m>`` for every modality ``m``,
``synergistic``, ``undetermined``) and one **score** per type (``(N,)``, higher = more of that type), used for
one-vs-rest AUROC against the true types.

Estimators (``p_m`` below is a unimodal model's probability of the sample's *true* label ``y``; ``p`` the
multimodal model's; ``p(y)`` the class prior of the training split):

* :func:`agreement_types` (``agreement``): the rule behind :func:`interplay.metrics.agreement_groups`, on hard
  right/wrong: every unimodal model right -> redundant; only ``m``'s right -> ``unique:m``; none right but the
  multimodal model right -> synergistic; otherwise (none right and the multimodal model wrong, or with more than
  two modalities several but not all right) -> undetermined. Scores are the 0/1 indicators of the rule's
  conditions. It fails by chance hits: with ``K`` balanced classes an uninformative unimodal model is right with
  probability ``1/K``, so on binary labels a synergistic sample is called redundant with probability 1/4 and
  synergistic only with probability 1/4, and a sample unique to ``x1`` is called redundant half the time.
* :func:`confidence_types` (``confidence``): the same question asked of calibrated probabilities instead of
  hits. Pointwise label informations in bits, ``i_m = log2 p_m / p(y)`` and ``i = log2 p / p(y)``, negative
  values (a confidently wrong model) clipped to 0 for the unimodal ones, ``i_m+ = max(i_m, 0)``; then a
  pointwise minimum-mutual-information decomposition (Barrett's MMI PID, applied per sample)::

      redundant   r   = min_m i_m+
      unique:m    u_m = i_m+ - max_{m' != m} i_m'+          (clipped at 0)
      synergistic s   = i - max_m i_m+                       (may be negative)

  type = the largest of these; ``undetermined`` when none is positive (no model puts more than the prior on
  the true label). The probabilities must be calibrated (``interplay.analysis.run`` temperature-scales every
  model on the validation split: SynIB's raw probabilities, for one, are far too soft). For two modalities
  ``r + u_1 = i_1+`` and ``r + u_1 + u_2 + s = i``. An uninformative but calibrated unimodal model has
  ``p_m ~ p(y)`` and ``i_m ~ 0``, so chance hits no longer count. It fails when the unimodal models are
  over-confident (uncalibrated: ``i_m`` large on chance samples) or when the multimodal model has not learned
  the synergy (``i <= max i_m`` on synergistic samples).
* :func:`lsmi_types` (``lsmi``): the per-sample LSMI decomposition (:mod:`interplay.pid.lsmi`, two modalities):
  type = the largest of ``r, u1, u2, s``; pointwise values may be negative (a classifier confidently wrong, or
  ``s = i12 - i1 - i2 + r`` below zero) and are compared as they are; ``undetermined`` when all four are
  ``<= 0``. Scores are the four components.
* :func:`cluster_types` (``cluster``): per-sample terms of the exact BROJA PID of the discretised data
  (:func:`interplay.pid.per_sample_pid`): k-means codes of each modality fitted on the training split, the
  empirical pmf ``P[c1, c2, y]`` of the training split, its pointwise terms looked up at each test sample's
  ``(c1, c2, y)``; type = the largest term, ``undetermined`` when none is positive or the cell never occurred
  in training. It fails where k-means codes do not resolve the features that carry the label (e.g. a small
  informative block among many noise coordinates).

Metrics against ground truth (:func:`type_metrics`): the confusion matrix (estimated x true), the
type-identification accuracy (fraction of samples whose estimated type is the true one), the macro agreement
(mean over the true types present of their recall) and per-type one-vs-rest AUROC of the scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from ..metrics import auroc

__all__ = [
    "REDUNDANT",
    "SYNERGISTIC",
    "UNDETERMINED",
    "TypeEstimate",
    "agreement_types",
    "cluster_types",
    "confidence_types",
    "confusion_matrix",
    "lsmi_types",
    "true_type_names",
    "type_metrics",
    "type_names",
    "unique_type",
]

REDUNDANT = "redundant"
SYNERGISTIC = "synergistic"
UNDETERMINED = "undetermined"
_LN2 = math.log(2.0)


def unique_type(modality: str) -> str:
    """The type label of information unique to ``modality``: ``"unique:<modality>"``."""
    return f"unique:{modality}"


def type_names(modalities: Sequence[str]) -> list[str]:
    """Every type label, in this order: ``redundant``, ``unique:<m>`` per modality, ``synergistic``,
    ``undetermined``. A sample's type code indexes this list."""
    return [REDUNDANT, *(unique_type(m) for m in modalities), SYNERGISTIC, UNDETERMINED]


def true_type_names(interactions: Sequence[str], modalities: Sequence[str]) -> list[str]:
    """Ground-truth source names (``info.interactions``) in the vocabulary of :func:`type_names`.

    ``unique<i>`` (1-based, as pid-xor names them) becomes ``unique:x<i>`` when there is a modality ``x<i>``
    (pid-xor's names; ``modalities`` may be sorted by name, where ``x10`` comes before ``x2``), else
    ``unique:<modalities[i-1]>``; ``redundant`` and ``synergistic`` stay; any other name is kept as it is (it then
    never matches an estimated type).
    """
    out = []
    for name in interactions:
        if name.startswith("unique") and name[6:].isdigit() and 1 <= int(name[6:]) <= len(modalities):
            i = int(name[6:])
            out.append(unique_type(f"x{i}" if f"x{i}" in modalities else modalities[i - 1]))
        else:
            out.append(name)
    return out


@dataclass
class TypeEstimate:
    """Per-sample types from one estimator.

    Attributes:
        method: the estimator's name (``agreement``, ``confidence``, ``lsmi``, ``cluster``).
        types: the type labels (:func:`type_names`); ``codes`` index it.
        codes: ``(N,)`` int64 type code per sample.
        scores: type label -> ``(N,)`` float64 score (higher = more of that type); ``undetermined`` has none.
        columns: extra per-sample columns for the CSV (name -> ``(N,)``), e.g. ``lsmi_redundancy``.
        info: what the estimate rests on (e.g. where the unimodal predictions came from).
    """

    method: str
    types: list[str]
    codes: Tensor
    scores: dict[str, Tensor]
    columns: dict[str, Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        """``(N,)`` type labels."""
        return [self.types[c] for c in self.codes.tolist()]

    def counts(self) -> dict[str, int]:
        """Samples per type (every type listed, zeros included)."""
        n = torch.bincount(self.codes, minlength=len(self.types))
        return {t: int(n[i]) for i, t in enumerate(self.types)}


def _argmax_types(method: str, modalities: Sequence[str], components: Mapping[str, Tensor],
                  floor: float = 0.0) -> Tensor:
    """Codes into :func:`type_names`: the type with the largest component (``components``: type -> ``(N,)``, in
    the order of :func:`type_names`), ``undetermined`` where the largest is ``<= floor``. Ties: the first."""
    types = type_names(modalities)
    order = [t for t in types if t in components]
    if not order:
        raise ValueError(f"{method}: no components")
    stacked = torch.stack([components[t].double() for t in order])  # (T, N)
    best, idx = stacked.max(0)
    lookup = torch.tensor([types.index(t) for t in order])
    codes = lookup[idx]
    return torch.where(best > floor, codes, torch.full_like(codes, types.index(UNDETERMINED)))


def _bool(x: Any, name: str) -> Tensor:
    t = torch.as_tensor(x)
    if t.dim() != 1:
        raise DataError(f"{name}: expected a 1-D array of per-sample values, got shape {tuple(t.shape)}")
    return t.bool()


# ---------------------------------------------------------------------------------------------- estimators
def agreement_types(unimodal_correct: Mapping[str, Any], correct: Any) -> TypeEstimate:
    """Types from which models are right (hard rule; see the module docstring).

    Args:
        unimodal_correct: modality -> ``(N,)`` bool, whether that modality's unimodal model is right (order of
            the mapping = order of the modalities in the type names).
        correct: ``(N,)`` bool, whether the multimodal model is right.

    Returns:
        :class:`TypeEstimate` with 0/1 scores: ``redundant`` = all right, ``unique:m`` = only ``m`` right,
        ``synergistic`` = none right and the multimodal model right.
    """
    modalities = list(unimodal_correct)
    if len(modalities) < 2:
        raise DataError(f"agreement types: need unimodal predictions of at least two modalities, got {modalities}")
    stacked = torch.stack([_bool(unimodal_correct[m], f"unimodal_correct[{m!r}]") for m in modalities])  # (M, N)
    joint = _bool(correct, "correct")
    if joint.shape[0] != stacked.shape[1]:
        raise DataError(f"agreement types: {stacked.shape[1]} unimodal and {joint.shape[0]} multimodal predictions")
    count = stacked.sum(0)
    scores = {REDUNDANT: (count == len(modalities)).double()}
    for i, m in enumerate(modalities):
        scores[unique_type(m)] = ((count == 1) & stacked[i]).double()
    scores[SYNERGISTIC] = ((count == 0) & joint).double()
    codes = _argmax_types("agreement", modalities, scores, floor=0.5)
    return TypeEstimate("agreement", type_names(modalities), codes, scores,
                        info={"rule": "all right: redundant; only m right: unique:m; none right and the "
                                      "multimodal model right: synergistic; else undetermined"})


def pointwise_information(p_true: Any, prior: Any) -> Tensor:
    """``log2(p_true / prior)`` ``(N,)`` in bits (``p_true`` clamped to ``>= 1e-12``)."""
    p = torch.as_tensor(p_true).double().clamp_min(1e-12)
    return torch.log(p / torch.as_tensor(prior).double()) / _LN2


def confidence_types(unimodal_p: Mapping[str, Any], p: Any, prior: Any) -> TypeEstimate:
    r"""Types from calibrated probabilities of the true label: a per-sample MMI decomposition.

    Args:
        unimodal_p: modality -> ``(N,)`` probability each unimodal model gives the sample's true label.
        p: ``(N,)`` the multimodal model's probability of the true label.
        prior: ``(N,)`` (or a scalar) the prior probability ``p(y)`` of each sample's true label.

    With ``i_m = log2 p_m / p(y)``, ``i_m+ = max(i_m, 0)``, ``i = log2 p / p(y)`` (bits)::

        r = min_m i_m+,  u_m = max(i_m+ - max_{m' != m} i_m'+, 0),  s = i - max_m i_m+

    type = argmax; ``undetermined`` where all are ``<= 0``. Scores and CSV columns: ``r, u_m, s`` (bits).
    """
    modalities = list(unimodal_p)
    if len(modalities) < 2:
        raise DataError(f"confidence types: need unimodal probabilities of at least two modalities, got {modalities}")
    info = {m: pointwise_information(unimodal_p[m], prior).clamp_min(0.0) for m in modalities}
    stacked = torch.stack([info[m] for m in modalities])  # (M, N)
    i_joint = pointwise_information(p, prior)
    if i_joint.shape[0] != stacked.shape[1]:
        raise DataError(f"confidence types: {stacked.shape[1]} unimodal and {i_joint.shape[0]} multimodal values")
    scores = {REDUNDANT: stacked.min(0).values}
    for j, m in enumerate(modalities):
        others = torch.cat([stacked[:j], stacked[j + 1:]]).max(0).values
        scores[unique_type(m)] = (stacked[j] - others).clamp_min(0.0)
    scores[SYNERGISTIC] = i_joint - stacked.max(0).values
    codes = _argmax_types("confidence", modalities, scores)
    columns = {"confidence_redundancy": scores[REDUNDANT],
               **{f"confidence_unique_{m}": scores[unique_type(m)] for m in modalities},
               "confidence_synergy": scores[SYNERGISTIC]}
    return TypeEstimate("confidence", type_names(modalities), codes, scores, columns,
                        info={"units": "bits", "decomposition": "pointwise MMI of calibrated probabilities"})


def lsmi_types(r: Any, u1: Any, u2: Any, s: Any, modalities: Sequence[str]) -> TypeEstimate:
    """Types from a per-sample LSMI decomposition (``r, u1, u2, s``: ``(N,)`` each, any unit; ``modalities``: the
    two modalities ``u1``, ``u2`` belong to): type = the largest component, ``undetermined`` where all four are
    ``<= 0`` (negative values are compared as they are). Scores and CSV columns: the components."""
    if len(modalities) != 2:
        raise DataError(f"lsmi types: LSMI decomposes a pair of modalities, got {list(modalities)}")
    m1, m2 = modalities
    comp = {REDUNDANT: torch.as_tensor(r).double(), unique_type(m1): torch.as_tensor(u1).double(),
            unique_type(m2): torch.as_tensor(u2).double(), SYNERGISTIC: torch.as_tensor(s).double()}
    if len({v.shape for v in comp.values()}) != 1:
        raise DataError("lsmi types: r, u1, u2 and s need the same shape")
    codes = _argmax_types("lsmi", modalities, comp)
    columns = {"lsmi_redundancy": comp[REDUNDANT], f"lsmi_unique_{m1}": comp[unique_type(m1)],
               f"lsmi_unique_{m2}": comp[unique_type(m2)], "lsmi_synergy": comp[SYNERGISTIC]}
    return TypeEstimate("lsmi", type_names(modalities), codes, comp, columns)


def _standardise_project(train: np.ndarray, dim: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mean, standard deviation (1 for constant columns) and PCA basis ``(d, dim)`` fitted on ``train``."""
    mean = train.mean(0)
    std = train.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    basis = None
    if dim is not None and dim < train.shape[1]:
        z = (train - mean) / std
        _, _, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
        basis = vt[:dim].T
    return mean, std, basis


def cluster_types(train_x: Mapping[str, Any], train_y: Any, test_x: Mapping[str, Any], test_y: Any,
                  num_classes: int, *, k: int, pca_dim: int | None = None, seed: int = 0,
                  clusterer: str = "kmeans") -> TypeEstimate:
    r"""Types from the pointwise BROJA PID of cluster codes (two modalities).

    Each modality (``(N, ...)``, flattened) is z-scored with training statistics, optionally projected on its top
    ``pca_dim`` principal components, and cut into ``k`` clusters fitted on the training split: k-means (test
    samples take the nearest centre) or, with ``clusterer="gmm"``, a full-covariance Gaussian mixture (test samples
    take their most probable component; :func:`interplay.pid.clustering.gaussian_mixture`). ``P[c1, c2, y]`` is
    the empirical pmf of the training split and the test sample ``n`` gets the pointwise terms ``r, u1, u2, s``
    (bits) of :func:`interplay.pid.pointwise_pid` at ``(c1_n, c2_n, y_n)``; a cell that never occurred in training
    gets 0 for every term (hence ``undetermined``). Type = argmax, ``undetermined`` where no term is positive.
    """
    from ..pid import pointwise_pid
    from ..pid.cluster import empirical_pmf
    from ..pid.clustering import assign_components, gaussian_mixture, kmeans

    if clusterer not in ("kmeans", "gmm"):
        raise ConfigError(f"cluster types: clusterer must be kmeans or gmm, got {clusterer!r}")
    modalities = list(train_x)
    if len(modalities) != 2 or list(test_x) != modalities:
        raise DataError(f"cluster types: need the same two modalities for train and test, got {modalities}, "
                        f"{list(test_x)}")
    ytr = np.asarray(torch.as_tensor(train_y).cpu(), dtype=np.int64)
    yte = np.asarray(torch.as_tensor(test_y).cpu(), dtype=np.int64)
    codes_tr, codes_te = [], []
    for j, m in enumerate(modalities):
        a = np.asarray(torch.as_tensor(train_x[m]).reshape(len(ytr), -1).double().cpu())
        b = np.asarray(torch.as_tensor(test_x[m]).reshape(len(yte), -1).double().cpu())
        mean, std, basis = _standardise_project(a, pca_dim)
        za, zb = (a - mean) / std, (b - mean) / std
        if basis is not None:
            za, zb = za @ basis, zb @ basis
        if clusterer == "gmm":
            gm = gaussian_mixture(za, k, seed=seed + j)
            codes_tr.append(gm.labels)
            codes_te.append(assign_components(gm, zb))
        else:
            km = kmeans(za, k, seed=seed + j)
            codes_tr.append(km.labels)
            codes_te.append(torch.cdist(torch.from_numpy(zb), torch.from_numpy(km.centers)).argmin(1).numpy())
    pmf = empirical_pmf(codes_tr[0], codes_tr[1], ytr, (k, k, num_classes))
    pw = pointwise_pid(pmf)
    seen = pmf[codes_te[0], codes_te[1], yte] > 0
    names = {"redundancy": REDUNDANT, "unique1": unique_type(modalities[0]), "unique2": unique_type(modalities[1]),
             "synergy": SYNERGISTIC}
    comp: dict[str, Tensor] = {}
    for atom, t in names.items():
        values = np.where(seen, np.nan_to_num(pw.terms()[atom][codes_te[0], codes_te[1], yte]), 0.0)
        comp[t] = torch.from_numpy(values.astype(np.float64))
    codes = _argmax_types("cluster", modalities, comp)
    columns = {"cluster_redundancy": comp[REDUNDANT], f"cluster_unique_{modalities[0]}": comp[names["unique1"]],
               f"cluster_unique_{modalities[1]}": comp[names["unique2"]], "cluster_synergy": comp[SYNERGISTIC]}
    return TypeEstimate("cluster", type_names(modalities), codes, comp, columns,
                        info={"k": k, "pca_dim": pca_dim, "clusterer": clusterer, "unseen_cells": int((~seen).sum()),
                              "pmf_pid_bits": {a: float(getattr(pw.result, a)) for a in names}})


# ---------------------------------------------------------------------------------------------- metrics
def confusion_matrix(estimated: Sequence[str], true: Sequence[str], estimated_types: Sequence[str],
                     true_types: Sequence[str]) -> list[list[int]]:
    """``matrix[i][j]`` = samples whose estimated type is ``estimated_types[i]`` and true type ``true_types[j]``
    (``estimated``, ``true``: ``(N,)`` labels; a label outside its list is an error)."""
    if len(estimated) != len(true):
        raise DataError(f"confusion matrix: {len(estimated)} estimated and {len(true)} true types")
    ei = {t: i for i, t in enumerate(estimated_types)}
    ti = {t: j for j, t in enumerate(true_types)}
    unknown = sorted({t for t in estimated if t not in ei} | {t for t in true if t not in ti})
    if unknown:
        raise DataError(f"confusion matrix: type {unknown[0]!r} is not among the listed types")
    flat = np.array([ei[e] * len(true_types) + ti[t] for e, t in zip(estimated, true)], dtype=np.int64)
    counts = np.bincount(flat, minlength=len(estimated_types) * len(true_types))
    return counts.reshape(len(estimated_types), len(true_types)).tolist()


def type_metrics(estimate: TypeEstimate, true: Sequence[str], true_types: Sequence[str] | None = None) \
        -> dict[str, Any]:
    """Agreement of ``estimate`` with the true types ``true`` (``(N,)`` labels in the vocabulary of
    :func:`type_names`, e.g. from :func:`true_type_names`).

    Returns ``confusion`` (``{"estimated": types, "true": true types present, "matrix": [[int]]}``, rows
    estimated), ``type_accuracy`` (fraction with estimated == true), ``macro_agreement`` (mean over the true types
    present of the fraction of their samples estimated as that type: the mean recall), ``recall`` per true type
    and ``auroc`` (true type -> one-vs-rest AUROC of its score; ``None`` where the estimator has no score for it or
    only one class is present).
    """
    labels = estimate.labels
    if len(labels) != len(true):
        raise DataError(f"{estimate.method} types: {len(labels)} estimated and {len(true)} true types")
    present = list(true_types) if true_types is not None else [t for t in estimate.types if t in set(true)] + \
        sorted(set(true) - set(estimate.types))
    present = [t for t in present if t in set(true)]
    matrix = confusion_matrix(labels, true, estimate.types, present)
    n = len(true)
    hits = sum(matrix[estimate.types.index(t)][j] for j, t in enumerate(present) if t in estimate.types)
    recall: dict[str, float] = {}
    for j, t in enumerate(present):
        column = sum(row[j] for row in matrix)
        recall[t] = matrix[estimate.types.index(t)][j] / column if t in estimate.types else 0.0
    true_arr = np.asarray(true, dtype=object)
    aurocs: dict[str, float | None] = {}
    for t in present:
        if t not in estimate.scores:
            aurocs[t] = None
            continue
        value = auroc(estimate.scores[t], true_arr == t)
        aurocs[t] = None if math.isnan(value) else value
    return {"confusion": {"estimated": list(estimate.types), "true": present, "matrix": matrix},
            "type_accuracy": hits / n if n else None,
            "macro_agreement": float(np.mean(list(recall.values()))) if recall else None,
            "recall": recall, "auroc": aurocs}


#: the per-sample type methods, in the order ``interplay analyze`` reports them
METHODS: tuple[str, ...] = ("agreement", "confidence", "lsmi", "cluster")


def check_methods(methods: Sequence[str]) -> list[str]:
    """The per-sample methods to run (``settings.per_sample``), checked: one-line :class:`ConfigError` for an
    unknown name."""
    known = METHODS
    out = []
    for m in methods:
        if m not in known:
            raise ConfigError(f"per_sample: unknown per-sample type method {m!r}; expected some of "
                              f"{', '.join(known)}")
        if m not in out:
            out.append(m)
    return out
