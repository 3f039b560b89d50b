"""Entropy and mutual-information estimators for continuous multi-view data.

Two backends, both in nats (``EstimatorSettings(units="bits")`` converts), both run on standardised features
(see :func:`information_report`):

* ``gaussian``: fit one covariance to the concatenated views (Ledoit-Wolf shrinkage by default) and
  use Gaussian closed forms, ``H(v) = 1/2 log det(2 pi e Sigma_v)``; the per-view entropies come from
  the diagonal blocks of the same matrix, so ``I >= 0`` always holds. Exact for Gaussian data; for
  anything else it is the *maximum-entropy* value for the fitted covariance, i.e. an upper bound on
  the differential entropy (and, in OMIB's use, a conservative, smaller beta bound).
* ``knn``: Kozachenko-Leonenko entropy per view (Euclidean k-th neighbour distances) and the
  Kraskov-Stoegbauer-Grassberger estimator (algorithm 1, max-norm) of the total correlation
  ``I(v_1; ...; v_M) = sum_i H(v_i) - H(v_1, ..., v_M)``; the joint entropy is then
  ``sum_i H_i - I``. Nonparametric, but biased in high dimension and meaningless on data with
  repeated values (zero neighbour distances).

Differential entropies are not invariant to units and can be negative: they depend on the feature
scaling and on the estimator. :func:`information_report` therefore standardises every feature
(training statistics, constant features dropped) so that entropies are measured per unit standard
deviation, records every setting it used, and flags (``valid=False``) a result whose entropies are
non-positive or non-finite; the caller decides what to do (OMIB falls back to the Gaussian backend,
see ``interplay.objectives.omib``).

All functions take NumPy arrays or tensors of shape ``(N, d)`` (higher-rank inputs are flattened).
Cost: the Gaussian backend is one ``D x D`` covariance and log-determinants (``D`` = total width);
the kNN backend computes ``n x n`` distance blocks in chunks (``n <= max_samples``), ``O(n^2 D)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from .errors import DataError

Backend = Literal["gaussian", "knn"]
LOG_2PIE = math.log(2 * math.pi * math.e)


def as_2d(x: Any, name: str = "x", *, check_finite: bool = False) -> np.ndarray:
    """``x`` (numpy array, tensor or nested sequence of ``N`` samples) as an ``(N, d)`` float64 array: ``(N,)``
    becomes ``(N, 1)``, ``(N, ...)`` is flattened. ``check_finite`` refuses NaN / inf. The one such helper of the
    package (the information estimators here and :mod:`interplay.pid.cluster` use it).

    Raises:
        DataError: a scalar, or (with ``check_finite``) NaN / inf entries; the message names ``name``.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim < 1:
        raise DataError(f"{name}: expected an (N, d) array, got a scalar")
    a = a.reshape(a.shape[0], -1)
    if check_finite and not np.isfinite(a).all():
        raise DataError(f"{name}: contains NaN or inf")
    return a


# ---------------------------------------------------------------------------------------- Gaussian
def ledoit_wolf_covariance(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of ``x`` ``(n, d)`` towards ``mu * I`` (``mu`` = mean variance),
    with the data's own optimal shrinkage intensity; returns ``(cov, shrinkage)``."""
    x = x - x.mean(0, keepdims=True)
    n, d = x.shape
    s = x.T @ x / n
    mu = float(np.trace(s)) / d
    delta = float(((s - mu * np.eye(d)) ** 2).sum()) / d
    if delta <= 0:
        return s, 0.0
    x2 = x**2
    beta = (float((x2.T @ x2).sum()) / n - float((s**2).sum())) / (n * d)
    shrink = min(max(beta, 0.0), delta) / delta
    return (1 - shrink) * s + shrink * mu * np.eye(d), shrink


def gaussian_covariance(x: np.ndarray, shrinkage: float | None = None) -> tuple[np.ndarray, float]:
    """Covariance used by the Gaussian backend: Ledoit-Wolf (``shrinkage=None``) or
    ``(1 - shrinkage) S + shrinkage * mu I`` with the sample covariance ``S`` (divided by ``n``)."""
    x = as_2d(x)
    if shrinkage is None:
        return ledoit_wolf_covariance(x)
    if not 0 <= shrinkage <= 1:
        raise ValueError(f"shrinkage: expected a number in [0, 1] or None, got {shrinkage}")
    xc = x - x.mean(0, keepdims=True)
    s = xc.T @ xc / x.shape[0]
    mu = float(np.trace(s)) / s.shape[0]
    return (1 - shrinkage) * s + shrinkage * mu * np.eye(s.shape[0]), float(shrinkage)


def gaussian_entropy_from_cov(cov: np.ndarray) -> float:
    """``1/2 log det(2 pi e cov)`` in nats (``-inf`` for a singular matrix)."""
    d = cov.shape[0]
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return float("-inf")
    return 0.5 * (d * LOG_2PIE + float(logdet))


def gaussian_entropy(x: Any, shrinkage: float | None = None) -> float:
    """Entropy (nats) of the Gaussian with ``x``'s (shrunk) covariance."""
    return gaussian_entropy_from_cov(gaussian_covariance(as_2d(x), shrinkage)[0])


# ---------------------------------------------------------------------------------------- kNN
def _pairwise(a: torch.Tensor, b: torch.Tensor, p: float) -> torch.Tensor:
    return torch.cdist(a, b, p=p)


def knn_entropy(x: Any, k: int = 3) -> float:
    """Kozachenko-Leonenko entropy (nats): ``psi(n) - psi(k) + log V_d + d/n sum_i log r_i`` with
    ``r_i`` the Euclidean distance from sample i to its k-th nearest neighbour and ``V_d`` the volume
    of the unit d-ball. Returns ``-inf`` when some ``r_i`` is zero (repeated samples)."""
    a = as_2d(x)
    n, d = a.shape
    if not 1 <= k < n:
        raise ValueError(f"k: expected 1 <= k < n={n}, got {k}")
    t = torch.from_numpy(a)
    logs = []
    step = _chunk_size(n)
    for s in range(0, n, step):
        idx = torch.arange(s, min(s + step, n))
        dist = _pairwise(t[idx], t, 2.0)
        dist[torch.arange(len(idx)), idx] = float("inf")  # exclude the sample itself
        logs.append(torch.log(dist.kthvalue(k, dim=1).values))
    log_r = torch.cat(logs)
    from scipy.special import digamma, gammaln  # here, not at import: scipy.special costs ~0.3 s of start-up

    log_vd = 0.5 * d * math.log(math.pi) - float(gammaln(0.5 * d + 1))
    return float(digamma(n) - digamma(k) + log_vd + d * log_r.mean())


def _chunk_size(n: int, views: int = 1, budget: int = 2**23) -> int:
    return max(1, min(n, budget // max(1, n * views)))


def ksg_total_correlation(views: Sequence[Any], k: int = 3) -> float:
    """KSG estimator (Kraskov et al. 2004, algorithm 1, max-norm) of the total correlation
    ``I(v_1; ...; v_M) = sum_i H(v_i) - H(v_1..v_M)`` (the mutual information for two views), nats:
    ``psi(k) + (M - 1) psi(n) - < sum_i psi(n_i + 1) >`` with ``eps`` the max-norm distance to the k-th
    neighbour in the joint space and ``n_i`` the number of samples strictly within ``eps`` in view i."""
    arrays = [torch.from_numpy(as_2d(v)) for v in views]
    n = arrays[0].shape[0]
    m = len(arrays)
    if m < 2:
        raise ValueError("ksg_total_correlation needs at least two views")
    from scipy.special import digamma  # here, not at import: scipy.special costs ~0.3 s of start-up

    if not 1 <= k < n:
        raise ValueError(f"k: expected 1 <= k < n={n}, got {k}")
    total = 0.0
    step = _chunk_size(n, m + 1)
    for s in range(0, n, step):
        rows = torch.arange(s, min(s + step, n))
        per_view = [_pairwise(a[rows], a, float("inf")) for a in arrays]
        joint = torch.stack(per_view).amax(0)
        joint[torch.arange(len(rows)), rows] = float("inf")
        eps = joint.kthvalue(k, dim=1).values[:, None]
        for dv in per_view:
            counts = (dv < eps).sum(1) - 1  # the sample itself is at distance 0 < eps
            total += float(torch.from_numpy(digamma(counts.clamp_min(0).numpy() + 1.0)).sum())
    return float(digamma(k) + (m - 1) * digamma(n) - total / n)


# ---------------------------------------------------------------------------------------- report
@dataclass
class EstimatorSettings:
    """Settings of :func:`information_report` (all recorded with the result)."""

    backend: Backend = "gaussian"
    k: int = 3  # knn: neighbour order
    max_samples: int = 4000  # random subset (seeded) above this many samples
    seed: int = 0  # subsampling and tie-breaking jitter
    shrinkage: float | None = None  # gaussian: None = Ledoit-Wolf, else fixed intensity in [0, 1]
    standardize: bool = True  # z-score every feature before estimating (constant features dropped)
    jitter: float = 1e-10  # knn: relative noise that breaks exact ties (sklearn's convention)
    units: Literal["nats", "bits"] = "nats"  # unit of every entropy and information in the report


@dataclass
class InformationReport:
    """Entropies of the views and of their concatenation, and the total correlation
    ``I = sum_i H_i - H_joint`` (the mutual information for two views), in ``settings["units"]`` (nats by default;
    bits = nats / ln 2)."""

    H: dict[str, float]
    H_joint: float
    I: float
    settings: dict[str, Any]
    n_samples: int
    dims: dict[str, int]
    dropped_constant: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def H_sum(self) -> float:
        return float(sum(self.H.values()))

    @property
    def valid(self) -> bool:
        """True when every entropy is finite and the joint entropy and the sum are positive (the regime in
        which ``1 / H`` style bounds mean something)."""
        values = [*self.H.values(), self.H_joint, self.I]
        return all(math.isfinite(v) for v in values) and self.H_joint > 0 and self.H_sum > 0

    def to_dict(self) -> dict[str, Any]:
        return {"H": {**self.H, "joint": self.H_joint}, "I": self.I, "valid": self.valid,
                "n_samples": self.n_samples, "dims": self.dims, "dropped_constant": self.dropped_constant,
                "settings": self.settings, **self.extra}


def standardize_views(views: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Z-score every feature; drop (near-)constant features. Returns the views and the dropped counts."""
    out, dropped = {}, {}
    for name, x in views.items():
        mean, std = x.mean(0, keepdims=True), x.std(0, keepdims=True)
        keep = std[0] > 1e-12 * max(1.0, float(np.abs(mean).max(initial=0.0)))
        out[name] = (x[:, keep] - mean[:, keep]) / std[:, keep]
        dropped[name] = int((~keep).sum())
    return out, dropped


def information_report(views: Mapping[str, Any], settings: EstimatorSettings | None = None) -> InformationReport:
    """Estimate ``H(v_i)`` per view, ``H(v_1, ..., v_M)`` and the total correlation ``I`` of ``views``
    (name -> ``(N, ...)`` array, same ``N``), with the backend and settings of ``settings``."""
    s = settings or EstimatorSettings()
    if s.backend not in ("gaussian", "knn"):
        raise ValueError(f"backend: expected 'gaussian' or 'knn', got {s.backend!r}")
    if s.units not in ("nats", "bits"):
        raise ValueError(f"units: expected 'nats' or 'bits', got {s.units!r}")
    names = list(views)
    arrays = {m: as_2d(views[m]) for m in names}
    n = next(iter(arrays.values())).shape[0]
    rng = np.random.default_rng(s.seed)
    if n > s.max_samples:
        idx = np.sort(rng.choice(n, s.max_samples, replace=False))
        arrays = {m: a[idx] for m, a in arrays.items()}
    dropped = {m: 0 for m in names}
    if s.standardize:
        arrays, dropped = standardize_views(arrays)
    used = arrays[names[0]].shape[0]
    dims = {m: int(a.shape[1]) for m, a in arrays.items()}
    extra: dict[str, Any] = {}
    if s.backend == "gaussian":
        joint = np.concatenate([arrays[m] for m in names], 1)
        cov, shrink = gaussian_covariance(joint, s.shrinkage)
        extra["shrinkage_used"] = shrink
        h, start = {}, 0
        for m in names:
            stop = start + dims[m]
            h[m] = gaussian_entropy_from_cov(cov[start:stop, start:stop])
            start = stop
        h_joint = gaussian_entropy_from_cov(cov)
        mi = sum(h.values()) - h_joint
    else:
        jittered = {}
        for m, a in arrays.items():
            scale = np.maximum(np.abs(a).mean(0, keepdims=True), 1e-300)
            jittered[m] = a + s.jitter * scale * rng.standard_normal(a.shape)
        h = {m: knn_entropy(jittered[m], s.k) for m in names}
        mi = ksg_total_correlation([jittered[m] for m in names], s.k)
        h_joint = sum(h.values()) - mi
    if s.units == "bits":
        h = {m: v / math.log(2.0) for m, v in h.items()}
        h_joint, mi = h_joint / math.log(2.0), mi / math.log(2.0)
    return InformationReport(H={m: float(v) for m, v in h.items()}, H_joint=float(h_joint), I=float(mi),
                             settings=asdict(s), n_samples=int(used), dims=dims, dropped_constant=dropped, extra=extra)


def gaussian_entropy_closed_form(cov: Any) -> float:
    """Exact entropy (nats) of ``N(mu, cov)``: ``1/2 log det(2 pi e cov)`` (for tests and references)."""
    return gaussian_entropy_from_cov(np.asarray(cov, dtype=np.float64))


__all__ = ["Backend", "EstimatorSettings", "InformationReport", "as_2d", "gaussian_covariance", "gaussian_entropy",
           "gaussian_entropy_closed_form", "information_report", "knn_entropy", "ksg_total_correlation",
           "ledoit_wolf_covariance", "standardize_views"]
