"""Entropy and mutual-information estimators for continuous multi-view data.

Three backends, all in nats (``EstimatorSettings(units="bits")`` converts), all run on standardised features
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
* ``mine``: the mutual information neural estimator (Belghazi et al. 2018, Donsker-Varadhan bound, moving-average
  gradient correction; :func:`mine_mutual_information`), with entropies taken as ``H(v) = I(v; v)`` as the OMIB
  paper does. On a batch of ``N`` samples the estimate can never exceed ``log N``
  (:func:`mine_dv_bound`), and ``I(v; v)`` of a continuous variable is infinite, so every MINE "entropy" of
  continuous data sits just below ``log(batch size)``: a property of the estimator, not of the data.

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
from torch import nn

from .errors import DataError

Backend = Literal["gaussian", "knn", "mine"]
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
    mine_batch_size: int = 256  # mine: samples per batch N (the estimate is at most log N)
    mine_steps: int = 500  # mine: Adam steps of the statistics network
    mine_hidden: int = 128  # mine: hidden width of the statistics network
    mine_lr: float = 1e-3  # mine: Adam learning rate
    mine_ema: float = 0.01  # mine: rate of the moving average in the gradient correction
    mine_eval_batches: int = 16  # mine: batches averaged for the final estimate
    mine_eval_fraction: float = 0.2  # mine: held-out share of the samples the estimate is computed on


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


# ---------------------------------------------------------------------------------------- MINE
class MineCritic(nn.Module):
    """MINE's statistics network, separable: ``T(x, y) = f(x) . g(y)`` with ``f``, ``g`` one-hidden-layer MLPs
    (``d -> hidden -> embed``, ReLU).

    :meth:`pairs` evaluates it on every pair ``(x_i, y_j)`` of two batches at once, ``(N, dx), (M, dy) -> (N, M)``,
    as one matrix product: ``O((N + M) d hidden + N M embed)``. (A concatenated critic ``T([x, y])`` needs the
    hidden layer on all ``N M`` pairs: 50-100x slower on a CPU at ``N = 256`` for the same estimates on the
    correlated-Gaussian checks.) Separable critics are exact for Gaussian pairs, whose log density ratio
    ``x' A y + a(x) + b(y)`` is an inner product of ``[x, a(x), 1]`` and ``[A y, 1, b(y)]``."""

    def __init__(self, dx: int, dy: int, hidden: int, embed: int = 32) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(dx, hidden), nn.ReLU(), nn.Linear(hidden, embed))
        self.g = nn.Sequential(nn.Linear(dy, hidden), nn.ReLU(), nn.Linear(hidden, embed))

    def pairs(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.f(x) @ self.g(y).T


def mine_dv_bound(t: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan lower bound of one batch from the critic's pair matrix ``t`` ``(N, N)``,
    ``t[i, j] = T(x_i, y_j)``: the joint term averages the diagonal (the ``N`` paired samples), the product of
    the marginals is represented by all ``N^2`` pairs (the diagonal included)::

        DV = 1/N sum_i T_ii - log( 1/N^2 sum_ij exp T_ij )

    **Saturation.** ``DV <= log N`` for every critic: by Jensen ``1/N sum_i T_ii <= log(1/N sum_i exp T_ii)``, and
    the ``N^2`` sum contains the diagonal, so ``DV <= log(1/N sum_i e^T_ii) - log(1/N^2 sum_i e^T_ii) = log N``.
    Equality needs ``T_ij -> -inf`` off the diagonal with a constant diagonal, which a critic can approach
    whenever the paired samples are distinguishable from the shuffled ones, e.g. for ``I(X; X)`` of a continuous
    ``X`` (true value infinite). Returns a 0-d tensor (nats)."""
    n = t.shape[0]
    return t.diagonal().mean() - (torch.logsumexp(t.reshape(-1), 0) - 2 * math.log(n))


@dataclass
class MineEstimate:
    """Result of :func:`mine_mutual_information`: ``value`` (nats, mean DV over ``eval_batches`` batches),
    ``std`` over those batches, ``batch_size`` ``N`` and the ceiling ``log_batch_size = log N``, the training
    DV of the last 10% of the steps (``train_tail``)."""

    value: float
    std: float
    batch_size: int
    log_batch_size: float
    train_tail: float


def mine_mutual_information(x: Any, y: Any, *, batch_size: int = 256, steps: int = 500, hidden: int = 128,
                            lr: float = 1e-3, ema: float = 0.01, eval_batches: int = 16, eval_fraction: float = 0.2,
                            seed: int = 0) -> MineEstimate:
    """MINE (Belghazi et al., ICML 2018) estimate of ``I(X; Y)`` in nats from paired samples ``x`` ``(n, dx)``,
    ``y`` ``(n, dy)``; ``mine_mutual_information(x, x)`` is the OMIB paper's ``H(X) = I(X; X)``.

    A critic :class:`MineCritic` is trained by Adam on random batches of ``N = min(batch_size, n)`` samples to
    maximise the Donsker-Varadhan bound :func:`mine_dv_bound`. The gradient of ``log E_marg[e^T]`` is
    ``E_marg[e^T grad T] / E_marg[e^T]``; with a batch estimate of the denominator it is biased, so (Belghazi et al.
    section 3.2) the denominator is a moving average ``m <- (1 - ema) m + ema * (1/N^2 sum_ij e^T_ij)`` (kept in log
    space) and the loss minimised is ``-(1/N sum_i T_ii - (1/N^2 sum_ij e^T_ij) / m)`` with ``m`` held constant, whose
    gradient is the corrected one. The estimate is the mean DV bound over ``eval_batches`` random batches of a
    held-out ``eval_fraction`` of the samples (the critic never trained on them: evaluated in-sample, a critic
    that memorises the training pairs overstates the information, e.g. 0.98 instead of 0.55 nats on 8-d
    gaussian-split views), so it is at most ``log N``; ``eval_fraction=0`` evaluates on the training samples.

    Deterministic for a given ``seed`` (a private generator for batches, the global RNG forked for the
    initialisation). CPU, ``O(steps N^2 hidden)``: about 1-3 s for the defaults.
    """
    a, b = as_2d(x, "x", check_finite=True), as_2d(y, "y", check_finite=True)
    n = a.shape[0]
    if b.shape[0] != n:
        raise DataError(f"y: expected {n} samples like x, got {b.shape[0]}")
    if n < 2:
        raise DataError(f"x: MINE needs at least 2 samples, got {n}")
    for name, value in (("batch_size", batch_size), ("steps", steps), ("hidden", hidden),
                        ("eval_batches", eval_batches)):
        if value < 1 or (name == "batch_size" and value < 2):
            raise ValueError(f"{name}: expected a positive integer{' >= 2' if name == 'batch_size' else ''}, "
                             f"got {value}")
    if not (lr > 0 and 0 < ema <= 1 and 0 <= eval_fraction < 1):
        raise ValueError(f"lr, ema, eval_fraction: expected lr > 0, 0 < ema <= 1, 0 <= eval_fraction < 1, got {lr}, "
                         f"{ema}, {eval_fraction}")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    n_eval = int(round(eval_fraction * n))
    if eval_fraction > 0 and not 2 <= n_eval <= n - 2:
        raise DataError(f"x: {n} samples are too few to hold out eval_fraction={eval_fraction} for MINE")
    fit, held = (order[n_eval:], order[:n_eval]) if n_eval else (order, order)
    nb = min(batch_size, len(fit), len(held))
    xt, yt = torch.from_numpy(a).float(), torch.from_numpy(b).float()
    xf, yf, xh, yh = xt[fit], yt[fit], xt[held], yt[held]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        critic = MineCritic(a.shape[1], b.shape[1], hidden)
    opt = torch.optim.Adam(critic.parameters(), lr=lr)
    log_m: torch.Tensor | None = None
    tail: list[float] = []
    log_ema, log_keep = math.log(ema), math.log1p(-ema) if ema < 1 else -math.inf
    for step in range(steps):
        idx = torch.randperm(len(fit), generator=gen)[:nb]
        t = critic.pairs(xf[idx], yf[idx])
        log_mean_exp = torch.logsumexp(t.reshape(-1), 0) - 2 * math.log(nb)
        lm = log_mean_exp.detach()
        log_m = lm if log_m is None else torch.logaddexp(log_keep + log_m, log_ema + lm)
        loss = -(t.diagonal().mean() - torch.exp(log_mean_exp - log_m))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= steps - max(1, steps // 10):
            tail.append(float(t.diagonal().mean().detach() - lm))
    values = []
    with torch.no_grad():
        for _ in range(eval_batches):
            idx = torch.randperm(len(held), generator=gen)[:nb]
            values.append(float(mine_dv_bound(critic.pairs(xh[idx], yh[idx]))))
    arr = np.asarray(values)
    return MineEstimate(value=float(arr.mean()), std=float(arr.std()), batch_size=nb, log_batch_size=math.log(nb),
                        train_tail=float(np.mean(tail)))


def _mine(x: np.ndarray, y: np.ndarray, s: EstimatorSettings, offset: int) -> MineEstimate:
    return mine_mutual_information(x, y, batch_size=s.mine_batch_size, steps=s.mine_steps, hidden=s.mine_hidden,
                                   lr=s.mine_lr, ema=s.mine_ema, eval_batches=s.mine_eval_batches,
                                   eval_fraction=s.mine_eval_fraction, seed=s.seed + offset)


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
    if s.backend not in ("gaussian", "knn", "mine"):
        raise ValueError(f"backend: expected 'gaussian', 'knn' or 'mine', got {s.backend!r}")
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
    elif s.backend == "mine":
        # H(v) = I(v; v) per view; two views: I(v_1; v_2) and H_joint = H_1 + H_2 - I (the paper's route); more
        # views: H_joint = I(V; V) of the concatenation V and I = sum_i H_i - H_joint
        runs = {m: _mine(arrays[m], arrays[m], s, i) for i, m in enumerate(names)}
        h = {m: r.value for m, r in runs.items()}
        if len(names) == 2:
            pair = _mine(arrays[names[0]], arrays[names[1]], s, len(names))
            mi, h_joint = pair.value, sum(h.values()) - pair.value
            extra["mine_I"] = asdict(pair)
        else:
            joint_arr = np.concatenate([arrays[m] for m in names], 1)
            pair = _mine(joint_arr, joint_arr, s, len(names))
            h_joint, mi = pair.value, sum(h.values()) - pair.value
            extra["mine_H_joint"] = asdict(pair)
        extra["mine_H"] = {m: asdict(r) for m, r in runs.items()}
        extra["mine_log_batch_size"] = pair.log_batch_size
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


__all__ = ["Backend", "EstimatorSettings", "InformationReport", "MineCritic", "MineEstimate", "as_2d",
           "gaussian_covariance", "gaussian_entropy", "gaussian_entropy_closed_form", "information_report",
           "knn_entropy", "ksg_total_correlation", "ledoit_wolf_covariance", "mine_dv_bound",
           "mine_mutual_information", "standardize_views"]
