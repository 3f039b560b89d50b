import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from interplay.config import ModelConfig, parse_override, set_field
from interplay.data import DATASETS
from interplay.engine import train
from interplay.engine.trainer import build_data, resolve_config
from interplay.errors import ConfigError
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState, build_objective
from interplay.objectives.omib import beta_bounds, r_closed_form

from ..conftest import make_config

SMALL = {"encoder_hidden": [32], "fusion_hidden": [16]}
OMIB_SMALL = {"latent_dim": 8, "fusion_dim": 16, "heads": 2, "head_hidden": 16}


def setup_omib(modalities=2, task="classification", **kw):
    if task == "regression":
        data = DATASETS.get("gaussian-split")(seed=0, n_train=120, n_test=40, val_fraction=0.25, root=None,
                                              task="regression")
    else:
        data = DATASETS.get("pid-xor")(seed=0, n_train=120, n_test=40, val_fraction=0.25, root=None,
                                       modalities=modalities, mix="redundant=0.5,synergistic=0.5")
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_hidden=[16], fusion_hidden=[16]), data.info)
    obj = METHODS.get("omib")(**{**OMIB_SMALL, **kw})
    obj.setup(model, data)
    return data, model, obj


def test_r_closed_form_equals_tanh_log_form():
    k1 = torch.tensor([0.3, 0.3, 1e-3, 2.0])
    kj = torch.tensor([0.3, 0.9, 0.5, 0.01])
    expected = 1 - torch.tanh(torch.log(kj / k1))
    assert torch.allclose(r_closed_form(k1, kj, eps=0.0), expected, atol=1e-6)
    r = r_closed_form(k1, kj)
    assert ((r > 0) & (r < 2)).all() and r[0] == pytest.approx(1.0)
    assert r_closed_form(torch.tensor(0.0), torch.tensor(0.0)) == pytest.approx(1.0)  # eps keeps it defined


def test_r_ema_buffer_and_state_dict():
    _, _, obj = setup_omib(r_momentum=0.5)
    obj.update_r(torch.tensor([2.0, 1.0]) * 10, 10)  # batch means K = (2, 1): first batch initialises
    assert torch.allclose(obj.k_ema, torch.tensor([2.0, 1.0]))
    obj.update_r(torch.tensor([4.0, 5.0]) * 4, 4)
    assert torch.allclose(obj.k_ema, torch.tensor([3.0, 3.0]))
    assert obj.r.item() == pytest.approx(1.0)
    obj.update_r(torch.tensor([1.0, 3.0]), 1)  # K_ema = (2, 3)
    assert obj.r.item() == pytest.approx(1 - math.tanh(math.log(3 / 2)), rel=1e-5)
    state = obj.state_dict()
    assert {"k_ema", "k_seen", "r", "main_stage"} <= set(state)
    _, _, fresh = setup_omib(r_momentum=0.5)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.r, obj.r) and torch.equal(fresh.k_ema, obj.k_ema) and bool(fresh.k_seen)
    _, _, fixed = setup_omib(dynamic_r=False)
    fixed.update_r(torch.tensor([1.0, 9.0]), 1)
    assert fixed.r.item() == 1.0


def test_loss_terms_kl_direction_and_detached_xi():
    data, model, obj = setup_omib()
    batch = data.train.batch(torch.arange(32))
    out = obj(model, batch, TrainState(stage="main"))
    p = out.parts
    assert set(p) == {"task", "kl_weighted", "kl_x1", "kl_x2", "trb_x1", "trb_x2"}
    r = obj.r.item()
    assert p["kl_weighted"].item() == pytest.approx(obj.beta * (p["kl_x1"] + r * p["kl_x2"]).item(), rel=1e-5)
    assert out.loss.item() == pytest.approx((p["task"] + p["kl_weighted"] + p["trb_x1"] + p["trb_x2"]).item(),
                                            rel=1e-5)
    # K is KL(TRB prediction || fused prediction), in that direction
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    manual = (a.softmax(-1) * (a.log_softmax(-1) - b.log_softmax(-1))).sum(-1)
    assert torch.allclose(obj.prediction_kl(a, b), manual, atol=1e-6)
    # xi feeds the TRB heads detached: with the fused head's last layer zeroed, CAN gets no gradient
    obj2 = setup_omib(beta=0.0)[2]
    torch.nn.init.zeros_(obj2.fused_head[-1].weight)
    obj2(model, batch, TrainState(stage="main")).loss.backward()
    assert all(q.grad is None or not q.grad.any() for q in obj2.can.parameters())
    assert any(q.grad is not None and q.grad.any() for q in obj2.trb.parameters())


def test_regression_likelihoods_and_kl():
    data, model, obj = setup_omib(task="regression")
    pred, tgt = torch.tensor([[0.5], [-1.0]]), torch.tensor([1.5, -1.0])
    assert obj.task_loss(pred, tgt).item() == pytest.approx(0.5)  # Laplace: L1
    d = torch.tensor([[1.0], [0.0], [-2.0]])
    assert torch.allclose(obj.prediction_kl(d, torch.zeros(3, 1)), d[:, 0].abs() + torch.exp(-d[:, 0].abs()) - 1)
    g = setup_omib(task="regression", regression_likelihood="gaussian", regression_scale=2.0)[2]
    assert g.task_loss(pred, tgt).item() == pytest.approx(0.5 * (0.5**2) / 2)
    assert torch.allclose(g.prediction_kl(d, torch.zeros(3, 1)), d[:, 0] ** 2 / 8)
    out = obj(model, data.train.batch(torch.arange(16)), TrainState(stage="main"))
    assert out.logits.shape == (16, 1) and torch.isfinite(out.loss)


def test_stages_and_trainable_parameters():
    _, model, obj = setup_omib()
    warm, main = obj.stages(30)
    assert (warm.name, warm.epochs, main.name, main.epochs, main.reload_best) == ("warmup", 3, "main", 27, True)
    assert [s.name for s in obj.stages(1)] == ["main"]
    assert [s.epochs for s in setup_omib(warmup_epochs=5)[2].stages(30)] == [5, 25]
    assert [s.name for s in setup_omib(warmup_epochs=0)[2].stages(30)] == ["main"]
    names = [n for n, _ in [*model.named_parameters(prefix="model"), *obj.named_parameters(prefix="objective")]]
    warm_names = {n.split(".")[1] for n in names if warm.trainable(n)}
    main_names = {n.split(".")[1] for n in names if main.trainable(n)}
    assert warm_names == {"encoders", "trb"}
    assert main_names == {"encoders", "vae", "can", "fused_head", "trb"}  # the model's fusion/heads: unused


def test_prediction_is_deterministic_and_training_samples():
    data, model, obj = setup_omib()
    batch = data.test.batch(torch.arange(len(data.test)))
    obj.train()
    a = obj(model, batch, TrainState(stage="main")).logits
    b = obj(model, batch, TrainState(stage="main")).logits
    assert not torch.equal(a, b), "training must sample zeta"
    model.eval()
    obj.eval()
    p1, p2 = obj.predict(model, batch).logits, obj.predict(model, batch).logits
    assert torch.equal(p1, p2)
    feats = model.encode(batch.inputs)
    mu = {m: obj.vae[m](feats[m]).chunk(2, -1)[0] for m in obj.order}
    assert torch.allclose(p1, obj.fused_head(obj.can(mu)), atol=1e-5)
    # before the main stage, predictions come from the TRB heads with c = 0
    obj(model, batch, TrainState(stage="warmup"))
    warm = obj.predict(model, batch).logits
    assert torch.allclose(warm.exp().sum(-1), torch.ones(len(batch)), atol=1e-5)


def test_engine_run_stages_metrics_and_reproducible_predictions(tmp_path):
    cfg = make_config("omib", dataset="gaussian-split", epochs=4, n_train=200, n_test=100, model=SMALL,
                      method={**OMIB_SMALL, "warmup_epochs": 1})
    metrics = train(cfg, tmp_path / "run")
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in log] == ["warmup", "main", "main", "main"]
    assert "r_x2" not in log[0]["objective"] and {"r_x2", "K_x1", "K_x2"} <= set(log[1]["objective"])
    assert {"kl_x1", "kl_x2", "trb_x1", "task"} <= set(log[1]["train"])
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    om = saved["omib"]
    assert om["beta"] == pytest.approx(om["M_l"]) and om["beta_source"] == "M_l"
    assert 0 < om["M_l"] < om["M_u"] and om["estimator"]["backend"] == "gaussian"
    assert set(om["H"]) == {"x1", "x2", "joint"} and om["I"] > 0 and "x2" in om["r"]
    assert metrics["best_stage"] == "main"
    # same checkpoint -> same predictions (a fresh model and objective loaded from best.pt)
    resolved = resolve_config(cfg)
    data = build_data(resolved)
    model = build_model(resolved.model, data.info)
    obj = build_objective(resolved.method)
    obj.setup(model, data)
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=False)
    model.load_state_dict(state["model"])
    obj.load_state_dict(state["objective"])
    model.eval()
    obj.eval()
    batch = data.test.batch(torch.arange(len(data.test)))
    logits = obj.predict(model, batch).logits
    probs = np.loadtxt(tmp_path / "run" / "predictions.csv", delimiter=",", skiprows=1, usecols=(3, 4))
    assert np.allclose(F.softmax(logits, -1).numpy(), probs, atol=1e-5)


def test_beta_override_regression_and_three_modalities():
    cfg = make_config("omib", dataset="gaussian-split", epochs=2, n_train=160, n_test=80, model=SMALL,
                      data={"task": "regression"}, method=OMIB_SMALL)
    set_field(cfg, *parse_override("method.beta=0.01"))  # what `--set method.beta=0.01` does
    m = train(cfg)
    assert m["omib"]["beta"] == 0.01 and m["omib"]["beta_source"] == "config" and m["omib"]["M_u"] > 0
    assert {"acc7", "acc2", "acc2_has0", "f1", "mae", "corr"} <= set(m["test"])
    m3 = train(make_config("omib", epochs=2, n_train=160, n_test=80, model=SMALL, data={"modalities": 3},
                           method={**OMIB_SMALL, "fusion": "concat"}))
    om = m3["omib"]
    assert om["bound_factor"] == 5 and set(om["r"]) == {"x2", "x3"} and set(om["H"]) == {"x1", "x2", "x3", "joint"}
    assert om["M_l"] == pytest.approx(1 / (5 * (om["H"]["x1"] + om["H"]["x2"] + om["H"]["x3"])))
    assert om["M_u"] == pytest.approx(1 / (5 * om["H"]["joint"]))


def test_estimator_fallback_and_invalid_bound(monkeypatch):
    data, model, obj = setup_omib(estimator="knn")
    assert obj.bound["estimator"]["backend"] in ("knn", "gaussian")
    # force an invalid kNN estimate: the gaussian backend takes over and says so
    import interplay.objectives.omib as omib_module
    real = omib_module.information_report

    def fake(views, settings):
        rep = real(views, settings)
        if settings.backend == "knn":
            rep.H_joint = -5.0
        return rep

    monkeypatch.setattr(omib_module, "information_report", fake)
    obj = setup_omib(estimator="knn")[2]
    assert obj.bound["estimator"]["backend"] == "gaussian" and "knn" in obj.bound["fallback"]
    assert obj.bound["estimator"]["first_attempt"]["H"]["joint"] == -5.0
    assert obj.beta == pytest.approx(obj.bound["M_l"])

    def invalid(views, settings):
        rep = real(views, settings)
        rep.H_joint = -1.0
        return rep

    monkeypatch.setattr(omib_module, "information_report", invalid)
    with pytest.warns(UserWarning, match="bound undefined"):
        obj = setup_omib(fallback_beta=0.02)[2]
    assert obj.beta == 0.02 and obj.bound["beta_source"] == "fallback_beta" and obj.bound["M_u"] is None


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="method.heads"):
        METHODS.get("omib")(fusion_dim=10, heads=4)
    with pytest.raises(ConfigError, match="method.beta"):
        METHODS.get("omib")(beta=-1.0)
    with pytest.raises(ConfigError, match="reference_modality"):
        setup_omib(reference_modality="nope")
    obj = setup_omib(reference_modality="x2")[2]
    assert obj.order == ["x2", "x1"]


def test_beta_bounds_formula():
    class Rep:
        H = {"a": 2.0, "b": 3.0}
        H_sum = 5.0
        H_joint = 4.0

    assert beta_bounds(Rep()) == (pytest.approx(1 / 15), pytest.approx(1 / 12))


# ---------------------------------------------------------------------------------------- MINE bound, probe
def test_mine_estimator_gives_the_bound():
    data = DATASETS.get("gaussian-split")(seed=0, n_train=500, n_test=20, val_fraction=0.1, root=None, dim=8)
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_hidden=[16], fusion_hidden=[16]), data.info)
    obj = METHODS.get("omib")(**OMIB_SMALL, estimator="mine", estimator_mine_batch_size=32, estimator_mine_steps=150)
    obj.setup(model, data)
    b = obj.bound
    assert b["estimator"]["backend"] == "mine" and b["fallback"] is None and b["valid"]
    assert b["estimator"]["mine_batch_size"] == 32 and b["estimator"]["mine_steps"] == 150
    log_n = b["estimator"]["mine_log_batch_size"]
    assert log_n == pytest.approx(math.log(32))
    assert 0 < b["H"]["x1"] <= log_n + 1e-6 and 0 < b["H"]["x2"] <= log_n + 1e-6  # H(v) = I(v; v) <= log N
    assert b["H"]["joint"] == pytest.approx(b["H"]["x1"] + b["H"]["x2"] - b["I"])
    assert b["M_u"] == pytest.approx(1 / (3 * b["H"]["joint"])) and b["M_l"] == pytest.approx(
        1 / (3 * (b["H"]["x1"] + b["H"]["x2"])))
    assert obj.beta == pytest.approx(b["M_l"]) and b["beta_source"] == "M_l"
    # a saturated estimator's bound: at least 1 / (6 log N), whatever the data (the Gaussian one here is ~0.02)
    assert b["M_l"] >= 1 / (6 * log_n)
    with pytest.raises(ConfigError, match="method.estimator_mine_batch_size"):
        METHODS.get("omib")(estimator="mine", estimator_mine_batch_size=1)


def test_fused_representation_feeds_the_prediction():
    data, model, obj = setup_omib()
    obj.main_stage.fill_(True)
    model.eval()
    obj.eval()
    inputs = data.test.inputs
    xi = obj.fused_representation(model, inputs)
    assert xi.shape == (len(data.test), OMIB_SMALL["fusion_dim"])
    batch = data.test.batch(torch.arange(len(data.test)))
    assert torch.allclose(obj.predict(model, batch).logits, obj.fused_head(xi), atol=1e-6)


@pytest.fixture(scope="module")
def sweep_script():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "omib_sweep.py"
    spec = importlib.util.spec_from_file_location("omib_sweep", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_probe_r2_against_a_naive_least_squares(sweep_script):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5)) * np.array([1.0, 10.0, 0.1, 1.0, 3.0]) + 2.0
    t = np.stack([x @ rng.normal(size=5) + rng.normal(size=300), rng.normal(size=300)], 1)
    got = sweep_script.ridge_probe_r2(x[:150], t[:150], x[150:], t[150:], ridge=0.0)
    for j in range(2):  # ordinary least squares with an intercept, column by column, and R^2 by its definition
        design = np.concatenate([np.ones((150, 1)), x[:150]], 1)
        coef = np.linalg.lstsq(design, t[:150, j], rcond=None)[0]
        pred = np.concatenate([np.ones((150, 1)), x[150:]], 1) @ coef
        resid = sum((t[150 + i, j] - pred[i]) ** 2 for i in range(150))
        total = sum((t[150 + i, j] - t[150:, j].mean()) ** 2 for i in range(150))
        assert got[j] == pytest.approx(1 - resid / total, abs=1e-8)
    assert got[0] > 0.9 and got[1] < 0.05


def test_probe_factors_are_the_generators(sweep_script):
    seed, n_train, n_test, k, dim, noise = 3, 200, 600, 4, 32, 0.5
    data = DATASETS.get("gaussian-split")(seed=seed, n_train=n_train, n_test=n_test, val_fraction=0.1, root=None)
    f = sweep_script.gaussian_split_factors(seed, n_train, n_test, factor_dim=k)
    assert set(f) == set(sweep_script.FACTORS) and all(v.shape == (n_test, k) for v in f.values())
    # rebuild the raw test view x1 from the factors (mixing matrix and noise drawn as the generator draws them):
    # the split's standardised x1 is an affine map of it, column by column
    mixing = np.random.default_rng(4321).normal(0.0, 1.0 / math.sqrt(4 * k), size=(dim, 4 * k))
    rng = np.random.default_rng(seed)
    for _ in range(6):
        rng.normal(size=(n_train + n_test, k))
    e1 = rng.normal(0.0, noise, size=(n_train + n_test, dim))[n_train:]
    raw = np.concatenate([f["a0"], f["a1"], f["b0"], f["b1"]], 1) @ mixing.T + e1
    x1 = data.test.inputs["x1"].numpy()
    corr = [np.corrcoef(raw[:, j], x1[:, j])[0, 1] for j in range(dim)]
    assert min(corr) > 1 - 1e-5
    # the probe's bookkeeping: features = the task factors keep all task and no superfluous information
    task = np.concatenate([f["a0"], f["a1"], f["a2"]], 1)
    probe = sweep_script.factor_probe(task, f)
    assert probe["task"] > 0.99 and abs(probe["superfluous"]) < 0.1
    assert probe["task"] == pytest.approx(np.mean([probe["a0"], probe["a1"], probe["a2"]]))
    # the noiseless score: its sign is the label up to the label noise (Bayes accuracy 1 - arctan(0.3) / pi)
    score = sweep_script.gaussian_split_score(f)
    agree = float(((score[:, 0] > 0) == data.test.target.numpy().astype(bool)).mean())
    assert agree == pytest.approx(data.info.extra["bayes_accuracy"], abs=0.04)
    assert sweep_script.factor_probe(task, {**f, "score": score})["score"] > 0.99  # linear in the task factors


def test_sweep_reads_best_and_last_checkpoints(sweep_script, tmp_path):
    # one small run: the script's own evaluation of best.pt reproduces the engine's reported test accuracy, and
    # the last-epoch numbers come from last.pt (epoch = the budget)
    res = sweep_script.sweep({"0": 0.0}, [0], epochs=4, n_train=300, n_test=200, out=tmp_path)
    (row,) = res["0"]
    assert row["best"]["accuracy"] == pytest.approx(row["reported_test_accuracy"], abs=1e-6)  # float32 metric
    assert row["best"]["epoch"] == row["best_epoch"] and row["last"]["epoch"] == 4
    assert row["first_main_epoch"] == 2 and len(row["val_accuracy_main"]) == 3  # 1 warm-up + 3 main epochs
    if row["best_epoch"] == 4:
        assert row["last"] == row["best"]
    assert set(row["last"]["probe"]) >= {"score", "task", "superfluous", "a0", "b2"}
