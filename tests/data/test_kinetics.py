"""Kinetics-Sounds on tiny fixtures in the OGM-GE "VGG&KS" layout: train/<sample>/{*.jpg, <sample>.wav} with
train.csv/test.csv labels, or class subfolders train/<class>/<sample>/ without csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402
from scipy.io import wavfile  # noqa: E402

import interplay.models.vision  # noqa: E402,F401  (registers "cnn", "frames")
from interplay.data import DATASETS, VERIFIERS  # noqa: E402
from interplay.data import kinetics as ks  # noqa: E402
from interplay.engine import train  # noqa: E402
from interplay.errors import DataError  # noqa: E402

from ..conftest import make_config, run_cli  # noqa: E402

RATE = 16000
CLASSES = ("playing bagpipes", "ripping paper", "tapping pen")  # real Kinetics names contain spaces
# (1, 65, 26) spectrograms of 0.2 s, 2 frames of 8x8
PREP = {"audio_seconds": 0.2, "n_fft": 128, "hop_length": 128, "image_size": 8, "n_frames": 2}


def make_kinetics(root: Path, folders: bool = False, n_train: int = 4, n_test: int = 2, n_frames: int = 3) -> Path:
    """3 classes, ``n_train`` / ``n_test`` samples per class; a 0.3 s tone per class and ``n_frames`` 8x8 jpgs
    whose brightness depends on the class. ``folders``: class subfolders instead of train.csv / test.csv."""
    rng = np.random.default_rng(0)
    for split, per_class in (("train", n_train), ("test", n_test)):
        lines = ["sample,label"]
        for k, cls in enumerate(CLASSES):
            for j in range(per_class):
                name = f"{split[:2]}{k}{j:03d}_000010_000020"  # YouTube-id-like names
                lines.append(f"{name},{cls}")
                sample = root / split / (cls if folders else "") / name
                sample.mkdir(parents=True)
                t = np.arange(int(0.3 * RATE)) / RATE
                wave = 0.5 * np.sin(2 * np.pi * (300 + 200 * k) * t) + 0.05 * rng.standard_normal(t.size)
                wavfile.write(sample / f"{name}.wav", RATE, (wave * 20000).astype(np.int16))
                for f in range(n_frames):
                    pix = np.full((8, 8, 3), 60 * k, dtype=np.uint8) + rng.integers(0, 30, (8, 8, 3), dtype=np.uint8)
                    Image.fromarray(pix).save(sample / f"{f * 25:05d}.jpg")
        if not folders:
            (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def root(tmp_path):
    return make_kinetics(tmp_path / "KS")


def _load(root: Path, **kw):
    return ks.kinetics_sounds(root=str(root), seed=kw.pop("seed", 0), val_fraction=kw.pop("val_fraction", 0.25),
                              **{**PREP, **kw})


def _no_decoding(*args, **kwargs):
    raise AssertionError("decoded again although the cache holds the arrays")


def test_shapes_labels_and_cache(root, tmp_path, monkeypatch):
    s = _load(root)
    assert DATASETS.get("kinetics-sounds") is ks.kinetics_sounds
    assert s.info.name == "kinetics-sounds" and s.info.num_classes == 3 and s.info.class_names == list(CLASSES)
    assert s.info.modalities == {"audio": (1, 65, 26), "visual": (2, 3, 8, 8)}
    assert s.info.extra["layout"] == "csv" and s.info.extra["class_order"] == "the training classes"
    assert len(s.train) + len(s.val) == 12 and len(s.test) == 6
    assert s.train.inputs["audio"].shape[1:] == (1, 65, 26) and s.test.inputs["visual"].shape[1:] == (2, 3, 8, 8)
    assert s.train.inputs["visual"].dtype == torch.float32 and torch.isfinite(s.train.inputs["audio"]).all()
    assert sorted(s.test.target.tolist()) == [0, 0, 1, 1, 2, 2]
    assert s.test.meta["frames_available"].tolist() == [3] * 6
    assert torch.allclose(s.test.meta["audio_seconds"], torch.full((6,), 0.3))
    # stratified validation: one of four per class
    assert sorted(s.val.target.tolist()) == [0, 1, 2]
    # normalised with training statistics
    assert abs(float(s.train.inputs["audio"].mean())) < 0.2
    entries = sorted((tmp_path / "interplay-cache" / "kinetics-sounds").glob("*.pt"))
    assert len(entries) == 2  # train list and test list, decoded once
    with monkeypatch.context() as m:  # cache hit: nothing is decoded on the second load
        m.setattr(ks, "read_wav", _no_decoding)
        m.setattr(ks, "read_image", _no_decoding)
        again = _load(root)
    assert sorted((tmp_path / "interplay-cache" / "kinetics-sounds").glob("*.pt")) == entries
    for a, b in ((again.train, s.train), (again.val, s.val), (again.test, s.test)):
        assert torch.equal(a.inputs["audio"], b.inputs["audio"]) and torch.equal(a.inputs["visual"], b.inputs["visual"])
        assert torch.equal(a.target, b.target)
    other = _load(root, seed=1)
    assert not torch.equal(other.val.inputs["audio"], s.val.inputs["audio"])  # the seed moves the split
    assert torch.allclose(_pixels(other), _pixels(s), atol=1e-5)  # fixed evaluation frames


def _pixels(s) -> torch.Tensor:
    """The test split's frames in [0, 1] (normalisation undone)."""
    st = s.info.extra["normalisation"]
    std, mean = (torch.tensor(st[k]).view(1, 1, 3, 1, 1) for k in ("visual_std", "visual_mean"))
    return s.test.inputs["visual"] * std + mean


def test_class_order_from_classes_txt(root):
    (root / "classes.txt").write_text("tapping pen\nplaying bagpipes\n\nripping paper\nblowing nose\n")
    s = _load(root)
    assert s.info.class_names == ["tapping pen", "playing bagpipes", "ripping paper", "blowing nose"]
    assert s.info.num_classes == 4 and s.info.extra["class_order"].endswith("classes.txt")
    # test samples te0xx are "playing bagpipes" (index 1 now), te2xx "tapping pen" (index 0)
    assert sorted(s.test.target.tolist()) == [0, 0, 1, 1, 2, 2]
    train, test, classes, _ = ks.read_lists(root)
    assert test.labels[[i for i, n in enumerate(test.names) if n.startswith("te0")]].tolist() == [1, 1]
    assert test.labels[[i for i, n in enumerate(test.names) if n.startswith("te2")]].tolist() == [0, 0]


def test_class_folder_variant_matches_csv(tmp_path):
    a = _load(make_kinetics(tmp_path / "csv"))
    b_root = make_kinetics(tmp_path / "folders", folders=True)
    assert not (b_root / "train.csv").exists()
    b = _load(b_root)
    assert b.info.extra["layout"] == "folders" and b.info.class_names == list(CLASSES)
    for x, y in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        assert torch.equal(x.target, y.target)
        assert torch.equal(x.inputs["audio"], y.inputs["audio"]) and torch.equal(x.inputs["visual"],
                                                                                   y.inputs["visual"])


def test_frames_natural_order_and_wav_fallback(root):
    sample = root / "train" / "tr0000_000010_000020"
    for f in sample.glob("*.jpg"):
        f.unlink()
    for i in (1, 2, 10):  # unpadded numbers: "frame_10" must come after "frame_2"
        Image.fromarray(np.full((8, 8, 3), 20 * i, dtype=np.uint8)).save(sample / f"frame_{i}.jpg")
    assert [p.name for p in ks.list_frames(sample)] == ["frame_1.jpg", "frame_2.jpg", "frame_10.jpg"]
    (sample / "tr0000_000010_000020.wav").rename(sample / "audio.wav")
    assert ks.sample_wav(sample, "tr0000_000010_000020").name == "audio.wav"
    s = _load(root, n_frames=1)
    assert len(s.train) + len(s.val) == 12


def test_errors_name_the_file(root):
    with pytest.raises(DataError, match="no data root given.*OGM-GE"):
        ks.kinetics_sounds(root=None)
    with pytest.raises(DataError, match=r"nope: directory not found.*--data-root"):
        _load(root / "nope")
    # a test class not in the class list
    (root / "test.csv").write_text("sample,label\nte0000_000010_000020,playing bagpipes\nte1000_000010_000020,"
                                   "juggling\n")
    with pytest.raises(DataError, match=r"test\.csv:3: class 'juggling' is not in the training classes"):
        _load(root)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    with pytest.raises(DataError, match=r"test\.csv:3: class 'juggling' is not in .*classes\.txt"):
        _load(root)
    (root / "test.csv").write_text("te0000_000010_000020,playing bagpipes,extra\n")
    with pytest.raises(DataError, match=r"test\.csv:1: expected 'sample,label'"):
        _load(root)
    (root / "test.csv").write_text("tr0000_000010_000020,playing bagpipes\n")
    with pytest.raises(DataError, match=r"test\.csv: sample tr0000_000010_000020 is also in the training split"):
        _load(root)
    (root / "test.csv").unlink()
    with pytest.raises(DataError, match=r"test\.csv: file not found.*OGM-GE"):
        _load(root)


def test_broken_samples_name_the_file(root):
    sample = root / "test" / "te1001_000010_000020"
    wav = sample / "te1001_000010_000020.wav"
    wav.write_bytes(b"RIFF\x00\x00not a wav at all")
    with pytest.raises(DataError, match=r"te1001_000010_000020\.wav: unreadable wav"):
        _load(root)
    wav.unlink()
    with pytest.raises(DataError, match=r"te1001_000010_000020\.wav: file not found.*--data-root"):
        _load(root)
    make_kinetics(root.parent / "b")
    broken = root.parent / "b" / "train" / "tr2003_000010_000020"
    jpg = broken / "00025.jpg"
    jpg.write_bytes(jpg.read_bytes()[:40])
    with pytest.raises(DataError, match=r"tr2003_000010_000020/00025\.jpg: unreadable image"):
        _load(root.parent / "b", n_frames=3)
    for f in broken.glob("*.jpg"):
        f.unlink()
    with pytest.raises(DataError, match=r"tr2003_000010_000020: holds no \.jpg frames"):
        _load(root.parent / "b")
    for f in broken.iterdir():
        f.unlink()
    broken.rmdir()
    with pytest.raises(DataError, match=r"tr2003_000010_000020: sample folder not found"):
        _load(root.parent / "b")


def test_folder_variant_errors(tmp_path):
    root = make_kinetics(tmp_path / "f", folders=True)
    (root / "test" / "juggling" / "te9000_000010_000020").mkdir(parents=True)
    with pytest.raises(DataError, match=r"test/juggling: class 'juggling' is not in the training classes"):
        _load(root)
    other = make_kinetics(tmp_path / "g", folders=True)
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(other / "train" / "tapping pen" / "00001.jpg")
    with pytest.raises(DataError, match=r"tapping pen: holds frames or a wav directly, but there is no train\.csv"):
        _load(other)


def test_cli_error_is_one_line(root, tmp_path, capsys):
    (root / "train" / "tr1002_000010_000020" / "tr1002_000010_000020.wav").unlink()
    code, _, err = run_cli(["train", "--data", "kinetics-sounds", "--data-root", root, "--epochs", "1",
                            "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1 and "tr1002_000010_000020.wav: file not found" in err


def test_verify(root, capsys):
    assert VERIFIERS.get("kinetics-sounds") is ks.verify_kinetics
    checks = ks.verify_kinetics(str(root))
    assert all(c.ok for c in checks), [c.message for c in checks]
    text = "\n".join(c.message for c in checks)
    assert "csv layout, 3 classes" in text and "12 train samples" in text and "18 listed wavs readable" in text
    assert "frames for all 18 listed samples, 3-3 per sample" in text
    code, out, err = run_cli(["data", "verify", "--data", "kinetics-sounds", "--data-root", root], capsys)
    assert code == 0, err + out
    (root / "test" / "te2001_000010_000020" / "te2001_000010_000020.wav").unlink()
    jpg = root / "train" / "tr1000_000010_000020" / "00050.jpg"
    jpg.write_bytes(jpg.read_bytes()[:40])
    failed = [c for c in ks.verify_kinetics(str(root)) if not c.ok]
    assert len(failed) == 2
    assert "1 missing" in failed[0].message and "te2001_000010_000020.wav" in failed[0].message
    assert "1 with unreadable frames" in failed[1].message and "00050.jpg" in failed[1].message
    code, out, err = run_cli(["data", "verify", "--data", "kinetics-sounds", "--data-root", root], capsys)
    assert code == 2 and "OGM-GE" in err
    bad = ks.verify_kinetics(str(root / "nope"))
    assert len(bad) == 1 and not bad[0].ok and "directory not found" in bad[0].message


def test_train_joint_and_ensemble_end_to_end(root, tmp_path):
    for method in ("joint", "ensemble"):
        cfg = make_config(method, "kinetics-sounds", epochs=1, n_train=None, n_test=None,
                          data={"root": str(root), **PREP}, model={"encoder_hidden": [4, 4], "fusion_hidden": [8]},
                          train={"batch_size": 8})
        metrics = train(cfg, tmp_path / method)
        assert 0 <= metrics["test"]["accuracy"] <= 1
        assert (tmp_path / method / "metrics.json").is_file()
