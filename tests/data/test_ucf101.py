"""UCF101 on a tiny fixture in the two-stream layout: ucfTrainTestlist/ (classInd, train/test lists of the three
splits), jpegs_256/<video>/frameNNNNNN.jpg and tvl1_flow/{u,v}/<video>/frameNNNNNN.jpg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

import interplay.models.vision  # noqa: E402,F401  (registers "cnn", "frames")
from interplay.data import DATASETS, VERIFIERS  # noqa: E402
from interplay.data import ucf101 as uc  # noqa: E402
from interplay.engine import train  # noqa: E402
from interplay.errors import ConfigError, DataError  # noqa: E402
from interplay.models.builder import build_model  # noqa: E402

from ..conftest import make_config, run_cli  # noqa: E402

# (class folder as in classInd / the lists, spelling inside the video name): UCF101 spells one class both ways
CLASSES = (("ApplyEyeMakeup", "ApplyEyeMakeup"), ("Archery", "Archery"), ("HandstandPushups", "HandStandPushups"))
GROUPS = (1, 2, 3, 4)
N_RGB, N_FLOW = 6, 5
PREP = {"image_size": 8, "n_frames": 2}


def flow_value(direction: str, i: int) -> int:
    """The uniform grey level of flow frame ``i`` (0-based) of direction ``u`` / ``v`` in the fixture."""
    return 40 + 20 * i if direction == "u" else 220 - 20 * i


def make_ucf(root: Path) -> Path:
    """3 classes x 4 groups x 2 clips = 24 videos; split s tests on group s (s = 1, 2, 3), trains on the rest.
    6 RGB frames (class-dependent colour) and 5 u/v flow frames (uniform greys, see :func:`flow_value`)."""
    rng = np.random.default_rng(0)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {folder}\r\n" for i, (folder, _) in enumerate(CLASSES, 1)))
    videos = []
    for k, (folder, spelled) in enumerate(CLASSES):
        for g in GROUPS:
            for c in (1, 2):
                name = f"v_{spelled}_g{g:02d}_c{c:02d}"
                videos.append((folder, name, k, g))
                rgb = root / "jpegs_256" / name
                rgb.mkdir(parents=True)
                for i in range(N_RGB):
                    pix = np.full((8, 8, 3), 70 * k, dtype=np.uint8) + rng.integers(0, 30, (8, 8, 3), dtype=np.uint8)
                    Image.fromarray(pix).save(rgb / f"frame{i + 1:06d}.jpg")
                for d in ("u", "v"):
                    flow = root / "tvl1_flow" / d / name
                    flow.mkdir(parents=True)
                    for i in range(N_FLOW):
                        Image.fromarray(np.full((8, 8), flow_value(d, i), dtype=np.uint8)).save(
                            flow / f"frame{i + 1:06d}.jpg")
    for s in (1, 2, 3):
        train = [f"{folder}/{name}.avi {k + 1}" for folder, name, k, g in videos if g != s]
        test = [f"{folder}/{name}.avi" for folder, name, k, g in videos if g == s]
        (lists / f"trainlist0{s}.txt").write_text("\n".join(train) + "\n")
        (lists / f"testlist0{s}.txt").write_text("\n".join(test) + "\n")
    return root


@pytest.fixture
def root(tmp_path):
    return make_ucf(tmp_path / "UCF101")


def _load(root: Path, **kw):
    return uc.ucf101(root=str(root), seed=kw.pop("seed", 0), val_fraction=kw.pop("val_fraction", 0.34),
                     **{**PREP, **kw})


def _no_decoding(*args, **kwargs):
    raise AssertionError("decoded again although the cache holds the arrays")


def test_shapes_labels_groups_and_cache(root, tmp_path, monkeypatch):
    s = _load(root)
    assert DATASETS.get("ucf101") is uc.ucf101
    assert s.info.name == "ucf101" and s.info.num_classes == 3
    assert s.info.class_names == ["ApplyEyeMakeup", "Archery", "HandstandPushups"]
    assert s.info.modalities == {"flow": (2, 2, 8, 8), "rgb": (2, 3, 8, 8)}
    assert s.train.inputs["flow"].shape[1:] == (2, 2, 8, 8) and s.test.inputs["rgb"].shape[1:] == (2, 3, 8, 8)
    assert len(s.train) + len(s.val) == 18 and len(s.test) == 6
    assert sorted(s.test.target.tolist()) == [0, 0, 1, 1, 2, 2]  # HandStandPushups videos -> HandstandPushups
    assert set(s.test.meta["group"].tolist()) == {1} and s.test.meta["frames_available"].tolist() == [N_RGB] * 6
    # validation: one whole group of the three training groups, every class in it
    val_groups, train_groups = set(s.val.meta["group"].tolist()), set(s.train.meta["group"].tolist())
    assert len(val_groups) == 1 and not val_groups & train_groups and train_groups | val_groups == {2, 3, 4}
    assert s.info.extra["val_groups"] == sorted(val_groups) and sorted(s.val.target.tolist()) == [0, 0, 1, 1, 2, 2]
    assert torch.isfinite(s.train.inputs["flow"]).all() and s.train.inputs["rgb"].dtype == torch.float32
    entries = sorted((tmp_path / "interplay-cache" / "ucf101").glob("*.pt"))
    assert len(entries) == 2  # train and test lists, decoded once
    with monkeypatch.context() as m:  # cache hit: nothing is decoded on the second load
        m.setattr(uc, "read_image", _no_decoding)
        again = _load(root)
    assert sorted((tmp_path / "interplay-cache" / "ucf101").glob("*.pt")) == entries
    for a, b in ((again.train, s.train), (again.val, s.val), (again.test, s.test)):
        assert torch.equal(a.inputs["rgb"], b.inputs["rgb"]) and torch.equal(a.inputs["flow"], b.inputs["flow"])
        assert torch.equal(a.target, b.target) and torch.equal(a.meta["group"], b.meta["group"])
    held = {tuple(_load(root, seed=seed).info.extra["val_groups"]) for seed in range(6)}
    assert len(held) > 1  # the seed picks the held-out groups


def test_split_file_choice(root):
    for split in (2, 3):
        s = _load(root, split=split)
        assert set(s.test.meta["group"].tolist()) == {split} and s.info.extra["split"] == split
        assert split not in set(s.train.meta["group"].tolist()) | set(s.val.meta["group"].tolist())
    with pytest.raises(ConfigError, match="data.split: expected 1, 2 or 3"):
        _load(root, split=4)


def test_group_split_is_group_disjoint_and_seeded():
    groups = np.repeat(np.arange(8, 26), 7)  # split-1 training groups, 7 clips each
    for seed in range(5):
        tr, va = uc.group_split(groups, 0.1, np.random.default_rng(seed))
        assert not set(groups[tr]) & set(groups[va]) and len(set(groups[va])) == 2  # round(0.1 * 18)
        assert len(tr) + len(va) == groups.size
    a = uc.group_split(groups, 0.3, np.random.default_rng(1))
    assert all(np.array_equal(x, y) for x, y in zip(a, uc.group_split(groups, 0.3, np.random.default_rng(1))))
    with pytest.raises(DataError, match="at least 2 groups"):
        uc.group_split(np.ones(5, dtype=int), 0.1, np.random.default_rng(0))


def test_flow_channel_stacking(root):
    assert uc.flow_positions(5, 2, 2).tolist() == [[0, 1], [3, 4]]
    assert uc.flow_positions(5, 1, 10).tolist() == [[0, 1, 2, 3, 4, 4, 4, 4, 4, 4]]  # short clips repeat the last
    prep = uc.Preprocessing(n_frames=2, image_size=8, flow_stack=2).validate()
    out = uc.decode_clips(root, ["v_Archery_g02_c01"], prep)
    assert out["flow"].shape == (1, 2, 4, 8, 8) and out["rgb"].shape == (1, 2, 3, 8, 8)
    levels = out["flow"][0].float().mean((2, 3))  # (T, 4): u_t, v_t, u_t+1, v_t+1
    expect = [[flow_value(d, i) for i in row for d in ("u", "v")] for row in ([0, 1], [3, 4])]
    assert torch.allclose(levels, torch.tensor(expect, dtype=torch.float32), atol=2)
    s = _load(root, flow_stack=10)
    assert s.info.modalities["flow"] == (2, 20, 8, 8) and s.test.inputs["flow"].shape[1:] == (2, 20, 8, 8)
    stats = s.info.extra["normalisation"]
    assert len(stats["flow_mean"]) == 2 and len(stats["rgb_mean"]) == 3
    # u channels share one statistic, v channels the other
    u = s.train.inputs["flow"][:, :, 0::2] * stats["flow_std"][0] + stats["flow_mean"][0]
    assert abs(float(u.mean()) * 255 - np.mean([flow_value("u", min(i, 4)) for i in range(10)])) < 3


def test_flow_input_through_auto_encoder(root):
    s = _load(root, flow_stack=3)
    cfg = make_config(model={"encoder_hidden": [4, 4], "fusion_hidden": [8]}).model
    model = build_model(cfg, s.info)
    batch = s.train.batch(torch.arange(4))
    assert type(model.encoders["flow"]).__name__ == "FramesEncoder"
    assert model.encoders["flow"].frame.net[0].in_channels == 6
    z = model.encode(batch.inputs)
    assert z["flow"].shape == (4, 4) and z["rgb"].shape == (4, 4)
    assert model(batch.inputs).shape == (4, 3)


def test_list_errors_name_the_file(root):
    lists = root / "ucfTrainTestlist"
    with pytest.raises(DataError, match="no data root given.*twostreamfusion"):
        uc.ucf101(root=None)
    with pytest.raises(DataError, match=r"nope: directory not found.*--data-root"):
        _load(root / "nope")
    (lists / "trainlist02.txt").unlink()
    with pytest.raises(DataError, match=r"trainlist02\.txt: file not found.*crcv"):
        _load(root, split=2)
    (lists / "testlist01.txt").write_text("Juggling/v_Juggling_g01_c01.avi\n")
    with pytest.raises(DataError, match=r"testlist01\.txt:1: class 'Juggling' is not in classInd\.txt"):
        _load(root)
    (lists / "testlist01.txt").write_text("Archery/v_Archery_g01_c01.avi\nArchery/clip.avi\n")
    with pytest.raises(DataError, match=r"testlist01\.txt:2: video name 'clip' does not look like"):
        _load(root)
    (lists / "testlist01.txt").write_text("Archery/v_Archery_g02_c01.avi\n")
    with pytest.raises(DataError, match=r"testlist01\.txt: video v_Archery_g02_c01 is also in trainlist01"):
        _load(root)
    (lists / "trainlist03.txt").write_text("Archery/v_Archery_g01_c01.avi 1\n")
    with pytest.raises(DataError, match=r"trainlist03\.txt:1: class id 1 disagrees with the folder Archery"):
        _load(root, split=3)
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n3 Archery\n")
    with pytest.raises(DataError, match=r"classInd\.txt: class ids must be 1\.\.2"):
        _load(root)
    (lists / "classInd.txt").unlink()
    with pytest.raises(DataError, match=r"classInd\.txt: file not found"):
        _load(root)


def test_frame_errors_name_the_file(root):
    name = "v_Archery_g01_c02"
    jpg = root / "jpegs_256" / name / "frame000001.jpg"
    jpg.write_bytes(jpg.read_bytes()[:40])
    with pytest.raises(DataError, match=rf"{name}/frame000001\.jpg: unreadable image"):
        _load(root)
    flow = root / "tvl1_flow" / "v" / name / "frame000005.jpg"
    flow.unlink()
    with pytest.raises(DataError, match=rf"v/{name}: 4 flow frames but .*u/{name} has 5; u and v must pair up"):
        _load(root)
    for f in flow.parent.iterdir():
        f.unlink()
    with pytest.raises(DataError, match=rf"tvl1_flow/v/{name}: holds no \.jpg frames.*twostreamfusion"):
        _load(root)
    flow.parent.rmdir()
    with pytest.raises(DataError, match=rf"tvl1_flow/v/{name}: frames directory not found"):
        _load(root)
    for f in jpg.parent.iterdir():
        f.unlink()
    jpg.parent.rmdir()
    with pytest.raises(DataError, match=rf"jpegs_256/{name}: frames directory not found"):
        _load(root)


def test_cli_error_is_one_line(root, tmp_path, capsys):
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text("Juggling/v_Juggling_g01_c01.avi\n")
    code, _, err = run_cli(["train", "--data", "ucf101", "--data-root", root, "--epochs", "1",
                            "--out", tmp_path / "run", "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1 and "testlist01.txt:1: class 'Juggling'" in err
    code, _, err = run_cli(["train", "--data", "ucf101", "--data-root", root, "--set", "data.split=5",
                            "--epochs", "1", "--out", tmp_path / "run2", "--quiet"], capsys)
    assert code == 2 and "data.split" in err


def test_verify(root, capsys):
    assert VERIFIERS.get("ucf101") is uc.verify_ucf101
    checks = uc.verify_ucf101(str(root))
    assert all(c.ok for c in checks), [c.message for c in checks]
    text = "\n".join(c.message for c in checks)
    assert "3 classes (UCF101 has 101)" in text and "split 2: 18 train / 6 test videos" in text
    assert "RGB frames and u/v flow for all 24 listed videos, 6-6 RGB and 5-5 flow frames" in text
    code, out, err = run_cli(["data", "verify", "--data", "ucf101", "--data-root", root], capsys)
    assert code == 0, err + out
    (root / "tvl1_flow" / "u" / "v_Archery_g03_c02" / "frame000002.jpg").unlink()
    jpg = root / "jpegs_256" / "v_ApplyEyeMakeup_g04_c01" / "frame000006.jpg"
    jpg.write_bytes(jpg.read_bytes()[:40])
    failed = [c for c in uc.verify_ucf101(str(root)) if not c.ok]
    assert len(failed) == 1
    assert "1 with missing or unpaired frames" in failed[0].message and "v_Archery_g03_c02" in failed[0].message
    assert "1 with unreadable frames" in failed[0].message and "frame000006.jpg" in failed[0].message
    code, out, err = run_cli(["data", "verify", "--data", "ucf101", "--data-root", root], capsys)
    assert code == 2 and "twostreamfusion" in err
    (root / "ucfTrainTestlist" / "testlist03.txt").unlink()
    assert any(not c.ok and "testlist03.txt: file not found" in c.message for c in uc.verify_ucf101(str(root)))
    bad = uc.verify_ucf101(str(root / "nope"))
    assert len(bad) == 1 and not bad[0].ok and "directory not found" in bad[0].message


def test_train_joint_and_ensemble_end_to_end(root, tmp_path):
    for method, stack in (("joint", 1), ("ensemble", 2)):
        cfg = make_config(method, "ucf101", epochs=1, n_train=None, n_test=None,
                          data={"root": str(root), "flow_stack": stack, **PREP},
                          model={"encoder_hidden": [4, 4], "fusion_hidden": [8]}, train={"batch_size": 8})
        metrics = train(cfg, tmp_path / method)
        assert 0 <= metrics["test"]["accuracy"] <= 1
        assert (tmp_path / method / "metrics.json").is_file()
