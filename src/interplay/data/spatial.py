"""``spatial``: spatial-transcriptomics spots (10x Visium) as two modalities, gene expression and a histology patch.

The OMIB paper's anomalous-tissue task (healthy 10x hNB slides for training, breast-cancer 10x hBC slides with
annotated tumour regions for testing) ships as AnnData files. This loader reads an ``.h5ad`` in the layout that
``scanpy.read_visium`` / squidpy write (documented in ``docs/data/spatial.md``)::

    X                                      (n_spots, n_genes) counts (dense or scipy sparse)
    var_names                              gene identifiers
    obs[label_key]                         anomaly annotation per spot (bool/number: non-zero = anomaly; text:
                                           anything but ``normal_value`` = anomaly); missing column: all normal
    obs["in_tissue"]                       optional; spots with 0 are dropped (``in_tissue_only``)
    obsm["spatial"]                        (n_spots, 2) spot centres in full-resolution pixels, (x = column, y = row)
    uns["spatial"][library_id]["images"][image]         (H, W, 3) or (H, W) image, uint8 or float in [0, 1]
    uns["spatial"][library_id]["scalefactors"]["tissue_<image>_scalef"]   full-resolution -> image pixels

Per spot: ``expression`` = ``log1p(1e4 * counts / total counts)`` of the ``n_genes`` genes with the highest
variance on the training spots (all genes when ``n_genes`` is 0 or larger); ``image`` = the ``(3, patch, patch)``
crop of the image centred on the spot (scaled coordinates; zero padding at the border; values in [0, 1]).
Target: 1 = anomaly, 0 = normal; ``meta["interaction"]`` indexes ``("normal", "anomaly")``.

Splits: with ``test_file`` (e.g. an hBC slide) the training split is the normal spots of ``file`` (e.g. hNB) and
``test_file``'s spots are divided into validation (``val_fraction``) and test, stratified by label; without it
``file``'s spots are divided into training / validation (``val_fraction``) / test (``test_fraction``), stratified,
and the anomalies of the training part are dropped (one-class training sees normal spots only). ``n_train`` /
``n_test`` cap the training and test splits (random subsets). Both modalities are standardised with the training
split's statistics. Needs the optional package ``anndata`` (``pip install 'interplay[anndata]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .dataset import DATASETS, DataInfo, DataSplits, MultimodalDataset, split_indices, validated_by

MISSING_ANNDATA = "dataset spatial: needs the optional package anndata (pip install 'interplay[anndata]')"
SPOT_TYPES = ("normal", "anomaly")


def _anndata() -> Any:
    try:
        import anndata
    except ImportError:
        raise ConfigError(MISSING_ANNDATA) from None
    return anndata


def _resolve(root: str | None, name: str, field: str) -> Path:
    path = Path(name).expanduser()
    if not path.is_absolute() and root is not None:
        path = Path(root).expanduser() / path
    if not path.is_file():
        raise DataError(f"{path}: {field} not found (expected a 10x Visium .h5ad file; see docs/data/spatial.md)")
    return path


def check_spatial(*, file: str | None, val_fraction: float, test_fraction: float, patch: int, n_genes: int,
                  image: str, **_: object) -> None:
    """Validate spatial's parameter values (cheap; nothing is read)."""
    if not file:
        raise ConfigError("data.file: expected the .h5ad file of the training slide (relative to data.root or "
                          "absolute); see docs/data/spatial.md")
    if patch < 1:
        raise ConfigError(f"data.patch: expected a positive number of pixels, got {patch}")
    if n_genes < 0:
        raise ConfigError(f"data.n_genes: expected a non-negative integer (0: every gene), got {n_genes}")
    if image not in ("hires", "lowres"):
        raise ConfigError(f"data.image: expected hires or lowres, got {image!r}")
    if not (0 < val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(f"data.val_fraction / data.test_fraction: expected fractions in (0, 1) summing below 1, "
                          f"got {val_fraction} and {test_fraction}")


class Slide:
    """One slide read from an ``.h5ad``: counts ``(n, g)`` float64, gene names, labels ``(n,)`` bool, the image
    ``(H, W, 3)`` float32 in [0, 1] and the spots' ``(n, 2)`` (x, y) coordinates in that image's pixels."""

    def __init__(self, path: Path, label_key: str, normal_value: str, library_id: str | None, image: str,
                 in_tissue_only: bool) -> None:
        ad = _anndata()
        try:
            adata = ad.read_h5ad(path)
        except Exception as exc:  # not HDF5, truncated, not AnnData: one line naming the file
            raise DataError(f"{path}: not a readable .h5ad file ({type(exc).__name__}: {exc})") from None
        keep = np.ones(adata.n_obs, dtype=bool)
        if in_tissue_only and "in_tissue" in adata.obs:
            keep = np.asarray(adata.obs["in_tissue"]).astype(float) != 0
        x = adata.X
        x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        self.counts = np.asarray(x, dtype=np.float64)[keep]
        self.genes = [str(g) for g in adata.var_names]
        if label_key in adata.obs:
            col = adata.obs[label_key]
            values = np.asarray(col.astype(str) if str(col.dtype) == "category" else col)
            if values.dtype.kind in "biuf":
                labels = values.astype(float) != 0
            else:
                labels = np.array([str(v) != normal_value for v in values])
        else:
            labels = np.zeros(adata.n_obs, dtype=bool)
        self.labels = labels[keep]
        if "spatial" not in adata.obsm:
            raise DataError(f"{path}: no obsm['spatial'] (the spots' pixel coordinates); see docs/data/spatial.md")
        coords = np.asarray(adata.obsm["spatial"], dtype=np.float64)[keep]
        libraries = adata.uns.get("spatial", {})
        if not libraries:
            raise DataError(f"{path}: no uns['spatial'] (the slide's images and scale factors)")
        if library_id is None:
            if len(libraries) != 1:
                raise ConfigError(f"data.library_id: {path} holds {len(libraries)} libraries "
                                  f"({', '.join(map(str, libraries))}); name one")
            library_id = next(iter(libraries))
        if library_id not in libraries:
            raise ConfigError(f"data.library_id: {library_id!r} not in {path} (has {', '.join(map(str, libraries))})")
        lib = libraries[library_id]
        images = lib.get("images", {})
        if image not in images:
            raise DataError(f"{path}: no uns['spatial'][{library_id!r}]['images'][{image!r}] (has "
                            f"{', '.join(images) or 'none'})")
        img = np.asarray(images[image])
        img = img.astype(np.float32) / 255.0 if img.dtype.kind in "ui" else img.astype(np.float32)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] < 3:
            raise DataError(f"{path}: image {image!r} has shape {img.shape}; expected (H, W, 3)")
        self.image = img[:, :, :3]
        scale = lib.get("scalefactors", {}).get(f"tissue_{image}_scalef")
        if scale is None:
            raise DataError(f"{path}: no uns['spatial'][{library_id!r}]['scalefactors']['tissue_{image}_scalef']")
        self.coords = coords * float(scale)
        self.path = path

    def __len__(self) -> int:
        return len(self.labels)

    def patches(self, size: int) -> np.ndarray:
        """``(n, 3, size, size)`` crops centred on the spots (zero padding outside the image)."""
        h, w, _ = self.image.shape
        pad = size
        padded = np.zeros((h + 2 * pad, w + 2 * pad, 3), dtype=np.float32)
        padded[pad:pad + h, pad:pad + w] = self.image
        out = np.empty((len(self), 3, size, size), dtype=np.float32)
        for i, (x, y) in enumerate(self.coords):
            top = int(round(y)) - size // 2 + pad
            left = int(round(x)) - size // 2 + pad
            top, left = min(max(top, 0), h + pad), min(max(left, 0), w + pad)
            out[i] = padded[top:top + size, left:left + size].transpose(2, 0, 1)
        return out

    def expression(self, genes: list[str]) -> np.ndarray:
        """``(n, len(genes))`` ``log1p(1e4 * counts / total)`` of the named genes."""
        index = {g: i for i, g in enumerate(self.genes)}
        missing = [g for g in genes if g not in index]
        if missing:
            raise DataError(f"{self.path}: {len(missing)} of the training slide's genes are missing (first: "
                            f"{missing[0]})")
        total = self.counts.sum(1, keepdims=True)
        norm = np.log1p(1e4 * self.counts / np.where(total > 0, total, 1.0))
        return norm[:, [index[g] for g in genes]].astype(np.float32)


@DATASETS.register("spatial")
@validated_by(check_spatial)
def spatial(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
            root: str | None = None, file: str | None = None, test_file: str | None = None,
            label_key: str = "anomaly", normal_value: str = "normal", library_id: str | None = None,
            image: Literal["hires", "lowres"] = "hires", patch: int = 32, n_genes: int = 2000,
            test_fraction: float = 0.3, in_tissue_only: bool = True) -> DataSplits:
    """10x Visium spots from ``.h5ad`` files: ``expression`` ``(n_genes,)`` and ``image`` ``(3, patch, patch)``
    per spot, target 1 = anomalous region (see the module docstring for the layout and the splits)."""
    check_spatial(file=file, val_fraction=val_fraction, test_fraction=test_fraction, patch=patch, n_genes=n_genes,
                  image=image)
    assert file is not None
    def read(path: Path) -> Slide:
        return Slide(path, label_key, normal_value, library_id, image, in_tissue_only)

    first = read(_resolve(root, file, "data.file"))
    rng = np.random.default_rng(seed)
    if test_file:
        second = read(_resolve(root, test_file, "data.test_file"))
        fit = np.flatnonzero(~first.labels)
        val, test = split_indices(len(second), (val_fraction,), rng, strata=second.labels.astype(int))
        parts = [(first, fit), (second, val), (second, test)]
    else:
        fit, val, test = split_indices(len(first), (1 - val_fraction - test_fraction, val_fraction), rng,
                                       strata=first.labels.astype(int))
        parts = [(first, fit[~first.labels[fit]]), (first, val), (first, test)]
    if n_train is not None and len(parts[0][1]) > n_train:
        parts[0] = (parts[0][0], np.sort(rng.choice(parts[0][1], n_train, replace=False)))
    if n_test is not None and len(parts[2][1]) > n_test:
        parts[2] = (parts[2][0], np.sort(rng.choice(parts[2][1], n_test, replace=False)))
    train_slide, train_idx = parts[0]
    norm = train_slide.expression(train_slide.genes)[train_idx]
    order = np.argsort(-norm.var(0), kind="stable")
    keep = order if n_genes == 0 or n_genes >= len(order) else order[:n_genes]
    genes = [train_slide.genes[i] for i in np.sort(keep)]

    def build(slide: Slide, idx: np.ndarray, name: str) -> MultimodalDataset:
        labels = slide.labels[idx].astype(np.int64)
        inputs = {"expression": torch.from_numpy(slide.expression(genes)[idx]),
                  "image": torch.from_numpy(slide.patches(patch)[idx])}
        return MultimodalDataset(inputs, torch.from_numpy(labels), {"interaction": torch.from_numpy(labels)},
                                 name=f"spatial/{name}")

    splits = [build(s, i, n) for (s, i), n in zip(parts, ("train", "val", "test"))]
    info = DataInfo(name="spatial", modalities={"expression": (len(genes),), "image": (3, patch, patch)},
                    num_classes=2, interactions=SPOT_TYPES, class_names=list(SPOT_TYPES),
                    extra={"genes": len(genes), "train_file": str(first.path), "anomaly": True,
                           "test_file": str(parts[2][0].path)})
    return DataSplits(splits[0], splits[1], splits[2], info).standardize()


__all__ = ["MISSING_ANNDATA", "SPOT_TYPES", "Slide", "check_spatial", "spatial"]
