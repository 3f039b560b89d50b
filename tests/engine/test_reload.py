"""Reloading a trained run: ``load_run``, ``interplay evaluate`` and ``interplay predict`` give the training
numbers back, on the run's own test split, on other data and on new inputs; bad input is one line and exit 2."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

import interplay
import interplay.objectives as interplay_objectives
from interplay.data import pid_xor
from interplay.engine import evaluate, split_metrics, train
from interplay.engine import reload as reload_mod
from interplay.engine.reload import (
    SETUP_NEEDS_TRAIN_DATA,
    Predictions,
    data_info_from_dict,
    data_info_to_dict,
    evaluate_run,
    load_run,
    load_run_and_data,
    write_data_info,
)
from interplay.errors import DataError

from ..conftest import make_config, run_cli

TINY = ["--set", "model.encoder_hidden=[16]", "--set", "model.fusion_hidden=[16]"]


def _pid_xor(**params):
    return pid_xor(seed=0, n_train=400, n_test=200, val_fraction=0.1, root=None, **params)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny joint run on pid-xor, trained through the command line."""
    out = tmp_path_factory.mktemp("reload") / "run"
    from interplay.cli import main

    code = main(["train", "--data", "pid-xor", "--method", "joint", "--n-train", "400", "--n-test", "200",
                 "--epochs", "2", "--quiet", *TINY, "--out", str(out)])
    assert code == 0
    return out


def _read(path):
    return json.loads(path.read_text())


def _rows(path):
    with path.open() as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------------ load_run
def test_load_run_gives_the_trained_model(run_dir):
    run = interplay.load_run(run_dir)
    assert run.config.method.name == "joint" and run.config.model.encoder_hidden == [16]
    assert run.info.modalities == {"x1": (32,), "x2": (32,)} and run.info.num_classes == 2
    assert run.metrics == _read(run_dir / "metrics.json")
    assert not run.model.training and not run.objective.training
    best = torch.load(run_dir / "best.pt", weights_only=True)
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, best["model"][k])
    assert run.checkpoint["epoch"] == run.metrics["best_epoch"]


def test_checkpoints_are_only_loaded_weights_only(run_dir, monkeypatch):
    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_run(run_dir)
    assert calls and all(c is True for c in calls)


def test_data_info_round_trip_and_no_data_needed(run_dir, tmp_path, monkeypatch):
    info = _pid_xor().info
    d = data_info_to_dict(info)
    assert json.loads(json.dumps(d)) == d  # JSON-safe
    back = data_info_from_dict(d)
    assert back == info and isinstance(back.modalities["x1"], tuple) and isinstance(back.interactions, tuple)

    assert _read(run_dir / "data_info.json") == d  # the trainer wrote it
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "data_info.json").unlink()
    write_data_info(copy, info)
    assert _read(copy / "data_info.json")["modalities"] == {"x1": [32], "x2": [32]}

    def no_data(cfg):
        raise AssertionError("the dataset was rebuilt although data_info.json exists")

    x = {m: v[:5] for m, v in _pid_xor().test.inputs.items()}
    expected = load_run(run_dir).model(x)
    monkeypatch.setattr(reload_mod, "build_data", no_data)
    run = load_run(copy)
    assert run.info == info
    assert torch.equal(run.model(x), expected)


def test_older_run_without_data_info_rebuilds_the_dataset(run_dir, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(run_dir, copy)
    (copy / "data_info.json").unlink(missing_ok=True)
    assert load_run(copy).info == _pid_xor().info


# ------------------------------------------------------------------------------------------ evaluate
def test_evaluate_equals_the_training_test_metrics(run_dir, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    code, out, err = run_cli(["evaluate", run_dir, "--out", tmp_path / "E"], capsys)
    assert code == 0, err
    trained = _read(run_dir / "metrics.json")["test"]
    got = _read(tmp_path / "E" / "metrics.json")
    assert got["test"] == trained  # accuracy, macro_f1, auroc, loss, accuracy_by_interaction: exactly
    assert set(got["test"]["accuracy_by_interaction"]) == {"unique1", "unique2", "redundant", "synergistic"}
    assert got["method"] == "joint" and got["data"] == "pid-xor" and got["samples"] == 200
    assert (tmp_path / "E" / "predictions.csv").read_text() == (run_dir / "predictions.csv").read_text()
    assert f"{trained['accuracy']:.4f}" in out and "test synergistic" in out
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before  # run untouched


def test_evaluate_on_another_mix_equals_a_direct_computation(run_dir, tmp_path, capsys):
    code, _, err = run_cli(["evaluate", run_dir, "--data", "pid-xor", "--set", "data.mix=synergistic=1",
                            "--out", tmp_path / "E2"], capsys)
    assert code == 0, err
    got = _read(tmp_path / "E2" / "metrics.json")["test"]
    by = got["accuracy_by_interaction"]
    assert by["synergistic"] is not None and all(by[k] is None for k in ("unique1", "unique2", "redundant"))

    run = load_run(run_dir)
    data = _pid_xor(mix="synergistic=1")
    out = evaluate(run.objective, run.model, data.test, 256)
    direct = split_metrics(out, data.info, run.objective, detailed=True)
    acc = float((out.logits.argmax(-1) == data.test.target).float().mean())
    assert got["accuracy"] == pytest.approx(acc, abs=0) and by["synergistic"] == pytest.approx(acc, abs=0)
    assert got["macro_f1"] == direct["macro_f1"] and got["loss"] == direct["loss"]
    assert _read(tmp_path / "E2" / "metrics.json")["data_config"]["mix"] == "synergistic=1"
    # the Python API gives the same, without writing anything
    assert evaluate_run(run_dir, {"mix": "synergistic=1"})["test"] == got


# ------------------------------------------------------------------------------------------ predict
def test_predict_equals_the_model(run_dir, tmp_path, capsys):
    test = _pid_xor().test
    x = {m: v[:50] for m, v in test.inputs.items()}
    np.savez(tmp_path / "x.npz", **{m: v.numpy() for m, v in x.items()})
    torch.save(x, tmp_path / "x.pt")
    code, out, err = run_cli(["predict", run_dir, "--inputs", tmp_path / "x.npz", "--out", tmp_path / "p.csv"],
                             capsys)
    assert code == 0, err
    assert "50 predictions written" in out
    rows = _rows(tmp_path / "p.csv")
    assert list(rows[0]) == ["index", "pred", "prob_0", "prob_1"] and len(rows) == 50

    run = load_run(run_dir)
    with torch.no_grad():
        logits = run.model(x)  # joint's prediction is the model's own forward
    probs = torch.softmax(logits, -1)
    assert [int(r["index"]) for r in rows] == list(range(50))
    assert [int(r["pred"]) for r in rows] == logits.argmax(-1).tolist()
    for c in range(2):
        assert [float(r[f"prob_{c}"]) for r in rows] == pytest.approx(probs[:, c].tolist(), abs=1e-6)
    # the training run's predictions.csv says the same for these samples
    trained = _rows(run_dir / "predictions.csv")[:50]
    assert [r["pred"] for r in rows] == [r["pred"] for r in trained]

    p = interplay.predict(run_dir, x)
    assert isinstance(p, Predictions) and torch.equal(p.logits, logits) and torch.equal(p.pred, logits.argmax(-1))
    assert torch.allclose(p.probs, probs)
    assert torch.equal(run.predict({m: v.numpy() for m, v in x.items()}).logits, logits)  # arrays are fine too

    code, _, err = run_cli(["predict", run_dir, "--inputs", tmp_path / "x.pt", "--out", tmp_path / "q.csv"], capsys)
    assert code == 0, err
    assert (tmp_path / "q.csv").read_text() == (tmp_path / "p.csv").read_text()


def test_regression_predictions_have_no_probabilities():
    p = Predictions(torch.tensor([[0.5], [-1.25]]), task="regression")
    header, rows = p.rows()
    assert header == ["index", "pred"] and rows == [[0, 0.5], [1, -1.25]] and p.probs is None


# ------------------------------------------------------------------------------------------ errors
def _inputs(tmp_path, name="bad.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _good(n=4):
    return np.zeros((n, 32), dtype=np.float32)


@pytest.mark.parametrize("case, expected", [
    ("missing_dir", "run directory not found"),
    ("empty_dir", "not a finished Interplay run (no config.yaml)"),
    ("no_best", "not a finished Interplay run (no best.pt"),
    ("pickled_object", "cannot be loaded as a weights-only checkpoint"),
    ("corrupt_checkpoint", "cannot be loaded as a weights-only checkpoint"),
    ("unknown_modality", "unknown modality 'x3'"),
    ("missing_modality", "missing modality 'x2'"),
    ("wrong_shape", "modality 'x2' has shape (4, 31)"),
    ("different_counts", "different numbers of samples (x1: 4, x2: 3)"),
    ("nan", "modality 'x1' contains NaN or inf (first at sample 2)"),
    ("object_array", "not a readable .npz"),
    ("bad_suffix", "expected a .npz or .pt file"),
    ("missing_inputs", "inputs file not found"),
    ("out_in_run", "inside the run directory"),
])
def test_predict_errors_are_one_line(case, expected, run_dir, tmp_path, capsys):
    run, inputs, out = run_dir, _inputs(tmp_path, x1=_good(), x2=_good()), tmp_path / "p.csv"
    if case == "missing_dir":
        run = tmp_path / "nope"
    elif case == "empty_dir":
        run = tmp_path / "empty"
        run.mkdir()
    elif case in ("no_best", "pickled_object", "corrupt_checkpoint"):
        run = tmp_path / "broken"
        run.mkdir()
        shutil.copy(run_dir / "config.yaml", run / "config.yaml")
        if case == "pickled_object":  # an arbitrary object: only an unrestricted unpickler would build it
            torch.save({"model": {}, "objective": {}, "payload": _Payload()}, run / "best.pt")
        elif case == "corrupt_checkpoint":
            (run / "best.pt").write_bytes(b"not a checkpoint")
    elif case == "unknown_modality":
        inputs = _inputs(tmp_path, x1=_good(), x2=_good(), x3=_good())
    elif case == "missing_modality":
        inputs = _inputs(tmp_path, x1=_good())
    elif case == "wrong_shape":
        inputs = _inputs(tmp_path, x1=_good(), x2=np.zeros((4, 31), dtype=np.float32))
    elif case == "different_counts":
        inputs = _inputs(tmp_path, x1=_good(4), x2=_good(3))
    elif case == "nan":
        bad = _good()
        bad[2, 5] = np.nan
        inputs = _inputs(tmp_path, x1=bad, x2=_good())
    elif case == "object_array":
        inputs = _inputs(tmp_path, x1=np.array([{"a": 1}] * 4, dtype=object), x2=_good())
    elif case == "bad_suffix":
        inputs = tmp_path / "x.csv"
        inputs.write_text("1,2\n")
    elif case == "missing_inputs":
        inputs = tmp_path / "absent.npz"
    elif case == "out_in_run":
        out = run_dir / "preds.csv"
    code, stdout, err = run_cli(["predict", run, "--inputs", inputs, "--out", out], capsys)
    assert code == 2 and stdout == ""
    assert err.startswith("interplay: error: ") and err.count("\n") == 1 and expected in err, err
    assert not (run_dir / "preds.csv").exists()


class _Payload:
    pass


@pytest.mark.parametrize("args, expected", [
    (["--set", "data.dim=16"], "modality 'x1' has per-sample shape (16,); the model of"),
    (["--set", "data.modalities=3"], "has modalities x1, x2, x3;"),
    (["--set", "method.lam=1"], "evaluate takes data.KEY=VALUE only"),
    (["--set", "data.nope=1"], "unknown config key data.nope"),
    (["--data", "no-such-data"], "unknown dataset 'no-such-data'"),
])
def test_evaluate_errors_are_one_line(args, expected, run_dir, tmp_path, capsys):
    code, _, err = run_cli(["evaluate", run_dir, *args, "--out", tmp_path / "E"], capsys)
    assert code == 2 and err.startswith("interplay: error: ") and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "E" / "metrics.json").exists()


@pytest.mark.parametrize("where", ["run", "inside"])
def test_evaluate_never_writes_into_the_run(where, run_dir, capsys):
    out = run_dir if where == "run" else run_dir / "eval"
    code, _, err = run_cli(["evaluate", run_dir, "--out", out], capsys)
    assert code == 2 and "inside the run directory" in err and err.count("\n") == 1
    assert not (run_dir / "eval").exists()


def test_load_run_errors_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="run directory not found"):
        load_run(tmp_path / "missing")


# ------------------------------------------------------------------------------------------ other methods
@pytest.mark.parametrize("method, epochs", [("dmil", 3), ("omib", 3)])
def test_multi_stage_methods_reload_and_evaluate_as_trained(method, epochs, tmp_path, monkeypatch):
    cfg = make_config(method, epochs=epochs, n_train=400, n_test=200,
                      model={"encoder_hidden": [16], "fusion_hidden": [16]})
    metrics = train(cfg, tmp_path / "run")
    stages = {json.loads(line)["stage"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()}
    assert len(stages) >= 2  # a multi-stage run: the final weights are the last stage's best
    got = evaluate_run(tmp_path / "run", out=tmp_path / "E")
    saved = _read(tmp_path / "run" / "metrics.json")["test"]
    assert got["test"]["accuracy"] == saved["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert got["test"] == saved  # every test metric, DMIL's gate statistics included
    assert (tmp_path / "E" / "predictions.csv").read_text() == (tmp_path / "run" / "predictions.csv").read_text()
    assert (method in SETUP_NEEDS_TRAIN_DATA) == (method == "omib")
    if method == "dmil":
        assert "gate_agreement" in got["test"]
    # the run with its data: built once, whether the objective's setup needed it (omib) or not (dmil)
    builds = []
    real = reload_mod.build_data
    monkeypatch.setattr(reload_mod, "build_data", lambda cfg: builds.append(1) or real(cfg))
    run, data = load_run_and_data(tmp_path / "run")
    assert len(builds) == 1 and len(data.test) == 200 and data.info.name == run.info.name
    assert torch.equal(data.test.target, _pid_xor().test.target)  # the run's own split


# ------------------------------------------------------------------------------------------ setup data
class _SeesData(interplay_objectives.Objective):
    """Records how many training samples ``setup`` saw; ``fails_without_samples``: raises on none."""

    description = "test objective"
    fails_without_samples = False
    seen: list[int] = []

    def setup(self, model, data):
        super().setup(model, data)
        type(self).seen.append(len(data.train))
        if self.fails_without_samples and not len(data.train):
            raise ValueError("no samples")

    def forward(self, model, batch, state):
        logits = model(batch.inputs)
        loss = self.task_loss(logits, batch.target)
        return interplay_objectives.ObjectiveOutput(loss, logits, {"task": loss.detach()})


@pytest.mark.parametrize("variant", ["no_samples", "declared", "fallback"])
def test_setup_gets_training_data_only_when_needed(variant, tmp_path, monkeypatch):
    cls = type("SeesData", (_SeesData,), {"seen": []})
    if variant == "declared":
        cls.setup_needs_data = True
    if variant == "fallback":
        cls.fails_without_samples = True
    monkeypatch.setitem(interplay_objectives.METHODS._items, "sees_data", cls)
    train(make_config("sees_data", epochs=1, n_train=400, n_test=200,
                      model={"encoder_hidden": [16], "fusion_hidden": [16]}), tmp_path / "run")
    write_data_info(tmp_path / "run", _pid_xor().info)
    cls.seen.clear()
    run = load_run(tmp_path / "run")
    assert cls.seen == {"no_samples": [0], "declared": [360], "fallback": [0, 360]}[variant]
    assert evaluate_run(tmp_path / "run")["test"] == _read(tmp_path / "run" / "metrics.json")["test"]
    assert not run.objective.training
