"""MultiBench affect loaders (mosi, mosei, mustard, urfunny) on tiny fixtures written in the real pickle layout."""

from __future__ import annotations

import collections
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import interplay.data.affect  # noqa: F401  (registers the loaders before interplay.data imports them)
from interplay.config import RunConfig
from interplay.data.affect import AFFECT_TASKS, mosei, mosi, mustard, urfunny
from interplay.engine import Trainer
from interplay.errors import ConfigError, DataError

from ..conftest import run_cli

SIZES = {"train": 12, "valid": 6, "test": 6}
T = 5
#: sentiment scores of the first training samples, to check the class views exactly
SCORES = [-3.0, -2.4, -0.5, 0.0, 0.5, 1.5, 2.5, 3.0]


def affect_dict(key: str, sizes: dict[str, int] = SIZES, label_shape: tuple[int, ...] = (1, 1), seed: int = 0,
                binary: tuple[int, int] = (0, 1)) -> dict:
    """A MultiBench-layout dict: splits of vision/audio/text (N, T, d) zero-padded at the front, labels, id."""
    rng = np.random.default_rng(seed)
    task = AFFECT_TASKS[key]
    data = {}
    for split, n in sizes.items():
        lengths = rng.integers(2, T + 1, size=n)
        part = {}
        for m, d in task.dims.items():
            x = rng.normal(size=(n, T, d)).astype(np.float32) * 2 + 1
            for i, length in enumerate(lengths):
                x[i, : T - length] = 0.0
            part[m] = x
        if task.labels == "sentiment":
            y = np.round(rng.uniform(-3, 3, size=n) * 5) / 5
            if split == "train":
                y[: len(SCORES)] = SCORES
        else:
            y = np.array([binary[i % 2] for i in range(n)], dtype=np.float32)
        part["labels"] = y.reshape(n, *label_shape).astype(np.float32)
        part["id"] = np.array([[f"v{i}".encode(), b"0", b"1"] for i in range(n)])
        data[split] = {k: part[k] for k in ("vision", "audio", "text", "labels", "id")}
    return data


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return path


@pytest.fixture
def mosi_dir(tmp_path):
    write(tmp_path / "mosi" / "mosi_raw.pkl", affect_dict("mosi"))
    return tmp_path / "mosi"


TINY = ["--epochs", "1", "--batch-size", "4", "--quiet", "--set", "model.encoder_hidden=[16]",
        "--set", "model.fusion_hidden=[16]"]


# --- layout, targets, cleaning ---------------------------------------------------------------------------------

def test_mosi_regression_splits_from_file(mosi_dir):
    s = mosi(root=str(mosi_dir), val_fraction=0.5)  # val_fraction is ignored: the file's splits are used
    assert (len(s.train), len(s.val), len(s.test)) == (12, 6, 6)
    assert s.info.task == "regression" and s.info.num_classes == 1
    assert s.info.modalities == {"audio": (T, 74), "text": (T, 300), "vision": (T, 35)}
    assert s.train.target.dtype == torch.float32
    assert torch.allclose(s.train.target[: len(SCORES)], torch.tensor(SCORES))
    assert "val_fraction is not used" in s.info.extra["splits"]
    # standardised over non-padding training steps; padding stays exactly zero (the encoders mask it)
    raw = affect_dict("mosi")["train"]["audio"]
    x = s.train.inputs["audio"]
    pad = torch.from_numpy(np.abs(raw).sum(-1) == 0)
    assert pad.any() and (x[pad] == 0).all()
    valid = x[~pad]
    assert valid.mean(0).abs().max() < 1e-4 and (valid.std(0, unbiased=False) - 1).abs().max() < 1e-3


def test_sentiment_class_views(mosi_dir):
    seven = mosi(root=str(mosi_dir), target="7class")
    # round half to even after clipping: -3,-2.4,-0.5,0,0.5,1.5,2.5,3 -> -3,-2,0,0,0,2,2,3 -> +3
    assert seven.train.target[: len(SCORES)].tolist() == [0, 1, 3, 3, 3, 5, 5, 6]
    assert seven.info.num_classes == 7 and seven.info.class_names[0] == "-3"
    binary = mosi(root=str(mosi_dir), target="binary")
    assert binary.train.target[: len(SCORES)].tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    nonzero = mosi(root=str(mosi_dir), target="binary_nonzero")
    assert nonzero.train.target[:7].tolist() == [0, 0, 0, 1, 1, 1, 1]  # the zero score is gone
    assert len(nonzero.train) == 12 - nonzero.info.extra["dropped_zero_label"]["train"]
    assert nonzero.info.extra["dropped_zero_label"]["train"] >= 1
    with pytest.raises(ConfigError, match="data.target"):
        mosi(root=str(mosi_dir), target="3class")


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_label_shapes(tmp_path, shape):
    write(tmp_path / "mosei_senti_data.pkl", affect_dict("mosei", label_shape=shape))
    s = mosei(root=str(tmp_path))
    assert s.train.target.shape == (12,)


def test_cleaning_and_empty_text(tmp_path):
    data = affect_dict("mosi")
    data["train"]["audio"][0, -1, :3] = -np.inf
    data["train"]["vision"][1, -1, 0] = np.nan
    data["test"]["text"][2] = 0.0  # no words: dropped as MultiBench does
    write(tmp_path / "mosi_raw.pkl", data)
    s = mosi(root=str(tmp_path), standardize=False)
    assert s.info.extra["non_finite_set_to_zero"] == {"audio": 3, "text": 0, "vision": 1}
    assert torch.isfinite(s.train.inputs["audio"]).all() and s.train.inputs["audio"][0, -1, :3].eq(0).all()
    assert len(s.test) == 5 and s.info.extra["dropped_empty_text"] == {"train": 0, "valid": 0, "test": 1}
    assert len(mosi(root=str(tmp_path), drop_empty_text=False).test) == 6


def test_modalities_file_and_subsampling(tmp_path):
    write(tmp_path / "other.pkl", affect_dict("mosi"))
    s = mosi(root=str(tmp_path), file="other.pkl", modalities=["text", "audio"], n_train=5, n_test=3, seed=1)
    assert sorted(s.info.modalities) == ["audio", "text"] and (len(s.train), len(s.val), len(s.test)) == (5, 6, 3)
    again = mosi(root=str(tmp_path / "other.pkl"), modalities="audio,text", n_train=5, n_test=3, seed=1)
    assert torch.equal(s.train.target, again.train.target)
    for bad in (["text"], ["text", "smell"]):
        with pytest.raises(ConfigError, match="data.modalities"):
            mosi(root=str(tmp_path), file="other.pkl", modalities=bad)


def test_numpy1_era_protocol2_pickle(tmp_path):
    """MultiBench's files were written by numpy 1.x (``numpy.core`` module paths), some with protocol 2."""
    blob = pickle.dumps(affect_dict("mosi"), protocol=2)
    if b"numpy._core" in blob:
        blob = blob.replace(b"numpy._core", b"numpy.core")
    (tmp_path / "mosi_raw.pkl").write_bytes(blob)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = mosi(root=str(tmp_path))
    assert len(s.train) == 12


@pytest.mark.parametrize("binary", [(0, 1), (-1, 1)])
def test_binary_tasks(tmp_path, binary):
    write(tmp_path / "sarcasm.pkl", affect_dict("mustard", binary=binary))
    write(tmp_path / "humor.pkl", affect_dict("urfunny", binary=binary))
    for fn, name in ((mustard, "sarcastic"), (urfunny, "humorous")):
        s = fn(root=str(tmp_path))
        assert s.info.task == "classification" and s.info.num_classes == 2 and s.info.class_names[1] == name
        assert s.info.modalities == {"audio": (T, 81), "text": (T, 300), "vision": (T, 371)}
        assert s.train.target.tolist() == [i % 2 for i in range(12)]
    data = affect_dict("urfunny")
    data["valid"]["labels"][0] = 2.0
    write(tmp_path / "humor.pkl", data)
    with pytest.raises(DataError, match=r"humor.pkl: split 'valid': 'labels' should be binary"):
        urfunny(root=str(tmp_path))


# --- end to end through the CLI ----------------------------------------------------------------------------------

@pytest.mark.parametrize("key, method, extra", [
    ("mosi", "joint", ["--set", "data.target=7class"]),
    ("mosi", "multi_loss", ["--set", "data.target=binary_nonzero"]),
    ("mosei", "joint", ["--set", "data.target=binary", "--set", "data.modalities=text,vision"]),
    ("mosei", "ensemble", ["--set", "model.encoder=transformer"]),
    ("mustard", "joint", []),
    ("mustard", "ensemble", []),
    ("urfunny", "joint", []),
    ("urfunny", "multi_loss", []),
])
def test_train_end_to_end(tmp_path, capsys, key, method, extra):
    task = AFFECT_TASKS[key]
    write(tmp_path / "data" / task.file, affect_dict(key))
    out = tmp_path / "run"
    if key == "mosei" and method == "ensemble":  # regression: via the Trainer (the CLI summary: see below)
        cfg = RunConfig.from_dict({"data": {"name": key, "root": str(tmp_path / "data")},
                                   "method": {"name": method}, "train": {"epochs": 1, "batch_size": 4},
                                   "model": {"encoder": "transformer", "encoder_hidden": [16],
                                             "fusion_hidden": [16]}})
        metrics = Trainer(cfg, out, quiet=True).fit()
        assert {"mae", "corr", "acc7", "acc2", "f1"} <= set(metrics["test"])
    else:
        code, stdout, err = run_cli(["train", "--data", key, "--data-root", tmp_path / "data", "--method", method,
                                     "--out", out, *TINY, *extra], capsys)
        assert code == 0, err
        assert "test accuracy" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == key and metrics["method"] == method


def test_cli_regression_run(mosi_dir, tmp_path, capsys):
    code, stdout, err = run_cli(["train", "--data", "mosi", "--data-root", mosi_dir, "--method", "joint",
                                 "--out", tmp_path / "run", *TINY], capsys)
    assert code == 0, err
    assert "test MAE" in stdout and "test Acc7" in stdout


# --- corrupt or partial data: exit 2, one line naming the file ---------------------------------------------------

def _missing_split(d):
    del d["valid"]


def _missing_array(d):
    del d["test"]["audio"]


def _truncated(d):
    d["train"]["vision"] = d["train"]["vision"][:-3]


def _two_d(d):
    d["train"]["text"] = d["train"]["text"][:, -1, :]


def _bad_labels_shape(d):
    d["test"]["labels"] = np.zeros((6, 2), np.float32)


def _dims_across_splits(d):
    d["test"]["audio"] = d["test"]["audio"][:, :, :10]


def _nan_label(d):
    d["train"]["labels"][0] = np.nan


@pytest.mark.parametrize("corrupt, message", [
    (_missing_split, "split 'valid' missing"),
    (_missing_array, "split 'test': array 'audio' missing"),
    (_truncated, "split 'train': 'vision' has 9 samples but 'labels' has 12"),
    (_two_d, "split 'train': 'text' must be a 3-D array (N, T, d)"),
    (_bad_labels_shape, "split 'test': 'labels' must have shape (N,), (N, 1) or (N, 1, 1)"),
    (_dims_across_splits, "'audio' has per-sample shape (5, 10) in split 'test' but (5, 74) in 'train'"),
    (_nan_label, "split 'train': 'labels' contains NaN"),
])
def test_corrupt_layouts_one_line(tmp_path, capsys, corrupt, message):
    data = affect_dict("mosi")
    corrupt(data)
    path = write(tmp_path / "mosi_raw.pkl", data)
    code, _, err = run_cli(["train", "--data", "mosi", "--data-root", tmp_path, "--method", "joint",
                            "--out", tmp_path / "run", *TINY], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"interplay: error: {path}: ")
    assert message in err and "Traceback" not in err


def test_unreadable_files_one_line(tmp_path, capsys):
    path = tmp_path / "mosi_raw.pkl"
    cases = [(b"certainly not a pickle", "unreadable pickle"),
             (pickle.dumps(affect_dict("mosi"), protocol=4)[:5000], "unreadable pickle"),
             (pickle.dumps({"train": collections.Counter()}), "references collections.Counter"),
             (pickle.dumps([1, 2, 3]), "expected a dict of splits train, valid, test; got a list")]
    for blob, message in cases:
        path.write_bytes(blob)
        code, _, err = run_cli(["train", "--data", "mosi", "--data-root", tmp_path, "--method", "joint",
                                "--out", tmp_path / "run", *TINY], capsys)
        assert code == 2 and err.count("\n") == 1 and f"{path}: " in err and message in err, err


class _Payload:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_trust_pickle_lifts_the_allow_list(tmp_path, monkeypatch):
    from interplay.data.affect import TRUST_PICKLE_ENV, load_affect

    monkeypatch.delenv(TRUST_PICKLE_ENV, raising=False)
    data = affect_dict("mosi")
    data["train"]["id"] = [collections.Counter() for _ in range(12)]  # a non-array global inside
    write(tmp_path / "mosi_raw.pkl", data)
    with pytest.raises(DataError, match="references collections.Counter.*train with --trust-pickle"):
        mosi(root=str(tmp_path))
    assert len(load_affect("mosi", root=str(tmp_path), target="regression", trust_pickle=True).train) == 12
    monkeypatch.setenv(TRUST_PICKLE_ENV, "1")  # what `interplay train --trust-pickle` sets
    assert len(mosi(root=str(tmp_path)).train) == 12


def test_code_in_an_affect_pickle_never_runs_without_the_flag(tmp_path, capsys, monkeypatch):
    from interplay.data.affect import TRUST_PICKLE_ENV

    monkeypatch.delenv(TRUST_PICKLE_ENV, raising=False)
    marker = tmp_path / "MARKER"
    data = affect_dict("mosi")
    data["train"]["id"] = _Payload(marker)
    path = write(tmp_path / "mosi_raw.pkl", data)
    code, _, err = run_cli(["train", "--data", "mosi", "--data-root", tmp_path, "--method", "joint",
                            "--out", tmp_path / "run", *TINY], capsys)
    assert code == 2 and err.count("\n") == 1 and f"{path}: the pickle references posix.system" in err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_trust_comes_from_the_flag_never_from_a_config(tmp_path, capsys, monkeypatch):
    from interplay.data.affect import TRUST_PICKLE_ENV

    monkeypatch.delenv(TRUST_PICKLE_ENV, raising=False)
    data = affect_dict("mosi")
    data["train"]["id"] = [collections.Counter() for _ in range(12)]
    write(tmp_path / "mosi_raw.pkl", data)
    cfg = tmp_path / "shared.yaml"
    cfg.write_text("data: {name: mosi, trust_pickle: true}\n")
    base = ["train", "--data-root", tmp_path, "--method", "joint", *TINY]
    for extra in (["--config", cfg], ["--data", "mosi", "--set", "data.trust_pickle=true"]):
        code, _, err = run_cli([*base, *extra, "--out", tmp_path / "refused"], capsys)
        assert code == 2 and err.count("\n") == 1
        assert "data.trust_pickle: pickle trust cannot come from a config" in err and "--trust-pickle" in err
        assert not (tmp_path / "refused").exists()
    code, _, err = run_cli([*base, "--data", "mosi", "--trust-pickle", "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    assert "trust_pickle" not in (tmp_path / "run" / "config.yaml").read_text()  # not part of the run's config
    assert TRUST_PICKLE_ENV not in __import__("os").environ  # the flag lasts for its command only


def test_missing_file_says_where_to_get_it(tmp_path, capsys):
    code, _, err = run_cli(["train", "--data", "mosei", "--data-root", tmp_path, "--method", "joint",
                            "--out", tmp_path / "run", *TINY], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"{tmp_path / 'mosei_senti_data.pkl'}: file not found" in err and "drive.google.com" in err
    code, _, err = run_cli(["train", "--data", "mosi", "--method", "joint", "--out", tmp_path / "r", *TINY], capsys)
    assert code == 2 and "no data root" in err and "--data-root" in err


# --- interplay data list / verify --------------------------------------------------------------------------------

def test_data_list_shows_loaders(capsys):
    code, out, _ = run_cli(["data", "list"], capsys)
    assert code == 0 and all(f"{k}\n" in out for k in AFFECT_TASKS)
    assert "target='regression'" in out and "modalities=None" in out


def test_verify_passes_on_release_layout(tmp_path, capsys):
    data = affect_dict("mustard")
    data["train"]["audio"][0, -1, 0] = -np.inf
    write(tmp_path / "sarcasm.pkl", data)
    code, out, err = run_cli(["data", "verify", "--data", "mustard", "--data-root", tmp_path], capsys)
    assert code == 0, out + err
    assert "sha256" in out and "train: 12 samples; per sample audio (5, 81)" in out
    assert "match the MultiBench release" in out and "'audio': 1" in out and "checks passed" in out


def test_verify_reports_sizes_and_missing(mosi_dir, tmp_path, capsys):
    code, out, err = run_cli(["data", "verify", "--data", "mosi", "--data-root", mosi_dir], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "FAIL train: 12 samples, the MultiBench release has 1284" in out
    assert "FAIL test: 6 samples, the MultiBench release has 686" in out and "ok   labels: sentiment" in out
    code, out, err = run_cli(["data", "verify", "--data", "urfunny", "--data-root", tmp_path], capsys)
    assert code == 2 and "humor.pkl: file not found" in out and "download humor.pkl" in err
    data = affect_dict("mosi")
    data["valid"]["text"] = data["valid"]["text"][:4]
    write(tmp_path / "bad" / "mosi_raw.pkl", data)
    code, out, _ = run_cli(["data", "verify", "--data", "mosi", "--data-root", tmp_path / "bad"], capsys)
    assert code == 2 and "split 'valid': 'text' has 4 samples but 'labels' has 6" in out


# --- MultiBench parity: padding, alignment on the text start, Acc2 conventions ----------------------------------

def repad(data: dict, split: str, where: str) -> dict:
    """A copy of ``data`` whose ``split`` holds the same sequences padded at the ``front`` (MultiBench's layout),
    the ``back``, or ``half`` and half; all modalities of a sample move together."""
    out = {s: dict(part) for s, part in data.items()}
    text = data[split]["text"]
    for m in ("vision", "audio", "text"):
        x = data[split][m]
        new = np.zeros_like(x)
        for i in range(len(x)):
            valid = np.flatnonzero(text[i].any(-1))
            seq = x[i, valid[0]:valid[-1] + 1]
            pad = x.shape[1] - len(seq)
            front = {"front": pad, "back": 0, "half": pad // 2}[where]
            new[i, front:front + len(seq)] = seq
        out[split][m] = new
    return out


@pytest.mark.parametrize("encoder", ["gru", "transformer"])
def test_predictions_do_not_depend_on_front_padding(tmp_path, capsys, encoder):
    """Acceptance: a model trained on a MultiBench-layout pickle gives the same test predictions (``interplay
    evaluate``) when the same test samples come with more front padding, or with the padding at the back."""
    base = affect_dict("mosi", sizes={"train": 16, "valid": 6, "test": 10}, seed=3)
    assert (base["test"]["text"][:, 0] == 0).all(-1).sum() >= 4  # several test samples are padded
    write(tmp_path / "a" / "mosi_raw.pkl", repad(base, "test", "back"))  # test: no front padding
    write(tmp_path / "b" / "mosi_raw.pkl", repad(base, "test", "front"))  # test: all padding at the front
    write(tmp_path / "c" / "mosi_raw.pkl", repad(base, "test", "half"))
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", "mosi", "--data-root", tmp_path / "a", "--method", "joint",
                            "--out", run, *TINY, "--epochs", "2", "--set", f"model.encoder={encoder}"], capsys)
    assert code == 0, err
    preds = {}
    for name in "abc":
        code, stdout, err = run_cli(["evaluate", run, "--data-root", tmp_path / name, "--out", tmp_path / f"e{name}"],
                                    capsys)
        assert code == 0, err
        preds[name] = (tmp_path / f"e{name}" / "predictions.csv").read_text()
    assert "acc2_gt0" in stdout
    assert len(preds["a"].splitlines()) == 11
    assert preds["a"] == preds["b"] == preds["c"]
    # and the run's own test predictions (written by training, test split as in "a") are the same too
    assert (run / "predictions.csv").read_text() == preds["a"]


def multibench_aligned(part: dict, i: int) -> dict[str, np.ndarray]:
    """MultiBench's ``Affectdataset(aligned=True)``, per sample: every modality from the text's first non-zero
    element on (``start = text.nonzero()[0][0]``)."""
    start = np.nonzero(part["text"][i])[0][0]
    return {m: part[m][i, start:] for m in ("vision", "audio", "text")}


def test_align_text_matches_multibench_slicing(tmp_path):
    data = affect_dict("mosi", seed=5)
    rng = np.random.default_rng(0)
    for part in data.values():  # audio and vision start earlier than the text (e.g. sound before the first word)
        for i in range(len(part["labels"])):
            start = np.flatnonzero(part["text"][i].any(-1))[0]
            if start > 0:
                part["audio"][i, start - 1] = rng.normal(size=part["audio"].shape[-1]) + 5
                part["vision"][i, :start] = 1.5
    write(tmp_path / "mosi_raw.pkl", data)
    plain = mosi(root=str(tmp_path), standardize=False)
    aligned = mosi(root=str(tmp_path), standardize=False, align_text=True)
    assert aligned.info.extra["aligned_on_text_start"]["non_zero_steps_dropped"]["train"] > 0
    for split, ours in (("train", aligned.train), ("valid", aligned.val), ("test", aligned.test)):
        part = data[split]
        for i in range(len(part["labels"])):
            ref = multibench_aligned(part, i)
            for m in ("vision", "audio", "text"):
                x = ours.inputs[m][i].numpy()
                steps = np.flatnonzero(x.any(-1))
                assert np.array_equal(x[steps[0]:], ref[m]), (split, i, m)  # the span is MultiBench's sequence
    # without the option audio/vision keep their earlier steps
    assert (plain.train.inputs["vision"].ne(0).any(-1).sum() > aligned.train.inputs["vision"].ne(0).any(-1).sum())
    assert torch.equal(plain.train.inputs["text"], aligned.train.inputs["text"])


def test_acc2_conventions_side_by_side():
    """``acc2`` (non-zero), ``acc2_has0`` (>= 0) and ``acc2_gt0`` (MultiBench's ``> 0``, every sample) on a case
    where they differ: MultiBench's eval_affect(exclude_zero=False) re-implemented with scikit-learn."""
    from sklearn.metrics import accuracy_score, f1_score

    from interplay.metrics import regression_metrics

    target = torch.tensor([0.0, 0.0, 1.2, -0.4, 2.0, -3.0, 0.0, 0.6])
    pred = torch.tensor([0.3, -0.2, 0.8, 0.1, 1.9, -2.5, -0.05, -0.1])
    m = regression_metrics(pred, target)
    t, p = target.numpy(), pred.numpy()
    assert m["acc2_gt0"] == pytest.approx(accuracy_score(t > 0, p > 0)) == pytest.approx(5 / 8)
    assert m["f1_gt0"] == pytest.approx(f1_score(t > 0, p > 0, average="weighted"))
    assert m["acc2_has0"] == pytest.approx(4 / 8)  # zeros count as the non-negative class here
    assert m["acc2"] == pytest.approx(3 / 5)  # zeros left out
