"""train.mode=one_class: Deep SVDD around an objective's fused representation (engine/one_class.py)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from interplay.config import RunConfig
from interplay.data import DATASETS
from interplay.engine import train
from interplay.engine.one_class import OneClass, build_mode_objective, mode_method_params
from interplay.engine.reload import evaluate_run, load_run
from interplay.engine.trainer import resolve_config
from interplay.errors import ConfigError
from interplay.models import build_model
from interplay.objectives import Objective, TrainState

from ..conftest import run_cli

SMALL = {"encoder_hidden": [32, 32], "fusion_hidden": [32]}


def _cfg(method="joint", kind="synergistic", epochs=2, seed=0, n_train=300, n_test=300, **extra):
    return RunConfig.from_dict({"data": {"name": "anomaly-xor", "kind": kind, "n_train": n_train, "n_test": n_test},
                                "method": {"name": method, **extra}, "model": SMALL,
                                "train": {"mode": "one_class", "epochs": epochs, "seed": seed}})


class _Fixed(Objective):
    """An objective whose representation is the concatenated raw inputs (no parameters): a hand case."""

    def representation(self, model, batch, state):
        return torch.cat([batch.inputs["x1"], batch.inputs["x2"]], -1), {"reg": torch.tensor(0.5)}


def _hand_setup(objective="one-class", **kw):
    data = DATASETS.get("anomaly-xor")(seed=0, n_train=40, n_test=20, dim=2, latent=2)
    with torch.no_grad():  # hand-made training inputs: x1, x2 in R^2
        data.train.inputs["x1"] = torch.tensor([[1.0, 0.05], [3.0, -0.05]]).repeat(18, 1)
        data.train.inputs["x2"] = torch.tensor([[-2.0, 0.0], [0.0, 4.0]]).repeat(18, 1)
    model = build_model(RunConfig().model, data.info)
    oc = OneClass(_Fixed(), objective=objective, **kw)
    oc.setup(model, data)
    return oc, model, data


def test_centre_is_the_mean_initial_representation_with_the_eps_fix():
    oc, model, _ = _hand_setup(eps=0.1)
    c = oc.init_centre(model)
    # means: x1 (2, 0) -> second coordinate 0 (|0| < eps: +eps); x2 (-1, 2)
    assert torch.allclose(c, torch.tensor([2.0, 0.1, -1.0, 2.0]))
    oc2, model2, _ = _hand_setup(eps=0.0)
    assert torch.allclose(oc2.init_centre(model2), torch.tensor([2.0, 0.0, -1.0, 2.0]))
    # a small negative mean goes to -eps
    oc.eps = 0.5
    oc._train_split.inputs["x2"][:, 0] = -0.2
    assert torch.allclose(oc.init_centre(model), torch.tensor([2.0, 0.5, -0.5, 2.0]))


def test_one_class_and_soft_boundary_losses_on_a_hand_case():
    oc, model, data = _hand_setup()
    oc.init_centre(model)
    batch = data.train.batch(torch.arange(2))
    out = oc(model, batch, TrainState())
    # z - c: [(-1, -0.05, -1, -2), (1, -0.15, 1, 2)] -> squared distances 6.0025, 6.0225
    d = torch.tensor([6.0025, 6.0225])
    assert torch.allclose(out.parts["svdd"], d.mean())
    assert torch.allclose(out.loss, d.mean() + 0.5)  # the objective's terms stay in the loss
    sb, model, data = _hand_setup("soft-boundary", nu=0.5, radius_warmup=0)
    sb.init_centre(model)
    sb.radius.fill_(2.0)
    sb.eval()  # R is not updated outside training
    out = sb(model, data.train.batch(torch.arange(2)), TrainState())
    assert torch.allclose(out.loss, 4.0 + (d - 4.0).clamp_min(0).mean() / 0.5 + 0.5)
    sb.train()
    sb(model, data.train.batch(torch.arange(2)), TrainState(epoch=0))
    assert torch.allclose(sb.radius, torch.quantile(d.sqrt(), 0.5))  # the (1 - nu)-quantile of the distances
    pred = sb.predict(model, data.train.batch(torch.arange(2)))
    assert torch.allclose(pred.extras["anomaly_score"], d - sb.radius.square())


def test_bias_free_zeroes_and_freezes_biases_and_constants():
    cfg = resolve_config(_cfg("omib", fusion_dim=16, latent_dim=8, heads=2))
    data = DATASETS.get("anomaly-xor")(seed=0, n_train=100, n_test=50)
    model = build_model(cfg.model, data.info)
    oc = build_mode_objective("one_class", cfg.method)
    oc.setup(model, data)
    named = dict([(f"model.{n}", p) for n, p in model.named_parameters()]
                 + [(f"objective.{n}", p) for n, p in oc.named_parameters()])
    trainable = oc.stages(3)[0].trainable
    for name, p in named.items():
        frozen = name.rsplit(".", 1)[-1].startswith("bias") or name.endswith(("can.cls", "can.modality_embedding"))
        assert trainable(name) is not frozen, name
        if frozen:
            assert not p.detach().any(), name


def test_mode_params_and_bad_values():
    params = mode_method_params("one_class", "joint", {"svdd_objective": "soft-boundary", "svdd_nu": 0.2})
    assert params["svdd_objective"] == "soft-boundary" and params["svdd_bias_free"] is True
    with pytest.raises(ConfigError, match="train.mode: expected one of supervised, one_class"):
        resolve_config(RunConfig.from_dict({"train": {"mode": "oneclass"}}))
    with pytest.raises(ConfigError, match="svdd_nu"):
        build_mode_objective("one_class", resolve_config(_cfg(svdd_nu=0.0)).method)
    with pytest.raises(ConfigError, match="unknown config key method.svdd_radius"):
        resolve_config(_cfg(svdd_radius=1.0))
    with pytest.raises(ConfigError, match="exposes no fused representation"):
        train(_cfg("ensemble", epochs=1))


def test_training_drops_anomalies_from_the_training_split():
    cfg = RunConfig.from_dict({"data": {"name": "pid-xor", "n_train": 200, "n_test": 100}, "model": SMALL,
                               "train": {"mode": "one_class", "epochs": 1}})
    metrics = train(cfg)
    oc = metrics["one_class"]
    assert oc["n_train_anomalies_dropped"] > 50 and oc["n_train_normal"] + oc["n_train_anomalies_dropped"] == 180


def test_acceptance_cli_writes_anomaly_metrics_and_reload_reproduces_them(tmp_path, capsys):
    out = tmp_path / "R"
    code, printed, err = run_cli(["train", "--data", "anomaly-xor", "--method", "omib", "--set",
                                  "train.mode=one_class", "--set", "train.epochs=2", "--set", "data.n_train=300",
                                  "--set", "data.n_test=300", "--set", "method.fusion_dim=16", "--set",
                                  "method.latent_dim=8", "--set", "model.encoder_hidden=[32,32]", "--quiet", "--out",
                                  out], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert re.search(rf"test AUROC +{test['auroc']:.4f}", printed), printed
    assert "test AUROC synergistic anomalies" in printed and "test accuracy" not in printed
    for key in ("auroc", "auprc", "f1"):
        assert 0.0 <= test[key] <= 1.0
    assert set(test["auroc_by_type"]) == {"unimodal_x1", "unimodal_x2", "both", "synergistic"}
    assert metrics["one_class"]["centre_norm"] > 0
    header = (out / "predictions.csv").read_text().splitlines()[0]
    assert "anomaly_score" in header and "interaction" in header
    # reload: centre and threshold come from best.pt (weights only)
    run = load_run(out)
    assert isinstance(run.objective, OneClass) and torch.equal(run.objective.threshold,
                                                               torch.tensor(metrics["one_class"]["threshold"]))
    again = evaluate_run(out)
    for key in ("auroc", "auprc", "f1", "threshold"):
        assert again["test"][key] == pytest.approx(test[key], abs=1e-6)
    code, _, err = run_cli(["evaluate", out, "--out", tmp_path / "E"], capsys)
    assert code == 0, err


def test_resume_keeps_the_centre(tmp_path):
    from ..conftest import interrupted_after

    cfg = _cfg("joint", epochs=3)
    whole = train(cfg, tmp_path / "a")
    with interrupted_after(1), pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b")
    resumed = train(cfg, tmp_path / "b")
    assert resumed["test"]["auroc"] == pytest.approx(whole["test"]["auroc"], abs=1e-9)
    assert resumed["one_class"]["centre_norm"] == pytest.approx(whole["one_class"]["centre_norm"], abs=1e-6)


def test_soft_boundary_run_learns_a_radius():
    metrics = train(_cfg("joint", epochs=3, svdd_objective="soft-boundary", svdd_nu=0.2))
    oc = metrics["one_class"]
    assert oc["objective"] == "soft-boundary" and oc["radius"] > 0
    assert 0.0 <= metrics["test"]["auroc"] <= 1.0


def test_run_directories_from_before_train_mode_still_resume(tmp_path):
    import yaml

    cfg = RunConfig.from_dict({"data": {"name": "pid-xor", "n_train": 100, "n_test": 50}, "model": SMALL,
                               "train": {"epochs": 1}})
    first = train(cfg, tmp_path / "run")
    raw = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert raw["train"].pop("mode") == "supervised"
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert train(cfg, tmp_path / "run") == first  # the same run: finished metrics, no config conflict
