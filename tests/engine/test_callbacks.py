"""Callbacks (``Trainer(..., callbacks=[...])``) and the loggers ``train.loggers`` names (tensorboard)."""

import json
import sys

import pytest
import yaml

from interplay.config import RunConfig
from interplay.engine import Trainer
from interplay.engine.callbacks import LOGGERS, Callback, flatten_numbers
from interplay.engine.trainer import resolve_config
from interplay.errors import ConfigError

from ..conftest import interrupted_after, make_config, run_cli

TINY = ["--data", "pid-xor", "--method", "joint", "--n-train", "400", "--n-test", "200", "--epochs", "3",
        "--set", "model.encoder_hidden=[16]", "--set", "model.fusion_hidden=[16]", "--quiet"]
MISSING = ("train.loggers: tensorboard needs the optional dependency tensorboard "
           "(pip install 'interplay[tensorboard]')")


class Recorder(Callback):
    def __init__(self):
        self.starts, self.rows, self.ends = [], [], []

    def on_fit_start(self, trainer, config):
        self.starts.append(config)

    def on_epoch_end(self, trainer, row):
        if trainer.out is not None:  # log.jsonl is written first
            assert json.dumps(row) in (trainer.out / "log.jsonl").read_text().splitlines()
        self.rows.append(row)

    def on_fit_end(self, trainer, metrics):
        self.ends.append(metrics)


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


def test_callback_sees_the_log_rows_and_metrics(tmp_path):
    rec = Recorder()
    metrics = Trainer(make_config(epochs=3), tmp_path / "run", quiet=True, callbacks=[rec]).fit()
    assert rec.starts == [yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())]
    assert rec.rows == _log(tmp_path / "run") and len(rec.rows) == 3
    assert rec.ends == [_metrics(tmp_path / "run")] == [metrics]
    again = Recorder()  # a complete run is not recomputed: no calls
    Trainer(make_config(epochs=3), tmp_path / "run", quiet=True, callbacks=[again]).fit()
    assert again.starts == again.rows == again.ends == []


def test_callback_in_memory_run():
    rec = Recorder()
    trainer = Trainer(make_config(epochs=2), None, quiet=True, callbacks=[rec])
    metrics = trainer.fit()
    assert rec.rows == json.loads(json.dumps(trainer.log)) and len(rec.starts) == 1
    assert rec.ends == [json.loads(json.dumps(metrics))]


def test_resumed_run_calls_back_only_for_its_own_epochs(tmp_path, monkeypatch):
    cfg = make_config(epochs=4)
    first = Recorder()
    with interrupted_after(2), pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "run", quiet=True, callbacks=[first]).fit()
    assert [r["epoch"] for r in first.rows] == [1] and len(first.starts) == 1 and first.ends == []
    second = Recorder()
    Trainer(cfg, tmp_path / "run", quiet=True, callbacks=[second]).fit()
    assert len(second.starts) == 1
    assert second.rows == _log(tmp_path / "run")[2:] and [r["epoch"] for r in second.rows] == [3, 4]
    assert second.ends == [_metrics(tmp_path / "run")]


def test_flatten_numbers():
    row = {"epoch": 1, "lr": 0.1, "best": True, "stage": "main", "val": {"accuracy": 0.5, "x": None,
                                                                         "by": {"synergistic": 1}}}
    assert flatten_numbers(row) == {"epoch": 1.0, "lr": 0.1, "val/accuracy": 0.5, "val/by/synergistic": 1.0}


def test_unknown_logger_is_one_line(capsys):
    cfg = make_config(train={"loggers": ["nope"]})
    with pytest.raises(ConfigError) as err:
        resolve_config(cfg)
    assert str(err.value) == f"train.loggers: unknown logger 'nope'; expected one of: {', '.join(LOGGERS.names())}"
    assert "tensorboard" in LOGGERS.names()
    code, _, stderr = run_cli(["train", *TINY, "--set", "train.loggers=[nope]", "--out", "unused"], capsys)
    assert code == 2 and stderr.strip().count("\n") == 0 and "train.loggers: unknown logger 'nope'" in stderr


def test_default_has_no_loggers():
    cfg = resolve_config(RunConfig())
    assert cfg.train.loggers == [] and Trainer(make_config()).callbacks == []


def test_missing_tensorboard_is_one_line_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as without the package
    with pytest.raises(ConfigError) as err:
        resolve_config(make_config(train={"loggers": ["tensorboard"]}))
    assert str(err.value) == MISSING
    with pytest.raises(ConfigError, match="optional dependency tensorboard"):
        LOGGERS.get("tensorboard")()
    code, _, stderr = run_cli(["train", *TINY, "--set", "train.loggers=[tensorboard]", "--out", tmp_path / "r"],
                              capsys)
    assert code == 2 and stderr == f"interplay: error: {MISSING}\n"
    assert not (tmp_path / "r").exists()


def _events(run):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = accumulator.EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc, {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def _check_events_match_the_run(run, epochs):
    acc, scalars = _events(run)
    log = _log(run)
    for row in log:
        flat = flatten_numbers({k: v for k, v in row.items() if k != "epoch"})
        assert {"train/loss", "val/accuracy", "lr"} <= set(flat)
        for tag, value in flat.items():
            assert scalars[tag][row["epoch"]] == pytest.approx(value, rel=1e-6, abs=1e-7), tag
    for tag in ("train/loss", "val/accuracy", "lr"):
        assert sorted(scalars[tag]) == [r["epoch"] for r in log] == epochs
    by_interaction = {t for t in scalars if t.startswith("val/accuracy_by_interaction/")}
    # every epoch's validation accuracy per interaction (pid-xor's default mix: redundant and synergistic samples)
    assert by_interaction == {"val/accuracy_by_interaction/redundant", "val/accuracy_by_interaction/synergistic"}
    assert all(t.removeprefix("val/") in flatten_numbers(log[0]["val"]) for t in by_interaction)
    test = flatten_numbers({"test": _metrics(run)["test"]})
    assert "test/accuracy" in test and "test/accuracy_by_interaction/synergistic" in test
    for tag, value in test.items():
        assert list(scalars[tag].values()) == [pytest.approx(value, rel=1e-6, abs=1e-7)], tag
    assert "config/text_summary" in acc.Tags()["tensors"]
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")


def test_tensorboard_logger_from_the_command_line(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    run = tmp_path / "R"
    code, _, err = run_cli(["train", *TINY, "--set", "train.loggers=[tensorboard]", "--out", run], capsys)
    assert code == 0, err
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    _check_events_match_the_run(run, [1, 2, 3])


def test_tensorboard_logger_with_schedule_and_early_stopping(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    run = tmp_path / "R"
    code, _, err = run_cli(["train", *TINY, "--epochs", "8", "--set", "train.scheduler=cosine", "--set",
                            "train.warmup_epochs=2", "--set", "train.patience=3", "--set",
                            "train.loggers=[tensorboard]", "--out", run], capsys)
    assert code == 0, err
    log = _log(run)
    _, scalars = _events(run)
    assert {r["epoch"]: pytest.approx(r["lr"], rel=1e-6) for r in log} == scalars["lr"]
    assert len({r["lr"] for r in log}) > 2  # the schedule changed it
    _check_events_match_the_run(run, [r["epoch"] for r in log])


def test_tensorboard_logger_added_on_resume_logs_the_new_epochs(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    with interrupted_after(2), pytest.raises(KeyboardInterrupt):
        Trainer(make_config(epochs=4), tmp_path / "run", quiet=True).fit()
    Trainer(make_config(epochs=4, train={"loggers": ["tensorboard"]}), tmp_path / "run", quiet=True).fit()
    _, scalars = _events(tmp_path / "run")
    assert sorted(scalars["train/loss"]) == [3, 4]
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["loggers"] == ["tensorboard"]


def test_spawned_ddp_run_calls_back_once_per_epoch(tmp_path):
    """Two spawned ranks: the constructor's callbacks run in this process after the ranks finish; rank 0 alone
    writes the tensorboard events."""
    pytest.importorskip("tensorboard")
    rec = Recorder()
    cfg = make_config(epochs=2, n_train=200, n_test=100, train={"devices": 2, "strategy": "ddp",
                                                                "loggers": ["tensorboard"]})
    metrics = Trainer(cfg, tmp_path / "run", quiet=True, callbacks=[rec]).fit()
    assert len(rec.starts) == 1 and rec.rows == _log(tmp_path / "run") and rec.ends == [metrics]
    assert len(list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))) == 1
    _check_events_match_the_run(tmp_path / "run", [1, 2])
