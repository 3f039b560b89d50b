"""The spatial-transcriptomics loader on tiny .h5ad slides written here with anndata (10x Visium layout)."""

import numpy as np
import pytest
import torch

from interplay.data import DATASETS
from interplay.errors import ConfigError, DataError

anndata = pytest.importorskip("anndata")
pd = pytest.importorskip("pandas")


def write_slide(path, n=40, genes=12, seed=0, anomalies=8, label="region", image_size=(60, 80), uint8=True):
    """A Visium-like slide: counts, spot coordinates in full-resolution pixels, a hires image at scale 0.5 whose
    pixel (row, col) holds (row, col, spot-independent 7) so the crops can be checked exactly."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3.0, size=(n, genes)).astype(np.float32)
    labels = np.array(["tumour"] * anomalies + ["normal"] * (n - anomalies))
    obs = pd.DataFrame({label: pd.Categorical(labels), "in_tissue": [1] * (n - 1) + [0]},
                       index=[f"spot{i}" for i in range(n)])
    var = pd.DataFrame(index=[f"g{j}" for j in range(genes)])
    h, w = image_size
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    img = np.stack([rows, cols, np.full_like(rows, 7)], -1)
    img = img.astype(np.uint8) if uint8 else (img / 255.0).astype(np.float32)
    coords = np.c_[rng.integers(0, 2 * w, n), rng.integers(0, 2 * h, n)].astype(float)  # (x, y) full resolution
    adata = anndata.AnnData(X=counts, obs=obs, var=var)
    adata.obsm["spatial"] = coords
    adata.uns["spatial"] = {"lib1": {"images": {"hires": img},
                                     "scalefactors": {"tissue_hires_scalef": 0.5, "spot_diameter_fullres": 10.0}}}
    adata.write_h5ad(path)
    return counts, labels, coords


def test_spatial_reads_expression_patches_and_labels(tmp_path):
    counts, labels, coords = write_slide(tmp_path / "hnb.h5ad")
    s = DATASETS.get("spatial")(root=str(tmp_path), file="hnb.h5ad", label_key="region", patch=5, n_genes=0,
                                val_fraction=0.25, test_fraction=0.25, seed=1)
    assert s.info.modalities == {"expression": (12,), "image": (3, 5, 5)} and s.info.num_classes == 2
    assert int(s.train.target.sum()) == 0  # the training split holds normal spots only
    total = len(s.train) + len(s.val) + len(s.test)
    assert 39 - 8 * 0.5 - 1 <= total <= 39  # the spot outside the tissue is dropped; train anomalies dropped
    assert int(s.val.target.sum()) + int(s.test.target.sum()) >= 3
    assert torch.equal(s.test.meta["interaction"], s.test.target)


def test_spatial_patch_is_the_crop_around_the_scaled_spot(tmp_path):
    _, _, coords = write_slide(tmp_path / "a.h5ad", n=10, anomalies=0)
    from interplay.data.spatial import Slide

    slide = Slide(tmp_path / "a.h5ad", "region", "normal", None, "hires", in_tissue_only=False)
    p = slide.patches(3)
    for i, (x, y) in enumerate(coords * 0.5):
        r, c = int(round(y)), int(round(x))
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                rr, cc = r + dr, c + dc
                inside = 0 <= rr < 60 and 0 <= cc < 80
                want = (rr / 255.0, cc / 255.0, 7 / 255.0) if inside else (0.0, 0.0, 0.0)
                assert np.allclose(p[i, :, dr + 1, dc + 1], want, atol=1e-6)
    expr = slide.expression(slide.genes)
    total = slide.counts.sum(1, keepdims=True)
    assert np.allclose(expr, np.log1p(1e4 * slide.counts / total), atol=1e-5)


def test_spatial_train_and_test_slides(tmp_path):
    write_slide(tmp_path / "hnb.h5ad", n=30, anomalies=0, label="anomaly", seed=0)
    write_slide(tmp_path / "hbc.h5ad", n=50, anomalies=20, label="anomaly", seed=1, uint8=False)
    s = DATASETS.get("spatial")(root=str(tmp_path), file="hnb.h5ad", test_file="hbc.h5ad", patch=4, n_genes=5,
                                normal_value="normal")
    assert len(s.train) == 29 and len(s.val) + len(s.test) == 49
    assert s.info.modalities["expression"] == (5,)
    assert int(s.test.target.sum()) + int(s.val.target.sum()) == 20


def test_spatial_one_line_errors(tmp_path):
    build = DATASETS.get("spatial")
    with pytest.raises(ConfigError, match="data.file"):
        build(root=str(tmp_path))
    with pytest.raises(DataError, match="not found"):
        build(root=str(tmp_path), file="missing.h5ad")
    (tmp_path / "bad.h5ad").write_text("not hdf5")
    with pytest.raises(DataError, match="not a readable .h5ad"):
        build(root=str(tmp_path), file="bad.h5ad")
    with pytest.raises(ConfigError, match="data.image"):
        build(root=str(tmp_path), file="x.h5ad", image="medium")


def test_spatial_without_anndata_is_one_line(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "anndata":
            raise ImportError("no anndata")
        return real(name, *args, **kwargs)

    write_slide(tmp_path / "a.h5ad", n=10)
    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ConfigError, match=r"interplay\[anndata\]"):
        DATASETS.get("spatial")(root=str(tmp_path), file="a.h5ad")


def test_one_class_training_on_a_tiny_slide(tmp_path):
    from interplay.config import RunConfig
    from interplay.engine import train

    write_slide(tmp_path / "hnb.h5ad", n=60, anomalies=0, label="anomaly", seed=0)
    write_slide(tmp_path / "hbc.h5ad", n=60, anomalies=20, label="anomaly", seed=1)
    cfg = RunConfig.from_dict({"data": {"name": "spatial", "root": str(tmp_path), "file": "hnb.h5ad",
                                        "test_file": "hbc.h5ad", "patch": 8, "val_fraction": 0.3},
                               "model": {"encoder_hidden": [16, 16], "fusion_hidden": [16]},
                               "method": {"name": "joint"}, "train": {"mode": "one_class", "epochs": 2}})
    metrics = train(cfg)
    assert metrics["one_class"]["n_train_normal"] == 59
    for key in ("auroc", "auprc", "f1"):
        assert 0.0 <= metrics["test"][key] <= 1.0
