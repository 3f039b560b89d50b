"""MultiBench affect tasks: CMU-MOSI, CMU-MOSEI, MUStARD (sarcasm) and UR-FUNNY (humor).

Each task is one pickle in MultiBench's layout (``--data-root`` is the directory holding it, or the file)::

    {"train": split, "valid": split, "test": split}, each split a dict of numpy arrays
        "vision" (N, T, d_v), "audio" (N, T, d_a), "text" (N, T, d_t)   per-word features, zero-padded
        "labels" (N, 1, 1), (N, 1) or (N,)                             see the label conventions below
        "id"     (N, ...)                                              segment ids (checked for length only)

Label conventions (MultiBench ``datasets/affect/get_data.py``): MOSI / MOSEI hold sentiment scores in
[-3, 3]; MUStARD (``sarcasm.pkl``) and UR-FUNNY (``humor.pkl``) hold binary labels, class 1 = sarcastic /
humorous (MultiBench maps ``label > 0`` to class 1 for sarcasm and uses the humor label itself as the class,
so both files hold 0/1; -1/1 is accepted too).

Loading follows MultiBench where it is specific: the file's own train/valid/test splits are used
(``data.val_fraction`` is ignored); samples whose text is all zero are dropped (``drop_empty_text``, as
MultiBench's ``drop_entry``); audio ``-inf`` is set to 0 (as MultiBench and MulT do) and, beyond that, every
NaN / inf in any modality is set to 0 and counted in ``info.extra["non_finite_set_to_zero"]``. Unlike
MultiBench (which optionally z-normalises each sample on its own), features are standardised per feature
with training statistics over non-padding steps; padding steps stay exactly zero, so the GRU / Transformer
encoders still mask them. ``align_text=True`` aligns every modality on the text start as MultiBench's aligned
loader does (steps before the first non-zero text step are dropped, i.e. zeroed, in every modality). Nothing here is
expensive (the pickle already holds features), so nothing is cached.

The pickles are read by an unpickler that only admits numpy arrays and plain containers (a pickle can run
code). ``interplay train --trust-pickle`` lifts that for files you trust: the flag sets
``INTERPLAY_TRUST_PICKLE=1`` for the process, which :func:`pickle_trusted` reads. Trust never comes from a config
(``data.trust_pickle`` in a config file, bench YAML or ``--set`` is refused), so a shared config cannot make
anyone run code.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ConfigError, DataError, one_line
from .dataset import DATASETS, VERIFIERS, Check, DataInfo, DataSplits, MultimodalDataset
from .features import standardize_splits

#: split keys of a MultiBench affect pickle, in order (ours: train, val, test).
AFFECT_SPLITS = ("train", "valid", "test")
#: modality keys, sorted.
AFFECT_MODALITIES = ("audio", "text", "vision")
#: targets of the sentiment tasks (MOSI, MOSEI).
SENTIMENT_TARGETS = ("regression", "binary", "binary_nonzero", "7class")


@dataclass(frozen=True)
class AffectTask:
    """What is known about one MultiBench affect release.

    Attributes:
        key: registry name.
        title: dataset name in prose.
        file: the pickle's file name in the MultiBench release.
        labels: ``"sentiment"`` (scores in [-3, 3]) or ``"binary"`` (0/1, or -1/1).
        dims: modality -> feature size per step in the release (from MultiBench's example encoders).
        sizes: split -> number of samples in the release where known (checked by ``interplay data verify``).
        source: where to obtain the pickle.
        class_names: names of classes 0 and 1 (binary tasks).
    """

    key: str
    title: str
    file: str
    labels: str
    dims: dict[str, int]
    sizes: dict[str, int] | None
    source: str
    class_names: tuple[str, str] | None = None


_DRIVE = "https://drive.google.com/drive/folders/"
AFFECT_TASKS: dict[str, AffectTask] = {
    "mosi": AffectTask("mosi", "CMU-MOSI", "mosi_raw.pkl", "sentiment", {"audio": 74, "text": 300, "vision": 35},
                       {"train": 1284, "valid": 229, "test": 686}, _DRIVE + "1uEK737LXB9jAlf9kyqRs6B9N6cDncodq"),
    "mosei": AffectTask("mosei", "CMU-MOSEI", "mosei_senti_data.pkl", "sentiment",
                        {"audio": 74, "text": 300, "vision": 35}, {"train": 16326, "valid": 1871, "test": 4659},
                        _DRIVE + "1A_hTmifi824gypelGobgl2M-5Rw9VWHv"),
    "mustard": AffectTask("mustard", "MUStARD", "sarcasm.pkl", "binary", {"audio": 81, "text": 300, "vision": 371},
                          None, _DRIVE + "1JFcX-NF97zu9ZOZGALGU9kp8dwkP7aJ7", ("not sarcastic", "sarcastic")),
    "urfunny": AffectTask("urfunny", "UR-FUNNY", "humor.pkl", "binary", {"audio": 81, "text": 300, "vision": 371},
                          None, _DRIVE + "1Agzm157lciMONHOHemHRSySmjn1ahHX1", ("not humorous", "humorous")),
}

# ---------------------------------------------------------------------------------------------------------------
# Reading the pickle
# ---------------------------------------------------------------------------------------------------------------

_NUMPY_MODULES = {"numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                  "numpy._core.numeric"}
_NUMPY_NAMES = {"ndarray", "dtype", "_reconstruct", "scalar", "_frombuffer"}
_SAFE_GLOBALS = {("_codecs", "encode"), ("collections", "OrderedDict"), ("builtins", "set"),
                 ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "complex"),
                 ("builtins", "slice"), ("builtins", "range")}


#: the environment variable that lifts the safe unpickler (set by ``interplay train --trust-pickle``)
TRUST_PICKLE_ENV = "INTERPLAY_TRUST_PICKLE"


def pickle_trusted() -> bool:
    """Whether this process was told to trust pickles (``INTERPLAY_TRUST_PICKLE=1``, which
    ``interplay train --trust-pickle`` sets); never a config value."""
    return os.environ.get(TRUST_PICKLE_ENV, "") == "1"


class _Refused(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, numpy scalars and plain containers only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module in _NUMPY_MODULES and name in _NUMPY_NAMES) or (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise _Refused(f"{module}.{name}")


def unpickle_arrays(path: Path, expected: str) -> Any:
    """The object in the pickle ``path``, read by the restricted unpickler (numpy arrays, numpy scalars and plain
    containers only; ``encoding="latin1"`` for Python 2 era pickles). Never runs code from the file.

    Raises:
        DataError: naming ``path``: unreadable, not a pickle, truncated, or referencing anything else (``expected``
            says what the file should hold).
    """
    try:
        with open(path, "rb") as fh:
            return _ArrayUnpickler(fh, encoding="latin1").load()
    except _Refused as exc:
        raise DataError(f"{path}: the pickle references {exc}, which the safe loader refuses ({expected} holds "
                        f"numpy arrays only)") from None
    except MemoryError:
        raise DataError(f"{path}: not enough memory to unpickle the file") from None
    except Exception as exc:  # noqa: BLE001  (unpickling corrupt bytes can raise nearly any exception)
        raise DataError(f"{path}: unreadable pickle ({one_line(exc)}); expected {expected}") from None


def read_affect_pickle(path: Path, trust: bool = False) -> Any:
    """The unpickled object in ``path`` (``encoding="latin1"`` for Python 2 era pickles).

    Raises :class:`DataError` naming ``path`` if it cannot be read, is not a pickle, is truncated, or (unless
    ``trust``) references anything but numpy arrays and plain containers.
    """
    try:
        with open(path, "rb") as fh:
            loader = pickle.Unpickler(fh, encoding="latin1") if trust else _ArrayUnpickler(fh, encoding="latin1")
            return loader.load()
    except _Refused as exc:
        raise DataError(f"{path}: the pickle references {exc}, which the safe loader refuses (a MultiBench "
                        f"affect pickle holds numpy arrays only); if you trust the file, train with "
                        f"--trust-pickle") from None
    except MemoryError:
        raise DataError(f"{path}: not enough memory to unpickle the file") from None
    except Exception as exc:  # noqa: BLE001  (unpickling corrupt bytes can raise nearly any exception)
        raise DataError(f"{path}: unreadable pickle ({one_line(exc)}); expected a MultiBench affect pickle "
                        f"(dict of train/valid/test splits)") from None


def affect_path(task: AffectTask, root: str | None, file: str | None = None) -> Path:
    """The pickle to read: ``root`` itself if it is a file, else ``root/file`` (default: the release's name)."""
    name = file or task.file
    if root is None:
        if file is not None and Path(file).is_absolute():
            return Path(file)
        raise DataError(f"{task.key}: no data root; download {task.file} ({task.title}, MultiBench release) from "
                        f"{task.source} and pass --data-root DIR for the directory holding it")
    base = Path(root)
    if base.is_file():
        if file is not None:
            raise ConfigError(f"data.file: --data-root {base} is already a file; give a directory with data.file, "
                              f"or the file alone")
        return base
    return base / name


def missing_message(task: AffectTask, path: Path) -> str:
    """One line: what is missing, where to obtain it and where to put it."""
    return (f"{path}: file not found; {task.title} is not bundled with Interplay: download {task.file} from the "
            f"MultiBench release ({task.source}) and put it at {path} (another name: --set data.file=NAME)")


def affect_split_dicts(path: Path, data: Any) -> dict[str, Mapping[str, Any]]:
    """``{"train": ..., "valid": ..., "test": ...}`` of an unpickled affect file; :class:`DataError` if not."""
    if not isinstance(data, Mapping):
        raise DataError(f"{path}: expected a dict of splits train, valid, test; got a {type(data).__name__}")
    keys = sorted(str(k) for k in data)
    for split in AFFECT_SPLITS:
        if split not in data:
            raise DataError(f"{path}: split {split!r} missing (found keys {keys}); a MultiBench affect pickle has "
                            f"train, valid and test")
        if not isinstance(data[split], Mapping):
            raise DataError(f"{path}: split {split!r} should be a dict of arrays, got a {type(data[split]).__name__}")
    return {split: data[split] for split in AFFECT_SPLITS}


def parse_affect_split(path: Path, split: str, part: Mapping[str, Any],
                       modalities: Sequence[str] = AFFECT_MODALITIES) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Check one split and return ``({modality: (N, T, d)}, labels (N,))`` as stored (no conversion yet).

    Raises :class:`DataError` naming ``path`` and ``split``: missing arrays, non-numeric arrays, modalities that
    are not 3-D, labels not ``(N,)`` / ``(N, 1)`` / ``(N, 1, 1)``, or sample counts that disagree (a
    truncated array).
    """
    where = f"{path}: split {split!r}"
    missing = [k for k in (*modalities, "labels") if k not in part]
    if missing:
        raise DataError(f"{where}: array {missing[0]!r} missing (found keys {sorted(str(k) for k in part)})")

    def numeric(key: str) -> np.ndarray:
        try:
            x = np.asarray(part[key])
        except ValueError as exc:  # ragged nested lists
            raise DataError(f"{where}: {key!r} is not a rectangular array ({one_line(exc)})") from None
        if x.dtype.kind not in "fiub":
            raise DataError(f"{where}: {key!r} must be a numeric array, got dtype {x.dtype}")
        return x

    labels = numeric("labels")
    if labels.ndim == 0 or labels.shape[1:] not in ((), (1,), (1, 1)):
        raise DataError(f"{where}: 'labels' must have shape (N,), (N, 1) or (N, 1, 1), got {labels.shape}")
    n = labels.shape[0]
    labels = labels.reshape(n)
    inputs: dict[str, np.ndarray] = {}
    for key in modalities:
        x = numeric(key)
        if x.ndim != 3:
            raise DataError(f"{where}: {key!r} must be a 3-D array (N, T, d) of per-step features, got shape "
                            f"{x.shape}")
        if x.shape[0] != n:
            raise DataError(f"{where}: {key!r} has {x.shape[0]} samples but 'labels' has {n} (truncated or "
                            f"misaligned arrays)")
        inputs[key] = x
    if "id" in part:
        try:
            count = len(part["id"])
        except TypeError:
            count = None
        if count is not None and count != n:
            raise DataError(f"{where}: 'id' has {count} entries but 'labels' has {n} (truncated or misaligned arrays)")
    return inputs, labels


def check_affect_shapes(path: Path, parsed: Mapping[str, tuple[dict[str, np.ndarray], np.ndarray]]) -> None:
    """Every modality has the same per-sample shape ``(T, d)`` in every split (else :class:`DataError`)."""
    ref_inputs, _ = parsed["train"]
    for split, (inputs, _) in parsed.items():
        for key, x in inputs.items():
            if x.shape[1:] != ref_inputs[key].shape[1:]:
                raise DataError(f"{path}: {key!r} has per-sample shape {tuple(x.shape[1:])} in split {split!r} but "
                                f"{tuple(ref_inputs[key].shape[1:])} in 'train'")


def nonempty_rows(x: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: samples of ``x`` (``(N, ...)``) with at least one finite non-zero value (NaN / inf count
    as zero, since loading sets them to 0)."""
    return (np.isfinite(x) & (x != 0)).reshape(len(x), -1).any(1)


def binary_values_ok(labels: np.ndarray) -> bool:
    """True if ``labels`` only take values in {-1, 0, 1} (0/1 or -1/1 binary labels)."""
    return bool(np.isin(labels, (-1, 0, 1)).all())


# ---------------------------------------------------------------------------------------------------------------
# Building the splits
# ---------------------------------------------------------------------------------------------------------------

def _modalities(modalities: str | Sequence[str] | None) -> list[str]:
    if modalities is None:
        return list(AFFECT_MODALITIES)
    if isinstance(modalities, str):
        modalities = modalities.split(",")
    chosen = sorted({m.strip() for m in modalities if m.strip()})
    unknown = [m for m in chosen if m not in AFFECT_MODALITIES]
    if unknown or len(chosen) < 2:
        raise ConfigError(f"data.modalities: expected at least two of {', '.join(AFFECT_MODALITIES)}, got {chosen}")
    return chosen


def sentiment_classes(scores: np.ndarray, target: str) -> np.ndarray:
    """Class indices ``(N,)`` int64 of sentiment ``scores`` in [-3, 3] for a classification ``target``.

    ``binary``: negative (< 0) -> 0, non-negative (>= 0) -> 1 (the "has-0" Acc2 view); ``binary_nonzero``:
    negative -> 0, positive -> 1 (zero scores must be dropped before); ``7class``: scores clipped to [-3, 3],
    rounded half to even (``np.round``, like ``regression_metrics``' Acc7), shifted to 0..6.
    """
    if target == "binary":
        return (scores >= 0).astype(np.int64)
    if target == "binary_nonzero":
        return (scores > 0).astype(np.int64)
    if target == "7class":
        return (np.round(np.clip(scores, -3, 3)) + 3).astype(np.int64)
    raise ConfigError(f"data.target: expected one of {', '.join(SENTIMENT_TARGETS)}, got {target!r}")


def align_on_text(inputs: dict[str, np.ndarray], text: np.ndarray) -> np.ndarray:
    """Zero, in place, every modality's steps before the text start of each sample; return the starts ``(N,)``.

    MultiBench's aligned loader (``Affectdataset(aligned=True)``) cuts vision, audio and text at
    ``start = text.nonzero()[0][0]``, the first step of the text with a non-zero value, and packs what is left.
    Zeroing those steps here is the same for our encoders, which only see each modality's span (first to last
    non-zero step). One difference is left: MultiBench keeps an audio / vision step that is entirely zero at the
    text start as a real step, where our encoders start that modality at its first non-zero step. ``text`` is
    ``(N, T, d_t)`` (an all-zero text gives start ``T``: everything is zeroed).
    """
    nonzero = (np.isfinite(text) & (text != 0)).any(-1)  # (N, T)
    t = text.shape[1]
    start = np.where(nonzero.any(1), nonzero.argmax(1), t)
    before = np.arange(t)[None, :] < start[:, None]  # (N, T)
    for x in inputs.values():
        x[before] = 0.0
    return start


def load_affect(key: str, *, seed: int = 0, n_train: int | None = None, n_test: int | None = None,
                root: str | None = None, target: str | None = None, modalities: str | Sequence[str] | None = None,
                file: str | None = None, drop_empty_text: bool = True, standardize: bool = True,
                trust_pickle: bool | None = None, align_text: bool = False) -> DataSplits:
    """Read, check, clean and split one MultiBench affect pickle (the work behind the registered builders).

    Returns splits whose inputs are ``{modality: (N, T, d)}`` float32 and whose targets are float scores
    (``target="regression"``) or class indices. ``target`` is ``None`` for binary tasks. ``trust_pickle``
    (Python callers only; ``None``: :func:`pickle_trusted`) unpickles arbitrary objects. ``align_text``: align
    every modality on the text start (:func:`align_on_text`; MultiBench's ``aligned=True``).
    """
    task = AFFECT_TASKS[key]
    chosen = _modalities(modalities)
    if task.labels == "sentiment" and target not in SENTIMENT_TARGETS:
        raise ConfigError(f"data.target: expected one of {', '.join(SENTIMENT_TARGETS)}, got {target!r}")
    path = affect_path(task, root, file)
    if not path.exists():
        raise DataError(missing_message(task, path))
    trust = pickle_trusted() if trust_pickle is None else trust_pickle
    splits = affect_split_dicts(path, read_affect_pickle(path, trust))
    needed = sorted(set(chosen) | ({"text"} if drop_empty_text or align_text else set()))
    parsed = {split: parse_affect_split(path, split, part, needed) for split, part in splits.items()}
    check_affect_shapes(path, parsed)
    rng = np.random.default_rng(seed)
    non_finite = dict.fromkeys(chosen, 0)
    dropped_text: dict[str, int] = {}
    dropped_zero: dict[str, int] = {}
    aligned_steps: dict[str, int] = {}
    datasets: dict[str, MultimodalDataset] = {}
    ours = {"train": "train", "valid": "val", "test": "test"}
    for split, (inputs, labels) in parsed.items():
        where = f"{path}: split {split!r}"
        y = labels.astype(np.float64)
        if not np.isfinite(y).all():
            raise DataError(f"{where}: 'labels' contains NaN or inf")
        keep = np.ones(len(y), dtype=bool)
        if drop_empty_text:
            keep &= nonempty_rows(inputs["text"])
            dropped_text[split] = int((~keep).sum())
        if task.labels == "binary":
            if not binary_values_ok(y):
                raise DataError(f"{where}: 'labels' should be binary (0/1 or -1/1) for {task.title}, found values "
                                f"{np.unique(y)[:8].tolist()}")
            t = (y > 0).astype(np.int64)
        elif target == "regression":
            t = y.astype(np.float32)
        else:
            if target == "binary_nonzero":
                zero = keep & (y == 0)
                dropped_zero[split] = int(zero.sum())
                keep &= ~zero
            t = sentiment_classes(y, str(target))
        idx = np.flatnonzero(keep)
        limit = n_train if split == "train" else n_test if split == "test" else None
        if limit is not None and limit < len(idx):
            if limit < 1:
                raise ConfigError(f"n_train / n_test: expected a positive number of samples, got {limit}")
            idx = np.sort(rng.choice(idx, size=limit, replace=False))
        if len(idx) == 0:
            raise DataError(f"{where}: no samples left after dropping empty-text / zero-label samples")
        tensors = {}
        for m in chosen:
            x = inputs[m][idx].astype(np.float32, copy=False)  # fancy indexing already copied
            bad = ~np.isfinite(x)
            if bad.any():
                non_finite[m] += int(bad.sum())
                x[bad] = 0.0
            tensors[m] = torch.from_numpy(x)
        if align_text:
            text = inputs["text"][idx].astype(np.float32, copy=False)
            before = {m: tensors[m].numpy() for m in chosen}
            nonzero_before = sum(int(np.count_nonzero(v.any(-1))) for v in before.values())
            align_on_text(before, text)
            aligned_steps[ours[split]] = nonzero_before - sum(int(np.count_nonzero(v.any(-1)))
                                                              for v in before.values())
        datasets[split] = MultimodalDataset(tensors, torch.from_numpy(t[idx]), name=f"{key}/{ours[split]}")
    shapes = {m: tuple(int(s) for s in parsed["train"][0][m].shape[1:]) for m in chosen}
    regression = task.labels == "sentiment" and target == "regression"
    if task.labels == "binary":
        num_classes, names = 2, list(task.class_names or ("0", "1"))
    elif regression:
        num_classes, names = 1, None
    elif target == "7class":
        num_classes, names = 7, [str(c) for c in range(-3, 4)]
    else:
        num_classes = 2
        names = ["negative", "non-negative"] if target == "binary" else ["negative", "positive"]
    extra: dict[str, Any] = {
        "file": str(path), "target": "binary" if task.labels == "binary" else target,
        "splits": "the file's train/valid/test (data.val_fraction is not used)",
        "samples": {ours[s]: len(d) for s, d in datasets.items()},
        "dropped_empty_text": dropped_text, "non_finite_set_to_zero": non_finite}
    if dropped_zero:
        extra["dropped_zero_label"] = dropped_zero
    if align_text:
        extra["aligned_on_text_start"] = {"non_zero_steps_dropped": aligned_steps}
    info = DataInfo(name=key, modalities=shapes, num_classes=num_classes,
                    task="regression" if regression else "classification", class_names=names, extra=extra)
    out = DataSplits(train=datasets["train"], val=datasets["valid"], test=datasets["test"], info=info)
    if standardize:
        extra["standardized"] = standardize_splits(out, skip_padding=True)
    return out


_COMMON_DOC = """

    ``modalities``: a subset of audio, text, vision (at least two; default all three). ``file``: the pickle's
    name inside ``--data-root`` (default {file}). The file's own train/valid/test splits are used
    (``data.val_fraction`` is ignored); ``n_train`` / ``n_test`` subsample train and test (seeded).
    ``drop_empty_text``: drop samples whose text is all zero (MultiBench does). ``standardize``: per feature with
    training statistics over non-padding steps. ``align_text``: align every modality on the text start (steps
    before the first non-zero text step are zeroed), as MultiBench's aligned loader does. The pickle is read by a
    safe unpickler (numpy arrays and plain containers only) unless ``interplay train --trust-pickle`` is given
    (files you trust).
    """


@DATASETS.register("mosi")
def mosi(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
         root: str | None = None, target: Literal["regression", "binary", "binary_nonzero", "7class"] = "regression",
         modalities: list[str] | None = None, file: str | None = None, drop_empty_text: bool = True,
         standardize: bool = True, align_text: bool = False) -> DataSplits:
    """CMU-MOSI sentiment, MultiBench pickle mosi_raw.pkl (vision 35, audio 74, text 300 per word; 1,284 / 229 /
    686 train/valid/test); sentiment scores in [-3, 3].

    ``target``: ``regression`` (the scores; MOSI metrics Acc7/Acc2/F1/MAE/Corr), ``binary`` (negative vs
    non-negative), ``binary_nonzero`` (negative vs positive, zero-score samples dropped from every split),
    ``7class`` (scores clipped to [-3, 3] and rounded: classes 0..6 = -3..3)."""
    return load_affect("mosi", seed=seed, n_train=n_train, n_test=n_test, root=root, target=target,
                       modalities=modalities, file=file, drop_empty_text=drop_empty_text, standardize=standardize,
                       align_text=align_text)


@DATASETS.register("mosei")
def mosei(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
          root: str | None = None, target: Literal["regression", "binary", "binary_nonzero", "7class"] = "regression",
          modalities: list[str] | None = None, file: str | None = None, drop_empty_text: bool = True,
          standardize: bool = True, align_text: bool = False) -> DataSplits:
    """CMU-MOSEI sentiment, MultiBench pickle mosei_senti_data.pkl (vision 35, audio 74, text 300 per word;
    16,326 / 1,871 / 4,659 train/valid/test); sentiment scores in [-3, 3].

    ``target`` as for ``mosi``: regression, binary, binary_nonzero or 7class."""
    return load_affect("mosei", seed=seed, n_train=n_train, n_test=n_test, root=root, target=target,
                       modalities=modalities, file=file, drop_empty_text=drop_empty_text, standardize=standardize,
                       align_text=align_text)


@DATASETS.register("mustard")
def mustard(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
            root: str | None = None, modalities: list[str] | None = None, file: str | None = None,
            drop_empty_text: bool = True, standardize: bool = True, align_text: bool = False) -> DataSplits:
    """MUStARD sarcasm detection, MultiBench pickle sarcasm.pkl (vision 371, audio 81, text 300 per word);
    binary: 1 = sarcastic."""
    return load_affect("mustard", seed=seed, n_train=n_train, n_test=n_test, root=root, modalities=modalities,
                       file=file, drop_empty_text=drop_empty_text, standardize=standardize,
                       align_text=align_text)


@DATASETS.register("urfunny")
def urfunny(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
            root: str | None = None, modalities: list[str] | None = None, file: str | None = None,
            drop_empty_text: bool = True, standardize: bool = True, align_text: bool = False) -> DataSplits:
    """UR-FUNNY humor detection, MultiBench pickle humor.pkl (vision 371, audio 81, text 300 per word);
    binary: 1 = humorous (the punchline is followed by laughter)."""
    return load_affect("urfunny", seed=seed, n_train=n_train, n_test=n_test, root=root, modalities=modalities,
                       file=file, drop_empty_text=drop_empty_text, standardize=standardize,
                       align_text=align_text)


def check_affect(*, modalities: str | Sequence[str] | None = None, **_: object) -> None:
    """Validate an affect dataset's parameter values (cheap; the pickle is not read)."""
    _modalities(modalities)


for _fn in (mosi, mosei, mustard, urfunny):
    _fn.__doc__ = (_fn.__doc__ or "") + _COMMON_DOC.format(file=AFFECT_TASKS[_fn.__name__].file)
    _fn.validate = check_affect  # type: ignore[attr-defined]  # see validated_by


# ---------------------------------------------------------------------------------------------------------------
# interplay data verify
# ---------------------------------------------------------------------------------------------------------------

def _sha256(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def verify_affect(key: str, root: str | None) -> list[Check]:
    """Checks of a local copy of one affect pickle: presence, readability (and sha256 for the record), the split
    layout, array shapes, consistency across splits, feature sizes and split sizes against the MultiBench
    release, label values, and counts of what loading will clean (NaN/inf, empty-text samples)."""
    task = AFFECT_TASKS[key]
    try:
        path = affect_path(task, root)
    except (DataError, ConfigError) as exc:
        return [Check(False, str(exc))]
    if not path.exists():
        return [Check(False, missing_message(task, path))]
    try:
        data = read_affect_pickle(path)
        size_mb = path.stat().st_size / 1e6
        digest = _sha256(path)
    except (DataError, OSError) as exc:
        return [Check(False, str(exc) if isinstance(exc, DataError) else f"{path}: unreadable ({one_line(exc)})")]
    checks = [Check(True, f"{path}: readable pickle, {size_mb:.1f} MB, sha256 {digest} (no published checksum to "
                          f"compare with; record it with your results)")]
    try:
        split_dicts = affect_split_dicts(path, data)
    except DataError as exc:
        return [*checks, Check(False, str(exc))]
    checks.append(Check(True, f"{path.name}: splits train, valid, test present"))
    parsed: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
    for split, part in split_dicts.items():
        try:
            inputs, labels = parse_affect_split(path, split, part)
        except DataError as exc:
            checks.append(Check(False, str(exc)))
            continue
        parsed[split] = (inputs, labels)
        shapes = ", ".join(f"{m} {tuple(x.shape[1:])}" for m, x in inputs.items())
        checks.append(Check(True, f"{split}: {len(labels)} samples; per sample {shapes}; labels "
                                  f"{np.asarray(part['labels']).shape}{'' if 'id' in part else '; no id array'}"))
    if len(parsed) < len(AFFECT_SPLITS):
        return checks
    try:
        check_affect_shapes(path, parsed)
        checks.append(Check(True, "per-sample shapes agree across train, valid and test"))
    except DataError as exc:
        checks.append(Check(False, str(exc)))
    dims = {m: int(x.shape[-1]) for m, x in parsed["train"][0].items()}
    checks.append(Check(dims == task.dims, f"feature sizes {dims}" + (
        " match the MultiBench release" if dims == task.dims else
        f" differ from the MultiBench {task.file} ({task.dims}): another preprocessing? loading still works")))
    for split, (_, labels) in parsed.items():
        n = len(labels)
        if task.sizes is None:
            checks.append(Check(True, f"{split}: {n} samples (no reference split size recorded for {task.title})"))
        else:
            want = task.sizes[split]
            checks.append(Check(n == want, f"{split}: {n} samples" + (
                " as in the MultiBench release" if n == want else
                f", the MultiBench release has {want}: a partial or different file? re-download {task.file} from "
                f"{task.source}")))
    all_labels = np.concatenate([lab.astype(np.float64) for _, lab in parsed.values()])
    if not np.isfinite(all_labels).all():
        checks.append(Check(False, f"{path}: labels contain NaN or inf"))
    elif task.labels == "sentiment":
        lo, hi = float(all_labels.min()), float(all_labels.max())
        checks.append(Check(lo >= -3 and hi <= 3, f"labels: sentiment scores in [{lo:.2f}, {hi:.2f}]"
                                                  + ("" if lo >= -3 and hi <= 3 else ", expected within [-3, 3]")))
    else:
        values = np.unique(all_labels)[:8].tolist()
        ok = binary_values_ok(all_labels)
        checks.append(Check(ok, f"labels: values {values}" + (
            f" (binary; class 1 = {task.class_names[1] if task.class_names else 'positive'})" if ok
            else ", expected binary 0/1 or -1/1")))
    bad = dict.fromkeys(AFFECT_MODALITIES, 0)
    empty = 0
    for inputs, _ in parsed.values():
        for m, x in inputs.items():
            if x.dtype.kind == "f":
                bad[m] += int(x.size - np.count_nonzero(np.isfinite(x)))
        empty += int((~nonempty_rows(inputs["text"])).sum())
    checks.append(Check(True, f"non-finite feature values {bad} (set to 0 when loading); {empty} sample(s) with "
                              f"all-zero text (dropped when loading unless data.drop_empty_text=false)"))
    return checks


for _key in AFFECT_TASKS:
    VERIFIERS.register(_key)(partial(verify_affect, _key))
