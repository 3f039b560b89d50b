"""MIB: the KL terms match the closed form; early / late / complete put the bottlenecks where the paper states."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from interplay.config import ModelConfig
from interplay.data import pid_xor
from interplay.errors import ConfigError
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState, method_params
from interplay.objectives.mib import Bottleneck


@pytest.fixture(scope="module")
def data():
    return pid_xor(seed=0, n_train=64, n_test=16, mix="redundant=0.5,synergistic=0.5", modalities=3)


def make(data, **kw):
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=[8]), data.info)
    obj = METHODS.get("mib")(latent_dim=4, hidden=16, **kw)
    obj.setup(model, data)
    return model, obj


def test_kl_matches_closed_form_and_torch_distributions():
    obj = METHODS.get("mib")()
    mu = torch.tensor([[0.5, -1.0], [0.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, math.log(0.25)], [math.log(4.0), -1.0]], dtype=torch.float64)
    naive = [[0.5 * (m * m + math.exp(lv) - lv - 1) for m, lv in zip(r_mu, r_lv)]
             for r_mu, r_lv in zip(mu.tolist(), logvar.tolist())]
    assert float(obj.kl(mu, logvar)) == pytest.approx(sum(map(sum, naive)) / 4)  # mean over batch and dims
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    assert float(obj.kl(mu, logvar)) == pytest.approx(float(ref.mean()))
    summed = METHODS.get("mib")(kl_reduction="sum")
    assert float(summed.kl(mu, logvar)) == pytest.approx(float(ref.sum(-1).mean()))
    # exact value of one entry: mu=0.5, sigma^2=1 -> 0.125
    assert naive[0][0] == pytest.approx(0.125)


def test_bottleneck_parametrisation():
    torch.manual_seed(0)
    ib = Bottleneck(5, 16, 3)
    h = torch.randn(7, 5)
    mu, logvar = ib(h)
    body = ib.body(h)
    std = torch.nn.functional.softplus(ib.raw_std(body) - 5)
    assert torch.allclose(mu, ib.mu(body)) and torch.allclose(logvar, 2 * std.log())
    assert mu.shape == logvar.shape == (7, 3)


@pytest.mark.parametrize("fusion, uni, fused", [("early", False, True), ("late", True, False),
                                                ("complete", True, True)])
def test_variants_use_the_stated_bottlenecks(data, fusion, uni, fused):
    model, obj = make(data, fusion=fusion, beta=0.5)
    assert hasattr(obj, "ib_uni") == uni and hasattr(obj, "ib_fused") == fused
    batch = data.train.batch(torch.arange(20))
    obj.eval()  # means instead of samples: the loss is deterministic and can be recomputed by hand
    out = obj(model, batch, TrainState())
    kl_keys = ({f"kl_{m}" for m in model.modalities} if uni else set()) | ({"kl_fused"} if fused else set())
    uni_keys = {f"uni_{m}" for m in model.modalities} if uni else set()
    assert set(out.parts) == {"task"} | kl_keys | uni_keys
    # recompute every term from the modules
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        feats = model.encode(batch.inputs)
        y = batch.target
        total, kls = torch.zeros(()), []
        if uni:
            zs = []
            for m in model.modalities:
                mu, logvar = obj.ib_uni[m](feats[m])
                kls.append(obj.kl(mu, logvar))
                total = total + ce(obj.dec_uni[m](mu), y)
                zs.append(mu)
            h = obj.latent_fusion(torch.cat(zs, -1))
        else:
            h = model.fuse(feats)  # early: the model's fusion of the encoder features
        if fused:
            mu, logvar = obj.ib_fused(h)
            kls.append(obj.kl(mu, logvar))
            h = mu
        total = total + ce(obj.dec(h), y) + 0.5 * sum(kls)
    assert float(out.loss.detach()) == pytest.approx(float(total), rel=1e-5)
    pred = obj.predict(model, batch)
    assert torch.allclose(pred.logits, obj.dec(h).detach(), atol=1e-6)
    assert (pred.unimodal_logits is not None) == uni
    # training samples the latents: two training passes differ, evaluation passes do not
    obj.train()
    a, b = obj(model, batch, TrainState()).loss, obj(model, batch, TrainState()).loss
    assert not torch.equal(a, b)


def test_fused_bottleneck_widths(data):
    model, early = make(data, fusion="early")
    assert early.ib_fused.body[0].in_features == model.fusion.out_dim  # IB on the early-fused representation
    _, complete = make(data, fusion="complete")
    assert complete.ib_fused.body[0].in_features == 4  # IB on the fusion of the unimodal latents


def test_bad_fusion_is_one_line():
    with pytest.raises(ConfigError, match=r"method.fusion: expected one of early, late, complete") as err:
        METHODS.get("mib")(fusion="middle")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="fusion") as err2:
        method_params("mib", {"fusion": "middle"})
    assert "\n" not in str(err2.value)
    with pytest.raises(ConfigError, match="method.beta"):
        METHODS.get("mib")(beta=-1.0)
    assert method_params("mib")["beta"] == 1e-3 and method_params("mib")["fusion"] == "complete"
