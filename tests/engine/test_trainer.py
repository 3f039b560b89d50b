import csv
import json

import pytest
import torch
import yaml

from interplay.engine import Trainer, train
from interplay.engine.trainer import Trainer as TrainerClass
from interplay.errors import ConfigError

from ..conftest import interrupted_after, make_config


def test_run_directory_contents(tmp_path):
    cfg = make_config("multi_loss", epochs=2, data={"mix": "redundant=0.5,synergistic=0.5"})
    metrics = train(cfg, tmp_path / "run")
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "metrics.json", "log.jsonl", "predictions.csv",
                                                "env.json", "best.pt", "last.pt"}
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["test"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    by = saved["test"]["accuracy_by_interaction"]
    assert set(by) == {"unique1", "unique2", "redundant", "synergistic"} and by["unique1"] is None
    assert set(saved["test"]["agreement_groups"]) == {"none_right", "only_x1", "only_x2", "all_right"}
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and all(r["stage"] == "main" for r in log)
    assert {"loss", "task", "uni_x1", "uni_x2", "accuracy"} <= set(log[0]["train"])
    rows = list(csv.DictReader((run / "predictions.csv").open()))
    assert len(rows) == 400 and list(rows[0])[:5] == ["index", "target", "pred", "prob_0", "prob_1"]
    assert {"interaction", "pred_x1", "pred_x2"} <= set(rows[0])
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["method"] == {"name": "multi_loss", "w": 1.0} and resolved["data"]["dim"] == 32
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 0 and env["device"] == "cpu" and env["torch"] == torch.__version__


def test_same_seed_same_metrics_and_seed_matters():
    a = train(make_config("ogm_ge", epochs=2))
    b = train(make_config("ogm_ge", epochs=2))
    c = train(make_config("ogm_ge", epochs=2, seed=1))
    assert a["test"] == b["test"] and a["val"] == b["val"]
    assert a["test"] != c["test"]


class Interrupt(Exception):
    pass


def test_resume_after_interruption_equals_uninterrupted(tmp_path, monkeypatch):
    cfg = make_config("ogm_ge", epochs=4)  # GE noise makes the global RNG state matter
    full = train(cfg, tmp_path / "full")
    with interrupted_after(2), pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut")
    assert not (tmp_path / "cut" / "metrics.json").exists()
    assert len((tmp_path / "cut" / "log.jsonl").read_text().splitlines()) == 2
    resumed = train(cfg, tmp_path / "cut")
    assert resumed["test"] == full["test"] and resumed["val"] == full["val"]
    strip = [{k: v for k, v in json.loads(line).items() if k != "time_s"}
             for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    strip2 = [{k: v for k, v in json.loads(line).items() if k != "time_s"}
              for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert strip == strip2


def test_finished_run_is_not_recomputed(tmp_path, monkeypatch):
    cfg = make_config(epochs=1)
    first = train(cfg, tmp_path / "r")
    monkeypatch.setattr(TrainerClass, "_train_epoch", lambda *a, **k: pytest.fail("retrained"))
    assert train(cfg, tmp_path / "r") == json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert first["test"]["accuracy"] == pytest.approx(train(cfg, tmp_path / "r")["test"]["accuracy"])


def test_different_config_is_refused_and_nothing_lost(tmp_path):
    train(make_config(epochs=1), tmp_path / "r")
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    expected = r"holds a run with a different config \(train.epochs: 1 in the directory, 2 now\)"
    with pytest.raises(ConfigError, match=expected):
        train(make_config(epochs=2), tmp_path / "r")
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before


def test_directory_of_a_run_that_failed_before_training_is_reused(tmp_path):
    from interplay.errors import DataError

    with pytest.raises(DataError):  # loading the data fails before anything is written
        train(make_config(dataset="features", data={"root": str(tmp_path / "missing")}), tmp_path / "r")
    assert not (tmp_path / "r").exists()
    (tmp_path / "r").mkdir()  # a directory holding only the config.yaml of a run that never trained (older Interplay)
    (tmp_path / "r" / "config.yaml").write_text(make_config(epochs=5, seed=9).to_yaml())
    metrics = train(make_config(epochs=1), tmp_path / "r")  # another config: nothing was trained, no refusal
    assert (tmp_path / "r" / "metrics.json").exists() and metrics["test"]["accuracy"] > 0
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["data"]["name"] == "pid-xor"


def test_foreign_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no Interplay run"):
        train(make_config(epochs=1), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_best_validation_checkpoint_is_tested():
    trainer = Trainer(make_config("joint", epochs=4), None)
    metrics = trainer.fit()
    best = max(trainer.log, key=lambda r: r["val"]["accuracy"])
    first_best = next(r for r in trainer.log if r["val"]["accuracy"] == best["val"]["accuracy"])
    assert metrics["best_epoch"] == first_best["epoch"]
    assert metrics["val"]["accuracy"] == pytest.approx(first_best["val"]["accuracy"])


def test_cuda_request_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="train.device: 'cuda' requested but no CUDA device"):
        Trainer(make_config(train={"device": "cuda"}), None)


def test_labels_out_of_range(monkeypatch):
    from interplay.data import DATASETS

    builder = DATASETS.get("pid-xor")

    def bad(**kw):
        s = builder(**kw)
        s.train.target[3] = 5
        return s

    monkeypatch.setitem(DATASETS._items, "pid-xor", bad)
    with pytest.raises(Exception, match=r"pid-xor/train: labels must lie in \[0, 2\), found range \[0, 5\]"):
        train(make_config(epochs=1))


def test_regression_run(tmp_path):
    cfg = make_config("multi_loss", dataset="gaussian-split", epochs=10, data={"task": "regression"})
    metrics = train(cfg, tmp_path / "r")
    assert {"mae", "corr", "acc7", "acc2", "f1", "acc2_has0", "f1_has0"} <= set(metrics["test"])
    assert metrics["test"]["acc2"] > 0.6 and metrics["test"]["mae"] < 1.5
    rows = list(csv.DictReader((tmp_path / "r" / "predictions.csv").open()))
    assert list(rows[0]) == ["index", "target", "pred", "pred_x1", "pred_x2"]
    assert "agreement_groups" in metrics["test"]
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["val"]["mae"] >= 0


def test_unimodal_reference_models_give_agreement_groups(tmp_path):
    cfg = make_config("joint", epochs=2, data={"mix": "unique1=0.5,synergistic=0.5"},
                      train={"unimodal_reference": True})
    metrics = train(cfg, tmp_path / "r")
    test = metrics["test"]
    assert test["agreement_source"] == "reference"
    assert set(test["agreement_groups"]) == {"none_right", "only_x1", "only_x2", "all_right"}
    assert sum(g["n"] for g in test["agreement_groups"].values()) == 400
    for m in ("x1", "x2"):
        assert (tmp_path / "r" / "unimodal" / m / "metrics.json").exists()
    uni = json.loads((tmp_path / "r" / "unimodal" / "x1" / "metrics.json").read_text())
    assert test["unimodal_accuracy"]["x1"] == pytest.approx(uni["test"]["accuracy"])
    rows = list(csv.DictReader((tmp_path / "r" / "predictions.csv").open()))
    assert {"ref_pred_x1", "ref_pred_x2"} <= set(rows[0])
    # another method reads the same reference models instead of retraining them
    other = make_config("ensemble", epochs=2, data={"mix": "unique1=0.5,synergistic=0.5"},
                        train={"unimodal_from": str(tmp_path / "r" / "unimodal")})
    m2 = train(other)
    assert m2["test"]["agreement_source"] == "reference"
    assert m2["test"]["unimodal_accuracy"] == test["unimodal_accuracy"]
    bad = make_config("joint", epochs=1, seed=5, data={"mix": "unique1=0.5,synergistic=0.5"},
                      train={"unimodal_from": str(tmp_path / "r" / "unimodal")})
    with pytest.raises(ConfigError, match="test samples differ"):
        train(bad)


@pytest.mark.parametrize("check_every, calls", [(4, 10), (1000, 12)])
def test_non_finite_loss_ends_the_run_without_a_sync_per_step(monkeypatch, check_every, calls):
    """The loss is looked at every ``NONFINITE_CHECK_EVERY`` steps and at the end of each epoch (never once per
    step); the one-line error names the first non-finite value and its epoch (6 steps per epoch here)."""
    import interplay.engine.trainer as trainer_module

    original, seen = trainer_module.wrap, []

    def poisoned(model, objective, device):
        step = original(model, objective, device)

        def call(batch, state):
            out = step(batch, state)
            seen.append(1)
            if len(seen) >= 8:  # epoch 2, second step: inf, then nan
                out.loss = out.loss * (float("inf") if len(seen) == 8 else float("nan"))
            return out

        return call

    monkeypatch.setattr(trainer_module, "wrap", poisoned)
    monkeypatch.setattr(TrainerClass, "NONFINITE_CHECK_EVERY", check_every)
    with pytest.raises(FloatingPointError, match=r"^loss became inf at epoch 2 \(method joint\); lower train.lr"):
        train(make_config(epochs=3))
    assert len(seen) == calls


# ------------------------------------------------------------------------------------------ schedules, stopping
def test_lr_factor_per_epoch_of_a_stage():
    from interplay.config import TrainConfig
    from interplay.engine.trainer import lr_factor

    t = TrainConfig(scheduler="cosine", warmup_epochs=2, lr=1.0, min_lr=0.1)
    assert [round(lr_factor(t, e, 6), 4) for e in range(6)] == [0.3333, 0.6667, 1.0, 0.8682, 0.55, 0.2318]
    t = TrainConfig(scheduler="step", step_size=2, gamma=0.5)
    assert [lr_factor(t, e, 5) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    t = TrainConfig(scheduler="onecycle", lr=1.0)
    assert [round(lr_factor(t, e, 10), 4) for e in range(4)] == [0.04, 0.36, 0.68, 1.0]
    assert lr_factor(TrainConfig(), 7, 10) == 1.0


@pytest.mark.parametrize("key, value, message", [
    ("scheduler", "linear", "train.scheduler: expected one of none, cosine, step, onecycle, got 'linear'"),
    ("warmup_epochs", -1, "train.warmup_epochs: expected a non-negative integer, got -1"),
    ("step_size", 0, "train.step_size: expected a positive integer, got 0"),
    ("gamma", 0.0, "train.gamma: expected a finite positive number, got 0.0"),
    ("min_lr", 1.0, "train.min_lr: expected at most train.lr (0.0003), got 1"),
    ("patience", 0, "train.patience: expected a positive integer (or null: no early stopping), got 0"),
    ("accumulate", 0, "train.accumulate: expected a positive integer, got 0"),
])
def test_schedule_options_are_validated_in_one_line(key, value, message):
    from interplay.engine.trainer import resolve_config

    with pytest.raises(ConfigError) as err:
        resolve_config(make_config(train={key: value}))
    assert str(err.value) == message


def test_schedule_is_fresh_per_stage_and_logged(tmp_path):
    train(make_config("dmil", epochs=6, train={"scheduler": "step", "step_size": 1, "gamma": 0.5}), tmp_path / "r")
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert len({r["stage"] for r in log}) > 1 and any(r["stage_epoch"] > 2 for r in log)
    for r in log:  # each stage starts at its own learning rate and halves it every epoch
        first = [x for x in log if x["stage"] == r["stage"]][0]
        assert first["stage_epoch"] == 1 and r["lr"] == pytest.approx(first["lr"] * 0.5 ** (r["stage_epoch"] - 1))


def test_accumulation_of_two_half_batches_is_one_batch():
    """Same shuffled order, mean losses: two accumulated batches of 32 give the gradient of one batch of 64."""
    cfg = dict(n_train=480, data={"val_fraction": 0.2}, epochs=2)
    one = train(make_config(**cfg, train={"batch_size": 64}))
    two = train(make_config(**cfg, train={"batch_size": 32, "accumulate": 2}))
    assert two["val"]["loss"] == pytest.approx(one["val"]["loss"], abs=1e-5)


def test_early_stopping_is_recorded():
    metrics = train(make_config(epochs=6, train={"lr": 1e-12, "patience": 2}))  # nothing improves after epoch 1
    assert metrics["epochs"] == 3 and metrics["early_stopped"] == {"main": 3}
    assert "early_stopped" not in train(make_config(epochs=1))


@pytest.mark.parametrize("train_options", [
    {"scheduler": "cosine", "warmup_epochs": 1, "accumulate": 2, "min_lr": 1e-5},
    {"lr": 1e-12, "patience": 2, "scheduler": "step", "step_size": 1},  # stops after epoch 3: resumed after 2
])
def test_resume_restores_schedule_and_stopping(tmp_path, monkeypatch, train_options):
    cfg = make_config("ogm_ge", epochs=5, train=train_options)
    full = train(cfg, tmp_path / "full")
    with interrupted_after(2), pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut")
    resumed = train(cfg, tmp_path / "cut")
    assert resumed["test"] == full["test"] and resumed["val"] == full["val"]
    assert resumed.get("early_stopped") == full.get("early_stopped")
    logs = [[{k: v for k, v in json.loads(line).items() if k != "time_s"}
             for line in (tmp_path / run / "log.jsonl").read_text().splitlines()] for run in ("full", "cut")]
    assert logs[0] == logs[1]
    if "patience" in train_options:
        assert [r["stopped"] for r in logs[0]] == [False, False, True]


def test_run_directory_from_before_the_schedule_options_resumes(tmp_path, monkeypatch):
    cfg = make_config(epochs=2)
    with interrupted_after(), pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "r")
    old = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    for key in ("scheduler", "warmup_epochs", "step_size", "gamma", "min_lr", "patience", "accumulate"):
        del old["train"][key]
    (tmp_path / "r" / "config.yaml").write_text(yaml.safe_dump(old))
    assert train(cfg, tmp_path / "r")["epochs"] == 2
    with pytest.raises(ConfigError, match=r"train.patience: None in the directory, 3 now"):
        train(make_config(epochs=2, train={"patience": 3}), tmp_path / "r")
