r"""Dataset-level PID of continuous features: the ``cluster`` estimator.

Liang et al. (NeurIPS 2023, the "CVX" estimator): discretise each modality with k-means (``clusterer="gmm"``: a
full-covariance Gaussian mixture, :mod:`interplay.pid.clustering`), count the joint occurrences of (cluster of
x1, cluster of x2, label) into the empirical pmf ``P_hat[c1, c2, y] = n(c1, c2, y) / N`` (shape
``(K1, K2, |Y|)``) and solve its exact BROJA PID (:func:`interplay.pid.broja`, bits).

Plug-in bias. ``P_hat`` has ``K1 K2 |Y|`` cells; with ``N`` samples the plug-in mutual informations
are biased upwards by about ``(cells - 1) / (2 N ln 2)`` bits, and that bias lands mostly in the
synergy: with X1, X2, Y independent, K = 20, |Y| = 2 and N = 3000 the plug-in S is about 0.1 bits.
This module therefore reports, next to the plug-in values:

* **Null 1, label shuffle** (``permutations`` draws): permute ``y`` against ``(c1, c2)``. Every atom
  is 0 in truth, so the mean of atom ``a`` over the draws, ``b_a``, estimates its plug-in bias at
  this ``(K1, K2, |Y|, N)`` and the fraction of draws at or above the observed value is a p-value.
  The **corrected** value is ``a_hat - b_a`` (not clipped; a negative value means "not
  distinguishable from zero"). This is the shuffle correction of Panzeri et al.; it removes the bias
  of an information-free table, which is a good approximation when the signal is weak and an
  overcorrection of at most ``b_a`` when the table is far from independent. With
  ``correction="bootstrap"`` the corrected value is ``a_hat - (mean of the bootstrap draws - a_hat)``
  instead (Efron's bias estimate, which follows the table's own bias; docs/pid-estimators.md compares
  the two).
* **Null 2, conditional shuffle** (same number of draws): permute ``c2`` among the samples with the
  same ``y``. This keeps the pair tables ``n(c1, y)`` and ``n(c2, y)`` exactly, hence ``Delta_P``,
  ``I* = min_Q I_Q`` and R, U1, U2, and makes ``X1`` and ``X2`` conditionally independent given ``Y``.
  Only ``S = I_P(X1, X2; Y) - I*`` changes, so it needs no solve: ``S_null = I_shuffled(X1,X2;Y) - I*``.
  It is the null for "synergy beyond what the pair tables imply under conditional independence",
  reported as ``p_synergy_conditional``.
* **Bootstrap** (``bootstrap`` draws): resample the ``N`` (c1, c2, y) triples with replacement
  (clusters fixed) and solve each table. With ``a*`` the draws, ``m`` their mean and ``q_p`` their
  quantiles, the interval for atom ``a`` is the basic (reverse percentile) interval placed around the
  corrected value: ``[a_corr - (q_{1-alpha/2} - m), a_corr + (m - q_{alpha/2})]``. The bootstrap's own
  upward bias (``m - a_hat``) is not subtracted a second time; the interval expresses sampling
  variability only, not the uncertainty of the bias estimate. The bootstrap standard deviation is
  reported too.

All tables of a null or bootstrap are solved together by :func:`interplay.pid.broja_batch` in chunks.

Choosing K. Ask for cells that are populated: ``K^2 |Y| <= N / min_per_cell`` (default 10 samples per
cell on average), i.e. ``K_auto = floor(sqrt(N / (10 |Y|)))`` clipped to ``[2, 20]``. A requested K
beyond that is used but raises a :class:`UserWarning` (also stored in ``result.warnings``).

Inputs: two ``(N, d_m)`` arrays (features, standardised raw inputs, or a model's embeddings; higher
rank inputs are flattened) and ``(N,)`` integer labels, or a dataset split via
:func:`cluster_pid_dataset`. With more than two modalities name the pair to analyse
(``modalities=("x1", "x3")``); the pairwise PID of a pair is not a decomposition of the information of
all modalities, and none is attempted here.

The PID repository's protocol (Liang et al., ``synthetic/clustering.ipynb`` and the CVX estimator): per split,
NaN set to 0, each sample scaled to unit norm, PCA to 2 components, k-means with k = 20 per modality, the empirical
pmf of the cluster labels, its BROJA PID in nats, no bias correction. The same steps here:
``standardize=False, row_normalize=True, pca_dim=2, k=20, permutations=0, bootstrap=0, units="nats"`` with
``split="test"`` (one split). Their k-means is scikit-learn's (random seeding, no fixed seed), ours is seeded, so
the clusters agree with theirs only up to k-means' local optima; on the same cluster labels the PID is the same
(``tests/pid/test_pid_repo_protocol.py``).

Settings. Every option lives in :class:`ClusterSettings` (names, types, defaults); the estimator registered as
``cluster`` (:data:`interplay.pid.estimator.ESTIMATORS`) is :func:`estimate_cluster` ``(data, settings)``.
:func:`cluster_pid` and :func:`cluster_pid_dataset` take the same options as keyword arguments.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError, DataError
from ..estimators import as_2d
from .clustering import KMeansResult, gaussian_mixture, kmeans
from .estimator import (
    LabelledData,
    LabelledSplits,
    pick_pair,
    register_estimator,
    settings_with,
    store_tuples,
)
from .results import PIDResult, unit_scale
from .solver import broja, broja_batch

__all__ = [
    "ATOMS",
    "ClusterPIDResult",
    "ClusterSettings",
    "KMeansResult",
    "auto_k",
    "cluster_pid",
    "cluster_pid_dataset",
    "embeddings_from",
    "empirical_pmf",
    "estimate_cluster",
    "kmeans",
]

ATOMS: tuple[str, ...] = ("redundancy", "unique1", "unique2", "synergy")
_INFO = ("i_x1_y", "i_x2_y", "i_x1x2_y")
_LN2 = math.log(2.0)


# ---------------------------------------------------------------------------------------------- helpers
def auto_k(n: int, num_classes: int, *, min_per_cell: float = 10.0, k_min: int = 2, k_max: int = 20) -> int:
    """Clusters per modality so that ``K^2 |Y| <= N / min_per_cell``: ``floor(sqrt(N / (min_per_cell |Y|)))``
    clipped to ``[k_min, k_max]``."""
    k = int(math.floor(math.sqrt(n / (min_per_cell * max(num_classes, 1)))))
    return int(min(max(k, k_min), k_max))


def empirical_pmf(c1: np.ndarray, c2: np.ndarray, y: np.ndarray, shape: tuple[int, int, int],
                  weights: np.ndarray | None = None) -> np.ndarray:
    """``P_hat[c1, c2, y]``: normalised counts of the triples (optionally weighted), shape ``shape``."""
    flat = (c1 * shape[1] + c2) * shape[2] + y
    counts = np.bincount(flat, weights=weights, minlength=shape[0] * shape[1] * shape[2]).astype(np.float64)
    return (counts / counts.sum()).reshape(shape)


def _mi12_bits(P: np.ndarray) -> np.ndarray:
    """``I(X1, X2; Y) = H(X1, X2) + H(Y) - H(X1, X2, Y)`` in bits of a batch ``P (B, K1, K2, Y)``."""
    def h(p: np.ndarray) -> np.ndarray:
        flat = p.reshape(p.shape[0], -1)
        return -np.where(flat > 0, flat * np.log(np.where(flat > 0, flat, 1.0)), 0.0).sum(1)

    return (h(P.sum(3)) + h(P.sum((1, 2))) - h(P)) / _LN2


def _prepare(x: np.ndarray, standardize: bool, pca_dim: int | None, row_normalize: bool = False) -> np.ndarray:
    """The points k-means sees, in this order: optionally z-score each column (constant columns dropped),
    optionally scale each row to unit Euclidean norm (``x_n / max(||x_n||, 1e-12)``, an all-zero row stays
    zero: scikit-learn's ``normalize``), optionally project on the top ``pca_dim`` principal components
    (centred, not whitened: ``PCA(n_components).fit_transform``)."""
    if standardize:
        std = x.std(0)
        keep = std > 1e-12
        x = (x[:, keep] - x[:, keep].mean(0)) / std[keep]
    if row_normalize:
        norms = np.sqrt((x * x).sum(1, keepdims=True))
        x = x / np.maximum(norms, 1e-12)
    if pca_dim is not None and pca_dim < x.shape[1]:
        xc = x - x.mean(0)
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        x = xc @ vt[:pca_dim].T
    return x


def _solve_chunks(P: np.ndarray, chunk: int, bar: Any) -> dict[str, np.ndarray]:
    """Solve a stack of pmfs ``(B, K1, K2, Y)`` with :func:`broja_batch` ``chunk`` at a time."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in (*ATOMS, *_INFO, "gap")}
    for start in range(0, P.shape[0], chunk):
        r = broja_batch(P[start:start + chunk])
        for key in out:
            out[key].append(np.asarray(getattr(r, key), dtype=np.float64))
        bar.update(min(chunk, P.shape[0] - start))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ClusterSettings:
    """Options of the ``cluster`` estimator (defaults as listed).

    Attributes:
        modalities: the two modality names to analyse (required when the data have more than two; data only).
        split: which splits of a dataset's train/val/test to pool (``"all"``: the non-empty ones; data only).
        k: clusters per modality (one int for both, or ``(k1, k2)``); ``None``: :func:`auto_k`.
        num_classes: ``|Y|`` (default: the dataset's number of classes, else ``max(y) + 1``).
        permutations: draws of each permutation null (0 disables both nulls and the correction).
        bootstrap: bootstrap draws (0 disables the intervals).
        seed: seeds k-means (``seed``, ``seed + 1`` for the two modalities) and the resampling (``seed + 2``).
        standardize: z-score every feature before k-means (recommended for raw inputs and embeddings alike).
        row_normalize: scale every sample of a modality to unit Euclidean norm (after ``standardize``, before
            the PCA), as the PID repository does (``sklearn.preprocessing.normalize``).
        pca_dim: optionally project each modality on its top ``pca_dim`` principal components first.
        units: ``"bits"`` (default) or ``"nats"`` for every information value of the result (the PID
            repository reports nats); p-values, counts and settings do not change.
        n_init: restarts of the discretiser (k-means starts, or EM starts for ``gmm``).
        clusterer: how each modality is discretised: ``"kmeans"`` (Lloyd, spherical Voronoi cells; the PID
            repository's choice) or ``"gmm"`` (a full-covariance Gaussian mixture fitted by EM, every sample assigned
            to its most responsible component: :func:`interplay.pid.clustering.gaussian_mixture`). ``gmm`` follows
            elongated class clouds that k-means cuts across (docs/analysis.md, "Which discretiser").
        correction: the bias subtracted from every plug-in value: ``"shuffle"`` (the label-shuffle null mean, exact
            for an information-free table, an over-correction of up to that mean for a nearly deterministic one) or
            ``"bootstrap"`` (Efron's bootstrap bias estimate ``mean(boot) - plug-in``, which follows the table's own
            bias in both regimes; needs ``bootstrap > 0``). The permutation nulls and p-values do not depend on it.
        min_per_cell: the average samples per cell ``N / (K1 K2 |Y|)`` below which a warning is raised
            (and the target of :func:`auto_k`).
        ci_level: coverage of the bootstrap interval.
        chunk: pmfs per :func:`broja_batch` call.
        quiet: no progress bar.
    """

    modalities: tuple[str, str] | None = None
    split: Literal["all", "train", "val", "test"] = "all"
    k: int | tuple[int, int] | None = None
    num_classes: int | None = None
    permutations: int = 100
    bootstrap: int = 100
    seed: int = 0
    standardize: bool = True
    row_normalize: bool = False
    pca_dim: int | None = None
    units: Literal["bits", "nats"] = "bits"
    n_init: int = 4
    clusterer: Literal["kmeans", "gmm"] = "kmeans"
    correction: Literal["shuffle", "bootstrap"] = "shuffle"
    min_per_cell: float = 10.0
    ci_level: float = 0.95
    chunk: int = 50
    quiet: bool = True

    def __post_init__(self) -> None:
        store_tuples(self, ("modalities", "k"))


# ---------------------------------------------------------------------------------------------- result
@dataclass
class ClusterPIDResult:
    """Output of :func:`cluster_pid` (all information values in :attr:`units`, bits by default).

    Attributes:
        plugin: :class:`PIDResult` of the empirical pmf ``P_hat`` (shape ``(K1, K2, |Y|)`` in ``plugin.q``'s shape).
        pmf: ``P_hat`` itself.
        corrected: atom -> plug-in minus :attr:`bias` (may be negative).
        bias: atom and ``i_x1_y``, ``i_x2_y``, ``i_x1x2_y`` -> the bias subtracted (the label-shuffle null mean or
            the bootstrap bias estimate, :attr:`ClusterSettings.correction`; empty without a correction).
        null_mean, null_std: atom (and ``i_x1_y``, ``i_x2_y``, ``i_x1x2_y``) -> mean / std over the
            label-shuffle draws.
        p_value: atom -> fraction of label-shuffle draws (plus one) at or above the plug-in value,
            ``(1 + #{null >= obs}) / (1 + n)``.
        synergy_conditional_null_mean, p_synergy_conditional: the conditional-shuffle null of S.
        ci_low, ci_high: atom -> ends of the bootstrap interval around the corrected value.
        boot_std: atom -> bootstrap standard deviation.
        labels1, labels2: ``(N,)`` cluster index of every sample per modality.
        settings: everything needed to reproduce the numbers (k per modality, N, |Y|, seeds, draws,
            k-means inertia and iterations, fraction of occupied cells, ...).
        warnings: human-readable warnings (e.g. K too large for N).
        null_draws, conditional_null_draws, boot_draws: the raw draws, atom -> ``(n,)`` arrays.
        units: ``"bits"`` or ``"nats"`` (:attr:`ClusterSettings.units`).
    """

    plugin: PIDResult
    pmf: np.ndarray
    corrected: dict[str, float]
    null_mean: dict[str, float]
    null_std: dict[str, float]
    p_value: dict[str, float]
    synergy_conditional_null_mean: float
    p_synergy_conditional: float
    ci_low: dict[str, float]
    ci_high: dict[str, float]
    boot_std: dict[str, float]
    labels1: np.ndarray
    labels2: np.ndarray
    settings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    bias: dict[str, float] = field(default_factory=dict)
    null_draws: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    conditional_null_draws: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    boot_draws: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    units: str = "bits"

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly dict: plug-in, null, corrected values, intervals, p-values, settings, warnings."""
        atoms = {}
        for a in ATOMS:
            atoms[a] = {"plugin": getattr(self.plugin, a), "null_mean": self.null_mean.get(a),
                        "null_std": self.null_std.get(a), "bias": self.bias.get(a), "corrected": self.corrected[a],
                        "ci_low": self.ci_low.get(a), "ci_high": self.ci_high.get(a),
                        "boot_std": self.boot_std.get(a), "p_value": self.p_value.get(a)}
        info = {k: {"plugin": getattr(self.plugin, k), "null_mean": self.null_mean.get(k),
                    "corrected": getattr(self.plugin, k) - self.bias.get(k, 0.0)} for k in _INFO}
        return {"units": self.units, "atoms": atoms, "information": info,
                "synergy_conditional_null_mean": self.synergy_conditional_null_mean,
                "p_synergy_conditional": self.p_synergy_conditional,
                "solver": {"gap": self.plugin.gap, "converged": self.plugin.converged},
                "settings": self.settings, "warnings": list(self.warnings)}

    def rows(self, truth: Mapping[str, float] | None = None, digits: int = 3) -> tuple[list[str], list[list[str]]]:
        """Headers and rows of the dataset-level table (for :func:`interplay.bench.tables.format_table`);
        ``truth`` (atom -> bits) adds a ground-truth column."""
        level = self.settings.get("ci_level", 0.95)

        def f(v: float | None) -> str:
            return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"

        headers = ["atom", "plug-in", "null mean", "corrected", f"{round(100 * level)}% interval", "p"]
        if truth is not None:
            headers.append("truth (latent)")
        rows = []
        names = {"redundancy": "R", "unique1": "U1", "unique2": "U2", "synergy": "S"}
        for a in ATOMS:
            lo, hi = self.ci_low.get(a), self.ci_high.get(a)
            interval = "-" if lo is None or hi is None else f"[{f(lo)}, {f(hi)}]"
            p = self.p_value.get(a)
            row = [f"{names[a]} ({a})", f(getattr(self.plugin, a)), f(self.null_mean.get(a)), f(self.corrected[a]),
                   interval, "-" if p is None else f"{p:.3f}"]
            if truth is not None:
                row.append(f(truth.get(a)))
            rows.append(row)
        for k, label in zip(_INFO, ("I(X1;Y)", "I(X2;Y)", "I(X1,X2;Y)")):
            plug = getattr(self.plugin, k)
            row = [label, f(plug), f(self.null_mean.get(k)), f(plug - self.bias.get(k, 0.0)), "-", "-"]
            if truth is not None:
                row.append(f(truth.get(k)))
            rows.append(row)
        return headers, rows


# ---------------------------------------------------------------------------------------------- estimator
def _discretise(p1: np.ndarray, p2: np.ndarray, k1: int, k2: int,
                s: ClusterSettings) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Cluster labels of both modalities (seeds ``s.seed`` and ``s.seed + 1``) with ``s.clusterer``, and what the
    fit reports (iterations, inertia or mean log-likelihood)."""
    if s.clusterer == "kmeans":
        km1 = kmeans(p1, k1, seed=s.seed, n_init=s.n_init)
        km2 = kmeans(p2, k2, seed=s.seed + 1, n_init=s.n_init)
        return km1.labels, km2.labels, {"n_init": s.n_init, "init": "k-means++",
                                        "iterations": [km1.iterations, km2.iterations],
                                        "inertia": [km1.inertia, km2.inertia]}
    if s.clusterer == "gmm":
        g1 = gaussian_mixture(p1, k1, seed=s.seed, n_init=s.n_init)
        g2 = gaussian_mixture(p2, k2, seed=s.seed + 1, n_init=s.n_init)
        return g1.labels, g2.labels, {"n_init": s.n_init, "init": "k-means++", "covariance": "full",
                                      "iterations": [g1.iterations, g2.iterations],
                                      "log_likelihood": [g1.log_likelihood, g2.log_likelihood]}
    raise ConfigError(f"cluster PID: clusterer must be kmeans or gmm, got {s.clusterer!r}")


def cluster_pid(x1: Any, x2: Any, y: Any, settings: ClusterSettings | None = None,
                **options: Any) -> ClusterPIDResult:
    r"""Dataset-level PID of two continuous modalities by k-means discretisation and exact BROJA PID.

    Args:
        x1, x2: ``(N, d1)`` and ``(N, d2)`` features or embeddings (numpy or torch; ``(N, ...)`` is flattened).
        y: ``(N,)`` integer class labels in ``[0, num_classes)``.
        settings: the options (:class:`ClusterSettings`; default: its defaults). ``modalities`` and ``split``
            do not apply to arrays.
        **options: fields of :class:`ClusterSettings` replacing those of ``settings`` (e.g. ``k=3``,
            ``permutations=0``, ``seed=1``).

    Returns:
        :class:`ClusterPIDResult`.

    Raises:
        DataError: mismatched lengths, NaN/inf, bad labels, fewer than 2 samples.
        ConfigError: invalid ``k``, ``permutations``, ``bootstrap``, ``ci_level``.
        TypeError: an option that is not a field of :class:`ClusterSettings`.
    """
    return _cluster_arrays(x1, x2, y, settings_with(ClusterSettings, settings, options, "cluster_pid"))


def _cluster_arrays(x1: Any, x2: Any, y: Any, s: ClusterSettings) -> ClusterPIDResult:
    """:func:`cluster_pid` with resolved settings."""
    k, num_classes, permutations, bootstrap, seed = s.k, s.num_classes, s.permutations, s.bootstrap, s.seed
    standardize, pca_dim, min_per_cell, ci_level = s.standardize, s.pca_dim, s.min_per_cell, s.ci_level
    chunk, quiet = s.chunk, s.quiet
    scale = unit_scale(s.units, "cluster PID: units")
    a1, a2 = as_2d(x1, "x1", check_finite=True), as_2d(x2, "x2", check_finite=True)
    yy = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
    if yy.ndim != 1 or not (len(yy) == len(a1) == len(a2)):
        raise DataError(f"cluster PID: x1, x2 and y need the same number of samples, got {len(a1)}, {len(a2)}, "
                        f"{len(yy)} (y must be 1-D)")
    n = len(yy)
    if n < 2:
        raise DataError(f"cluster PID: need at least 2 samples, got {n}")
    if yy.dtype.kind == "f":
        if not np.all(np.isfinite(yy)) or not np.all(yy == np.round(yy)):
            raise DataError("cluster PID: y must hold integer class labels (regression targets are not supported)")
    elif yy.dtype.kind not in "iub":
        raise DataError(f"cluster PID: y must hold integer class labels, got dtype {yy.dtype}")
    yy = yy.astype(np.int64)
    if yy.min() < 0:
        raise DataError(f"cluster PID: labels must be >= 0, found {int(yy.min())}")
    ny = int(yy.max()) + 1 if num_classes is None else int(num_classes)
    if yy.max() >= ny:
        raise DataError(f"cluster PID: labels must lie in [0, {ny}), found {int(yy.max())}")
    if permutations < 0 or bootstrap < 0:
        raise ConfigError(f"cluster PID: permutations and bootstrap must be >= 0, got {permutations}, {bootstrap}")
    if not 0 < ci_level < 1:
        raise ConfigError(f"cluster PID: ci_level must lie in (0, 1), got {ci_level}")
    if pca_dim is not None and pca_dim < 1:
        raise ConfigError(f"cluster PID: pca_dim must be a positive integer, got {pca_dim}")
    if s.correction not in ("shuffle", "bootstrap"):
        raise ConfigError(f"cluster PID: correction must be shuffle or bootstrap, got {s.correction!r}")
    if s.correction == "bootstrap" and bootstrap == 0:
        raise ConfigError("cluster PID: correction=bootstrap needs bootstrap draws (bootstrap > 0)")

    warns: list[str] = []
    k_auto = auto_k(n, ny, min_per_cell=min_per_cell)
    if k is None:
        k1 = k2 = k_auto
    else:
        k1, k2 = (k, k) if isinstance(k, (int, np.integer)) else (int(k[0]), int(k[1]))
        for kk in (k1, k2):
            if isinstance(kk, bool) or kk < 1 or kk > n:
                raise ConfigError(f"cluster PID: k must lie in [1, N={n}], got {kk}")
    cells = k1 * k2 * ny
    if n / cells < min_per_cell:
        msg = (f"K1*K2*|Y| = {k1}*{k2}*{ny} = {cells} cells for N = {n} samples ({n / cells:.1f} per cell, "
               f"fewer than {min_per_cell:g}): the plug-in PID is strongly biased (mostly into synergy); "
               f"use k <= {k_auto} or more samples")
        warns.append(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)

    p1 = _prepare(a1, standardize, pca_dim, s.row_normalize)
    p2 = _prepare(a2, standardize, pca_dim, s.row_normalize)
    c1, c2, fit = _discretise(p1, p2, k1, k2, s)
    shape = (k1, k2, ny)
    pmf = empirical_pmf(c1, c2, yy, shape)
    plugin = broja(pmf)

    rng = np.random.default_rng(seed + 2)
    total = permutations + bootstrap
    bar = tqdm(total=total, desc="cluster PID (null + bootstrap)", unit="pmf",
               disable=True if quiet or total == 0 else None, leave=False)
    null: dict[str, np.ndarray] = {}
    cond = np.zeros(0)
    if permutations:
        shuffled = np.stack([empirical_pmf(c1, c2, rng.permutation(yy), shape) for _ in range(permutations)])
        null = _solve_chunks(shuffled, chunk, bar)
        # conditional null: permute c2 within each class; R, U1, U2 and I* are unchanged
        by_class = [np.flatnonzero(yy == c) for c in range(ny)]
        cond_pmfs = []
        for _ in range(permutations):
            c2s = c2.copy()
            for idx in by_class:
                c2s[idx] = c2[rng.permutation(idx)]
            cond_pmfs.append(empirical_pmf(c1, c2s, yy, shape))
        i_star = plugin.i_x1x2_y - plugin.synergy
        cond = np.maximum(_mi12_bits(np.stack(cond_pmfs)) - i_star, 0.0)
    boot: dict[str, np.ndarray] = {}
    if bootstrap:
        boots = np.stack([empirical_pmf(c1, c2, yy, shape, weights=np.bincount(rng.integers(0, n, n), minlength=n)
                                        .astype(np.float64)) for _ in range(bootstrap)])
        boot = _solve_chunks(boots, chunk, bar)
    bar.close()

    keys = (*ATOMS, *_INFO)
    null_mean = {a: float(null[a].mean()) for a in keys} if permutations else {}
    null_std = {a: float(null[a].std(ddof=1)) if permutations > 1 else 0.0 for a in keys} if permutations else {}
    p_value = {a: float((1 + np.sum(null[a] >= getattr(plugin, a) - 1e-12)) / (1 + permutations))
               for a in ATOMS} if permutations else {}
    if s.correction == "bootstrap":
        bias = {a: float(boot[a].mean()) - getattr(plugin, a) for a in keys}
    else:
        bias = dict(null_mean)
    corrected = {a: getattr(plugin, a) - bias.get(a, 0.0) for a in ATOMS}
    alpha = 1.0 - ci_level
    ci_low: dict[str, float] = {}
    ci_high: dict[str, float] = {}
    boot_std: dict[str, float] = {}
    if bootstrap:
        for a in ATOMS:
            lo_q, hi_q = np.quantile(boot[a], [alpha / 2, 1 - alpha / 2])
            centre = float(boot[a].mean())
            ci_low[a] = float(corrected[a] - (hi_q - centre))
            ci_high[a] = float(corrected[a] + (centre - lo_q))
            boot_std[a] = float(boot[a].std(ddof=1)) if bootstrap > 1 else 0.0
    cond_mean = float(cond.mean()) if permutations else math.nan
    p_cond = float((1 + np.sum(cond >= plugin.synergy - 1e-12)) / (1 + permutations)) if permutations else math.nan

    settings = {
        "estimator": "cluster", "n": n, "num_classes": ny, "k1": k1, "k2": k2, "k_auto": k_auto,
        "k_chosen": "auto" if k is None else "user", "cells": cells, "samples_per_cell": n / cells,
        "occupied_cells": int((pmf > 0).sum()), "min_per_cell": min_per_cell,
        "permutations": permutations, "bootstrap": bootstrap, "ci_level": ci_level,
        "seed": seed, "kmeans_seeds": [seed, seed + 1], "resampling_seed": seed + 2,
        "clusterer": s.clusterer, s.clusterer: fit,
        "standardize": standardize, "row_normalize": s.row_normalize, "pca_dim": pca_dim,
        "dims": [int(a1.shape[1]), int(a2.shape[1])], "units": s.units,
        "correction": s.correction,
        "bias_correction": ("plug-in minus the bootstrap bias estimate (mean of the draws minus plug-in)"
                            if s.correction == "bootstrap" else "plug-in minus label-shuffle null mean"),
        "interval": "basic bootstrap (clusters fixed) around the corrected value",
    }
    if scale != 1.0:  # everything above is in bits; p-values and counts do not depend on the unit
        plugin = plugin.to_units(s.units)
        corrected, null_mean, null_std, ci_low, ci_high, boot_std, bias = (
            {a: v * scale for a, v in d.items()}
            for d in (corrected, null_mean, null_std, ci_low, ci_high, boot_std, bias))
        null, boot = ({a: v * scale for a, v in d.items()} for d in (null, boot))
        cond, cond_mean = cond * scale, cond_mean * scale
    return ClusterPIDResult(plugin=plugin, pmf=pmf, corrected=corrected, null_mean=null_mean, null_std=null_std,
                            p_value=p_value, synergy_conditional_null_mean=cond_mean, p_synergy_conditional=p_cond,
                            ci_low=ci_low, ci_high=ci_high, boot_std=boot_std, labels1=c1, labels2=c2,
                            settings=settings, warnings=warns, null_draws=null, conditional_null_draws=cond,
                            boot_draws=boot, units=s.units, bias=bias)


def _parts(data: LabelledSplits | LabelledData | Sequence[LabelledData], split: str) -> list[LabelledData]:
    """The split(s) to pool: a dataset's ``split`` (``"all"``: its non-empty train, val and test), or the given
    split(s)."""
    if isinstance(data, LabelledSplits):
        if split not in ("all", "train", "val", "test"):
            raise ConfigError(f"cluster PID: split must be all, train, val or test, got {split!r}")
        chosen = [data.train, data.val, data.test] if split == "all" else [getattr(data, split)]
        return [p for p in chosen if len(p) > 0]
    if isinstance(data, LabelledData):
        return [data]
    return list(data)


@register_estimator("cluster", ClusterSettings, level="dataset",
                    description="dataset-level PID: k-means discretisation, exact BROJA PID, bias correction, "
                                "nulls and bootstrap intervals (bits, or nats with units=nats)")
def estimate_cluster(data: LabelledSplits | LabelledData | Sequence[LabelledData], settings: ClusterSettings, *,
                     embeddings: Mapping[str, Any] | None = None) -> ClusterPIDResult:
    """Dataset-level PID of a pair of modalities by clustering (the registered ``cluster`` estimator).

    Args:
        data: a dataset's splits (``settings.split`` picks which to pool; ``|Y|`` from ``data.info`` unless
            ``settings.num_classes`` is set), one split (e.g. ``splits.test``) or a sequence of splits
            (concatenated).
        settings: :class:`ClusterSettings`; ``settings.modalities`` names the pair (required with more than
            two modalities).
        embeddings: optional modality -> ``(N, d)`` arrays replacing the raw inputs (e.g. from
            :func:`embeddings_from`); the labels still come from ``data``.
    """
    parts = _parts(data, settings.split)
    if isinstance(data, LabelledSplits) and settings.num_classes is None:
        settings = dataclasses.replace(settings, num_classes=data.info.num_classes)
    if not parts:
        raise DataError("cluster PID: no dataset given")
    where = parts[0].name
    m1, m2 = pick_pair(parts[0].modalities, settings.modalities, where)
    y = torch.cat([p.target for p in parts])
    if y.is_floating_point():
        raise DataError(f"{where}: the cluster PID needs class labels; this dataset has a regression target")
    if embeddings is not None:
        x1, x2 = embeddings[m1], embeddings[m2]
    else:
        x1 = torch.cat([p.inputs[m1].reshape(len(p), -1) for p in parts])
        x2 = torch.cat([p.inputs[m2].reshape(len(p), -1) for p in parts])
    result = _cluster_arrays(x1, x2, y, settings)
    result.settings["modalities"] = [m1, m2]
    result.settings["input"] = "embeddings" if embeddings is not None else "features"
    result.settings["splits"] = [p.name for p in parts]
    return result


def cluster_pid_dataset(dataset: LabelledData | Sequence[LabelledData] | LabelledSplits, *,
                        modalities: Sequence[str] | None = None, embeddings: Mapping[str, Any] | None = None,
                        settings: ClusterSettings | None = None, **options: Any) -> ClusterPIDResult:
    """:func:`cluster_pid` on a dataset split (or several splits, concatenated): :func:`estimate_cluster` with
    keyword options.

    Args:
        dataset: a split (e.g. ``splits.test``, any :class:`~interplay.pid.estimator.LabelledData` such as a
            ``MultimodalDataset``), a sequence of them, or a dataset's splits.
        modalities: the two modality names to analyse (required when there are more than two).
        embeddings: optional modality -> ``(N, d)`` arrays replacing the raw inputs (e.g. from
            :func:`embeddings_from`); the labels still come from ``dataset``.
        settings: :class:`ClusterSettings` (default: its defaults).
        **options: fields of :class:`ClusterSettings` replacing those of ``settings``.
    """
    if modalities is not None:
        options["modalities"] = tuple(modalities)
    return estimate_cluster(dataset, settings_with(ClusterSettings, settings, options, "cluster_pid_dataset"),
                            embeddings=embeddings)


class Encoder(Protocol):
    """A model with per-modality encoders: ``encode({m: (B, ...)}) -> {m: (B, d_m)}`` (e.g. a
    :class:`interplay.models.MultimodalModel`) and the ``nn.Module`` mode switches."""

    training: bool

    def encode(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...

    def eval(self) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...


@torch.no_grad()
def embeddings_from(model: Encoder, dataset: LabelledData, *, batch_size: int = 512,
                    device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Encoder outputs ``{m: (N, d_m)}`` (CPU float32) of a trained model on every sample of ``dataset``.

    Uses ``model.encode(inputs)`` (a :class:`interplay.models.MultimodalModel`, e.g. ``Trainer(...).fit()``'s
    ``trainer.model``) in eval mode, without gradients; the model's train/eval mode is restored afterwards.
    """
    if not hasattr(model, "encode"):
        raise ConfigError(f"embeddings_from: the model ({type(model).__name__}) has no encode(inputs) method")
    if device is None:
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    was_training = model.training
    model.eval()
    out: dict[str, list[torch.Tensor]] = {}
    try:
        for start in range(0, len(dataset), batch_size):
            inputs = {m: v[start:start + batch_size].to(device) for m, v in dataset.inputs.items()}
            feats = model.encode(inputs)
            for m, f in feats.items():
                out.setdefault(m, []).append(f.reshape(f.shape[0], -1).float().cpu())
    finally:
        model.train(was_training)
    return {m: torch.cat(v) for m, v in out.items()}
