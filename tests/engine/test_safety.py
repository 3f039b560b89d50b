"""Reliability and security of one run: checkpoints never execute code, torn checkpoints restart the run, every
value is validated before the run directory is written, failed runs leave nothing behind, resumed runs count
their whole training time."""

from __future__ import annotations

import json
import os

import pytest
import torch

from interplay.config import RunConfig
from interplay.engine import resolve_config, train
from interplay.engine.trainer import Trainer
from interplay.errors import ConfigError, DataError

from ..conftest import interrupted_after, make_config, run_cli

TINY = {"encoder_hidden": [16], "fusion_hidden": [16]}


def tiny(name: str = "ogm_ge", epochs: int = 3, **sections) -> RunConfig:
    sections["model"] = {**TINY, **sections.get("model", {})}
    return make_config(name, epochs=epochs, n_train=120, n_test=60, **sections)


class _Payload:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _interrupted(cfg: RunConfig, out, monkeypatch, after: int) -> None:
    """Train ``cfg`` into ``out`` and stop (KeyboardInterrupt) once epoch ``after`` is saved."""
    with interrupted_after(after), pytest.raises(KeyboardInterrupt):
        train(cfg, out)


# ------------------------------------------------------------------------------------------------ checkpoints
def test_checkpoints_hold_tensors_and_plain_values_only(tmp_path):
    train(tiny(epochs=2), tmp_path / "r")
    for name in ("last.pt", "best.pt"):
        torch.load(tmp_path / "r" / name, weights_only=True)  # raises on anything else


@pytest.mark.parametrize("name", ["last.pt", "best.pt"])
def test_crafted_checkpoint_is_refused_and_never_runs(tmp_path, monkeypatch, capsys, name):
    """The reported attack: a payload written into a run directory ran when the same command was rerun."""
    out, marker = tmp_path / "r", tmp_path / "MARKER"
    _interrupted(tiny(), out, monkeypatch, after=1)
    torch.save({"model": _Payload(marker)}, out / name)
    with pytest.raises(DataError, match=f"{name}: checkpoint not loaded: it references posix.system"):
        train(tiny(), out)
    assert not marker.exists() and not (out / "metrics.json").exists()
    cmd = ["train", "--method", "ogm_ge", "--epochs", "3", "--n-train", "120", "--n-test", "60", "--seed", "0",
           "--set", "model.encoder_hidden=[16]", "--set", "model.fusion_hidden=[16]", "--quiet", "--out", out]
    code, _, err = run_cli(cmd, capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"interplay: error: {out / name}: ")
    assert "not loaded" in err and not marker.exists()


def test_crafted_best_checkpoint_at_a_stage_reload_is_refused(tmp_path, monkeypatch):
    """A multi-stage method (dmil: id, gate, finetune) reloads best.pt when a stage starts; resuming right at a
    stage boundary reads the file written by the earlier invocation."""
    cfg = tiny("dmil", epochs=6)
    stages = [s.epochs for s in __import__("interplay.objectives", fromlist=["build_objective"])
              .build_objective(resolve_config(cfg).method).stages(6)]
    out, marker = tmp_path / "r", tmp_path / "MARKER"
    _interrupted(cfg, out, monkeypatch, after=stages[0])  # the first stage is done, the second reloads best.pt
    torch.save({"model": _Payload(marker), "objective": {}, "epoch": 1, "stage": "id"}, out / "best.pt")
    with pytest.raises(DataError, match="best.pt: checkpoint not loaded: it references posix.system"):
        train(cfg, out)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["empty", "truncated", "best.pt truncated"])
def test_torn_checkpoint_warns_once_and_restarts_from_scratch(tmp_path, monkeypatch, capsys, damage):
    cfg = tiny(epochs=3)
    fresh = train(cfg, tmp_path / "fresh")
    out = tmp_path / "r"
    _interrupted(cfg, out, monkeypatch, after=2)
    capsys.readouterr()
    target = out / ("best.pt" if damage.startswith("best") else "last.pt")
    blob = target.read_bytes()
    target.write_bytes(b"" if damage == "empty" else blob[: len(blob) // 2])
    again = train(cfg, out)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"interplay: warning: {target}: unreadable checkpoint")
    assert "restarting the run from scratch" in err
    assert again["test"] == fresh["test"] and again["val"] == fresh["val"]  # exactly a fresh run
    assert len((out / "log.jsonl").read_text().splitlines()) == 3


def test_truncated_last_checkpoint_on_the_command_line(tmp_path, monkeypatch, capsys):
    out = tmp_path / "r"
    cmd = ["train", "--method", "ogm_ge", "--epochs", "3", "--n-train", "120", "--n-test", "60",
           "--set", "model.encoder_hidden=[16]", "--set", "model.fusion_hidden=[16]", "--quiet", "--out", out]
    _interrupted(tiny(), out, monkeypatch, after=1)
    (out / "last.pt").write_bytes((out / "last.pt").read_bytes()[:100])
    capsys.readouterr()
    code, stdout, err = run_cli(cmd, capsys)
    assert code == 0 and "test accuracy" in stdout
    assert err.count("\n") == 1 and err.startswith("interplay: warning: ") and "Traceback" not in err


def test_train_time_counts_every_invocation(tmp_path, monkeypatch):
    out = tmp_path / "r"
    _interrupted(tiny(epochs=3), out, monkeypatch, after=2)
    state = torch.load(out / "last.pt", weights_only=True)
    assert 0 < state["train_time_s"] < 1000
    state["train_time_s"] = 1000.0  # as if the first invocation had trained for 1000 s
    torch.save(state, out / "last.pt")
    metrics = train(tiny(epochs=3), out)
    assert 1000 < metrics["train_time_s"] < 1100


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("sections, message", [
    ({"train": {"lr": float("inf")}}, "train.lr: expected a finite positive number, got inf"),
    ({"train": {"lr": float("nan")}}, "train.lr: expected a finite positive number, got nan"),
    ({"train": {"lr": 0}}, "train.lr: expected a finite positive number, got 0"),
    ({"train": {"weight_decay": float("nan")}}, "train.weight_decay: expected a finite non-negative number"),
    ({"train": {"weight_decay": -1}}, "train.weight_decay: expected a finite non-negative number"),
    ({"train": {"grad_clip": float("inf")}}, "train.grad_clip: expected a finite non-negative number, got inf"),
    ({"train": {"momentum": float("-inf")}}, "train.momentum: expected a finite non-negative number"),
    ({"train": {"seed": -1}}, "train.seed: expected an integer from 0 to 2\\*\\*64-1, got -1"),
    ({"train": {"seed": 2**64}}, "train.seed: expected an integer from 0 to"),
    ({"data": {"seed": -3}}, "data.seed: expected an integer from 0"),
    ({"data": {"n_train": 0}}, "data.n_train: expected a positive number of samples, got 0"),
    ({"data": {"n_test": -5}}, "data.n_test: expected a positive number of samples, got -5"),
    ({"data": {"n_train": 3}}, "data.n_train: 3 samples are too few for the splits"),
    ({"data": {"val_fraction": 1.0}}, "data.val_fraction: expected a finite non-negative number below 1"),
    ({"model": {"dropout": float("nan")}}, "model.dropout: expected a finite non-negative number below 1"),
    ({"data": {"mix": "redundant=0.5,nope=0.5"}}, "data.mix: unknown source\\(s\\) nope"),
    ({"data": {"mix": "redundant=1,synergistic=1"}}, "data.mix: weights must sum to 1, .* summing to 2"),
    ({"data": {"trust_pickle": True}}, "data.trust_pickle: pickle trust cannot come from a config"),
])
def test_values_are_refused_when_the_config_is_resolved(sections, message, monkeypatch):
    from interplay.data import DATASETS

    monkeypatch.setitem(DATASETS._items, "gaussian-split", lambda **kw: pytest.fail("built data"))
    cfg = tiny(**sections)
    with pytest.raises(ConfigError, match=message):
        resolve_config(cfg)


def test_trust_pickle_false_is_accepted_and_dropped():
    """Run directories written before the flag existed hold ``trust_pickle: false`` in config.yaml."""
    cfg = make_config(dataset="mosi", data={"trust_pickle": False})
    assert "trust_pickle" not in resolve_config(cfg).data.params
    with pytest.raises(ConfigError, match="data.trust_pickle: pickle trust cannot come from a config"):
        resolve_config(make_config(dataset="mosi", data={"trust_pickle": "yes"}))


def test_dataset_validators_travel_with_their_builder(monkeypatch):
    """A dataset registered in place of pid-xor has its own parameters: pid-xor's checks do not apply to it."""
    from interplay.data import DATASETS

    builder = DATASETS.get("pid-xor")
    assert builder.validate is not None  # type: ignore[attr-defined]

    def other(*, seed, n_train, n_test, val_fraction, root, mix: str = "anything"):
        return builder(seed=seed, n_train=n_train, n_test=n_test, val_fraction=val_fraction, root=root)

    monkeypatch.setitem(DATASETS._items, "pid-xor", other)
    assert resolve_config(tiny(data={"mix": "not a mix"})).data.params == {"mix": "not a mix"}


# ------------------------------------------------------------------------------------------------ run directory
def test_invalid_run_leaves_no_directory(tmp_path):
    for cfg in (tiny(train={"lr": float("inf")}), tiny(data={"mix": "redundant=2"}),
                make_config(dataset="features", data={"root": str(tmp_path / "missing")})):
        with pytest.raises((ConfigError, DataError)):
            train(cfg, tmp_path / "a" / "b" / "r")
        assert not (tmp_path / "a").exists()


def test_failure_before_the_first_epoch_removes_only_what_it_created(tmp_path, monkeypatch):
    def diverge(self, optimizer, state):
        raise FloatingPointError("loss became nan at epoch 1")

    monkeypatch.setattr(Trainer, "_train_epoch", diverge)
    with pytest.raises(FloatingPointError):
        train(tiny(), tmp_path / "new" / "r")
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()  # a directory the user made: kept, and so is what others put beside it meanwhile
    with pytest.raises(FloatingPointError):
        train(tiny(), mine)
    assert mine.is_dir() and not list(mine.iterdir())


def test_failure_never_removes_a_previous_run(tmp_path, monkeypatch):
    out = tmp_path / "r"
    _interrupted(tiny(), out, monkeypatch, after=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def diverge(self, optimizer, state):
        raise FloatingPointError("loss became nan")

    monkeypatch.setattr(Trainer, "_train_epoch", diverge)
    with pytest.raises(FloatingPointError):
        train(tiny(), out)
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(after) == set(before) and after["last.pt"] == before["last.pt"]


def test_out_that_cannot_be_created_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    for out, message in ((tmp_path / "file" / "run", "cannot create the run directory"),
                         (tmp_path / "file", "exists and is not a directory")):
        code, _, err = run_cli(["train", "--epochs", "1", "--n-train", "60", "--n-test", "20", "--quiet",
                                "--out", out], capsys)
        assert code == 2 and err.count("\n") == 1 and err.startswith("interplay: error: ")
        assert message in err and str(tmp_path / "file") in err
    assert (tmp_path / "file").read_text() == "not a directory"


def test_metrics_record_the_resumed_run(tmp_path, monkeypatch):
    out = tmp_path / "r"
    _interrupted(tiny(), out, monkeypatch, after=2)
    metrics = train(tiny(), out)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["epochs"] == 3 and saved["train_time_s"] == metrics["train_time_s"] > 0
