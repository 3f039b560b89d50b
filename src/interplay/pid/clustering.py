r"""The two discretisers of the cluster PID estimator: k-means (:func:`kmeans`) and a full-covariance Gaussian
mixture fitted by EM (:func:`gaussian_mixture`).

k-means is Lloyd's algorithm with k-means++ seeding (the PID repository's discretiser). The Gaussian mixture models
``p(x) = sum_k w_k N(x; mu_k, Sigma_k)`` for ``(N, d)`` points, ``K`` components. EM alternates

* E-step: responsibilities ``r_nk = w_k N(x_n; mu_k, Sigma_k) / sum_j w_j N(x_n; mu_j, Sigma_j)``
  (log-domain, Cholesky factors of ``Sigma_k``);
* M-step: ``N_k = sum_n r_nk``, ``w_k = N_k / N``, ``mu_k = sum_n r_nk x_n / N_k``,
  ``Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + reg I``

until the mean log-likelihood rises by less than ``tol`` (relative). Each start is initialised from one k-means++
/ Lloyd run (:func:`kmeans`); the start with the highest log-likelihood wins. Every sample
is assigned to its most responsible component (``argmax_k r_nk``).

Why it is there. k-means cuts space into Voronoi cells of spherical clusters. Class structure that lives in
elongated, differently oriented clouds (a latent code projected into a few coordinates, plus isotropic noise
in the rest: ``pid-xor``) is cut across: on ``pid-xor`` with ``mix=redundant=0.5,synergistic=0.5`` k-means
(K = 17) loses 0.1 bits of redundancy, whereas a full-covariance mixture assigns each sample to its generating
cloud and recovers the generator's PID to within 0.01 bits (docs/analysis.md, "Which discretiser").

``reg`` (the ridge on every covariance) is relative: ``reg * mean_j Var(x_j)``, so it means the same for
standardised and raw features, and it keeps ``Sigma_k`` invertible when a component holds fewer points than
dimensions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError
from ..estimators import as_2d

__all__ = ["KMeansResult", "MixtureResult", "assign_components", "gaussian_mixture", "kmeans"]


# ---------------------------------------------------------------------------------------------- k-means
@dataclass
class KMeansResult:
    """k-means of ``(N, d)`` points: ``labels`` ``(N,)`` int64 in ``[0, k)``, ``centers`` ``(k, d)``,
    ``inertia`` (sum of squared distances to the assigned centre), Lloyd ``iterations`` of the best start."""

    labels: np.ndarray
    centers: np.ndarray
    inertia: float
    iterations: int


def _kmeans_pp(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each new centre drawn with probability proportional to ``D(x)^2``."""
    n = x.shape[0]
    centers = [x[int(torch.randint(n, (1,), generator=gen))]]
    d2 = ((x - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = float(d2.sum())
        idx = int(torch.multinomial(d2 / total, 1, generator=gen)) if total > 0 else int(
            torch.randint(n, (1,), generator=gen))
        centers.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    return torch.stack(centers)


def kmeans(x: np.ndarray | torch.Tensor, k: int, *, seed: int = 0, n_init: int = 4, max_iter: int = 100,
           tol: float = 1e-6) -> KMeansResult:
    r"""Lloyd's k-means with k-means++ seeding (torch, float64), best of ``n_init`` starts.

    Minimises ``sum_n ||x_n - c_{a(n)}||^2`` over centres ``c`` ``(k, d)`` and assignments ``a``. Each
    Lloyd step assigns every point to its nearest centre and moves each centre to the mean of its
    points; an emptied cluster is re-seeded at the point farthest from its centre. Stops when the
    relative decrease of the inertia is below ``tol``. Deterministic for a given ``seed``.

    Args:
        x: ``(N, d)`` points (``(N, ...)`` is flattened).
        k: number of clusters, ``1 <= k <= N``.
    """
    t = torch.from_numpy(as_2d(x, "x"))
    n = t.shape[0]
    if not 1 <= k <= n:
        raise ConfigError(f"k-means: k must lie in [1, N={n}], got {k}")
    gen = torch.Generator().manual_seed(int(seed))
    best: KMeansResult | None = None
    for _ in range(max(1, n_init)):
        c = _kmeans_pp(t, k, gen)
        prev = math.inf
        it = 0
        for it in range(1, max_iter + 1):  # noqa: B007 - iteration count is reported
            d2 = torch.cdist(t, c).pow(2)
            dmin, a = d2.min(1)
            inertia = float(dmin.sum())
            counts = torch.bincount(a, minlength=k)
            sums = torch.zeros_like(c).index_add_(0, a, t)
            c = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], c)
            for empty in torch.nonzero(counts == 0).flatten().tolist():  # re-seed empty clusters
                far = int(dmin.argmax())
                c[empty] = t[far]
                dmin[far] = 0.0
            if math.isfinite(prev) and prev - inertia <= tol * prev and not bool((counts == 0).any()):
                break
            prev = inertia
        d2 = torch.cdist(t, c).pow(2)
        dmin, a = d2.min(1)
        res = KMeansResult(labels=a.numpy().astype(np.int64), centers=c.numpy(), inertia=float(dmin.sum()),
                           iterations=it)
        if best is None or res.inertia < best.inertia:
            best = res
    assert best is not None
    return best


@dataclass
class MixtureResult:
    """A fitted Gaussian mixture of ``(N, d)`` points with ``K`` components.

    Attributes:
        labels: ``(N,)`` int64, the most responsible component of every point.
        means: ``(K, d)`` component means.
        covariances: ``(K, d, d)`` component covariances (ridge included).
        weights: ``(K,)`` mixing weights (sum to 1).
        log_likelihood: mean log-likelihood per point (nats) of the best start.
        iterations: EM iterations of the best start.
    """

    labels: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    weights: np.ndarray
    log_likelihood: float
    iterations: int


def _log_densities(diff: torch.Tensor, covs: torch.Tensor, log_w: torch.Tensor,
                   work: torch.Tensor | None = None) -> torch.Tensor:
    """``log w_k + log N(x_n; mu_k, Sigma_k)`` from ``diff = x_n - mu_k`` ``(K, N, d)`` and ``covs (K, d, d)``:
    ``(N, K)``. Mahalanobis terms through the inverse Cholesky factor and one batched matrix product (into
    ``work``, a ``(K, N, d)`` buffer, when given: EM reuses one instead of allocating 3 such tensors a step)."""
    d = diff.shape[2]
    chol = torch.linalg.cholesky(covs)                                      # (K, d, d)
    eye = torch.eye(d, dtype=diff.dtype).expand_as(chol)
    inv_chol = torch.linalg.solve_triangular(chol, eye, upper=False)        # (K, d, d), L^-1
    z = torch.bmm(diff, inv_chol.transpose(1, 2), out=work)                 # (K, N, d)
    maha = z.mul_(z).sum(2)                                                 # (K, N)
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1)  # (K,)
    return (log_w[:, None] - 0.5 * (maha + logdet[:, None] + d * math.log(2.0 * math.pi))).T


def gaussian_mixture(x: np.ndarray | torch.Tensor, k: int, *, seed: int = 0, n_init: int = 3, max_iter: int = 200,
                     tol: float = 1e-5, reg: float = 1e-4) -> MixtureResult:
    """Fit a full-covariance Gaussian mixture by EM (float64) and assign every point to a component.

    Args:
        x: ``(N, d)`` points (``(N, ...)`` is flattened).
        k: components, ``1 <= k <= N``.
        seed: seeds the k-means initialisation of start ``i`` with ``seed * 1000 + i``; deterministic.
        n_init: EM starts; the highest mean log-likelihood wins.
        max_iter: EM iterations per start.
        tol: stop when the mean log-likelihood rises by less than ``tol * |log-likelihood|``. Looser values stop
            EM on the plateau of a k-means start that cuts clouds across (1e-4 did on the three parallel clouds of
            ``tests/pid/test_clustering.py``; 3e-5 and below escaped it).
        reg: ridge added to every covariance, relative to the mean feature variance.

    Returns:
        :class:`MixtureResult`.

    Raises:
        ConfigError: ``k`` outside ``[1, N]``, ``n_init`` or ``max_iter`` below 1, negative ``reg``.
    """
    t = torch.from_numpy(as_2d(x, "x"))
    n, d = t.shape
    if not 1 <= k <= n:
        raise ConfigError(f"gaussian mixture: k must lie in [1, N={n}], got {k}")
    if n_init < 1 or max_iter < 1:
        raise ConfigError(f"gaussian mixture: n_init and max_iter must be >= 1, got {n_init}, {max_iter}")
    if not reg >= 0:
        raise ConfigError(f"gaussian mixture: reg must be >= 0, got {reg}")
    scale = float(t.var(0, unbiased=False).mean()) if n > 1 else 1.0
    ridge = reg * (scale if scale > 0 else 1.0) * torch.eye(d, dtype=t.dtype)
    best: MixtureResult | None = None
    diff = torch.empty(k, n, d, dtype=t.dtype)                              # x_n - mu_k, reused every step
    work = torch.empty_like(diff)
    for start in range(n_init):
        init = torch.as_tensor(kmeans(t, k, seed=seed * 1000 + start, n_init=1).labels)
        resp = torch.nn.functional.one_hot(init, k).to(t.dtype)             # (N, K)
        prev = -math.inf
        ll = -math.inf
        it = 0
        for it in range(1, max_iter + 1):  # noqa: B007 - iteration count is reported
            nk = resp.sum(0) + 1e-10                                        # (K,)
            means = (resp.T @ t) / nk[:, None]                              # (K, d)
            torch.sub(t[None], means[:, None], out=diff)                    # (K, N, d)
            torch.mul(diff, resp.T[:, :, None], out=work)
            covs = torch.bmm(work.transpose(1, 2), diff) / nk[:, None, None] + ridge
            log_p = _log_densities(diff, covs, torch.log(nk / n), work)     # (N, K)
            lse = torch.logsumexp(log_p, 1)
            ll = float(lse.mean())
            resp = torch.exp(log_p - lse[:, None])
            if ll - prev <= tol * abs(ll):
                break
            prev = ll
        if best is None or ll > best.log_likelihood:  # the parameters of the last E-step, which gave the labels
            best = MixtureResult(labels=resp.argmax(1).numpy().astype(np.int64), means=means.numpy(),
                                 covariances=covs.numpy(), weights=(nk / n).numpy(), log_likelihood=ll,
                                 iterations=it)
    assert best is not None
    return best


def assign_components(result: MixtureResult, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """The most probable component of every row of ``x`` ``(N, d)`` (``(N, ...)`` is flattened) under a fitted
    mixture: ``argmax_k w_k N(x_n; mu_k, Sigma_k)``, ``(N,)`` int64 (e.g. test samples of a mixture fitted on the
    training split)."""
    t = torch.from_numpy(as_2d(x, "x"))
    means = torch.as_tensor(result.means, dtype=torch.float64)
    if t.shape[1] != means.shape[1]:
        raise ConfigError(f"gaussian mixture: points have {t.shape[1]} features, the mixture {means.shape[1]}")
    log_p = _log_densities(t[None] - means[:, None], torch.as_tensor(result.covariances, dtype=torch.float64),
                           torch.log(torch.as_tensor(result.weights, dtype=torch.float64)))
    return log_p.argmax(1).numpy().astype(np.int64)
