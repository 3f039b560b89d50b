"""Synthetic multimodal data whose interaction structure is known by construction.

* ``pid-xor``: the SynIB setting. Each sample's label information sits in one *source*
  (unique to one modality, redundant across all, or synergistic: an XOR across modalities).
* ``gaussian-split``: the OMIB setting. Views mix shared and view-specific task-relevant Gaussian
  factors with superfluous ones; presets move the task information between views.

Both take ``shift`` (:func:`parse_shift`): a distribution shift applied to the *test split only* (training and
validation data are bit-identical with and without it), for out-of-distribution evaluation of a trained run.

See ``shared/spec/synthetic.md`` for the definitions these generators implement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
import torch

from ..errors import ConfigError
from .dataset import DATASETS, DataInfo, DataSplits, MultimodalDataset, holdout_splits, validated_by

#: how far the weights of a mix may sum from 1 (e.g. ``0.333`` three times); they are then scaled to sum to 1
MIX_TOLERANCE = 1e-3
#: second entropy word of the generator that draws a test-time shift (``[seed, SHIFT_STREAM]``): independent of
#: the data stream, so a shift never changes the training and validation samples
SHIFT_STREAM = 0x5F1F7
#: the kinds of test-time shift ``parse_shift`` accepts
SHIFT_KINDS = ("noise", "mix", "corrupt")


def modality_names(m: int) -> list[str]:
    """Names of the synthetic modalities: ``x1, x2, ..., xM``."""
    return [f"x{i + 1}" for i in range(m)]


def pid_xor_sources(modalities: int) -> tuple[str, ...]:
    """Source names of pid-xor with ``modalities`` modalities (``unique1..uniqueM``, redundant, synergistic)."""
    return (*[f"unique{i + 1}" for i in range(modalities)], "redundant", "synergistic")


def parse_mix(mix: str | Mapping[str, float], allowed: tuple[str, ...], field: str = "data.mix") -> dict[str, float]:
    """Parse ``"redundant=0.9,synergistic=0.1"`` (or a mapping) into weights over ``allowed`` that sum to 1.

    Raises :class:`ConfigError` on unknown names, negative, non-finite or non-numeric weights, all-zero weights,
    or weights that do not sum to 1 (within :data:`MIX_TOLERANCE`; nothing is rescaled silently).
    """
    if isinstance(mix, str):
        items: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in mix.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise ConfigError(f"{field}: expected NAME=WEIGHT pairs separated by commas, got {part!r}")
            try:
                items[key.strip()] = float(value)
            except ValueError:
                raise ConfigError(f"{field}: weight of {key.strip()!r} must be a number, got {value!r}") from None
    elif isinstance(mix, Mapping):
        items = {}
        for name, weight in mix.items():
            try:
                items[str(name)] = float(weight)
            except (TypeError, ValueError):
                raise ConfigError(f"{field}: weight of {name!r} must be a number, got {weight!r}") from None
    else:
        raise ConfigError(f"{field}: expected NAME=WEIGHT pairs, got {mix!r}")
    unknown = sorted(set(items) - set(allowed))
    if unknown:
        raise ConfigError(f"{field}: unknown source(s) {', '.join(unknown)}; expected names from {', '.join(allowed)}")
    negative = [k for k, v in items.items() if not v >= 0 or not math.isfinite(v)]
    if negative:
        raise ConfigError(f"{field}: weights must be finite and non-negative, got {', '.join(negative)}")
    total = sum(items.values())
    if total <= 0:
        raise ConfigError(f"{field}: at least one weight must be positive")
    if abs(total - 1.0) > MIX_TOLERANCE:
        raise ConfigError(f"{field}: weights must sum to 1, got {', '.join(f'{k}={v:g}' for k, v in items.items())} "
                          f"summing to {total:g}")
    weights = {k: items.get(k, 0.0) / total for k in allowed}
    return {k: w for k, w in weights.items() if w > 0}


def parse_shift(shift: str | None, modalities: list[str], sources: tuple[str, ...] | None) -> dict[str, object]:
    """Parse a test-time shift ``KIND=VALUE[;KIND=VALUE...]`` (each kind at most once); ``None``/``""``: no shift.

    * ``noise=SD``: add ``N(0, SD^2)`` to every test feature (after standardisation: ``SD`` is in units of the
      training standard deviation);
    * ``mix=NAME=W,...`` (pid-xor only; ``sources`` given): the test samples are drawn with this source mix
      instead of ``data.mix`` (same generator otherwise; standardised with the training statistics);
    * ``corrupt=MODALITY``: that modality's test features are replaced by independent ``N(0, 1)`` noise
      (standardised units): it carries no information at test time.

    Returns ``{"noise": float, "mix": dict, "corrupt": str}`` with the kinds given. Raises :class:`ConfigError`
    (one line naming ``data.shift``) on anything else.
    """
    if shift is None or not str(shift).strip():
        return {}
    out: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in str(shift).split(";"))):
        kind, sep, value = part.partition("=")
        kind, value = kind.strip(), value.strip()
        if not sep or not value:
            raise ConfigError(f"data.shift: expected KIND=VALUE items separated by ';' (kinds: "
                              f"{', '.join(SHIFT_KINDS)}), got {part!r}")
        if kind not in SHIFT_KINDS:
            raise ConfigError(f"data.shift: unknown kind {kind!r}; expected noise=SD, mix=NAME=W,... or "
                              f"corrupt=MODALITY")
        if kind in out:
            raise ConfigError(f"data.shift: {kind!r} given twice")
        if kind == "noise":
            try:
                sd = float(value)
            except ValueError:
                raise ConfigError(f"data.shift: noise=SD needs a number, got {value!r}") from None
            if not math.isfinite(sd) or sd < 0:
                raise ConfigError(f"data.shift: noise=SD needs a finite non-negative number, got {value!r}")
            out[kind] = sd
        elif kind == "mix":
            if sources is None:
                raise ConfigError("data.shift: mix=... applies to pid-xor only (this dataset has no source mix)")
            out[kind] = parse_mix(value, sources, field="data.shift mix")
        else:
            if value not in modalities:
                raise ConfigError(f"data.shift: corrupt={value!r} is not a modality; expected one of "
                                  f"{', '.join(modalities)}")
            out[kind] = value
    return out


def _apply_test_shift(splits: DataSplits, shift: Mapping[str, object], rng: np.random.Generator) -> None:
    """Corrupt and add noise to ``splits.test`` (standardised features) in place, as :func:`parse_shift` says."""
    test = splits.test
    corrupt = shift.get("corrupt")
    if isinstance(corrupt, str):
        x = test.inputs[corrupt]
        test.inputs[corrupt] = torch.as_tensor(rng.normal(0.0, 1.0, size=tuple(x.shape)), dtype=x.dtype)
    sd = shift.get("noise")
    if isinstance(sd, float) and sd > 0:
        for m, x in test.inputs.items():
            test.inputs[m] = x + torch.as_tensor(rng.normal(0.0, sd, size=tuple(x.shape)), dtype=x.dtype)


def _sign(bits: np.ndarray) -> np.ndarray:
    return 2.0 * bits - 1.0


def check_split_sizes(n_train: int, n_test: int, val_fraction: float) -> None:
    """Raise :class:`ConfigError` unless ``n_train`` samples give at least 2 training and 1 validation sample with
    ``val_fraction`` (as :func:`_split_and_wrap` splits them) and ``n_test`` is positive."""
    if n_train < 1:
        raise ConfigError(f"data.n_train: expected a positive number of samples, got {n_train}")
    if n_test < 1:
        raise ConfigError(f"data.n_test: expected a positive number of samples, got {n_test}")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"data.val_fraction: expected a number in [0, 1), got {val_fraction}")
    n_val = int(round(val_fraction * n_train))
    if n_val < 1 or n_train - n_val < 2:
        raise ConfigError(f"data.n_train: {n_train} samples are too few for the splits: {n_train - n_val} training "
                          f"and {n_val} validation samples with data.val_fraction={val_fraction} (need at least 2 "
                          f"and 1)")


def _split_and_wrap(name: str, inputs: dict[str, np.ndarray], target: np.ndarray, meta: dict[str, np.ndarray],
                    n_train: int, val_fraction: float, rng: np.random.Generator, info: DataInfo) -> DataSplits:
    """Turn generated arrays (train+val first, then test) into standardised :class:`DataSplits`."""
    tensors = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in inputs.items()}
    dtype = torch.float32 if info.task == "regression" else torch.long
    full = MultimodalDataset(tensors, torch.as_tensor(target, dtype=dtype),
                             {k: torch.as_tensor(v) for k, v in meta.items()}, name=name)
    return holdout_splits(full, n_train, val_fraction, rng, info, name).standardize()


def _check_finite(name: str, value: float, positive: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(f"data.{name}: expected a finite {'positive' if positive else 'non-negative'} number, "
                          f"got {value}")


def check_pid_xor(*, n_train: int | None, n_test: int | None, val_fraction: float, mix: str | Mapping[str, float],
                  modalities: int, dim: int, block_frac: float, latent: int, strength: float, noise: float,
                  shift: str | None = None, **_: object) -> dict[str, float]:
    """Validate pid-xor's parameter values (cheap; no data are drawn) and return the parsed mix."""
    if modalities < 2:
        raise ConfigError(f"data.modalities: need at least 2, got {modalities}")
    check_split_sizes(2000 if n_train is None else n_train, 4000 if n_test is None else n_test, val_fraction)
    _check_finite("block_frac", block_frac)
    block = int(round(block_frac * dim))
    if block < 1 or 3 * block > dim:
        raise ConfigError(f"data.block_frac: three blocks of round({block_frac}*{dim})={block} coordinates "
                          f"must fit in dim={dim}")
    if latent < 1:
        raise ConfigError(f"data.latent: expected a positive integer, got {latent}")
    _check_finite("strength", strength)
    _check_finite("noise", noise)
    parse_shift(shift, modality_names(modalities), pid_xor_sources(modalities))
    return parse_mix(mix, pid_xor_sources(modalities))


@DATASETS.register("pid-xor")
@validated_by(check_pid_xor)
def pid_xor(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
            root: str | None = None, mix: str | dict[str, float] = "redundant=0.9,synergistic=0.1",
            modalities: int = 2, dim: int = 32, block_frac: float = 0.2, latent: int = 4,
            strength: float = 3.0, noise: float = 1.0, projection_seed: int = 1234,
            shift: str | None = None) -> DataSplits:
    """PID-block XOR data (binary label) with a known source per sample.

    Every modality ``x_m`` (``dim`` features, all ``N(0, noise^2)``) has three blocks of
    ``round(block_frac * dim)`` coordinates: ``unique`` (first), ``redundant``, ``synergy``; the rest is
    noise. Per sample a source is drawn from ``mix`` and only that source's block(s) are overwritten
    with ``P z`` (``P``: fixed ``(block, latent)`` projections with ``N(0, 0.5^2)`` entries drawn from
    ``projection_seed``):

    * ``unique<m>``: ``z = |N(0, s^2)| * sign(y)`` into modality m's unique block.
    * ``redundant``: one such ``z`` into every modality's redundant block (own projections).
    * ``synergistic``: bits ``b_1..b_{M-1} ~ Bernoulli(1/2)``, ``b_M = y xor b_1 xor ... xor b_{M-1}``;
      modality m gets ``|N(0, s^2)| * sign(b_m)`` into its synergy block. Any M-1 modalities say nothing
      about ``y``.

    ``n_train`` samples (default 2000, of which ``val_fraction`` are validation) and ``n_test`` test
    samples (default 4000). ``meta["interaction"]`` holds each sample's source code (an index into
    ``info.interactions``); ``info.block_map`` holds the per-coordinate block map.

    ``shift`` (:func:`parse_shift`) changes the test split only: ``mix=`` draws the ``n_test`` test samples
    again with another source mix from an independent generator (``[seed, SHIFT_STREAM]``), ``noise=`` and
    ``corrupt=`` act on the standardised test features. ``info.extra["shift"]`` records the parsed shift.
    """
    weights = check_pid_xor(n_train=n_train, n_test=n_test, val_fraction=val_fraction, mix=mix,
                            modalities=modalities, dim=dim, block_frac=block_frac, latent=latent, strength=strength,
                            noise=noise, shift=shift)
    test_shift = parse_shift(shift, modality_names(modalities), pid_xor_sources(modalities))
    n_train = 2000 if n_train is None else n_train
    n_test = 4000 if n_test is None else n_test
    block = int(round(block_frac * dim))
    sources = pid_xor_sources(modalities)
    names = modality_names(modalities)
    blocks = {"unique": np.arange(0, block), "redundant": np.arange(block, 2 * block),
              "synergy": np.arange(2 * block, 3 * block)}

    proj_rng = np.random.default_rng(projection_seed)
    proj = {m: {b: proj_rng.normal(0.0, 0.5, size=(block, latent)) for b in blocks} for m in names}

    def draw(rng: np.random.Generator, n: int, weights: Mapping[str, float]) \
            -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """``n`` samples with source mix ``weights``: features per modality, labels, source codes."""
        y = rng.integers(0, 2, size=n)
        source = rng.choice(len(sources), size=n, p=[weights.get(s, 0.0) for s in sources])
        x = {m: rng.normal(0.0, noise, size=(n, dim)) for m in names}

        def code(z_sign: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return np.abs(rng.normal(0.0, strength, size=(len(rows), latent))) * z_sign[:, None]

        for i, m in enumerate(names):  # unique sources
            rows = np.flatnonzero(source == sources.index(f"unique{i + 1}"))
            x[m][np.ix_(rows, blocks["unique"])] = code(_sign(y[rows]), rows) @ proj[m]["unique"].T
        rows = np.flatnonzero(source == sources.index("redundant"))
        z = code(_sign(y[rows]), rows)
        for m in names:
            x[m][np.ix_(rows, blocks["redundant"])] = z @ proj[m]["redundant"].T
        rows = np.flatnonzero(source == sources.index("synergistic"))
        bits = rng.integers(0, 2, size=(len(rows), modalities))
        bits[:, -1] = (y[rows] + bits[:, :-1].sum(1)) % 2
        for i, m in enumerate(names):
            x[m][np.ix_(rows, blocks["synergy"])] = code(_sign(bits[:, i]), rows) @ proj[m]["synergy"].T
        return x, y, source

    rng = np.random.default_rng(seed)
    x, y, source = draw(rng, n_train + n_test, weights)
    shift_rng = np.random.default_rng([seed, SHIFT_STREAM])
    new_mix = test_shift.get("mix")
    if isinstance(new_mix, dict):  # the test rows again, from the shifted mix (train and validation untouched)
        x_t, y_t, source_t = draw(shift_rng, n_test, new_mix)
        for m in names:
            x[m][n_train:] = x_t[m]
        y[n_train:], source[n_train:] = y_t, source_t

    extra: dict[str, object] = {"mix": weights}
    if test_shift:
        extra["shift"] = test_shift
    info = DataInfo(name="pid-xor", modalities={m: (dim,) for m in names}, num_classes=2,
                    interactions=sources,
                    block_map={m: {b: idx.tolist() for b, idx in blocks.items()} for m in names},
                    extra=extra)
    splits = _split_and_wrap("pid-xor", x, y, {"interaction": source}, n_train, val_fraction, rng, info)
    _apply_test_shift(splits, test_shift, shift_rng)
    return splits


GAUSSIAN_PRESETS: dict[str, tuple[float, float, float]] = {
    # weights of (shared a0, view-1-specific a1, view-2-specific a2) in the label's score
    "sim1": (1.0, 1.5, 0.5),  # view 1 holds most task information
    "sim2": (1.0, 0.5, 1.5),  # view 2 holds most
    "sim3": (1.0, 1.0, 1.0),  # balanced
}


def check_gaussian_split(*, n_train: int | None, n_test: int | None, val_fraction: float, preset: str, dim: int,
                         factor_dim: int, view_noise: float, label_noise: float, num_classes: int,
                         shift: str | None = None, **_: object) -> None:
    """Validate gaussian-split's parameter values (cheap; no data are drawn)."""
    if preset not in GAUSSIAN_PRESETS:
        raise ConfigError(f"data.preset: unknown preset {preset!r}; expected one of {', '.join(GAUSSIAN_PRESETS)}")
    if num_classes < 2:
        raise ConfigError(f"data.num_classes: need at least 2, got {num_classes}")
    for name, size in (("dim", dim), ("factor_dim", factor_dim)):
        if size < 1:
            raise ConfigError(f"data.{name}: expected a positive integer, got {size}")
    _check_finite("view_noise", view_noise)
    _check_finite("label_noise", label_noise)
    check_split_sizes(2000 if n_train is None else n_train, 4000 if n_test is None else n_test, val_fraction)
    parse_shift(shift, ["x1", "x2"], None)


@DATASETS.register("gaussian-split")
@validated_by(check_gaussian_split)
def gaussian_split(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None,
                   val_fraction: float = 0.1, root: str | None = None, preset: str = "sim1", dim: int = 32,
                   factor_dim: int = 4, view_noise: float = 0.5, label_noise: float = 0.3,
                   num_classes: int = 2, mixing_seed: int = 4321,
                   task: Literal["classification", "regression"] = "classification",
                   shift: str | None = None) -> DataSplits:
    """Gaussian information-split data (the OMIB setting), two views.

    Independent standard-normal factors of width ``factor_dim``: shared task-relevant ``a0``,
    view-specific task-relevant ``a1``, ``a2``, superfluous ``b0`` (shared), ``b1``, ``b2``. Views:
    ``v1 = A1 [a0, a1, b0, b1] + e1``, ``v2 = A2 [a0, a2, b0, b2] + e2`` with fixed random ``A_i``
    (``dim x 4*factor_dim``, from ``mixing_seed``) and ``e_i ~ N(0, view_noise^2)``. The label depends on
    ``(a0, a1, a2)`` only: score ``s = c0 w0.a0 + c1 w1.a1 + c2 w2.a2`` (unit vectors ``w``, preset
    weights ``c``), plus label noise ``N(0, (label_noise * std(s))^2)``, cut into ``num_classes``
    equiprobable classes. Presets: ``sim1`` (view 1 holds most task information), ``sim2`` (view 2),
    ``sim3`` (balanced). ``info.extra["bayes_accuracy"]`` is the accuracy of the best classifier that
    sees the true factors (binary case: ``1 - arctan(label_noise) / pi``).

    ``task="regression"``: the target is instead the noisy score rescaled to standard deviation 1.5 and
    clipped to ``[-3, 3]`` (a MOSI-like sentiment score); ``num_classes`` is then ignored.

    ``shift`` (:func:`parse_shift`: ``noise=SD``, ``corrupt=x1|x2``) acts on the standardised test features only.
    """
    check_gaussian_split(n_train=n_train, n_test=n_test, val_fraction=val_fraction, preset=preset, dim=dim,
                         factor_dim=factor_dim, view_noise=view_noise, label_noise=label_noise,
                         num_classes=num_classes, shift=shift)
    test_shift = parse_shift(shift, ["x1", "x2"], None)
    n_train = 2000 if n_train is None else n_train
    n_test = 4000 if n_test is None else n_test
    c = GAUSSIAN_PRESETS[preset]
    mix_rng = np.random.default_rng(mixing_seed)
    k = factor_dim
    mixing = [mix_rng.normal(0.0, 1.0 / math.sqrt(4 * k), size=(dim, 4 * k)) for _ in range(2)]
    w = [v / np.linalg.norm(v) for v in mix_rng.normal(size=(3, k))]

    rng = np.random.default_rng(seed)
    n = n_train + n_test
    a0, a1, a2, b0, b1, b2 = (rng.normal(size=(n, k)) for _ in range(6))
    v1 = np.concatenate([a0, a1, b0, b1], 1) @ mixing[0].T + rng.normal(0.0, view_noise, size=(n, dim))
    v2 = np.concatenate([a0, a2, b0, b2], 1) @ mixing[1].T + rng.normal(0.0, view_noise, size=(n, dim))
    score = c[0] * a0 @ w[0] + c[1] * a1 @ w[1] + c[2] * a2 @ w[2]
    noisy = score + rng.normal(0.0, label_noise * math.sqrt(sum(ci**2 for ci in c)), size=n)
    # class boundaries at the quantiles of the (known) distribution of the noisy score
    from scipy.special import ndtri  # the standard normal quantile (scipy.stats' norm.ppf, without its import)

    scale = math.sqrt(sum(ci**2 for ci in c) * (1 + label_noise**2))
    edges = ndtri(np.arange(1, num_classes) / num_classes) * scale
    y = np.searchsorted(edges, noisy)

    bayes = 1 - math.atan(label_noise) / math.pi if num_classes == 2 and task == "classification" else None
    extra: dict[str, object] = {"preset": preset, "bayes_accuracy": bayes,
                                "factor_weights": {"a0": c[0], "a1": c[1], "a2": c[2]}}
    if test_shift:
        extra["shift"] = test_shift
    info = DataInfo(name="gaussian-split", modalities={"x1": (dim,), "x2": (dim,)},
                    num_classes=1 if task == "regression" else num_classes, task=task, extra=extra)
    target = np.clip(noisy / scale * 1.5, -3.0, 3.0) if task == "regression" else y
    splits = _split_and_wrap("gaussian-split", {"x1": v1, "x2": v2}, target, {}, n_train, val_fraction, rng, info)
    _apply_test_shift(splits, test_shift, np.random.default_rng([seed, SHIFT_STREAM]))
    return splits


__all__ = ["pid_xor", "gaussian_split", "parse_mix", "pid_xor_sources", "modality_names",
           "GAUSSIAN_PRESETS", "MIX_TOLERANCE", "check_pid_xor", "check_gaussian_split", "check_split_sizes",
           "parse_shift", "SHIFT_KINDS", "SHIFT_STREAM"]
