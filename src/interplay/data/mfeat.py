"""UCI Multiple Features (``mfeat``): a real six-view dataset that ships with Interplay.

2,000 handwritten digits (10 classes, 200 each), six feature views: ``fac`` (216 profile correlations),
``fou`` (76 Fourier coefficients), ``kar`` (64 Karhunen-Loeve coefficients), ``mor`` (6 morphological
features), ``pix`` (240 pixel averages), ``zer`` (47 Zernike moments). Data: R. P. W. Duin, UCI
Machine Learning Repository, CC BY 4.0; see ``data/files/mfeat/README.md`` for provenance.
"""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .dataset import DATASETS, DataInfo, DataSplits, MultimodalDataset, split_indices

MFEAT_VIEWS: dict[str, int] = {"fac": 216, "fou": 76, "kar": 64, "mor": 6, "pix": 240, "zer": 47}
MFEAT_SIZE = 2000


def _data_dir(root: str | None) -> Path:
    if root is not None:
        return Path(root)
    return Path(str(resources.files("interplay") / "data" / "files" / "mfeat"))


def load_mfeat_arrays(root: str | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Read the six views and the labels: ``({view: (2000, d_view)}, (2000,) labels)``.

    ``root`` is a directory with ``mfeat-<view>.csv`` or ``mfeat-<view>.csv.gz`` files (header row,
    features, label as last column); by default the copy inside the package.
    """
    base = _data_dir(root)
    views: dict[str, np.ndarray] = {}
    labels: np.ndarray | None = None
    for view, dim in MFEAT_VIEWS.items():
        path = next((p for p in (base / f"mfeat-{view}.csv.gz", base / f"mfeat-{view}.csv") if p.exists()), None)
        if path is None:
            raise DataError(f"{base / f'mfeat-{view}.csv.gz'}: file not found (mfeat needs the six views "
                            f"{', '.join(MFEAT_VIEWS)}; the package ships them under interplay/data/files/mfeat)")
        try:
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt") as fh:
                table = np.loadtxt(fh, delimiter=",", skiprows=1, ndmin=2)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{path}: unreadable mfeat view ({exc})") from None
        if table.shape != (MFEAT_SIZE, dim + 1):
            raise DataError(f"{path}: expected {MFEAT_SIZE} rows of {dim} features plus a label, "
                            f"got shape {table.shape}")
        views[view] = table[:, :dim]
        if labels is None:
            labels = table[:, dim].astype(np.int64)
        elif not np.array_equal(labels, table[:, dim]):
            raise DataError(f"{path}: labels disagree with the other views")
    assert labels is not None
    return views, labels


@DATASETS.register("mfeat")
def mfeat(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
          root: str | None = None, views: str | list[str] | None = None, test_fraction: float = 0.25) -> DataSplits:
    """UCI Multiple Features, stratified seeded split: ``test_fraction`` of the 2,000 digits for test, then
    ``val_fraction`` of the rest for validation. ``views`` selects a subset (comma-separated or list,
    at least two; default all six). ``n_train`` / ``n_test`` optionally subsample the train(+val) and
    test parts. Views are standardised with training statistics.
    """
    if isinstance(views, str):
        views = [v.strip() for v in views.split(",") if v.strip()]
    chosen = sorted(views) if views else sorted(MFEAT_VIEWS)
    unknown = [v for v in chosen if v not in MFEAT_VIEWS]
    if unknown or len(chosen) < 2:
        raise ConfigError(f"data.views: expected at least two of {', '.join(MFEAT_VIEWS)}, got {chosen}")
    if not 0 < test_fraction < 1:
        raise ConfigError(f"data.test_fraction: expected a number in (0, 1), got {test_fraction}")
    arrays, labels = load_mfeat_arrays(root)
    rng = np.random.default_rng(seed)
    rest, test = split_indices(MFEAT_SIZE, (1 - test_fraction,), rng, strata=labels)
    if n_test is not None:
        test = np.sort(rng.choice(test, size=min(n_test, len(test)), replace=False))
    if n_train is not None:
        rest = np.sort(rng.choice(rest, size=min(n_train, len(rest)), replace=False))
    train, val = split_indices(len(rest), (1 - val_fraction,), rng, strata=labels[rest])
    full = MultimodalDataset({v: torch.as_tensor(arrays[v], dtype=torch.float32) for v in chosen},
                             torch.as_tensor(labels), name="mfeat")
    info = DataInfo(name="mfeat", modalities={v: (MFEAT_VIEWS[v],) for v in chosen}, num_classes=10,
                    class_names=[str(d) for d in range(10)])
    return DataSplits(train=full.subset(rest[train], "mfeat/train"), val=full.subset(rest[val], "mfeat/val"),
                      test=full.subset(test, "mfeat/test"), info=info).standardize()
