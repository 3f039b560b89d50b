"""I2M2: the prediction is the normalised product of the joint and unimodal classifiers' distributions."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from interplay.config import ModelConfig
from interplay.data import pid_xor
from interplay.errors import ConfigError
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState, method_params
from interplay.objectives.i2m2 import product_of_experts


@pytest.fixture(scope="module")
def setup():
    data = pid_xor(seed=0, n_train=64, n_test=16, mix="redundant=0.5,synergistic=0.5", modalities=3)
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=[8]), data.info)
    obj = METHODS.get("i2m2")()
    obj.setup(model, data)
    return data, model, obj, data.train.batch(torch.arange(24))


def naive_product(joint, unimodal):
    """p(y|x) = p_joint(y|x) prod_m p_m(y|x_m) / Z, one sample and class at a time."""
    def softmax(row):
        e = [np.exp(v - max(row)) for v in row]
        return [v / sum(e) for v in e]
    out = []
    for i in range(len(joint)):
        p = softmax(joint[i])
        for u in unimodal:
            q = softmax(u[i])
            p = [a * b for a, b in zip(p, q)]
        z = sum(p)
        out.append([v / z for v in p])
    return np.array(out)


def test_product_of_experts_hand_case():
    joint = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    u1 = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    u2 = torch.tensor([[0.0, 0.0], [3.0, -1.0]])
    p = product_of_experts(joint, {"a": u1, "b": u2}).exp()
    # sample 0: p_joint = (e^2, 1)/., p_1 = (1, e)/., p_2 = uniform: product ~ (e^2, e) -> (e/(e+1), 1/(e+1))
    e = np.e
    assert p[0].tolist() == pytest.approx([e / (e + 1), 1 / (e + 1)], abs=1e-6)
    assert p.numpy() == pytest.approx(naive_product(joint.tolist(), [u1.tolist(), u2.tolist()]), abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(2, 5), st.integers(1, 3), st.integers(0, 10_000))
def test_product_of_experts_matches_naive_product(b, c, m, seed):
    g = torch.Generator().manual_seed(seed)
    joint = torch.randn(b, c, generator=g, dtype=torch.float64) * 3
    uni = {f"m{i}": torch.randn(b, c, generator=g, dtype=torch.float64) * 3 for i in range(m)}
    p = product_of_experts(joint, uni).exp().numpy()
    assert p == pytest.approx(naive_product(joint.tolist(), [u.tolist() for u in uni.values()]), abs=1e-9)
    # shifting one classifier's logits by a per-sample constant does not change its distribution, nor the product
    shifted = dict(uni, m0=uni["m0"] + torch.randn(b, 1, generator=g, dtype=torch.float64))
    assert product_of_experts(joint, shifted).exp().numpy() == pytest.approx(p, abs=1e-9)


def test_prediction_and_loss_are_the_normalised_product(setup):
    data, model, obj, batch = setup
    model.eval()
    pred = obj.predict(model, batch)
    with torch.no_grad():
        feats = model.encode(batch.inputs)
        joint = F.softmax(model.head(model.fuse(feats)), -1)
        uni = [F.softmax(model.unimodal_heads[m](feats[m]), -1) for m in model.modalities]
    expected = naive_product(joint.log().tolist(), [u.log().tolist() for u in uni])
    assert pred.logits.exp().numpy() == pytest.approx(expected, abs=1e-5)
    assert set(pred.unimodal_logits) == set(model.modalities)
    out = obj(model, batch, TrainState())
    nll = -np.log(expected[np.arange(len(batch)), batch.target.numpy()]).mean()
    assert float(out.loss.detach()) == pytest.approx(nll, abs=1e-5)
    model.train()


def test_pretrain_stage_trains_each_classifier_on_its_own_loss(setup):
    data, model, _, batch = setup
    obj = METHODS.get("i2m2")(pretrain_epochs=3)
    obj.setup(model, data)
    assert [(s.name, s.epochs) for s in obj.stages(10)] == [("pretrain", 3), ("main", 7)]
    assert [s.name for s in obj.stages(1)] == ["main"]
    out = obj(model, batch, TrainState(stage="pretrain"))
    with torch.no_grad():
        feats = model.encode(batch.inputs)
        want = F.cross_entropy(model.logits(feats), batch.target) + sum(
            F.cross_entropy(v, batch.target) for v in model.unimodal_logits(feats).values())
    assert float(out.loss.detach()) == pytest.approx(float(want), rel=1e-6)


def test_bad_hyperparameters_are_one_line():
    with pytest.raises(ConfigError, match="method.pretrain_epochs"):
        METHODS.get("i2m2")(pretrain_epochs=-1)
    assert method_params("i2m2")["pretrain_epochs"] == 0
