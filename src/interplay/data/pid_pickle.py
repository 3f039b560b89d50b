"""The PID repository's synthetic datasets: ``DATA_<setting>.pickle`` (Liang et al., NeurIPS 2023).

``synthetic/generate_data.py`` of github.com/pliang279/PID writes, with ``pickle.dump``::

    {"train": split, "valid": split, "test": split}     # or "valid1" / "valid2" instead of "valid"
    split = {"0": (N, d0) float array, "1": (N, d1) float array, ...,   # one array per modality, keys "0", "1", ...
             "label": (N, 1) int array}                               # class indices (32 classes by default)

(settings ``redundancy``, ``uniqueness0``, ``uniqueness1``, ``synergy``, ``mix1`` .. ``mix5``; 10,000 samples split
70 / 15 / 15 % stratified; each modality is the concatenation of 32-d random projections of the latent blocks it
sees, so 64 features with two modalities). :func:`read_pid_pickle` reads one with a restricted unpickler (numpy
arrays, numpy scalars and plain containers only: never ``pickle.load``) and checks the layout;
the dataset ``pid-synthetic`` serves it to ``interplay train`` / ``interplay pid`` with modality ``"k"`` renamed
``"mk"`` (``m0``, ``m1``, ...) and the file's splits (train, valid or valid1, test) as train / val / test.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .affect import unpickle_arrays
from .dataset import DATASETS, DataInfo, DataSplits, MultimodalDataset

#: the settings ``generate_data.py`` writes (any other name is read too: ``data.file``)
PID_SETTINGS = ("redundancy", "uniqueness0", "uniqueness1", "synergy", "mix1", "mix2", "mix3", "mix4", "mix5")
_EXPECTED = "a PID-repository synthetic pickle (dict of train/valid/test splits of '0', '1', ..., 'label' arrays)"


def modality_name(key: str) -> str:
    """Interplay's name of the file's modality key: ``"0" -> "m0"`` (other keys unchanged)."""
    return f"m{key}" if key.isdigit() else key


def _split(path: Path, name: str, part: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    where = f"{path}: split {name!r}"
    if not isinstance(part, Mapping):
        raise DataError(f"{where}: expected a dict of arrays, got a {type(part).__name__}")
    if "label" not in part:
        raise DataError(f"{where}: array 'label' missing (found keys {sorted(str(k) for k in part)})")
    keys = sorted((str(k) for k in part if str(k) != "label"), key=lambda k: (not k.isdigit(), k.zfill(8)))
    if len(keys) < 2:
        raise DataError(f"{where}: expected at least two modality arrays ('0', '1', ...), found {keys}")
    labels = np.asarray(part["label"])
    if labels.dtype.kind not in "iub" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        raise DataError(f"{where}: 'label' must hold integer class indices, got dtype {labels.dtype}")
    if labels.ndim == 0 or labels.shape[1:] not in ((), (1,)):
        raise DataError(f"{where}: 'label' must have shape (N, 1) or (N,), got {labels.shape}")
    labels = labels.reshape(len(labels)).astype(np.int64)
    if len(labels) and labels.min() < 0:
        raise DataError(f"{where}: 'label' must be >= 0, found {int(labels.min())}")
    inputs = {}
    for k in keys:
        try:
            x = np.asarray(part[k])
        except ValueError:
            raise DataError(f"{where}: {k!r} is not a rectangular array") from None
        if x.dtype.kind not in "fiub" or x.ndim != 2:
            raise DataError(f"{where}: {k!r} must be a 2-D numeric array (N, d), got {x.dtype} {x.shape}")
        if len(x) != len(labels):
            raise DataError(f"{where}: {k!r} has {len(x)} samples but 'label' has {len(labels)}")
        if not np.isfinite(x).all():
            raise DataError(f"{where}: {k!r} contains NaN or inf")
        inputs[k] = x
    return inputs, labels


def read_pid_pickle(path: str | Path) -> dict[str, tuple[dict[str, np.ndarray], np.ndarray]]:
    """Read ``DATA_<setting>.pickle``: ``{split: ({modality key: (N, d) array}, labels (N,) int64)}`` for every split
    of the file (``train``, ``valid`` or ``valid1`` / ``valid2``, ``test``), keys as in the file (``"0"``, ...).

    Raises:
        DataError: naming the file: missing, unreadable, refused by the restricted unpickler, or not in the layout
            above (missing split or ``label``, fewer than two modalities, wrong ranks, lengths or dtypes, modality
            keys or feature sizes that differ between splits).
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: file not found; expected {_EXPECTED} (generate it with the PID repository's "
                        f"synthetic/generate_data.py; Interplay does not ship or download it)")
    data = unpickle_arrays(file, _EXPECTED)
    if not isinstance(data, Mapping):
        raise DataError(f"{file}: expected a dict of splits train, valid, test; got a {type(data).__name__}")
    names = [str(k) for k in data]
    if "train" not in data or "test" not in data or not ({"valid", "valid1"} & set(names)):
        raise DataError(f"{file}: expected splits train, valid (or valid1) and test, found {sorted(names)}")
    out = {str(name): _split(file, str(name), part) for name, part in data.items()}
    ref = {k: x.shape[1] for k, x in out["train"][0].items()}
    for name, (inputs, _) in out.items():
        dims = {k: x.shape[1] for k, x in inputs.items()}
        if dims != ref:
            raise DataError(f"{file}: split {name!r} has modalities/feature sizes {dims}, 'train' has {ref}")
    return out


def pid_pickle_path(root: str | None, setting: str, file: str | None) -> Path:
    """``root`` itself when it is a file, else ``root/file`` (default ``DATA_<setting>.pickle``)."""
    if root is None:
        raise DataError(f"pid-synthetic: no data root; pass --data-root DIR holding DATA_{setting}.pickle (the PID "
                        f"repository's synthetic/generate_data.py writes it) or the file itself")
    base = Path(root)
    if base.is_file():
        return base
    return base / (file or f"DATA_{setting}.pickle")


@DATASETS.register("pid-synthetic")
def pid_synthetic(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
                  root: str | None = None, setting: str = "redundancy", file: str | None = None,
                  val_split: str | None = None, standardize: bool = False) -> DataSplits:
    """The PID repository's synthetic data ``DATA_<setting>.pickle`` (Liang et al. 2023): modalities ``m0``, ``m1``
    (the file's ``"0"``, ``"1"``), class labels (32 classes by default).

    ``--data-root`` is the directory holding the file (``setting`` picks ``DATA_<setting>.pickle``, ``file`` any
    other name) or the file. The file's splits are used: train, ``val_split`` (default ``valid``, else
    ``valid1``) and test; ``val_fraction`` is ignored; ``n_train`` / ``n_test`` subsample (seeded).
    ``standardize``: z-score features with training statistics (off by default, as the repository's protocol
    uses the raw features). Read with a restricted unpickler (numpy arrays and plain containers only).
    """
    path = pid_pickle_path(root, setting, file)
    splits = read_pid_pickle(path)
    val_name = val_split or ("valid" if "valid" in splits else "valid1")
    if val_name not in splits:
        raise ConfigError(f"data.val_split: {path} has splits {', '.join(sorted(splits))}, not {val_name!r}")
    num_classes = max(int(lab.max()) + 1 if len(lab) else 1 for _, lab in splits.values())
    rng = np.random.default_rng(seed)
    parts = {}
    for ours, theirs, limit in (("train", "train", n_train), ("val", val_name, None), ("test", "test", n_test)):
        inputs, labels = splits[theirs]
        idx = np.arange(len(labels))
        if limit is not None:
            if limit < 1:
                raise ConfigError(f"n_train / n_test: expected a positive number of samples, got {limit}")
            if limit < len(idx):
                idx = np.sort(rng.choice(idx, size=limit, replace=False))
        tensors = {modality_name(k): torch.as_tensor(x[idx], dtype=torch.float32) for k, x in inputs.items()}
        parts[ours] = MultimodalDataset(tensors, torch.as_tensor(labels[idx]), name=f"pid-synthetic/{ours}")
    dims = {modality_name(k): (int(x.shape[1]),) for k, x in splits["train"][0].items()}
    info = DataInfo(name="pid-synthetic", modalities=dict(sorted(dims.items())), num_classes=num_classes,
                    extra={"file": str(path), "setting": setting, "splits": {"train": "train", "val": val_name,
                                                                              "test": "test"},
                           "other_splits": sorted(set(splits) - {"train", val_name, "test"})})
    out = DataSplits(train=parts["train"], val=parts["val"], test=parts["test"], info=info)
    return out.standardize() if standardize else out
