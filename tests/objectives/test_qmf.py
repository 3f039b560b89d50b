"""QMF: fusion weights follow the energy-confidence formula; a noisier modality gets a lower weight; the ranking
regulariser and the loss history match naive computations."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from interplay.config import ModelConfig
from interplay.data import pid_xor
from interplay.errors import ConfigError
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState
from interplay.objectives.qmf import energy_confidence, qmf_fusion, ranking_loss


def test_confidence_and_fusion_follow_the_formula():
    a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    b = torch.tensor([[5.0, -1.0, 0.0], [0.1, 0.2, 0.3]])
    fused, w = qmf_fusion({"a": a, "b": b}, temperature=10.0)
    for i in range(2):
        wa = math.log(sum(math.exp(v) for v in a[i].tolist())) / 10  # -0.1 * energy, energy = -logsumexp
        wb = math.log(sum(math.exp(v) for v in b[i].tolist())) / 10
        assert float(w["a"][i]) == pytest.approx(wa, rel=1e-6) and float(w["b"][i]) == pytest.approx(wb, rel=1e-6)
        assert fused[i].tolist() == pytest.approx([wa * x + wb * y for x, y in zip(a[i].tolist(), b[i].tolist())],
                                                  rel=1e-6)
    # uniform logits carry confidence log(C) / T
    assert float(energy_confidence(torch.zeros(1, 4), 2.0)[0]) == pytest.approx(math.log(4) / 2)


def naive_ranking(conf, hist):
    n = len(conf)
    total = 0.0
    for i in range(n):
        j = (i + 1) % n
        s = (hist[i] > hist[j]) - (hist[i] < hist[j])
        total += max(0.0, s * (conf[i] - conf[j]) - abs(hist[i] - hist[j]))
    return total / n


def test_ranking_loss_hand_case():
    conf = [0.9, 0.2, 0.5, 0.5]
    hist = [1.0, 0.0, 0.3, 0.3]
    # pairs (0,1): s=+1, 0.7 - 1.0 < 0 -> 0; (1,2): s=-1, -(0.2-0.5) - 0.3 = 0 -> 0; (2,3): s=0 -> 0;
    # (3,0): s=-1, -(0.5-0.9) - 0.7 < 0 -> 0
    assert float(ranking_loss(torch.tensor(conf), torch.tensor(hist))) == pytest.approx(0.0)
    conf2 = [0.9, 0.1, 0.8, 0.2]
    hist2 = [0.6, 0.5, 0.0, 1.0]
    # (0,1): s=+1, 0.8 - 0.1 = 0.7; (1,2): s=+1, -0.7 - 0.5 -> 0; (2,3): s=-1, 0.6 - 1.0 -> 0;
    # (3,0): s=+1, -0.7 - 0.4 -> 0
    assert float(ranking_loss(torch.tensor(conf2), torch.tensor(hist2))) == pytest.approx(0.7 / 4)
    g = torch.Generator().manual_seed(0)
    c, h = torch.rand(9, generator=g, dtype=torch.float64), torch.rand(9, generator=g, dtype=torch.float64)
    assert float(ranking_loss(c, h)) == pytest.approx(naive_ranking(c.tolist(), h.tolist()), abs=1e-12)


@pytest.fixture(scope="module")
def setup():
    data = pid_xor(seed=0, n_train=96, n_test=16, mix="redundant=1")
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=[8]), data.info)
    obj = METHODS.get("qmf")()
    obj.setup(model, data)
    return data, model, obj


def test_history_accumulates_per_sample_unimodal_losses(setup):
    data, model, obj = setup
    obj.history.zero_()
    idx = torch.tensor([3, 7, 11, 20])
    batch = data.train.batch(idx)
    obj.train()
    out = obj(model, batch, TrainState())
    with torch.no_grad():
        uni = model.unimodal_logits(model.encode(batch.inputs))
    for k, m in enumerate(obj.order):
        want = F.cross_entropy(uni[m], batch.target, reduction="none")
        assert torch.allclose(obj.history[k, idx], want.to(obj.history.dtype), atol=1e-6)
        assert float(obj.history[k].sum()) == pytest.approx(float(want.sum()), rel=1e-5)
    assert set(out.parts) >= {"fused", "rank", *(f"uni_{m}" for m in obj.order)}
    # the loss is the sum of its parts
    total = out.parts["fused"] + sum(out.parts[f"uni_{m}"] for m in obj.order) + out.parts["rank"]
    assert float(out.loss.detach()) == pytest.approx(float(total), rel=1e-6)
    obj.history.zero_()


def test_noisier_modality_gets_lower_weight():
    """Train on redundant pid-xor (both modalities carry the label), then corrupt x2 at test time with Gaussian noise
    that keeps its scale (``sqrt(1 - a) x2 + sqrt(a) std(x2) eps``, a = 0.8): x2's mean fusion weight drops below
    its clean value and below x1's. (Noise that inflates the input's scale raises the energy confidence instead:
    see docs/methods/baselines.md.)"""
    data = pid_xor(seed=1, n_train=600, n_test=200, mix="redundant=1")
    torch.manual_seed(1)
    model = build_model(ModelConfig(encoder_hidden=[32], fusion_hidden=[32]), data.info)
    obj = METHODS.get("qmf")()
    obj.setup(model, data)
    params = [*model.parameters(), *obj.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    n = len(data.train)
    gen = torch.Generator().manual_seed(1)
    for epoch in range(8):
        for idx in torch.randperm(n, generator=gen).split(64):
            out = obj(model, data.train.batch(idx), TrainState(epoch=epoch))
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    model.eval()
    obj.eval()
    test = data.test.batch(torch.arange(len(data.test)))
    clean = obj.predict(model, test).extras
    noisy_inputs = dict(test.inputs)
    x2 = noisy_inputs["x2"]
    noisy_inputs["x2"] = math.sqrt(0.2) * x2 + math.sqrt(0.8) * x2.std() * torch.randn(x2.shape, generator=gen)
    noisy = obj.predict(model, type(test)(noisy_inputs, test.target, test.index)).extras
    w1c, w2c = float(clean["weight_x1"].mean()), float(clean["weight_x2"].mean())
    w1n, w2n = float(noisy["weight_x1"].mean()), float(noisy["weight_x2"].mean())
    assert w2n < w2c and w2n < w1n, (w1c, w2c, w1n, w2n)
    assert w1n == pytest.approx(w1c)  # x1 untouched
    assert np.isfinite([w1c, w2c, w1n, w2n]).all()


def test_bad_hyperparameters_are_one_line():
    with pytest.raises(ConfigError, match="method.temperature"):
        METHODS.get("qmf")(temperature=0)
    with pytest.raises(ConfigError, match="method.w_rank"):
        METHODS.get("qmf")(w_rank=-1)
