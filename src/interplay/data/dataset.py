"""In-memory multimodal datasets, dataset metadata, splits and the dataset registry.

A registered dataset is a builder function with typed keyword parameters::

    @DATASETS.register("pid-xor")
    def pid_xor(*, seed: int, n_train: int | None, n_test: int | None, val_fraction: float,
                root: str | None, mix: dict[str, float] = ..., dim: int = 32) -> DataSplits: ...

The keyword-only parameters listed in :data:`COMMON_FIELDS` come from the ``data`` section of the
run config; every other parameter is a dataset parameter settable as ``--set data.NAME=VALUE``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import DataError
from ..registry import Registry
from .batch import Batch

DATASETS: Registry[Callable[..., DataSplits]] = Registry("dataset", package="interplay.data",
                                                        group="interplay.datasets")


@dataclass
class Check:
    """One line of ``interplay data verify``: what was checked, whether it passed, and the details."""

    ok: bool
    message: str


B = TypeVar("B", bound=Callable[..., Any])


def validated_by(check: Callable[..., Any]) -> Callable[[B], B]:
    """Attach ``check`` to a dataset builder as ``builder.validate``: a cheap check of the dataset's parameter
    values (nothing is read or drawn) that raises :class:`~interplay.errors.ConfigError` naming the field.

    :func:`interplay.engine.resolve_config` calls it with the builder's keyword arguments (:data:`COMMON_FIELDS`
    and every dataset parameter, defaults filled in), so a bad value is refused when the config is resolved
    (``interplay bench`` resolves every cell before its grid starts), not only when the data are built. The
    check travels with the builder: a builder registered in its place has its own (or none)::

        @DATASETS.register("pid-xor")
        @validated_by(check_pid_xor)
        def pid_xor(*, seed, n_train, ..., mix, ...) -> DataSplits: ...
    """
    def attach(builder: B) -> B:
        builder.validate = check  # type: ignore[attr-defined]
        return builder

    return attach


def data_root(root: str | None, name: str, layout: str, where: str) -> Path:
    """The existing directory ``root`` of dataset ``name``; otherwise a :class:`DataError` saying what the
    directory should hold (``layout``, e.g. ``"train.csv, test.csv, AudioWAV/"``) and where to get it (``where``)."""
    if root is None:
        raise DataError(f"{name}: no data root given (--data-root DIR with {layout}); {where}")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"{base}: directory not found; {where}")
    return base


def problems(groups: Mapping[str, Sequence[Any]]) -> str:
    """A verifier's summary of what failed, e.g. ``"3 missing (first: a.wav); 1 unreadable (first: b.wav)"``:
    one ``"<count> <label> (first: <item>)"`` part per non-empty group (label -> offending items)."""
    return "; ".join(f"{len(items)} {label} (first: {items[0]})" for label, items in groups.items() if items)


#: dataset name -> ``verify(root) -> list[Check]`` (layout, shapes, split sizes, checksums). A failing check's
#: message says what is missing, where to obtain it and where to put it.
VERIFIERS: Registry[Callable[[str | None], list[Check]]] = Registry("dataset verifier", package="interplay.data")

#: keyword arguments every dataset builder receives (filled from the ``data`` config section).
COMMON_FIELDS = ("seed", "n_train", "n_test", "val_fraction", "root")


@dataclass
class DataInfo:
    """What a model builder and the evaluator need to know about a dataset.

    Attributes:
        name: registry name.
        modalities: modality name -> per-sample feature shape (sorted by name).
        num_classes: number of classes (classification), 1 for regression.
        task: ``"classification"`` or ``"regression"``.
        interactions: names of the ground-truth sources when known by construction; a sample's
            ``meta["interaction"]`` code indexes into this tuple.
        block_map: modality -> block name -> coordinate indices (synthetic data only).
        class_names: optional human-readable class names.
        extra: anything else worth recording (e.g. the Bayes-optimal accuracy).
    """

    name: str
    modalities: dict[str, tuple[int, ...]]
    num_classes: int
    task: str = "classification"
    interactions: tuple[str, ...] | None = None
    block_map: dict[str, dict[str, list[int]]] | None = None
    class_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class MultimodalDataset(Dataset):
    """Aligned per-modality tensors held in memory.

    Args:
        inputs: modality -> ``(N, ...)`` float tensor; at least two modalities.
        target: ``(N,)`` long class indices or float regression targets.
        meta: optional per-sample tensors of leading size ``N`` (e.g. ``interaction``).
        name: used in error messages (e.g. ``"pid-xor/train"``).
    """

    def __init__(self, inputs: Mapping[str, Tensor], target: Tensor, meta: Mapping[str, Tensor] | None = None,
                 name: str = "dataset") -> None:
        if len(inputs) < 2:
            raise DataError(f"{name}: a multimodal dataset needs at least two modalities, got {sorted(inputs)}")
        n = int(target.shape[0])
        for key, x in inputs.items():
            if x.shape[0] != n:
                raise DataError(f"{name}: modality {key!r} has {x.shape[0]} samples, target has {n}")
            if x.is_floating_point() and not torch.isfinite(x).all():
                bad = int((~torch.isfinite(x)).flatten(1).any(1).nonzero()[0, 0])
                raise DataError(f"{name}: modality {key!r} contains NaN or inf (first at sample {bad})")
        if target.is_floating_point() and not torch.isfinite(target).all():
            raise DataError(f"{name}: target contains NaN or inf")
        self.inputs = {k: inputs[k] for k in sorted(inputs)}
        self.target = target
        self.meta = dict(meta or {})
        self.name = name

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"inputs": {k: v[i] for k, v in self.inputs.items()}, "target": self.target[i], "index": i,
                "meta": {k: v[i] for k, v in self.meta.items()}}

    @property
    def modalities(self) -> list[str]:
        return list(self.inputs)

    def batch(self, idx: Tensor) -> Batch:
        """Gather the samples at positions ``idx`` (``(B,)`` long) into a :class:`Batch`."""
        return Batch(inputs={k: v[idx] for k, v in self.inputs.items()}, target=self.target[idx], index=idx,
                     meta={k: v[idx] for k, v in self.meta.items()})

    def index_batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                      drop_last: bool = False) -> Iterator[Tensor]:
        """Iterate over the ``(B,)`` sample positions of each mini-batch."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order.to(self.target.device)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            yield order[start:start + batch_size]

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[Batch]:
        """Iterate over mini-batches by slicing the stored tensors (no per-sample Python work)."""
        for idx in self.index_batches(batch_size, shuffle, generator, drop_last):
            yield self.batch(idx)

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        return len(self) // batch_size if drop_last else math.ceil(len(self) / batch_size)

    def to(self, device: torch.device | str) -> MultimodalDataset:
        """Move every stored tensor to ``device`` (in place; returns ``self``)."""
        self.inputs = {k: v.to(device) for k, v in self.inputs.items()}
        self.target = self.target.to(device)
        self.meta = {k: v.to(device) for k, v in self.meta.items()}
        return self

    def subset(self, idx: Tensor | np.ndarray, name: str | None = None) -> MultimodalDataset:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return MultimodalDataset({k: v[idx] for k, v in self.inputs.items()}, self.target[idx],
                                 {k: v[idx] for k, v in self.meta.items()}, name=name or self.name)


@dataclass
class DataSplits:
    """Train / validation / test splits of one dataset with its :class:`DataInfo`."""

    train: MultimodalDataset
    val: MultimodalDataset
    test: MultimodalDataset
    info: DataInfo

    def standardize(self) -> DataSplits:
        """Standardise every modality feature-wise with the training split's mean and std (in place)."""
        for key in self.info.modalities:
            x = self.train.inputs[key]
            mean = x.mean(0, keepdim=True)
            std = x.std(0, keepdim=True).clamp_min(1e-8)
            for split in (self.train, self.val, self.test):
                split.inputs[key] = (split.inputs[key] - mean) / std
        return self


def check_labels(target: Tensor, num_classes: int, name: str) -> None:
    """Raise :class:`DataError` unless every label lies in ``[0, num_classes)``."""
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise DataError(f"{name}: labels must lie in [0, {num_classes}), found range "
                        f"[{int(target.min())}, {int(target.max())}]")


def holdout_splits(full: MultimodalDataset, n_train: int, val_fraction: float, rng: np.random.Generator,
                   info: DataInfo, name: str) -> DataSplits:
    """Splits of generated data laid out train+val first, then test: the first ``n_train`` samples are divided at
    random (``rng``) into validation (``round(val_fraction n_train)``) and training, the rest is the test split."""
    n_val = int(round(val_fraction * n_train))
    perm = rng.permutation(n_train)
    return DataSplits(train=full.subset(np.sort(perm[n_val:]), f"{name}/train"),
                      val=full.subset(np.sort(perm[:n_val]), f"{name}/val"),
                      test=full.subset(np.arange(n_train, len(full)), f"{name}/test"), info=info)


def split_indices(n: int, fractions: tuple[float, ...], rng: np.random.Generator,
                  strata: np.ndarray | None = None) -> list[np.ndarray]:
    """Partition ``range(n)`` into consecutive parts of the given fractions (the last part takes the rest).

    With ``strata`` (e.g. labels) every stratum is split in the same proportions.
    """
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for g in groups:
        g = rng.permutation(g)
        cuts = np.round(np.cumsum(fractions) * len(g)).astype(int)
        for i, piece in enumerate(np.split(g, cuts)):
            parts[i].append(piece)
    return [np.sort(np.concatenate(p)) for p in parts]
