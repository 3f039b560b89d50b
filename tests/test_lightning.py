"""interplay.lightning.InterplayModule in a Lightning Trainer reproduces the engine's epochs (same seed, same
batches), honours the objective's hooks, refuses what it cannot train in one line, and names its extra when
pytorch-lightning is missing."""

import importlib
import sys
import warnings

import pytest
import torch

from interplay.engine import Trainer
from interplay.errors import ConfigError
from interplay.objectives.joint import Joint

from .conftest import make_config

pl = pytest.importorskip("pytorch_lightning")

from interplay.lightning import MISSING, EpochBatches, InterplayModule  # noqa: E402


def small(method="joint", epochs=2, **method_params):
    return make_config(method, epochs=epochs, n_train=320, n_test=160, method=method_params,
                       model={"encoder_hidden": [16], "fusion_hidden": [16]}, train={"batch_size": 32})


def fit(module, max_epochs, tmp_path, **kwargs):
    trainer = pl.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, default_root_dir=tmp_path, **kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*(does not have many workers|GPU available|TPU available).*")
        trainer.fit(module)
    return trainer


def engine_log(cfg):
    trainer = Trainer(cfg, None, quiet=True)
    trainer.fit()
    return trainer.log


def assert_same_epochs(history, log):
    assert [h["epoch"] for h in history] == [r["epoch"] for r in log]
    for h, r in zip(history, log):
        assert h["train"] == pytest.approx(r["train"], rel=1e-6, abs=1e-9)  # loss, every loss term, accuracy
        assert h["objective"] == pytest.approx(r["objective"], rel=1e-6, abs=1e-9)
        assert h["lr"] == r["lr"]
        assert h["val"]["accuracy"] == pytest.approx(r["val"]["accuracy"], abs=1e-12)
        assert h["val"]["loss"] == pytest.approx(r["val"]["loss"], rel=1e-5)
        assert h["val"]["accuracy_by_interaction"] == pytest.approx(r["val"]["accuracy_by_interaction"], abs=1e-6)


@pytest.mark.parametrize("method", ["joint", "ogm_ge"])  # ogm_ge: gradient modulation in on_after_backward
def test_two_epochs_match_the_engine(method, tmp_path):
    cfg = small(method)
    module = InterplayModule.from_config(cfg)
    trainer = fit(module, 2, tmp_path)
    log = engine_log(cfg)
    assert len(log) == 2 and log[0]["train"]["loss"] != log[1]["train"]["loss"]
    assert_same_epochs(module.history, log)
    # what any Lightning logger receives
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert metrics["train/loss"] == pytest.approx(log[-1]["train"]["loss"], rel=1e-6)
    assert metrics["val/accuracy"] == pytest.approx(log[-1]["val"]["accuracy"])
    assert metrics["val/accuracy_by_interaction/synergistic"] == pytest.approx(
        log[-1]["val"]["accuracy_by_interaction"]["synergistic"], abs=1e-6)
    assert trainer.global_step == 2 * 9  # 320 samples - 10% validation = 288 = 9 batches of 32


def test_synib_matches_the_engine(tmp_path):
    """SynIB: masked and noised forward passes (random draws in step with the engine's) and an epoch-dependent lam;
    its per-epoch statistics (objective/...) match too."""
    cfg = small("synib", lam=1.0, warmup_epochs=1)
    module = InterplayModule.from_config(cfg)
    fit(module, 2, tmp_path)
    log = engine_log(cfg)
    assert set(log[0]["train"]) > {"loss", "accuracy"}  # synib's loss terms
    assert_same_epochs(module.history, log)


def test_test_loop_and_own_loaders(tmp_path):
    """Without data=: the user's loaders (EpochBatches) and objective.setup called beforehand."""
    module = InterplayModule.from_config(small())
    data = module.data
    mine = InterplayModule(module.model, module.objective, lr=1e-3, batch_size=16)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*(does not have many workers|GPU available|TPU available).*")
        trainer.fit(mine, EpochBatches(data.train, 16, shuffle=True), EpochBatches(data.val, 64))
        result = trainer.test(mine, EpochBatches(data.test, 64), verbose=False)[0]
    assert mine.history[0]["train"]["loss"] > 0 and trainer.global_step == 18
    logits = torch.cat([mine(b) for b in EpochBatches(data.test, 64)])
    assert result["test/accuracy"] == pytest.approx(float((logits.argmax(-1) == data.test.target).float().mean()))


def test_multi_stage_method_one_stage_per_fit(tmp_path):
    cfg = small("omib", epochs=4)
    module = InterplayModule.from_config(cfg)
    plan = {s.name: s.epochs for s in module.objective.stages(4)}
    assert list(plan) == ["warmup", "main"]
    with pytest.raises(ConfigError) as err:
        fit(module, 4, tmp_path)
    assert str(err.value).startswith("InterplayModule: method 'omib' trains in stages (warmup (")
    assert "\n" not in str(err.value)
    warm = InterplayModule(module.model, module.objective, module.data, epochs=4, stage="warmup", batch_size=32)
    with pytest.raises(ConfigError, match=r"use Trainer\(max_epochs="):
        fit(warm, plan["warmup"] + 1, tmp_path)
    before = {n: p.detach().clone() for n, p in module.model.named_parameters()}
    fit(warm, plan["warmup"], tmp_path)
    assert [h["stage"] for h in warm.history] == ["warmup"] * plan["warmup"]
    changed = {n for n, p in module.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("encoders.") for n in changed)  # OMIB's warm-up trains the encoders alone
    main = InterplayModule(module.model, module.objective, module.data, epochs=4, stage="main", batch_size=32)
    fit(main, plan["main"], tmp_path)
    assert [(h["epoch"], h["stage"]) for h in main.history] == [(plan["warmup"] + i + 1, "main")
                                                                for i in range(plan["main"])]
    # the engine: the same stages, the main stage from the best warm-up checkpoint (the only warm-up epoch here)
    assert plan["warmup"] == 1
    assert_same_epochs(warm.history + main.history, engine_log(cfg))
    with pytest.raises(ConfigError, match="stage 'nope' is not a stage of method 'omib'"):
        fit(InterplayModule(module.model, module.objective, module.data, epochs=4, stage="nope"), 1, tmp_path)


class Recording(Joint):
    """Joint with the extended step protocol's hooks overridden, recording what the loop passes."""

    def __init__(self):
        super().__init__()
        self.scales, self.epoch_starts = [], []

    def backward(self, model, out, state, scale):
        self.scales.append(float(scale(torch.tensor(1.0))))
        scale(out.loss).backward()

    def on_train_epoch_start(self, model, train, state):
        self.epoch_starts.append((state.epoch, len(train), model.training))


class TwoSteps(Joint):
    def phases(self, state):
        return ("first", "second")


def test_own_backward_gets_lightnings_scaling_and_epoch_start_the_train_split(tmp_path):
    built = InterplayModule.from_config(small())
    objective = Recording()
    objective.setup(built.model, built.data)
    module = InterplayModule(built.model, objective, built.data, batch_size=32)
    trainer = fit(module, 2, tmp_path, accumulate_grad_batches=3)
    assert objective.scales == pytest.approx([1 / 3] * 18) and trainer.global_step == 6  # 9 batches, 3 a step
    assert [e[:2] for e in objective.epoch_starts] == [(0, 288), (1, 288)]
    two = TwoSteps()
    two.setup(built.model, built.data)
    with pytest.raises(ConfigError, match=r"takes 2 optimiser steps per batch \(first, second\)"):
        fit(InterplayModule(built.model, two, built.data), 1, tmp_path)


def test_bad_arguments_are_one_line():
    module = InterplayModule.from_config(small())
    with pytest.raises(ConfigError, match="optimizer: unknown optimizer 'lbfgs'"):
        InterplayModule(module.model, module.objective, optimizer="lbfgs")
    from interplay.objectives import build_objective

    fresh = build_objective(small().method)
    with pytest.raises(ConfigError, match="method 'joint' is not set up; pass data=splits"):
        InterplayModule(module.model, fresh)


def test_missing_lightning_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)  # import fails as without the package
    monkeypatch.delitem(sys.modules, "interplay.lightning")
    with pytest.raises(ImportError) as err:
        importlib.import_module("interplay.lightning")
    assert str(err.value) == MISSING == ("interplay.lightning needs the optional dependency pytorch-lightning "
                                         "(pip install 'interplay[lightning]')")
