r"""Per-sample interactions: the ``lsmi`` estimator (pointwise redundancy, uniqueness, synergy).

Yang, Wang, Hu, "Efficient quantification of multimodal interaction at sample level" (ICML 2025),
with the corrections listed in ``shared/spec/pid.md`` section 3. For a held-out sample
``n = (x1, x2, y)``:

* pointwise label information of each modality and of both, from classifiers trained on the train
  split (early stopping and temperature scaling on the validation split)::

      i_1  = log q(y | x1)     - log p(y)
      i_2  = log q(y | x2)     - log p(y)
      i_12 = log q(y | x1, x2) - log p(y)

  with ``p(y)`` the class frequencies of the training split (the authors assumed a uniform prior);
* pointwise entropies ``h_m = -log q(x_m)`` from a density model of modality ``m`` fitted on the
  train split: a Gaussian mixture (EM) or a KNIFE-style kernel mixture trained by gradient descent
  (with ``zero_grad`` every step: the authors' loop accumulated gradients across steps), both on the
  top ``density_dim`` principal components of the standardised modality;
* the decomposition::

      r   = min(h_1, h_2) - min(h_1 - i_1, h_2 - i_2)
      u_m = i_m - r
      s   = i_12 - r - u_1 - u_2          (= i_12 - i_1 - i_2 + r)

  so that ``r + u_m = i_m`` and ``r + u_1 + u_2 + s = i_12`` hold per sample;
* optionally a dataset-level shift ``c`` applied as ``r += c, u_m -= c, s += c`` (the only shift that
  keeps both identities): the ``c`` closest to 0 that makes all four means non-negative (see
  :func:`dataset_shift`; a warning when none exists).

Everything is evaluated on the held-out split (the authors evaluated on training data, where the
classifiers are overconfident). Values are in bits by default (``units="nats"`` for the paper's unit).

Caveat. ``min(h_1, h_2)`` compares (differential) entropies of *different spaces*: their values
depend on each modality's units, dimension and density model, so which modality counts as "less
surprising" is a modelling choice, not a property of the data. Here both densities live in spaces of
the same dimension (``density_dim`` principal components of z-scored features), which makes them
comparable in scale but does not remove the arbitrariness. ``r`` lies between ``min(i_1, i_2)`` and
``max(i_1, i_2)`` whenever ``i_1, i_2 >= 0``; with one uninformative modality (``i_2 = 0``) a sample's
``r`` is ``i_1`` (counted as redundant) when ``h_1 <= h_2`` and 0 only when ``h_1 - h_2 >= i_1``.

Settings. Every option lives in :class:`LSMISettings` (names, types, defaults); the estimator registered as
``lsmi`` (:data:`interplay.pid.estimator.ESTIMATORS`) is :func:`estimate_lsmi` ``(data, settings)``.
:func:`lsmi` and :func:`lsmi_splits` take the same options as keyword arguments.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..errors import ConfigError, DataError
from ..layers import mlp
from ..metrics import fit_temperature
from .cluster import kmeans
from .estimator import (
    LabelledData,
    LabelledSplits,
    pick_pair,
    register_estimator,
    settings_with,
    store_tuples,
)

__all__ = [
    "GaussianMixture",
    "KernelMixture",
    "LSMIResult",
    "LSMISettings",
    "dataset_shift",
    "estimate_lsmi",
    "fit_classifier",
    "lsmi",
    "lsmi_splits",
    "lsmi_terms",
]

_LN2 = math.log(2.0)
TERMS: tuple[str, ...] = ("r", "u1", "u2", "s")


# ---------------------------------------------------------------------------------------------- math
def lsmi_terms(i1: Tensor, i2: Tensor, i12: Tensor, h1: Tensor, h2: Tensor) -> dict[str, Tensor]:
    r"""LSMI's per-sample decomposition from pointwise informations and entropies (all ``(N,)``, same unit).

    (Not :func:`interplay.pid.pointwise_pid`, the pointwise terms of an exact BROJA PID of a discrete pmf.)

    ``r = min(h1, h2) - min(h1 - i1, h2 - i2)``, ``u_m = i_m - r``, ``s = i12 - r - u1 - u2``.
    Returns ``{"r", "u1", "u2", "s"}`` tensors of shape ``(N,)``.
    """
    r = torch.minimum(h1, h2) - torch.minimum(h1 - i1, h2 - i2)
    u1, u2 = i1 - r, i2 - r
    return {"r": r, "u1": u1, "u2": u2, "s": i12 - r - u1 - u2}


def dataset_shift(terms: dict[str, Tensor]) -> tuple[float, str | None]:
    """The shift ``c`` (``r += c, u_m -= c, s += c``) making the means non-negative, and a warning or ``None``.

    The feasible shifts are ``[lo, hi] = [max(-mean r, -mean s), min(mean u1, mean u2)]``; the one closest to
    0 is taken (0 when the means are already non-negative). When the interval is empty the midpoint
    ``(lo + hi) / 2`` is used, which minimises the largest negative mean, and a warning says so.
    """
    mean = {k: float(v.mean()) for k, v in terms.items()}
    lo = max(-mean["r"], -mean["s"])
    hi = min(mean["u1"], mean["u2"])
    if lo <= hi:
        return min(max(0.0, lo), hi), None
    c = (lo + hi) / 2
    return c, (f"lsmi shift: no dataset-level shift makes all four means non-negative (r and s need c >= {lo:.4g}, "
               f"u1 and u2 need c <= {hi:.4g}); used the midpoint c = {c:.4g}")


# ---------------------------------------------------------------------------------------------- classifiers
class _Classifier(nn.Module):
    """An MLP with a temperature: ``log q(y | x) = log_softmax(mlp(x) / T)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.log_t = nn.Parameter(torch.zeros(()), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.log_softmax(self.net(x) / self.log_t.exp(), -1)


def _nll(model: nn.Module, x: Tensor, y: Tensor, batch: int = 4096) -> float:
    with torch.no_grad():
        return float(sum(-model(x[i:i + batch]).gather(1, y[i:i + batch, None]).sum() for i in range(0, len(y), batch))
                     / max(len(y), 1))


def fit_classifier(x: Tensor, y: Tensor, x_val: Tensor, y_val: Tensor, num_classes: int, *,
                   hidden: Sequence[int] = (128, 128), epochs: int = 100, lr: float = 1e-3, batch_size: int = 128,
                   weight_decay: float = 1e-4, patience: int = 15, calibrate: bool = True, seed: int = 0,
                   bar: Any = None) -> nn.Module:
    r"""Train ``log q(y | x)`` (an MLP, ``(N, d) -> (N, C)`` log-probabilities) by cross-entropy with Adam.

    Keeps the weights of the epoch with the lowest validation NLL (stops after ``patience`` epochs
    without improvement), then (``calibrate``) fits a temperature ``T`` on the validation split,
    ``min_T NLL(log_softmax(logits / T))``, so that the pointwise ``log q(y | x)`` is calibrated.
    Deterministic for a given ``seed``; the global RNG state is left untouched.
    """
    x, x_val = x.reshape(len(x), -1).float(), x_val.reshape(len(x_val), -1).float()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _Classifier(mlp([x.shape[1], *hidden, num_classes], last_activation=False))
    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(model.net.parameters(), lr=lr, weight_decay=weight_decay)
    best, best_state, stale = math.inf, copy.deepcopy(model.state_dict()), 0
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            opt.zero_grad(set_to_none=True)
            loss = -model(x[idx]).gather(1, y[idx, None]).mean()
            loss.backward()
            opt.step()
        model.eval()
        val = _nll(model, x_val, y_val)
        if bar is not None:
            bar.update(1)
        if val < best - 1e-6:
            best, best_state, stale = val, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= patience:
                if bar is not None:
                    bar.update(epochs - _ - 1)
                break
    model.load_state_dict(best_state)
    if calibrate and len(y_val) > 0:
        _fit_temperature(model, x_val, y_val)
    model.eval()
    return model


def _fit_temperature(model: _Classifier, x: Tensor, y: Tensor) -> None:
    """One-parameter temperature scaling (:func:`interplay.metrics.fit_temperature`, ``log T`` in ``[-3, 3]``),
    kept only where it lowers the validation NLL."""
    with torch.no_grad():
        logits = model.net(x)
    t = fit_temperature(logits, y, -3.0, 3.0, 60)
    nll = torch.nn.functional.cross_entropy
    if float(nll(logits / t, y.long())) < float(nll(logits, y.long())):
        model.log_t.fill_(math.log(t))


# ---------------------------------------------------------------------------------------------- densities
class _Projection:
    """Standardise (train statistics), then project on the top ``dim`` principal components."""

    def __init__(self, x: Tensor, dim: int | None) -> None:
        x = x.reshape(len(x), -1).double()
        self.mean = x.mean(0)
        std = x.std(0)
        self.keep = std > 1e-12
        self.std = std[self.keep]
        z = (x[:, self.keep] - self.mean[self.keep]) / self.std
        self.v: Tensor | None = None
        if dim is not None and dim < z.shape[1]:
            _, _, vt = torch.linalg.svd(z - z.mean(0), full_matrices=False)
            self.v = vt[:dim].T

    def __call__(self, x: Tensor) -> Tensor:
        z = (x.reshape(len(x), -1).double()[:, self.keep] - self.mean[self.keep]) / self.std
        return z if self.v is None else z @ self.v


class GaussianMixture:
    r"""Full-covariance Gaussian mixture fitted by EM (float64): ``q(x) = sum_k w_k N(x; m_k, S_k)``.

    Initialised from k-means; ``S_k`` gets ``reg * I`` added at every M step. ``log_prob(x)``: ``(N, d) -> (N,)``.
    """

    def __init__(self, components: int = 8, *, reg: float = 1e-3, max_iter: int = 200, tol: float = 1e-6,
                 seed: int = 0) -> None:
        self.components, self.reg, self.max_iter, self.tol, self.seed = components, reg, max_iter, tol, seed
        self.log_w: Tensor = torch.empty(0)  # (K,), set by fit
        self.means: Tensor = torch.empty(0)  # (K, d)
        self.chol: Tensor = torch.empty(0)  # (K, d, d) Cholesky factors of the covariances
        self.iterations = 0

    def _log_joint(self, x: Tensor) -> Tensor:
        """``log w_k + log N(x_n; m_k, S_k)`` of shape ``(N, K)``."""
        d = x.shape[1]
        diff = x[:, None, :] - self.means[None]  # (N, K, d)
        sol = torch.linalg.solve_triangular(self.chol[None].expand(len(x), -1, -1, -1), diff[..., None],
                                            upper=False)[..., 0]
        maha = (sol ** 2).sum(-1)
        logdet = 2 * torch.log(torch.diagonal(self.chol, dim1=-2, dim2=-1)).sum(-1)
        return self.log_w[None] - 0.5 * (maha + logdet[None] + d * math.log(2 * math.pi))

    def fit(self, x: Tensor) -> GaussianMixture:
        x = x.double()
        n, d = x.shape
        k = min(self.components, n)
        labels = torch.as_tensor(kmeans(x, k, seed=self.seed, n_init=1).labels)
        resp = torch.nn.functional.one_hot(labels, k).double()
        prev = -math.inf
        eye = torch.eye(d, dtype=torch.float64)
        for it in range(1, self.max_iter + 1):
            nk = resp.sum(0) + 1e-10
            self.log_w = torch.log(nk / n)
            self.means = resp.T @ x / nk[:, None]
            diff = x[:, None, :] - self.means[None]
            cov = torch.einsum("nk,nki,nkj->kij", resp, diff, diff) / nk[:, None, None] + self.reg * eye
            self.chol = torch.linalg.cholesky(cov)
            lj = self._log_joint(x)
            ll = torch.logsumexp(lj, 1)
            resp = torch.exp(lj - ll[:, None])
            cur = float(ll.mean())
            self.iterations = it
            if cur - prev < self.tol:
                break
            prev = cur
        return self

    def log_prob(self, x: Tensor) -> Tensor:
        return torch.logsumexp(self._log_joint(x.double()), 1)


class KernelMixture(nn.Module):
    r"""KNIFE-style kernel density: ``q(x) = sum_k softmax(a)_k N(x; m_k, diag(exp(2 l_k)))`` with learnable
    centres ``m`` ``(K, d)`` (initialised at random training points), log-bandwidths ``l`` ``(K, d)`` and
    weights ``a`` ``(K,)``, trained by minimising the NLL with Adam (see :meth:`fit`)."""

    def __init__(self, x_init: Tensor, bandwidth: float = 0.5) -> None:
        super().__init__()
        k, d = x_init.shape
        self.means = nn.Parameter(x_init.double().clone())
        self.log_scale = nn.Parameter(torch.full((k, d), math.log(bandwidth), dtype=torch.float64))
        self.logits = nn.Parameter(torch.zeros(k, dtype=torch.float64))

    def log_prob(self, x: Tensor) -> Tensor:
        x = x.double()
        z = (x[:, None, :] - self.means[None]) / self.log_scale.exp()[None]
        comp = -0.5 * (z ** 2).sum(-1) - self.log_scale.sum(-1)[None] - 0.5 * x.shape[1] * math.log(2 * math.pi)
        return torch.logsumexp(torch.log_softmax(self.logits, 0)[None] + comp, 1)

    def fit(self, x: Tensor, *, steps: int = 500, lr: float = 1e-2, batch_size: int = 256,
            generator: torch.Generator | None = None) -> list[float]:
        """Adam on ``-mean log q(x_batch)``; returns the loss of every step.

        Every step starts with ``zero_grad``: without it (the authors' loop) the gradients of all past
        steps accumulate and the effective step grows with the step count.
        """
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        x = x.double()
        losses = []
        for _ in range(steps):
            idx = (torch.arange(len(x)) if batch_size >= len(x)
                   else torch.randint(len(x), (batch_size,), generator=generator))
            opt.zero_grad(set_to_none=False)
            loss = -self.log_prob(x[idx]).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses


def _fit_density(x_train: Tensor, kind: str, components: int, seed: int, steps: int) -> Any:
    if kind == "gmm":
        return GaussianMixture(components, seed=seed).fit(x_train)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(x_train), generator=gen)[:components]
    km = KernelMixture(x_train[idx])
    km.fit(x_train, steps=steps, generator=gen)
    return km


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class LSMISettings:
    """Options of the ``lsmi`` estimator (defaults as listed).

    Attributes:
        modalities: the two modalities (required when the dataset has more).
        num_classes: ``|Y|`` (default: the dataset's number of classes, else the largest label + 1 over the splits).
        hidden, epochs, lr, batch_size, weight_decay, patience, calibrate: classifier settings
            (:func:`fit_classifier`); the joint classifier sees ``[x1, x2]`` concatenated.
        density: ``"gmm"`` (:class:`GaussianMixture`, EM) or ``"knife"`` (:class:`KernelMixture`, Adam).
        density_dim: principal components of the z-scored modality the density lives on (``None``: all).
        components: mixture components / kernels.
        density_steps: Adam steps of the ``knife`` density.
        shift: apply the dataset-level shift (:func:`dataset_shift`).
        units: ``"bits"`` or ``"nats"``.
        seed: seeds every model and the validation carve-out.
        quiet: no progress bar.
    """

    modalities: tuple[str, str] | None = None
    num_classes: int | None = None
    hidden: tuple[int, ...] = (128, 128)
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 1e-4
    patience: int = 15
    calibrate: bool = True
    density: Literal["gmm", "knife"] = "gmm"
    density_dim: int | None = 4
    components: int = 8
    density_steps: int = 500
    shift: bool = False
    units: Literal["bits", "nats"] = "bits"
    seed: int = 0
    quiet: bool = True

    def __post_init__(self) -> None:
        store_tuples(self, ("modalities", "hidden"))


# ---------------------------------------------------------------------------------------------- result
@dataclass
class LSMIResult:
    """Per-sample interactions on the evaluation split (all ``(N,)`` float64 tensors, in ``units``).

    Attributes:
        r, u1, u2, s: the pointwise atoms (after the dataset-level ``shift`` if one was applied).
        i1, i2, i12: pointwise label informations; h1, h2: pointwise entropies ``-log q(x_m)``.
        target: ``(N,)`` labels; index: ``(N,)`` position in the evaluation split; meta: its per-sample meta
            (e.g. ``interaction``).
        means, medians: dataset means and medians of every per-sample quantity (pointwise values are
            unbounded below where a classifier is confidently wrong, so a few samples can dominate a mean).
        shift: the shift ``c`` added to ``r`` and ``s`` and subtracted from ``u1``, ``u2`` (0 if none; may be
            negative).
        accuracy: accuracy of the three classifiers on the evaluation split (keys: the two modality names
            and ``"joint"``).
        settings: what was fitted and how (modalities, sizes, classifier and density settings, prior, seed).
        warnings: human-readable warnings.
    """

    r: Tensor
    u1: Tensor
    u2: Tensor
    s: Tensor
    i1: Tensor
    i2: Tensor
    i12: Tensor
    h1: Tensor
    h2: Tensor
    target: Tensor
    index: Tensor
    units: str
    means: dict[str, float]
    shift: float
    accuracy: dict[str, float]
    settings: dict[str, Any]
    meta: dict[str, Tensor] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    medians: dict[str, float] = field(default_factory=dict)

    def columns(self) -> dict[str, Tensor]:
        """The per-sample quantities by name (``r, u1, u2, s, i1, i2, i12, h1, h2``)."""
        return {k: getattr(self, k) for k in ("r", "u1", "u2", "s", "i1", "i2", "i12", "h1", "h2")}

    def by_group(self, groups: Tensor, names: Sequence[str]) -> dict[str, dict[str, float]]:
        """Means of ``r, u1, u2, s`` (and the median of ``s``, ``s_median``) within each group
        (``groups``: ``(N,)`` codes indexing ``names``); groups without samples are left out."""
        out = {}
        for code, name in enumerate(names):
            mask = groups == code
            if bool(mask.any()):
                out[name] = {"n": int(mask.sum()), **{k: float(getattr(self, k)[mask].mean()) for k in TERMS},
                             "s_median": float(self.s[mask].median())}
        return out


# ---------------------------------------------------------------------------------------------- estimator
def lsmi(train: LabelledData, test: LabelledData, val: LabelledData | None = None,
         settings: LSMISettings | None = None, **options: Any) -> LSMIResult:
    r"""Per-sample LSMI decomposition of ``test`` with models fitted on ``train`` (and ``val``).

    Args:
        train: split the three classifiers and the two densities are fitted on.
        test: held-out split the pointwise terms are evaluated on.
        val: split for early stopping and temperature scaling; default: 10% of ``train`` (seeded).
        settings: the options (:class:`LSMISettings`; default: its defaults).
        **options: fields of :class:`LSMISettings` replacing those of ``settings`` (e.g. ``epochs=15``,
            ``units="nats"``).

    Returns:
        :class:`LSMIResult` with ``(N_test,)`` tensors.
    """
    return _lsmi(train, test, val, settings_with(LSMISettings, settings, options, "lsmi"))


def _lsmi(train: LabelledData, test: LabelledData, val: LabelledData | None, s: LSMISettings) -> LSMIResult:
    """:func:`lsmi` with resolved settings."""
    modalities, num_classes, hidden, epochs, lr = s.modalities, s.num_classes, s.hidden, s.epochs, s.lr
    batch_size, weight_decay, patience, calibrate = s.batch_size, s.weight_decay, s.patience, s.calibrate
    density, density_dim, components, density_steps = s.density, s.density_dim, s.components, s.density_steps
    shift, units, seed, quiet = s.shift, s.units, s.seed, s.quiet
    if units not in ("bits", "nats"):
        raise ConfigError(f"lsmi: units must be 'bits' or 'nats', got {units!r}")
    if density not in ("gmm", "knife"):
        raise ConfigError(f"lsmi: density must be 'gmm' or 'knife', got {density!r}")
    if epochs < 1 or components < 1 or (density_dim is not None and density_dim < 1):
        raise ConfigError(f"lsmi: epochs, components and density_dim must be positive, got {epochs}, {components}, "
                          f"{density_dim}")
    m1, m2 = pick_pair(train.modalities, modalities, train.name)
    for split in (test, val):
        if split is not None and (m1 not in split.inputs or m2 not in split.inputs):
            raise DataError(f"{split.name}: lacks modality {m1!r} or {m2!r}")
    if train.target.is_floating_point():
        raise DataError(f"{train.name}: lsmi needs class labels; this dataset has a regression target")
    if val is None or len(val) == 0:
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(train), generator=gen)
        n_val = max(1, len(train) // 10)
        train, val = train.subset(perm[n_val:], train.name), train.subset(perm[:n_val], f"{train.name}/val")
    ys = [train.target.long(), val.target.long(), test.target.long()]
    if min(int(y.min()) for y in ys if len(y)) < 0:
        raise DataError(f"{train.name}: labels must be >= 0")
    top = max(int(y.max()) for y in ys if len(y)) + 1
    c = top if num_classes is None else int(num_classes)
    if top > c:
        raise DataError(f"{train.name}: labels must lie in [0, {c}), found {top - 1}")
    if len(test) == 0:
        raise DataError(f"{test.name}: the evaluation split is empty")

    def flat(ds: LabelledData, m: str) -> Tensor:
        return ds.inputs[m].reshape(len(ds), -1).float()

    counts = torch.bincount(ys[0], minlength=c).double()
    prior = (counts + 0.5) / (counts.sum() + 0.5 * c)  # frequencies, smoothed so no class has p(y) = 0
    log_prior = torch.log(prior)

    xs = {k: (flat(train, k), flat(val, k), flat(test, k)) for k in (m1, m2)}
    joint = tuple(torch.cat([a, b], 1) for a, b in zip(xs[m1], xs[m2]))
    inputs = {"1": xs[m1], "2": xs[m2], "12": joint}
    bar = tqdm(total=3 * epochs + 2, desc="lsmi", unit="epoch", disable=True if quiet else None, leave=False)
    logq: dict[str, Tensor] = {}
    accuracy: dict[str, float] = {}
    y_test = ys[2]
    for j, (name, (tr, va, te)) in enumerate(inputs.items()):
        bar.set_postfix_str(f"classifier {name}")
        model = fit_classifier(tr, ys[0], va, ys[1], c, hidden=hidden, epochs=epochs, lr=lr, batch_size=batch_size,
                               weight_decay=weight_decay, patience=patience, calibrate=calibrate, seed=seed + 10 * j,
                               bar=bar)
        with torch.no_grad():
            lp = model(te).double()
        logq[name] = lp.gather(1, y_test[:, None])[:, 0]
        accuracy[{"1": m1, "2": m2, "12": "joint"}[name]] = float((lp.argmax(1) == y_test).double().mean())
    info = {k: logq[k] - log_prior[y_test] for k in logq}

    h: dict[str, Tensor] = {}
    fitted: dict[str, Any] = {}
    for j, (name, m) in enumerate((("1", m1), ("2", m2))):
        bar.set_postfix_str(f"density {name}")
        proj = _Projection(xs[m][0], density_dim)
        dens = _fit_density(proj(xs[m][0]), density, components, seed + 100 + j, density_steps)
        with torch.no_grad():
            h[name] = -dens.log_prob(proj(xs[m][2])).double()
        fitted[name] = dens
        bar.update(1)
    bar.close()

    scale = 1.0 / _LN2 if units == "bits" else 1.0
    i1, i2, i12 = info["1"] * scale, info["2"] * scale, info["12"] * scale
    h1, h2 = h["1"] * scale, h["2"] * scale
    terms = lsmi_terms(i1, i2, i12, h1, h2)
    warns: list[str] = []
    c_shift = 0.0
    if shift:
        c_shift, msg = dataset_shift(terms)
        if msg:
            warns.append(msg)
            warnings.warn(msg, UserWarning, stacklevel=3)
        terms = {"r": terms["r"] + c_shift, "u1": terms["u1"] - c_shift, "u2": terms["u2"] - c_shift,
                 "s": terms["s"] + c_shift}
    values = {**terms, "i1": i1, "i2": i2, "i12": i12, "h1": h1, "h2": h2}
    means = {k: float(v.mean()) for k, v in values.items()}
    medians = {k: float(v.median()) for k, v in values.items()}
    settings = {
        "estimator": "lsmi", "modalities": [m1, m2], "units": units, "num_classes": c,
        "n_train": len(train), "n_val": len(val), "n_eval": len(test), "eval_split": test.name,
        "prior": prior.tolist(), "prior_source": "training-split class frequencies (+0.5 smoothing)",
        "classifier": {"hidden": list(hidden), "max_epochs": epochs, "lr": lr, "batch_size": batch_size,
                       "weight_decay": weight_decay, "patience": patience, "temperature_scaling": calibrate},
        "density": {"kind": density, "dim": density_dim, "components": components,
                    "steps": density_steps if density == "knife" else None},
        "shift": shift, "seed": seed,
    }
    return LSMIResult(**terms, i1=i1, i2=i2, i12=i12, h1=h1, h2=h2, target=y_test.clone(),
                      index=torch.arange(len(test)), units=units, means=means, shift=c_shift, accuracy=accuracy,
                      settings=settings, meta=dict(test.meta), warnings=warns,
                      medians=medians)


@register_estimator("lsmi", LSMISettings, level="sample",
                    description="per-sample redundancy, uniqueness and synergy (LSMI) on the held-out test split")
def estimate_lsmi(data: LabelledSplits, settings: LSMISettings) -> LSMIResult:
    """Per-sample interactions (the registered ``lsmi`` estimator): fitted on ``data.train`` (``data.val`` for
    early stopping and calibration), evaluated on ``data.test``; ``|Y|`` from ``data.info`` unless
    ``settings.num_classes`` is set."""
    if settings.num_classes is None:
        settings = dataclasses.replace(settings, num_classes=data.info.num_classes)
    return _lsmi(data.train, data.test, data.val, settings)


def lsmi_splits(splits: LabelledSplits, settings: LSMISettings | None = None, **options: Any) -> LSMIResult:
    """:func:`lsmi` fitted on ``splits.train`` (``splits.val`` for early stopping), evaluated on ``splits.test``:
    :func:`estimate_lsmi` with keyword options (fields of :class:`LSMISettings`)."""
    return estimate_lsmi(splits, settings_with(LSMISettings, settings, options, "lsmi_splits"))
