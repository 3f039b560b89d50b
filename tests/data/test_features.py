"""The ``features`` loader: users' own per-modality arrays in npz / pt split files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import interplay.data.features  # noqa: F401  (registers "features" before interplay.data imports it)
from interplay.config import RunConfig
from interplay.data.features import feature_stats, features
from interplay.engine import Trainer
from interplay.errors import ConfigError, DataError

from ..conftest import run_cli

TINY = ["--epochs", "1", "--batch-size", "8", "--quiet", "--set", "model.encoder_hidden=[16]",
        "--set", "model.fusion_hidden=[16]"]


def arrays(n: int, seed: int = 0, classes: int = 3, regression: bool = False) -> dict[str, np.ndarray]:
    """One split: ``audio`` (N, 8) vectors, ``video`` (N, 4, 6) zero-padded sequences, labels, ids."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n).astype(np.float32) if regression else np.arange(n) % classes
    audio = rng.normal(size=(n, 8)).astype(np.float32) * 3 + 2
    audio[:, 0] += np.asarray(y, dtype=np.float32)
    video = rng.normal(size=(n, 4, 6)).astype(np.float32) + 5
    video[::2, 0] = 0.0  # padding step
    return {"audio": audio, "video": video, "labels": y, "ids": np.array([f"s{seed}-{i}" for i in range(n)])}


def write_npz(root: Path, splits: dict[str, dict[str, np.ndarray]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, data in splits.items():
        np.savez(root / f"{split}.npz", **data)
    return root


def write_pt(root: Path, splits: dict[str, dict[str, np.ndarray]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, data in splits.items():
        blob = {k: (v.tolist() if k == "ids" else torch.from_numpy(np.asarray(v))) for k, v in data.items()}
        torch.save(blob, root / f"{split}.pt")
    return root


@pytest.fixture
def npz_dir(tmp_path):
    return write_npz(tmp_path / "feats", {"train": arrays(30), "valid": arrays(9, 1), "test": arrays(12, 2)})


def test_npz_classification(npz_dir):
    s = features(root=str(npz_dir), val_fraction=0.5)  # a valid file exists: val_fraction unused
    assert (len(s.train), len(s.val), len(s.test)) == (30, 9, 12)
    assert s.info.task == "classification" and s.info.num_classes == 3
    assert s.info.modalities == {"audio": (8,), "video": (4, 6)} and s.info.extra["validation"] == "valid.npz"
    assert s.train.target.dtype == torch.long
    a = s.train.inputs["audio"]
    assert a.mean(0).abs().max() < 1e-4 and (a.std(0, unbiased=False) - 1).abs().max() < 1e-4
    v = s.train.inputs["video"]
    assert (v[::2, 0] == 0).all()  # padding stays zero
    steps = v.reshape(-1, 6)[v.reshape(-1, 6).abs().sum(1) > 0]
    assert steps.mean(0).abs().max() < 1e-4
    assert len(features(root=str(npz_dir), n_train=10, n_test=5).train) == 10
    assert sorted(features(root=str(npz_dir), modalities=["audio", "video"]).info.modalities) == ["audio", "video"]
    with pytest.raises(ConfigError, match="data.modalities"):
        features(root=str(npz_dir), modalities=["audio"])
    with pytest.raises(ConfigError, match="data.num_classes"):
        features(root=str(npz_dir), num_classes=2)


def test_validation_drawn_from_train(tmp_path):
    root = write_npz(tmp_path, {"train": arrays(40), "test": arrays(10, 2)})
    s = features(root=str(root), val_fraction=0.25, seed=3)
    assert (len(s.train), len(s.val)) == (30, 10)
    assert torch.bincount(s.val.target).tolist() in ([3, 3, 4], [3, 4, 3], [4, 3, 3])  # stratified
    again = features(root=str(root), val_fraction=0.25, seed=3)
    assert torch.equal(s.val.inputs["audio"], again.val.inputs["audio"])
    with pytest.raises(ConfigError, match="data.val_fraction"):
        features(root=str(root), val_fraction=0.0)
    with pytest.raises(DataError, match="the val split is empty"):
        features(root=str(root), val_fraction=0.01)


def test_pt_regression_and_task_override(tmp_path):
    root = write_pt(tmp_path, {"train": arrays(20, regression=True), "test": arrays(8, 2, regression=True)})
    s = features(root=str(root))
    assert s.info.task == "regression" and s.info.num_classes == 1 and s.train.target.dtype == torch.float32
    with pytest.raises(DataError, match="train.pt: classification needs whole-number labels"):
        features(root=str(root), task="classification")
    ints = write_pt(tmp_path / "ints", {"train": arrays(20), "test": arrays(8, 2)})
    assert features(root=str(ints), task="regression").info.task == "regression"


def test_feature_stats_skip_padding():
    x = torch.tensor([[[0.0, 0.0], [1.0, 3.0], [3.0, 3.0]]])
    mean, std = feature_stats(x, skip_padding=True)
    assert mean.tolist() == [2.0, 3.0] and std.tolist() == [1.0, 1.0]  # constant feature: std 1 (centred only)
    mean, _ = feature_stats(x, skip_padding=False)
    assert torch.allclose(mean, torch.tensor([4 / 3, 2.0]))


@pytest.mark.parametrize("method", ["joint", "ensemble"])
def test_train_end_to_end(npz_dir, tmp_path, capsys, method):
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", "--data", "features", "--data-root", npz_dir, "--method", method,
                                 "--out", out, *TINY], capsys)
    assert code == 0, err
    assert "test accuracy" in stdout
    assert json.loads((out / "metrics.json").read_text())["data"] == "features"


def test_regression_end_to_end(tmp_path):
    root = write_pt(tmp_path / "d", {"train": arrays(24, regression=True), "test": arrays(8, 2, regression=True)})
    cfg = RunConfig.from_dict({"data": {"name": "features", "root": str(root)}, "method": {"name": "multi_loss"},
                               "train": {"epochs": 1, "batch_size": 8},
                               "model": {"encoder_hidden": [16], "fusion_hidden": [16]}})
    metrics = Trainer(cfg, tmp_path / "run", quiet=True).fit()
    assert {"mae", "corr", "acc2"} <= set(metrics["test"])


def _no_labels(s):
    del s["train"]["labels"]


def _truncated(s):
    s["test"]["video"] = s["test"]["video"][:-2]


def _one_dim(s):
    s["train"]["audio"] = s["train"]["audio"][:, 0]


def _one_modality(s):
    del s["valid"]["video"]


def _shape_across_splits(s):
    s["valid"]["audio"] = s["valid"]["audio"][:, :5]


def _nan(s):
    s["train"]["audio"][3, 1] = np.nan


def _negative(s):
    s["test"]["labels"] = s["test"]["labels"] - 1


@pytest.mark.parametrize("corrupt, file, message", [
    (_no_labels, "train.npz", "no 'labels' array"),
    (_truncated, "test.npz", "modality 'video' has 10 samples but 'labels' has 12"),
    (_one_dim, "train.npz", "modality 'audio' must be (N, ...) with per-sample features"),
    (_one_modality, "valid.npz", "needs at least two modality arrays"),
    (_shape_across_splits, "valid.npz", "modality 'audio' has per-sample shape (5,) but (8,) in train.npz"),
    (_nan, "train.npz", "modality 'audio' contains NaN or inf (first at sample 3)"),
    (_negative, "test.npz", "class labels must be 0..K-1"),
])
def test_bad_layouts_one_line(tmp_path, capsys, corrupt, file, message):
    splits = {"train": arrays(30), "valid": arrays(9, 1), "test": arrays(12, 2)}
    corrupt(splits)
    root = write_npz(tmp_path / "d", splits)
    code, _, err = run_cli(["train", "--data", "features", "--data-root", root, "--method", "joint",
                            "--out", tmp_path / "run", *TINY], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"interplay: error: {root / file}: "), err
    assert message in err


def test_unreadable_and_missing_files_one_line(npz_dir, tmp_path, capsys):
    def error() -> str:
        code, _, err = run_cli(["train", "--data", "features", "--data-root", npz_dir, "--method", "joint",
                                "--out", tmp_path / "run", *TINY], capsys)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        return err

    test = npz_dir / "test.npz"
    good = test.read_bytes()
    test.write_bytes(b"garbage")
    assert f"{test}: unreadable .npz file (not a zip archive" in error()
    test.write_bytes(good[: len(good) // 2])
    assert f"{test}: unreadable .npz file" in error()
    np.savez(test, audio=np.zeros((2, 8)), video=np.zeros((2, 4, 6)), labels=np.array([0, 1]),
             ids=np.array(["a", None], dtype=object))
    assert f"{test}: holds object arrays" in error()
    test.unlink()
    assert f"{test}: file not found" in error()
    (npz_dir / "train.pt").write_bytes(b"junk")
    assert "both train.npz and train.pt exist" in error()
    (npz_dir / "train.npz").unlink()
    np.savez(test, **arrays(12, 2))
    assert f"{npz_dir / 'train.pt'}: unreadable .pt file" in error()
    code, _, err = run_cli(["train", "--data", "features", "--method", "joint", "--out", tmp_path / "r", *TINY], capsys)
    assert code == 2 and "no data root" in err


def test_verify(npz_dir, tmp_path, capsys):
    code, out, err = run_cli(["data", "verify", "--data", "features", "--data-root", npz_dir], capsys)
    assert code == 0, out + err
    assert "train.npz: 30 samples, modalities {'audio': (8,), 'video': (4, 6)}" in out and "classification" in out
    (npz_dir / "valid.npz").unlink()
    (npz_dir / "test.npz").unlink()
    code, out, err = run_cli(["data", "verify", "--data", "features", "--data-root", npz_dir], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "ok   valid: no valid.npz" in out and f"FAIL {npz_dir / 'test.npz'}: file not found" in out
