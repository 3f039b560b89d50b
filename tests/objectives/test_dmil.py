"""DMIL: shapes, gate, stages and freezing, per-sample outputs, the intra-modality-only variant."""

import csv
import json

import pytest
import torch
from torch import nn

import interplay.engine.trainer as trainer_module
from interplay.config import ModelConfig
from interplay.data import pid_xor
from interplay.engine import Trainer, train
from interplay.engine.evaluation import evaluate
from interplay.errors import ConfigError
from interplay.models import build_model
from interplay.objectives import METHODS, EvalOutput, TrainState

from ..conftest import make_config
from .conftest import MIX

TINY_MODEL = {"encoder_hidden": [16], "fusion_hidden": [16]}


def make(data, dim=8, **kw):
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_hidden=[16], fusion_hidden=[16]), data.info)
    obj = METHODS.get("dmil")(dim=dim, **kw)
    obj.setup(model, data)
    return model, obj


@pytest.fixture(scope="module")
def data3():
    return pid_xor(seed=0, n_train=96, n_test=48, val_fraction=0.25, mix="unique3=0.5,synergistic=0.5", modalities=3)


def test_shapes_gate_and_losses_in_every_stage(data2):
    model, obj = make(data2)
    batch = data2.train.batch(torch.arange(24))
    assert [s.name for s in obj.stages(10)] == ["id", "cd", "finetune"]
    for stage in obj.stages(10):
        out = obj(model, batch, TrainState(stage=stage.name))
        assert out.loss.ndim == 0 and torch.isfinite(out.loss)
        assert out.logits.shape == (24, 2)
        expected = {"id": {"ce_id", "kl_id", "rec_id"},
                    "cd": {"ce_fused", "ce_comp", "ce_R", "ce_U1", "ce_U2", "ce_S", "kl_cd", "align", "rec_cd"}}
        expected["finetune"] = expected["id"] | expected["cd"]
        assert set(out.parts) == expected[stage.name]
    obj.eval()
    pred = obj.predict(model, batch)
    assert pred.logits.shape == (24, 2)
    assert set(pred.unimodal_logits) == {"x1", "x2"}
    gates = torch.stack([pred.extras[f"gate_{c}"] for c in ("R", "U1", "U2", "S")], 1)
    assert gates.shape == (24, 4) and (gates >= 0).all()
    assert torch.allclose(gates.sum(1), torch.ones(24))
    for c in ("R", "U1", "U2", "S"):
        assert pred.extras[f"pred_{c}"].shape == (24,)


def test_prediction_rule_follows_the_stage_of_the_weights(data2):
    model, obj = make(data2)
    batch = data2.train.batch(torch.arange(16))
    obj(model, batch, TrainState(stage="id"))
    obj.eval()
    with torch.no_grad():
        intra = obj._intra(model.encode(batch.inputs), sample=False)
        mean_prob = (intra.logits["x1"].softmax(-1) + intra.logits["x2"].softmax(-1)) / 2
        fused = obj._fuse(intra, sample=False)
    assert torch.allclose(obj.predict(model, batch).logits.exp(), mean_prob, atol=1e-6)
    assert int(obj.state_dict()["stage_index"]) == 1
    obj.train()
    obj(model, batch, TrainState(stage="cd"))
    obj.eval()
    gated = (fused.gate.unsqueeze(-1) * fused.logits).sum(1)
    assert torch.allclose(obj.predict(model, batch).logits, gated, atol=1e-6)


def test_probability_mixing(data2):
    model, obj = make(data2, combine="prob")
    batch = data2.train.batch(torch.arange(16))
    obj(model, batch, TrainState(stage="finetune"))
    obj.eval()
    pred = obj.predict(model, batch)
    with torch.no_grad():
        fused = obj._fuse(obj._intra(model.encode(batch.inputs), sample=False), sample=False)
    mixed = (fused.gate.unsqueeze(-1) * fused.logits.softmax(-1)).sum(1)
    assert torch.allclose(pred.logits.exp(), mixed, atol=1e-6)
    assert torch.allclose(pred.logits.exp().sum(-1), torch.ones(16), atol=1e-5)


def test_evaluation_is_deterministic(data2):
    model, obj = make(data2)
    obj(model, data2.train.batch(torch.arange(16)), TrainState(stage="finetune"))
    model.train()
    obj.train()  # evaluate() must switch sampling off by itself
    a = evaluate(obj, model, data2.test, batch_size=7)
    b = evaluate(obj, model, data2.test, batch_size=48)
    assert torch.allclose(a.logits, b.logits, atol=1e-6)
    assert all(torch.allclose(a.extras[k], b.extras[k].to(a.extras[k].dtype), atol=1e-6) for k in a.extras)
    assert torch.equal(evaluate(obj, model, data2.test, 16).logits, evaluate(obj, model, data2.test, 16).logits)


def test_stage_lengths_keep_the_budget():
    obj = METHODS.get("dmil")()
    for epochs in (1, 2, 3, 5, 30, 101):
        lengths = obj.stage_lengths(epochs)
        assert sum(lengths) == epochs and min(lengths) >= 0
    assert obj.stage_lengths(30) == (3, 3, 24)
    assert [s.epochs for s in obj.stages(2)] == [1, 1]
    explicit = METHODS.get("dmil")(stage1_epochs=10, stage2_epochs=5)
    assert explicit.stage_lengths(30) == (10, 5, 15)
    with pytest.raises(ConfigError):
        explicit.stage_lengths(12)
    with pytest.raises(ConfigError):
        METHODS.get("dmil")(stage1_frac=0.7, stage2_frac=0.5)


def test_stage_filters():
    obj = METHODS.get("dmil")()
    id_stage, cd_stage, ft_stage = obj.stages(10)
    names = ["model.encoders.x1.net.0.weight", "model.fusion.net.0.weight", "model.head.weight",
             "model.unimodal_heads.x1.0.0.weight", "objective.proj.x1.weight", "objective.id_m.x1.net.weight",
             "objective.id_head.x2.bias", "objective.cd_r.net.weight", "objective.gate.1.weight",
             "objective.heads.S.weight", "objective.syn.weight"]
    trained = {s.name: [n for n in names if s.trainable(n)] for s in (id_stage, cd_stage, ft_stage)}
    assert trained["id"] == names[:1] + names[4:7]
    assert trained["cd"] == names[7:]
    assert trained["finetune"] == names[:1] + names[4:]


def test_stage2_freezes_encoders_projections_and_id_modules(monkeypatch, tmp_path):
    """Through the engine: frozen parameters and BatchNorm statistics stay bit-identical during stage 2."""
    def with_batchnorm(cfg, info):
        model = build_model(cfg, info)
        for enc in model.encoders.values():
            enc.net.append(nn.BatchNorm1d(enc.out_dim))
        return model

    monkeypatch.setattr(trainer_module, "build_model", with_batchnorm)
    snapshots = {}
    forward = METHODS.get("dmil").forward

    def recording_forward(self, model, batch, state):
        if state.stage not in snapshots:  # first step of each stage: after the checkpoint reload
            snapshots[state.stage] = ({f"model.{k}": v.clone() for k, v in model.state_dict().items()}
                                      | {f"objective.{k}": v.clone() for k, v in self.state_dict().items()})
            if state.stage == "cd":
                assert not any(m.training for m in model.encoders.modules())
                assert not any(p.requires_grad for n, p in self.named_parameters() if n.startswith(("proj", "id_")))
        return forward(self, model, batch, state)

    monkeypatch.setattr(METHODS.get("dmil"), "forward", recording_forward)
    cfg = make_config("dmil", epochs=4, n_train=120, n_test=40, data={"mix": MIX}, model=TINY_MODEL,
                      method={"dim": 8, "stage1_epochs": 1, "stage2_epochs": 2})
    trainer = Trainer(cfg, tmp_path / "run", quiet=True)
    trainer.fit()
    before, after = snapshots["cd"], snapshots["finetune"]
    frozen = [k for k in before if k.startswith(("model.encoders.", "objective.proj.", "objective.id_"))]
    assert any("running_mean" in k for k in frozen) and any(k.startswith("objective.id_") for k in frozen)
    for k in frozen:
        assert torch.equal(before[k], after[k]), f"{k} changed during stage 2"
    moved = [k for k in before if k.startswith(("objective.cd_", "objective.gate.", "objective.heads."))
             and not torch.equal(before[k], after[k])]
    assert moved, "stage 2 trained nothing"
    # stage 1 did move the BatchNorm statistics (the check above is not vacuous)
    init = with_batchnorm(trainer.cfg.model, trainer.data.info).encoders.state_dict()
    assert not torch.equal(init["x1.net.2.running_mean"], before["model.encoders.x1.net.2.running_mean"])


def test_tiny_run_writes_gates_components_and_agreement(tmp_path):
    out = tmp_path / "run"
    cfg = make_config("dmil", epochs=3, n_train=120, n_test=60, data={"mix": MIX}, model=TINY_MODEL,
                      method={"dim": 8})
    metrics = train(cfg, out)
    with open(out / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 60
    for col in ("gate_R", "gate_U1", "gate_U2", "gate_S", "pred_R", "pred_U1", "pred_U2", "pred_S", "interaction"):
        assert col in rows[0], col
    assert abs(sum(float(rows[0][f"gate_{c}"]) for c in ("R", "U1", "U2", "S")) - 1) < 1e-4
    test = metrics["test"]
    assert 0 <= test["gate_agreement"] <= 1 and test["gate_agreement_chance"] == 0.25
    assert set(test["gate"]["mean"]) == {"R", "U1", "U2", "S"}
    assert set(test["gate"]["by_source"]) <= {"redundant", "unique1", "unique2", "synergistic"}
    assert set(test["component_accuracy"]) == {"R", "U1", "U2", "S"}
    assert metrics["dmil"]["variant"] == "full" and metrics["dmil"]["stages"] == {"id": 1, "cd": 1, "finetune": 1}
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in log] == ["id", "cd", "finetune"]
    assert {"ce_id", "kl_id", "rec_id"} <= set(log[0]["train"])
    assert {"ce_fused", "ce_S", "align", "kl_cd", "rec_cd"} <= set(log[1]["train"])
    assert "gate_S" in log[2]["objective"]
    assert json.loads((out / "metrics.json").read_text())["test"]["gate_agreement"] == test["gate_agreement"]


def test_gate_agreement_counts_dominant_component_against_source(data2):
    _, obj = make(data2)
    names = data2.info.interactions  # unique1, unique2, redundant, synergistic
    source = torch.tensor([names.index(s) for s in ("redundant", "unique1", "unique2", "synergistic", "synergistic")])
    gate = torch.tensor([[0.7, 0.1, 0.1, 0.1],   # R on redundant: agrees
                         [0.1, 0.6, 0.2, 0.1],   # U1 on unique1: agrees
                         [0.1, 0.6, 0.2, 0.1],   # U1 on unique2: disagrees
                         [0.1, 0.1, 0.1, 0.7],   # S on synergistic: agrees
                         [0.4, 0.3, 0.2, 0.1]])  # R on synergistic: disagrees
    extras = {f"gate_{c}": gate[:, i] for i, c in enumerate(("R", "U1", "U2", "S"))}
    extras |= {f"pred_{c}": torch.zeros(5, dtype=torch.long) for c in ("R", "U1", "U2", "S")}
    out = EvalOutput(logits=torch.zeros(5, 2), target=torch.zeros(5, dtype=torch.long), index=torch.arange(5),
                     meta={"interaction": source}, extras=extras)
    m = obj.test_metrics(out)
    assert m["gate_agreement"] == pytest.approx(3 / 5)
    assert m["gate_agreement_constant"] == pytest.approx(2 / 5)  # always S: right on the two synergistic samples
    assert m["gate"]["dominant_by_source"]["synergistic"] == {"R": 0.5, "U1": 0.0, "U2": 0.0, "S": 0.5}
    assert m["gate"]["by_source"]["unique2"]["U1"] == pytest.approx(0.6)
    assert m["component_accuracy"]["S"] == 1.0


def test_three_modalities_use_the_labelled_intra_modality_only_variant(data3, tmp_path):
    model, obj = make(data3)
    assert obj.variant_label == "intra_modality_only" and obj.components == ["x1", "x2", "x3"]
    assert [s.name for s in obj.stages(6)] == ["id", "gate", "finetune"]
    assert not any(n.startswith(("cd_", "syn", "heads")) for n, _ in obj.named_parameters())
    batch = data3.train.batch(torch.arange(16))
    for stage in obj.stages(6):
        out = obj(model, batch, TrainState(stage=stage.name))
        assert torch.isfinite(out.loss)
    obj.eval()
    pred = obj.predict(model, batch)
    assert set(pred.extras) == {"gate_x1", "gate_x2", "gate_x3"}
    assert torch.allclose(sum(pred.extras.values()), torch.ones(16))
    with pytest.raises(ConfigError, match="two modalities"):
        METHODS.get("dmil")(variant="full").setup(model, data3)
    cfg = make_config("dmil", epochs=3, n_train=120, n_test=60, model=TINY_MODEL, method={"dim": 8},
                      data={"modalities": 3, "mix": {"unique1": 1 / 3, "unique3": 1 / 3, "synergistic": 1 / 3}})
    metrics = train(cfg, tmp_path / "run3")
    assert metrics["dmil"]["variant"] == "intra_modality_only"
    assert metrics["test"]["dmil_variant"] == "intra_modality_only"
    assert 0 <= metrics["test"]["gate_agreement"] <= 1  # over unique-source samples only
    header = (tmp_path / "run3" / "predictions.csv").read_text().splitlines()[0].split(",")
    assert {"gate_x1", "gate_x2", "gate_x3"} <= set(header)


def test_hyperparameters_settable_from_config():
    from interplay.engine import resolve_config

    cfg = make_config("dmil", method={"combine": "prob", "alpha": "0.1", "stage2_epochs": "3"})
    params = resolve_config(cfg).method.params
    assert params["combine"] == "prob" and params["alpha"] == 0.1 and params["stage2_epochs"] == 3
    with pytest.raises(ConfigError):
        resolve_config(make_config("dmil", method={"combine": "median"}))


# ---------------------------------------------------------------------------- ablations: fc, cd_only
def _loss(obj, model, batch, stage):
    torch.manual_seed(1)
    return obj(model, batch, TrainState(stage=stage))


def test_fc_variant_is_deterministic_and_has_no_kl_terms(data2):
    model, obj = make(data2, variant="fc")
    assert obj.variant_label == "fc" and obj.components == ["R", "U1", "U2", "S"]
    assert [s.name for s in obj.stages(10)] == ["id", "cd", "finetune"]
    names = [n for n, _ in obj.named_parameters()]
    assert not any(n.startswith("cd_align") for n in names)  # the alignment is a KL: gone
    assert obj.id_m["x1"].net.out_features == 8  # Linear(d, d), not Linear(d, 2d) -> (mu, logvar)
    batch = data2.train.batch(torch.arange(24))
    expected = {"id": {"ce_id", "rec_id"}, "cd": {"ce_fused", "ce_comp", "ce_R", "ce_U1", "ce_U2", "ce_S", "rec_cd"}}
    expected["finetune"] = expected["id"] | expected["cd"]
    obj.train()
    for stage in ("id", "cd", "finetune"):
        a, b = _loss(obj, model, batch, stage), obj(model, batch, TrainState(stage=stage))
        assert set(a.parts) == expected[stage]
        assert torch.equal(a.loss, b.loss)  # no sampling anywhere, even in training mode
    # the KL weights have nothing to weigh: the loss is the same with any of them
    parts = _loss(obj, model, batch, "finetune").parts
    hand = parts["ce_fused"] + obj.beta * (parts["ce_id"] + obj.w_rec_id * parts["rec_id"]) \
        + obj.gamma * (obj.w_comp * parts["ce_comp"] + obj.w_rec_cd * parts["rec_cd"])
    assert torch.allclose(_loss(obj, model, batch, "finetune").loss, hand, atol=1e-6)
    obj.w_kl_id = obj.w_kl_cd = obj.alpha = 100.0
    assert torch.allclose(_loss(obj, model, batch, "finetune").loss, hand, atol=1e-6)


def test_full_variant_has_the_kl_terms_fc_drops(data2):
    """The contrast to the fc test: in ``full`` the same weights do change the loss."""
    model, obj = make(data2)
    batch = data2.train.batch(torch.arange(24))
    obj.train()
    before = _loss(obj, model, batch, "finetune")
    assert {"kl_id", "kl_cd", "align"} <= set(before.parts) and before.parts["kl_id"] > 0
    obj.w_kl_id = 100.0
    after = _loss(obj, model, batch, "finetune")
    assert torch.allclose(after.loss - before.loss, obj.beta * (100.0 - 1e-3) * before.parts["kl_id"], rtol=1e-4)
    a, b = _loss(obj, model, batch, "finetune"), obj(model, batch, TrainState(stage="finetune"))
    assert not torch.equal(a.logits, b.logits)  # sampled latents in training mode


def test_cd_only_variant_has_no_intra_modality_decomposition(data2):
    model, obj = make(data2, variant="cd_only")
    assert obj.variant_label == "cd_only"
    assert not any(n.startswith("id_") for n, _ in obj.named_parameters())
    stages = obj.stages(10)
    assert [(s.name, s.epochs) for s in stages] == [("cd", 10)]
    assert stages[0].trainable("model.encoders.x1.net.0.weight") and stages[0].trainable("objective.proj.x1.weight")
    assert not stages[0].trainable("model.head.weight")
    batch = data2.train.batch(torch.arange(24))
    obj.train()
    out = _loss(obj, model, batch, "cd")
    assert set(out.parts) == {"ce_fused", "ce_comp", "ce_R", "ce_U1", "ce_U2", "ce_S", "kl_cd", "align", "rec_cd"}
    assert int(obj.stage_index) == 2
    # the ID weights (beta = weight of L1) have nothing to weigh
    obj.beta, obj.w_kl_id, obj.w_rec_id = 10.0, 10.0, 10.0
    assert torch.equal(_loss(obj, model, batch, "cd").loss, out.loss)
    # gradients reach the encoders in the single stage
    model.zero_grad()
    _loss(obj, model, batch, "cd").loss.backward()
    assert model.encoders["x1"].net[0].weight.grad.abs().sum() > 0
    # components read Z_m directly: S = f([Z_1, Z_2, Z_1 * Z_2]), U_m = VB(Z_m)
    obj.eval()
    with torch.no_grad():
        feats = model.encode(batch.inputs)
        z1, z2 = obj.proj["x1"](feats["x1"]), obj.proj["x2"](feats["x2"])
        s = obj.syn(torch.cat([z1, z2, z1 * z2], -1))
        u1 = obj.cd_u["x1"](z1, sample=False).mu
        pred = obj.predict(model, batch)
    assert torch.allclose(pred.extras["pred_S"], obj.heads["S"](s).argmax(-1))
    assert torch.allclose(pred.unimodal_logits["x1"], obj.heads["U1"](u1), atol=1e-6)
    assert torch.allclose(pred.extras["gate_S"] + pred.extras["gate_R"] + pred.extras["gate_U1"]
                          + pred.extras["gate_U2"], torch.ones(24))


def test_ablation_variants_refuse_bad_values_and_three_modalities(data3):
    with pytest.raises(ConfigError, match="method.variant: expected one of"):
        METHODS.get("dmil")(variant="cd")
    from interplay.engine import resolve_config

    with pytest.raises(ConfigError, match="variant"):
        resolve_config(make_config("dmil", method={"variant": "no_kl"}))
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_hidden=[16], fusion_hidden=[16]), data3.info)
    for variant in ("fc", "cd_only"):
        with pytest.raises(ConfigError, match="two modalities"):
            METHODS.get("dmil")(variant=variant).setup(model, data3)


@pytest.mark.parametrize("variant, stages", [("fc", {"id": 1, "cd": 1, "finetune": 1}), ("cd_only", {"cd": 3})])
def test_ablation_variants_train_through_the_engine(tmp_path, variant, stages):
    out = tmp_path / variant
    cfg = make_config("dmil", epochs=3, n_train=120, n_test=60, data={"mix": MIX}, model=TINY_MODEL,
                      method={"dim": 8, "variant": variant})
    metrics = train(cfg, out)
    assert metrics["dmil"]["variant"] == variant and metrics["dmil"]["stages"] == stages
    assert metrics["test"]["dmil_variant"] == variant
    assert set(metrics["test"]["component_accuracy"]) == {"R", "U1", "U2", "S"}
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    keys = set().union(*(r["train"] for r in log))
    if variant == "fc":
        assert not keys & {"kl_id", "kl_cd", "align"} and {"rec_id", "rec_cd"} <= keys
    else:
        assert not keys & {"ce_id", "kl_id", "rec_id"} and {"kl_cd", "align"} <= keys
