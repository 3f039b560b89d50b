"""The mlflow logger (``train.loggers: [mlflow]``): the store read back with MLflow's client equals the run
directory (config.yaml, log.jsonl, metrics.json). The tensorboard logger's tests are in test_callbacks.py."""

import json
import sys

import pytest
import yaml

from interplay.engine import Trainer
from interplay.engine.callbacks import LOGGERS, flatten_numbers
from interplay.engine.trainer import resolve_config
from interplay.errors import ConfigError

from ..conftest import interrupted_after, make_config, run_cli

pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402

from interplay.engine.loggers.mlflow import MISSING, config_params, is_local, param_value  # noqa: E402

TINY = ["--data", "pid-xor", "--method", "joint", "--n-train", "400", "--n-test", "200", "--epochs", "3",
        "--set", "model.encoder_hidden=[16]", "--set", "model.fusion_hidden=[16]", "--quiet"]


@pytest.fixture(autouse=True)
def _no_ambient_mlflow(monkeypatch):
    """The user's MLflow settings never leak into a test; reading a file store back needs MLflow 3's opt-in."""
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


def small(**train):
    """A small joint run on pid-xor with the given train options."""
    return make_config(epochs=train.pop("epochs", 2), n_train=200, n_test=100, train=train,
                       model={"encoder_hidden": [16], "fusion_hidden": [16]})


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _store(uri):
    """``(client, the one MLflow run in the store, {metric: {step: value}})``."""
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("interplay")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    history = {key: {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
               for key in run.data.metrics}
    return client, run, history


def _check_store_matches_the_run(run_dir, uri=None):
    client, run, history = _store(uri or (run_dir / "mlruns").resolve().as_uri())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert run.data.params == {f"{s}.{k}": param_value(v) for s, values in config.items() for k, v in values.items()}
    assert run.data.params["train.lr"] == "0.0003" and run.data.params["data.name"] == "pid-xor"
    assert run.data.params["model.encoder_hidden"] == "[16]" and run.data.params["data.root"] == "null"
    assert run.data.params["train.loggers"].startswith('["mlflow"')
    log = _log(run_dir)
    for row in log:
        flat = flatten_numbers({k: v for k, v in row.items() if k != "epoch"})
        assert {"train/loss", "train/accuracy", "val/accuracy", "lr", "val/accuracy_by_interaction/synergistic",
                "val/accuracy_by_interaction/redundant"} <= set(flat)
        for key, value in flat.items():
            assert history[key][row["epoch"]] == value, key  # exactly (MLflow stores doubles)
    for key in ("train/loss", "val/accuracy", "val/accuracy_by_interaction/synergistic"):
        assert sorted(history[key]) == [r["epoch"] for r in log]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = flatten_numbers({"test": metrics["test"]})
    assert {"test/accuracy", "test/accuracy_by_interaction/synergistic"} <= set(test)
    for key, value in test.items():
        assert history[key] == {log[-1]["epoch"]: value}, key
    assert run.info.status == "FINISHED" and run.info.run_name == run_dir.name
    assert run.data.tags["interplay.run_dir"] == str(run_dir.resolve())
    assert run.data.tags["interplay.method"] == "joint"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"config.yaml", "log.jsonl", "metrics.json"}
    assert json.loads((run_dir / "mlflow.json").read_text())["run_id"] == run.info.run_id
    return run, history


def test_mlflow_logger_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "R"
    code, _, err = run_cli(["train", *TINY, "--set", "train.loggers=[mlflow]", "--out", run], capsys)
    assert code == 0, err
    assert (run / "mlruns").is_dir()
    _check_store_matches_the_run(run)


def test_mlflow_logger_with_a_tracking_uri_and_tensorboard(tmp_path, capsys):
    """train.mlflow_tracking_uri puts the run in a shared store; both loggers side by side see the same rows."""
    store = (tmp_path / "shared store").as_uri()  # a space: the URI is quoted
    run = tmp_path / "R"
    code, _, err = run_cli(["train", *TINY, "--set", "train.loggers=[mlflow,tensorboard]", "--set",
                            f"train.mlflow_tracking_uri={store}", "--out", run], capsys)
    assert code == 0, err
    assert not (run / "mlruns").exists() and (tmp_path / "shared store").is_dir()
    mlflow_run, history = _check_store_matches_the_run(run, store)
    assert mlflow_run.data.params["train.mlflow_tracking_uri"] == store
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    for tag in acc.Tags()["scalars"]:
        assert {e.step: pytest.approx(e.value, rel=1e-6) for e in acc.Scalars(tag)} == history[tag], tag


def test_mlflow_tracking_uri_from_the_environment(tmp_path, monkeypatch):
    store = (tmp_path / "env-store").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "interplay")
    Trainer(small(loggers=["mlflow"]), tmp_path / "R", quiet=True).fit()
    assert not (tmp_path / "R" / "mlruns").exists()
    _, run, history = _store(store)
    assert sorted(history["train/loss"]) == [1, 2] and run.data.params["train.mlflow_tracking_uri"] == "null"


def test_mlflow_resumed_run_continues_the_same_mlflow_run(tmp_path):
    cfg = small(epochs=4, loggers=["mlflow"])
    with interrupted_after(2), pytest.raises(KeyboardInterrupt):  # epoch 2 saved, its logger call never made
        Trainer(cfg, tmp_path / "run", quiet=True).fit()
    _, run, history = _store((tmp_path / "run" / "mlruns").resolve().as_uri())
    assert sorted(history["train/loss"]) == [1] and run.info.status == "RUNNING"
    Trainer(cfg, tmp_path / "run", quiet=True).fit()
    run, history = _check_store_matches_the_run(tmp_path / "run")  # still one MLflow run, now with every epoch
    assert sorted(history["train/loss"]) == [1, 2, 3, 4]


def test_mlflow_tracking_uri_may_change_on_resume(tmp_path):
    """The tracking URI only chooses where a run is observed: a resume may name another store, which then gets an
    MLflow run of its own with every epoch (config.yaml records the last URI)."""
    with interrupted_after(2), pytest.raises(KeyboardInterrupt):
        Trainer(small(epochs=3, loggers=["mlflow"]), tmp_path / "run", quiet=True).fit()
    store = (tmp_path / "other").as_uri()
    Trainer(small(epochs=3, loggers=["mlflow"], mlflow_tracking_uri=store), tmp_path / "run", quiet=True).fit()
    _, run, history = _store(store)
    assert sorted(history["train/loss"]) == [1, 2, 3] and run.data.params["train.mlflow_tracking_uri"] == store
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["mlflow_tracking_uri"] == store


def test_mlflow_logger_added_on_resume_logs_the_earlier_epochs_too(tmp_path):
    with interrupted_after(2), pytest.raises(KeyboardInterrupt):
        Trainer(small(epochs=3), tmp_path / "run", quiet=True).fit()
    Trainer(small(epochs=3, loggers=["mlflow"]), tmp_path / "run", quiet=True).fit()
    _, _, history = _store((tmp_path / "run" / "mlruns").resolve().as_uri())
    assert sorted(history["train/loss"]) == [1, 2, 3]
    assert history["train/loss"] == {r["epoch"]: r["train"]["loss"] for r in _log(tmp_path / "run")}


def test_mlflow_run_that_fails_before_its_first_epoch_leaves_nothing(tmp_path, capsys):
    run = tmp_path / "R"
    code, _, err = run_cli(["train", *TINY, "--set", "train.lr=1e30", "--set", "train.loggers=[mlflow,tensorboard]",
                            "--out", run], capsys)
    assert code != 0 and "loss became" in err
    assert not run.exists()  # no mlruns/, no tensorboard/: the directory can be reused
    code, _, err = run_cli(["train", *TINY, "--set", "train.loggers=[mlflow]", "--out", run], capsys)
    assert code == 0, err


def test_in_memory_run_without_a_uri_warns_and_logs_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Trainer(small(epochs=1, loggers=["mlflow"]), None).fit()
    assert "mlflow logs nothing for a run without a run directory" in capsys.readouterr().err
    assert not [p for p in tmp_path.rglob("*") if "mlruns" in p.name or "mlflow" in p.name]


def test_bad_tracking_uri_is_one_line(tmp_path, capsys):
    for uri, expected in (("nosuchscheme://host/x", "train.loggers: mlflow: nosuchscheme://host/x: cannot use "
                                                     "this tracking URI (Model registry"),
                          ("' '", "train.mlflow_tracking_uri: expected an MLflow tracking URI")):
        code, _, err = run_cli(["train", *TINY, "--set", "train.loggers=[mlflow]", "--set",
                                f"train.mlflow_tracking_uri={uri}", "--out", tmp_path / "R"], capsys)
        assert code == 2 and err.startswith(f"interplay: error: {expected}") and err.count("\n") == 1, err
        assert not (tmp_path / "R").exists()


def test_missing_mlflow_is_one_line_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import fails as without the package
    with pytest.raises(ConfigError) as err:
        resolve_config(make_config(train={"loggers": ["mlflow"]}))
    assert str(err.value) == MISSING == ("train.loggers: mlflow needs the optional dependency mlflow "
                                         "(pip install 'interplay[mlflow]')")
    with pytest.raises(ConfigError, match="optional dependency mlflow"):
        LOGGERS.get("mlflow")()
    code, _, stderr = run_cli(["train", *TINY, "--set", "train.loggers=[mlflow]", "--out", tmp_path / "r"], capsys)
    assert code == 2 and stderr == f"interplay: error: {MISSING}\n"
    assert not (tmp_path / "r").exists()


def test_param_values_and_local_uris():
    assert param_value("pid-xor") == "pid-xor" and param_value(None) == "null" and param_value(True) == "true"
    assert param_value([16, 8]) == "[16, 8]" and param_value(0.0003) == "0.0003" and param_value({}) == "{}"
    assert len(param_value("x" * 7000)) == 6000
    assert config_params({"train": {"lr": 0.1, "loggers": ["mlflow"]}}) == {"train.lr": "0.1",
                                                                            "train.loggers": '["mlflow"]'}
    assert is_local("/tmp/mlruns") and is_local("file:///tmp/mlruns") and is_local("mlruns")
    assert not is_local("http://host:5000") and not is_local("databricks") and not is_local("databricks-uc")
    assert not is_local("https://host") and not is_local("sqlite:///x.db")
