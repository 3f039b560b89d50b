"""BasicMotions (UEA multivariate time-series archive), read from the copy inside the installed ``aeon`` package.

80 ten-second recordings (100 steps at 10 Hz) of a smart watch worn by four students performing four activities
(standing, running, walking, badminton; 20 each). Two modalities: ``accelerometer`` (dimensions 0-2 of the series)
and ``gyroscope`` (dimensions 3-5), each a ``(100, 3)`` sequence, so the sequence encoders (GRU / Transformer)
read them. Splits: aeon's / the archive's own train (40) and test (40) files; validation is a stratified,
seeded ``val_fraction`` of train. Nothing is downloaded or vendored: the ``.ts`` files are read from aeon's
package directory (``aeon/datasets/data/BasicMotions``) without importing aeon (optional extra
``interplay[datasets]``). See ``docs/data/basicmotions.md`` for origin and licence.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .dataset import DATASETS, DataInfo, DataSplits, MultimodalDataset, split_indices

#: class names in index order (sorted, as ``numpy.unique`` orders aeon's string labels)
BASICMOTIONS_CLASSES = ("badminton", "running", "standing", "walking")
#: modality -> dimensions of the series
BASICMOTIONS_MODALITIES = {"accelerometer": (0, 1, 2), "gyroscope": (3, 4, 5)}
INSTALL_HINT = "pip install 'interplay[datasets]'"


def aeon_data_dir(dataset: str, folder: str) -> Path:
    """``aeon/datasets/data/<folder>`` inside the installed aeon package (found without importing aeon).

    Raises:
        ConfigError: aeon is not installed (one line with the install command), or its copy lacks ``folder``.
    """
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"data.name: {dataset} is read from the optional package aeon, which is not installed "
                          f"({INSTALL_HINT})")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / folder
    if not path.is_dir():
        raise ConfigError(f"data.name: {dataset}: the installed aeon has no {path} (aeon 1.x ships it; "
                          f"{INSTALL_HINT} --upgrade)")
    return path


def read_ts(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an equal-length multivariate ``.ts`` file (sktime / aeon format): ``(X (N, D, T) float64, labels (N,)
    str)``. Header lines start with ``@`` or ``#``; after ``@data`` each line holds ``D`` comma-separated series
    separated by ``:`` and the class label last.

    Raises:
        DataError: naming ``path``: unreadable, no ``@data``, ragged series, non-numeric values.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    except StopIteration:
        raise DataError(f"{path}: no @data line; expected a .ts time-series file") from None
    rows, labels = [], []
    for number, line in enumerate(lines[start:], start + 1):
        if not line.strip():
            continue
        *dims, label = line.strip().split(":")
        try:
            rows.append([[float(v) for v in d.split(",")] for d in dims])
        except ValueError:
            raise DataError(f"{path}, line {number}: non-numeric value in a series") from None
        labels.append(label.strip().lower())
    try:
        x = np.asarray(rows, dtype=np.float64)
    except ValueError:
        raise DataError(f"{path}: series of unequal length or dimension count") from None
    if x.ndim != 3 or len(x) == 0:
        raise DataError(f"{path}: expected N samples of D equal-length series, got shape {x.shape}")
    return x, np.asarray(labels)


def _load_split(base: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    x, names = read_ts(base / f"BasicMotions_{split}.ts")
    if x.shape[1:] != (6, 100):
        raise DataError(f"{base / f'BasicMotions_{split}.ts'}: expected 6 dimensions of 100 steps per sample, got "
                        f"{x.shape[1:]}")
    unknown = sorted(set(names.tolist()) - set(BASICMOTIONS_CLASSES))
    if unknown:
        raise DataError(f"{base / f'BasicMotions_{split}.ts'}: unknown class labels {unknown}")
    return x, np.asarray([BASICMOTIONS_CLASSES.index(n) for n in names], dtype=np.int64)


@DATASETS.register("basicmotions")
def basicmotions(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
                 root: str | None = None, standardize: bool = True) -> DataSplits:
    """BasicMotions (UEA archive, shipped by aeon): accelerometer + gyroscope ``(100, 3)`` sequences, 4 activities.

    aeon's train (40) / test (40) split; validation: a stratified seeded ``val_fraction`` of train (default 0.1:
    4 samples, one per class). ``root``: a directory holding ``BasicMotions_TRAIN.ts`` / ``_TEST.ts`` instead of
    aeon's copy. ``standardize``: per channel with training statistics (over all steps). ``n_train`` /
    ``n_test`` subsample (seeded). Needs the optional extra ``interplay[datasets]`` (aeon) unless ``root`` is given.
    """
    if not 0 < val_fraction < 1:
        raise ConfigError(f"data.val_fraction: expected a number in (0, 1), got {val_fraction}")
    base = Path(root) if root is not None else aeon_data_dir("basicmotions", "BasicMotions")
    x_train, y_train = _load_split(base, "TRAIN")
    x_test, y_test = _load_split(base, "TEST")
    rng = np.random.default_rng(seed)
    if n_test is not None and n_test < len(y_test):
        keep = np.sort(rng.choice(len(y_test), size=max(1, n_test), replace=False))
        x_test, y_test = x_test[keep], y_test[keep]
    rest = np.arange(len(y_train))
    if n_train is not None and n_train < len(rest):
        rest = np.sort(rng.choice(rest, size=max(2, n_train), replace=False))
    train, val = split_indices(len(rest), (1 - val_fraction,), rng, strata=y_train[rest])

    def dataset(x: np.ndarray, y: np.ndarray, name: str) -> MultimodalDataset:
        # (N, 6, T) -> {modality: (N, T, 3)} float32
        inputs = {m: torch.as_tensor(x[:, list(dims)].transpose(0, 2, 1), dtype=torch.float32)
                  for m, dims in BASICMOTIONS_MODALITIES.items()}
        return MultimodalDataset(inputs, torch.as_tensor(y), name=f"basicmotions/{name}")

    info = DataInfo(name="basicmotions", modalities={m: (100, 3) for m in BASICMOTIONS_MODALITIES}, num_classes=4,
                    class_names=list(BASICMOTIONS_CLASSES),
                    extra={"source": str(base), "splits": "aeon's TRAIN/TEST files; val: stratified from TRAIN",
                           "sampling_hz": 10})
    out = DataSplits(train=dataset(x_train[rest[train]], y_train[rest[train]], "train"),
                     val=dataset(x_train[rest[val]], y_train[rest[val]], "val"),
                     test=dataset(x_test, y_test, "test"), info=info)
    if standardize:
        from .features import standardize_splits

        out.info.extra["standardized"] = standardize_splits(out, skip_padding=False)
    return out
