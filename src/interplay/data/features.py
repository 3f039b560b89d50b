"""Users' own precomputed features: ``--data features --data-root DIR``, the door for data Interplay has no loader for.

``DIR`` holds one file per split::

    DIR/train.npz   one array per modality, (N, ...) each, plus ``labels`` (N,) and optionally ``ids`` (N,)
    DIR/valid.npz   optional: without it the validation split is drawn from train (``data.val_fraction``, seeded)
    DIR/test.npz

written with ``np.savez(path, audio=A, video=V, labels=y)``, or ``.pt`` files written with
``torch.save({"audio": A, "video": V, "labels": y}, path)`` (tensors; loaded with ``weights_only=True``).
Every key other than ``labels`` and ``ids`` is a modality; at least two. Per-sample shapes pick the encoder
(``model.encoder=auto``): ``(d,)`` vectors an MLP, ``(T, d)`` sequences a GRU (all-zero steps are padding),
``(C, H, W)`` images a CNN.

Integer labels make a classification task (classes ``0..K-1``), float labels a regression task
(``data.task`` overrides). Nothing here is expensive, so nothing is cached: the files are the features.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, DataError, one_line
from .dataset import DATASETS, VERIFIERS, Check, DataInfo, DataSplits, MultimodalDataset, split_indices

#: split file stems, in order; ``valid`` is optional.
SPLIT_NAMES = ("train", "valid", "test")
#: keys of a split file that are not modalities.
RESERVED_KEYS = ("labels", "ids")
FORMATS = (".npz", ".pt")
_NUMERIC = "fiub"  # numpy dtype kinds accepted as features / labels


# --------------------------------------------------------------------------------------------------------------
# Standardisation shared with the affect loaders
# --------------------------------------------------------------------------------------------------------------

def padding_mask(x: Tensor) -> Tensor:
    """``(N, T)`` bool, True where a step of the ``(N, T, d)`` sequence ``x`` is all zero (padding)."""
    return x.abs().sum(-1) == 0


def feature_stats(x: Tensor, skip_padding: bool, chunk: int = 65536) -> tuple[Tensor, Tensor]:
    """Per-feature mean and standard deviation, ``(d,)`` each, of ``x`` (``(N, d)`` or ``(N, T, d)``).

    For sequences the statistics run over every step of every sample, except all-zero steps when
    ``skip_padding``. Accumulated in float64 in chunks of rows (memory stays small on MOSEI-sized data). A
    feature that is constant (std below 1e-6) or has no valid rows gets std 1, so it is only centred.
    """
    flat = x.reshape(-1, x.shape[-1])
    total = torch.zeros(flat.shape[1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    count = 0
    for start in range(0, flat.shape[0], chunk):
        rows = flat[start:start + chunk].double()
        if skip_padding:
            rows = rows[rows.abs().sum(1) > 0]
        total += rows.sum(0)
        total_sq += rows.square().sum(0)
        count += rows.shape[0]
    if count == 0:
        return torch.zeros(flat.shape[1]), torch.ones(flat.shape[1])
    mean = total / count
    var = (total_sq / count - mean.square()).clamp_min(0.0)
    std = var.sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return mean.float(), std.float()


def standardize_splits(splits: DataSplits, skip_padding: bool = True) -> dict[str, str]:
    """Standardise every modality of ``splits`` in place with statistics of the training split.

    ``(N, d)`` vectors: per feature over training samples. ``(N, T, d)`` sequences: per feature (last axis)
    over the training steps, all-zero (padding) steps excluded when ``skip_padding`` and left at zero after
    the transform, so sequence encoders still see them as padding. Other ranks are left unchanged. The tensors
    are modified in place (no copies of MOSEI-sized arrays). Returns ``{modality: what was done}`` for the record.
    """
    done: dict[str, str] = {}
    parts = (splits.train, splits.val, splits.test)
    for key, shape in splits.info.modalities.items():
        if len(shape) not in (1, 2):
            done[key] = "unchanged (rank > 2)"
            continue
        sequence = len(shape) == 2
        mean, std = feature_stats(splits.train.inputs[key], skip_padding and sequence)
        for part in parts:
            x = part.inputs[key]
            keep = (~padding_mask(x)).unsqueeze(-1) if sequence and skip_padding else None
            x = x.float() if x.dtype != torch.float32 else x
            x.sub_(mean).div_(std)  # in place: the loaders own these tensors (fresh copies of the files' arrays)
            if keep is not None:
                x.mul_(keep)
            part.inputs[key] = x
        done[key] = ("per feature over non-padding training steps" if sequence and skip_padding
                     else "per feature over training " + ("steps" if sequence else "samples"))
    return done


# --------------------------------------------------------------------------------------------------------------
# Reading split files
# --------------------------------------------------------------------------------------------------------------

def split_file(root: Path, split: str) -> Path | None:
    """``root/<split>.npz`` or ``root/<split>.pt``, whichever exists; ``None`` if neither; both is an error."""
    present = [root / f"{split}{ext}" for ext in FORMATS if (root / f"{split}{ext}").exists()]
    if len(present) > 1:
        raise DataError(f"{present[0]}: both {present[0].name} and {present[1].name} exist; keep only one per split")
    return present[0] if present else None


def read_split_file(path: Path) -> dict[str, np.ndarray]:
    """Every array in one split file, ``{key: array}``; :class:`DataError` naming ``path`` if it cannot be read."""
    if path.suffix == ".npz":
        try:
            with open(path, "rb") as fh:
                magic = fh.read(4)
            if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
                raise DataError(f"{path}: unreadable .npz file (not a zip archive of arrays; write it with np.savez)")
            with np.load(path, allow_pickle=False) as archive:
                return {key: np.asarray(archive[key]) for key in archive.files}
        except DataError:
            raise
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise DataError(f"{path}: holds object arrays, which are not loaded (pickles can run code); store "
                                f"numbers, and ids as fixed-width strings or integers") from None
            raise DataError(f"{path}: unreadable .npz file ({one_line(exc)})") from None
        except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise DataError(f"{path}: unreadable .npz file ({one_line(exc)})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (a corrupt file can raise nearly anything while unpickling)
        raise DataError(f"{path}: unreadable .pt file ({one_line(exc)}); expected torch.save of a dict of "
                        f"tensors") from None
    if not isinstance(obj, Mapping):
        raise DataError(f"{path}: expected a dict of tensors (modalities, labels, optional ids), got "
                        f"{type(obj).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if isinstance(value, Tensor):
            out[str(key)] = value.detach().cpu().numpy()
        elif key == "ids" and isinstance(value, (list, tuple)):
            out["ids"] = np.asarray(value)
        else:
            raise DataError(f"{path}: entry {key!r} is a {type(value).__name__}; expected a tensor")
    return out


def parse_split(path: Path, arrays: Mapping[str, np.ndarray],
                modalities: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Check one split file's arrays and return ``({modality: (N, ...)}, labels (N,))``.

    ``modalities`` restricts the returned modalities (all must be present); by default every non-reserved key.
    Raises :class:`DataError` naming ``path``: no labels, fewer than two modalities, non-numeric arrays,
    modality arrays without a per-sample axis, labels not ``(N,)`` / ``(N, 1)``, or sample counts that disagree.
    """
    found = sorted(arrays)
    if "labels" not in arrays:
        raise DataError(f"{path}: no 'labels' array (found {found}); every split file needs one array per "
                        f"modality plus labels")
    available = [k for k in found if k not in RESERVED_KEYS]
    if modalities is not None:
        missing = [m for m in modalities if m not in arrays]
        if missing:
            raise DataError(f"{path}: modality {missing[0]!r} not found (modalities here: {available})")
        available = sorted(modalities)
    if len(available) < 2:
        raise DataError(f"{path}: needs at least two modality arrays besides labels/ids, found {available}")
    labels = arrays["labels"]
    if labels.dtype.kind not in _NUMERIC:
        raise DataError(f"{path}: 'labels' must be numeric, got dtype {labels.dtype}")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"{path}: 'labels' must have shape (N,) or (N, 1), got {labels.shape}")
    n = labels.shape[0]
    inputs: dict[str, np.ndarray] = {}
    for key in available:
        x = arrays[key]
        if x.dtype.kind not in _NUMERIC:
            raise DataError(f"{path}: modality {key!r} must be numeric, got dtype {x.dtype}")
        if x.ndim < 2:
            raise DataError(f"{path}: modality {key!r} must be (N, ...) with per-sample features, got shape "
                            f"{x.shape}")
        if x.shape[0] != n:
            raise DataError(f"{path}: modality {key!r} has {x.shape[0]} samples but 'labels' has {n} "
                            f"(truncated or misaligned arrays)")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            bad = int(np.flatnonzero(~np.isfinite(x.reshape(n, -1)).all(1))[0])
            raise DataError(f"{path}: modality {key!r} contains NaN or inf (first at sample {bad})")
        inputs[key] = x
    if "ids" in arrays and len(arrays["ids"]) != n:
        raise DataError(f"{path}: 'ids' has {len(arrays['ids'])} entries but 'labels' has {n}")
    return inputs, labels


def _check_consistent(parsed: Mapping[str, tuple[Path, dict[str, np.ndarray], np.ndarray]]) -> None:
    """Same modalities and per-sample shapes in every split (compared with train)."""
    ref_path, ref, _ = parsed["train"]
    for path, inputs, _ in parsed.values():
        if sorted(inputs) != sorted(ref):
            raise DataError(f"{path}: modalities {sorted(inputs)} differ from {ref_path.name}'s {sorted(ref)}")
        for key, x in inputs.items():
            if x.shape[1:] != ref[key].shape[1:]:
                raise DataError(f"{path}: modality {key!r} has per-sample shape {tuple(x.shape[1:])} but "
                                f"{tuple(ref[key].shape[1:])} in {ref_path.name}")


def infer_task(labels: np.ndarray) -> str:
    """``"classification"`` for integer or boolean labels, ``"regression"`` for floats."""
    return "regression" if labels.dtype.kind == "f" else "classification"


def _class_targets(path: Path, labels: np.ndarray) -> np.ndarray:
    """``(N,)`` int64 class indices from integer (or whole-number float) labels; :class:`DataError` otherwise."""
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or not np.array_equal(labels, np.round(labels)):
            raise DataError(f"{path}: classification needs whole-number labels, found non-integer values "
                            f"(use data.task=regression for float targets)")
    y = labels.astype(np.int64)
    if y.size and y.min() < 0:
        raise DataError(f"{path}: class labels must be 0..K-1, found {int(y.min())}")
    return y


def _modality_list(modalities: str | Sequence[str] | None) -> list[str] | None:
    if modalities is None:
        return None
    if isinstance(modalities, str):
        modalities = [m.strip() for m in modalities.split(",")]
    chosen = sorted({m for m in modalities if m})
    if len(chosen) < 2:
        raise ConfigError(f"data.modalities: expected at least two modality names, got {chosen}")
    return chosen


def _subsample(idx: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    if n is None or n >= len(idx):
        return idx
    if n < 1:
        raise ConfigError(f"n_train / n_test: expected a positive number of samples, got {n}")
    return np.sort(rng.choice(idx, size=n, replace=False))


def _root_dir(root: str | None) -> Path:
    if root is None:
        raise DataError("features: no data root; pass --data-root DIR, a directory with train.npz, test.npz and "
                        "optionally valid.npz (or .pt files); see docs/data/features.md")
    path = Path(root)
    if not path.is_dir():
        raise DataError(f"{path}: not a directory; features reads DIR/train.npz, DIR/test.npz and optionally "
                        f"DIR/valid.npz (or .pt files)")
    return path


@DATASETS.register("features")
def features(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
             root: str | None = None, task: Literal["auto", "classification", "regression"] = "auto",
             modalities: list[str] | None = None, num_classes: int | None = None,
             standardize: bool = True) -> DataSplits:
    """Your own precomputed features: DIR/train.npz, DIR/test.npz and optional DIR/valid.npz (or .pt), each with
    one array per modality plus labels (and optional ids).

    ``task``: ``auto`` (integer labels: classification, float labels: regression), ``classification`` or
    ``regression``. ``modalities`` selects a subset (at least two; default all). ``num_classes`` defaults to the
    largest label + 1. Without a valid file, ``val_fraction`` of train (stratified by class for
    classification, seeded) becomes the validation split. ``n_train`` / ``n_test`` subsample train (before the
    validation split is drawn) and test. ``standardize``: per-feature with training statistics (sequences:
    over non-padding steps; see :func:`standardize_splits`).
    """
    base = _root_dir(root)
    chosen = _modality_list(modalities)
    parsed: dict[str, tuple[Path, dict[str, np.ndarray], np.ndarray]] = {}
    for split in SPLIT_NAMES:
        path = split_file(base, split)
        if path is None:
            if split == "valid":
                continue
            raise DataError(f"{base / (split + '.npz')}: file not found; features needs {split}.npz or {split}.pt "
                            f"in {base} (one array per modality plus labels; see docs/data/features.md)")
        inputs, labels = parse_split(path, read_split_file(path), chosen)
        parsed[split] = (path, inputs, labels)
    _check_consistent(parsed)
    kind = infer_task(parsed["train"][2]) if task == "auto" else task
    if kind not in ("classification", "regression"):
        raise ConfigError(f"data.task: expected auto, classification or regression, got {task!r}")
    targets: dict[str, np.ndarray] = {}
    for split, (path, _, labels) in parsed.items():
        if kind == "classification":
            targets[split] = _class_targets(path, labels)
        else:
            y = labels.astype(np.float32)
            if not np.isfinite(y).all():
                raise DataError(f"{path}: 'labels' contains NaN or inf")
            targets[split] = y
    if kind == "classification":
        seen = max(int(t.max()) + 1 if t.size else 0 for t in targets.values())
        if num_classes is None:
            num_classes = seen
        elif num_classes < seen:
            raise ConfigError(f"data.num_classes: {num_classes} is too small for labels up to {seen - 1}")
        if num_classes < 2:
            raise DataError(f"{parsed['train'][0]}: classification needs at least two classes, found {num_classes}")
    rng = np.random.default_rng(seed)

    def make(split: str, idx: np.ndarray, name: str) -> MultimodalDataset:
        _, inputs, _ = parsed[split]
        y = targets[split][idx]
        return MultimodalDataset({k: torch.as_tensor(np.ascontiguousarray(v[idx]), dtype=torch.float32)
                                  for k, v in inputs.items()},
                                 torch.as_tensor(y, dtype=torch.long if kind == "classification" else torch.float32),
                                 name=f"features/{name}")

    train_idx = _subsample(np.arange(len(targets["train"])), n_train, rng)
    if "valid" in parsed:
        train = make("train", train_idx, "train")
        val = make("valid", np.arange(len(targets["valid"])), "val")
        val_source = parsed["valid"][0].name
    else:
        if not 0 < val_fraction < 1:
            raise ConfigError(f"data.val_fraction: expected a number in (0, 1) to split validation from train "
                              f"(no valid file in {base}), got {val_fraction}")
        strata = targets["train"][train_idx] if kind == "classification" else None
        keep, held = split_indices(len(train_idx), (1 - val_fraction,), rng, strata=strata)
        train = make("train", train_idx[keep], "train")
        val = make("train", train_idx[held], "val")
        val_source = f"{val_fraction:g} of {parsed['train'][0].name} (seed {seed})"
    test = make("test", _subsample(np.arange(len(targets["test"])), n_test, rng), "test")
    for part in (train, val, test):
        if len(part) == 0:
            raise DataError(f"{base}: the {part.name.split('/')[-1]} split is empty (too few samples for "
                            f"data.val_fraction={val_fraction:g}?)")
    shapes = {k: tuple(int(s) for s in v.shape[1:]) for k, v in sorted(parsed["train"][1].items())}
    n_out = int(num_classes) if kind == "classification" and num_classes is not None else 1
    info = DataInfo(name="features", modalities=shapes, num_classes=n_out,
                    task=kind, extra={"root": str(base), "files": {s: str(p) for s, (p, _, _) in parsed.items()},
                                      "validation": val_source})
    splits = DataSplits(train=train, val=val, test=test, info=info)
    if standardize:
        info.extra["standardized"] = standardize_splits(splits)
    return splits


@VERIFIERS.register("features")
def verify_features(root: str | None) -> list[Check]:
    """Layout, readability, shapes and label types of a ``features`` directory (one check per split file)."""
    try:
        base = _root_dir(root)
    except DataError as exc:
        return [Check(False, str(exc))]
    checks: list[Check] = []
    parsed: dict[str, tuple[Path, dict[str, np.ndarray], np.ndarray]] = {}
    for split in SPLIT_NAMES:
        try:
            path = split_file(base, split)
        except DataError as exc:
            checks.append(Check(False, str(exc)))
            continue
        if path is None:
            if split == "valid":
                checks.append(Check(True, f"valid: no valid.npz / valid.pt in {base}; the validation split is drawn "
                                          f"from train (data.val_fraction, seeded)"))
            else:
                checks.append(Check(False, f"{base / (split + '.npz')}: file not found; put {split}.npz (np.savez) "
                                           f"or {split}.pt (torch.save of a dict of tensors) there, with one array "
                                           f"per modality plus labels"))
            continue
        try:
            inputs, labels = parse_split(path, read_split_file(path))
        except DataError as exc:
            checks.append(Check(False, str(exc)))
            continue
        parsed[split] = (path, inputs, labels)
        shapes = {k: tuple(int(s) for s in v.shape[1:]) for k, v in inputs.items()}
        checks.append(Check(True, f"{path.name}: {len(labels)} samples, modalities {shapes}, labels "
                                  f"{labels.dtype} ({infer_task(labels)}{_label_summary(labels)})"))
    if "train" in parsed and len(parsed) > 1:
        try:
            _check_consistent(parsed)
            checks.append(Check(True, f"modalities and per-sample shapes agree across {', '.join(parsed)}"))
        except DataError as exc:
            checks.append(Check(False, str(exc)))
    return checks


def _label_summary(labels: np.ndarray) -> str:
    if not labels.size:
        return ", empty"
    if labels.dtype.kind == "f":
        return f", range [{float(np.nanmin(labels)):.3g}, {float(np.nanmax(labels)):.3g}]"
    values = np.unique(labels)
    return f", {len(values)} classes {values[:10].tolist()}{' ...' if len(values) > 10 else ''}"


__all__ = ["feature_stats", "features", "parse_split", "read_split_file", "standardize_splits", "verify_features"]
