import math

import pytest
import torch
import torch.nn.functional as F

from interplay.config import ModelConfig
from interplay.data import pid_xor
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState, mean_of_probabilities


@pytest.fixture(scope="module")
def setup():
    data = pid_xor(seed=0, n_train=64, n_test=16, mix="redundant=1")
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=[]), data.info)
    return data, model, data.train.batch(torch.arange(32))


def make(name, data, model, **kw):
    obj = METHODS.get(name)(**kw)
    obj.setup(model, data)
    return obj


def test_ogm_ge_coefficients():
    obj = METHODS.get("ogm_ge")(alpha=0.5)
    k = obj.coefficients(torch.tensor([30.0, 10.0]))
    assert k[0] == pytest.approx(1 - math.tanh(0.5 * 3.0)) and k[1] == 1.0
    k3 = obj.coefficients(torch.tensor([10.0, 10.0, 10.0]))
    assert k3 == [1.0, 1.0, 1.0]


def test_ogm_ge_scales_dominant_encoder_gradients(setup):
    data, model, batch = setup
    obj = make("ogm_ge", data, model, alpha=1.0, ge=False)
    state = TrainState()
    model.zero_grad()
    out = obj(model, batch, state)
    out.loss.backward()
    raw = {m: [p.grad.clone() for p in model.encoder_parameters(m)] for m in model.modalities}
    k = obj.coefficients(obj._scores)
    obj.on_after_backward(model, state)
    for m, km in zip(model.modalities, k):
        for g0, p in zip(raw[m], model.encoder_parameters(m)):
            assert torch.allclose(p.grad, g0 * km)
    # scores follow the definition: sum over the batch of the per-modality share's probability of y
    with torch.no_grad():
        feats = model.encode(batch.inputs)
        s1 = F.softmax(model.logits(feats, present={"x1"}), -1).gather(1, batch.target[:, None]).sum()
    assert torch.allclose(obj._scores[0], s1)
    # outside its epoch window nothing changes
    obj2 = make("ogm_ge", data, model, alpha=1.0, start_epoch=5, ge=True)
    model.zero_grad()
    obj2(model, batch, state).loss.backward()
    g = [p.grad.clone() for p in model.encoder_parameters("x1")]
    obj2.on_after_backward(model, state)
    assert all(torch.equal(a, p.grad) for a, p in zip(g, model.encoder_parameters("x1")))


def test_conf_penalty_and_label_smoothing_losses(setup):
    data, model, batch = setup
    logits = model(batch.inputs)
    ce = F.cross_entropy(logits, batch.target)
    p = logits.softmax(-1)
    h = -(p * p.log()).sum(-1).mean()
    out = make("conf_penalty", data, model, beta=0.7)(model, batch, TrainState())
    assert torch.allclose(out.loss, ce - 0.7 * h, atol=1e-6)
    out = make("label_smoothing", data, model, epsilon=0.2)(model, batch, TrainState())
    soft = torch.full_like(p, 0.1) + 0.8 * F.one_hot(batch.target, 2)
    assert torch.allclose(out.loss, -(soft * logits.log_softmax(-1)).sum(-1).mean(), atol=1e-6)


def test_ensemble_prediction_is_mean_probability(setup):
    data, model, batch = setup
    obj = make("ensemble", data, model)
    pred = obj.predict(model, batch)
    feats = model.encode(batch.inputs)
    uni = model.unimodal_logits(feats)
    expected = (uni["x1"].softmax(-1) + uni["x2"].softmax(-1)) / 2
    assert torch.allclose(pred.logits.exp(), expected, atol=1e-6)
    assert torch.allclose(mean_of_probabilities(uni).exp().sum(-1), torch.ones(32), atol=1e-6)
    # the fusion head gets no gradient: unimodal models train independently
    model.zero_grad()
    obj(model, batch, TrainState()).loss.backward()
    assert all(p.grad is None for p in model.fusion.parameters()) and model.head.weight.grad is None


def test_multi_loss_terms(setup):
    data, model, batch = setup
    out = make("multi_loss", data, model, w=0.5)(model, batch, TrainState())
    assert torch.allclose(out.loss, out.parts["task"] + 0.5 * (out.parts["uni_x1"] + out.parts["uni_x2"]))


def test_unimodal_uses_only_its_modality(setup):
    data, model, batch = setup
    obj = make("unimodal", data, model, modality="x2")
    a = obj.predict(model, batch).logits
    changed = dict(batch.inputs, x1=torch.randn_like(batch.inputs["x1"]))
    b = obj.predict(model, type(batch)(changed, batch.target, batch.index)).logits
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["ensemble", "multi_loss", "unimodal"])
def test_methods_needing_unimodal_heads_say_so(name):
    from interplay.errors import ConfigError

    data = pid_xor(seed=0, n_train=20, n_test=10)
    model = build_model(ModelConfig(encoder_hidden=[8], unimodal_heads=False), data.info)
    with pytest.raises(ConfigError, match=f"method '{name}' needs unimodal heads"):
        METHODS.get(name)().setup(model, data)
