"""MCR: the permutation divergence and contrastive term match naive computations; the game routes each encoder the
gradient ``grad_i(L_MIPD_i) + k grad_i(sum_{j != i} L_MIPD_j)``."""

import math

import pytest
import torch
import torch.nn.functional as F

from interplay.config import ModelConfig
from interplay.data import pid_xor
from interplay.errors import ConfigError
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState
from interplay.objectives.mcr import GAMES, js_divergence, supervised_nt_xent


def naive_jsd(p, q):
    m = [(a + b) / 2 for a, b in zip(p, q)]
    return 0.5 * sum(a * math.log(a / c) for a, c in zip(p, m) if a > 0) + \
        0.5 * sum(b * math.log(b / c) for b, c in zip(q, m) if b > 0)


def test_js_divergence_hand_cases():
    # disjoint supports: log 2; identical: 0
    big = 50.0
    assert float(js_divergence(torch.tensor([[big, 0.0]]), torch.tensor([[0.0, big]]))[0]) == pytest.approx(
        math.log(2), abs=1e-6)
    assert float(js_divergence(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 2.0]]))[0]) == pytest.approx(0.0)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(5, 4, generator=g, dtype=torch.float64)
    got = js_divergence(a, b)
    for i in range(5):
        assert float(got[i]) == pytest.approx(naive_jsd(F.softmax(a[i], -1).tolist(), F.softmax(b[i], -1).tolist()))
    assert torch.allclose(got, js_divergence(b, a))


def naive_sup_ntxent(z, y, t):
    z = [F.normalize(v, dim=0) for v in z]
    n = len(z)
    losses = []
    for a in range(n):
        negs = sum(math.exp(float(z[a] @ z[k]) / t) for k in range(n) if y[k] != y[a])
        for p in range(n):
            if p != a and y[p] == y[a]:
                s = math.exp(float(z[a] @ z[p]) / t)
                losses.append(-math.log(s / (s + negs)))
    return sum(losses) / len(losses)


def test_supervised_nt_xent_matches_naive_loop():
    g = torch.Generator().manual_seed(1)
    v1, v2 = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 2])
    got = supervised_nt_xent([v1, v2], y, 0.5)
    want = naive_sup_ntxent(list(torch.cat([v1, v2])), y.repeat(2).tolist(), 0.5)
    assert float(got) == pytest.approx(want, rel=1e-9)


@pytest.fixture(scope="module")
def data():
    return pid_xor(seed=0, n_train=64, n_test=16, mix="redundant=0.5,synergistic=0.5", modalities=3)


def make(data, **kw):
    torch.manual_seed(0)
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=[8]), data.info)
    obj = METHODS.get("mcr")(**kw)
    obj.setup(model, data)
    return model, obj


def test_constant_modality_has_zero_permutation_divergence(data):
    """Hand case: a modality whose features are the same for every sample carries no information, so permuting it
    leaves the prediction unchanged and its JSD is exactly 0; the others' is positive."""
    model, obj = make(data)
    batch = data.train.batch(torch.arange(16))
    feats = model.encode(batch.inputs)
    feats["x2"] = feats["x2"][:1].expand_as(feats["x2"]).clone()
    perms = [torch.randperm(16, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    reg, jsd = obj.mipd(model, feats, perms)
    assert float(jsd["x2"]) == pytest.approx(0.0, abs=1e-7)
    assert float(jsd["x1"]) > 0 and float(jsd["x3"]) > 0
    # greedy (k = -1): the value is -(1 + k) sum JSD = 0
    assert float(reg.detach()) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("game", sorted(GAMES))
def test_game_routes_the_stated_gradient_to_each_encoder(data, game):
    model, obj = make(data, game=game)
    k = GAMES[game]
    batch = data.train.batch(torch.arange(16))
    perms = [torch.randperm(16, generator=torch.Generator().manual_seed(s)) for s in range(2)]
    mods = model.modalities

    model.zero_grad()
    reg, _ = obj.mipd(model, model.encode(batch.inputs), perms)
    reg.backward()
    got = {m: [p.grad.clone() for p in model.encoder_parameters(m)] for m in mods}

    # naive: JSD_j with the full graph (every encoder live), the clean prediction a fixed target
    def jsd_terms():
        feats = model.encode(batch.inputs)
        rep = torch.cat([torch.arange(16)] * len(perms))
        shuf = torch.cat(perms)
        with torch.no_grad():
            base = model.logits({m: z.detach()[rep] for m, z in feats.items()})
        return {j: js_divergence(model.logits({m: (feats[m][shuf] if m == j else feats[m][rep]) for m in mods}),
                                 base).mean() for j in mods}

    for i in mods:
        terms = jsd_terms()
        objective_i = -terms[i] - k * sum(terms[j] for j in mods if j != i)
        grads = torch.autograd.grad(objective_i, model.encoder_parameters(i), allow_unused=True)
        for g_got, g_want in zip(got[i], grads):
            assert torch.allclose(g_got, g_want, atol=1e-6), (game, i)
    # its value is -(1 + k) sum_m JSD_m
    with torch.no_grad():
        terms = jsd_terms()
    assert float(reg.detach()) == pytest.approx(-(1 + k) * float(sum(terms.values())), abs=1e-6)


def test_loss_is_the_sum_of_its_terms(data):
    model, obj = make(data, lam=0.3, w_con=0.5, w_ceb=0.2)
    batch = data.train.batch(torch.arange(20))
    out = obj(model, batch, TrainState())
    p = out.parts
    want = p["task"] + sum(p[f"uni_{m}"] for m in model.modalities) + 0.3 * p["mipd"] + 0.5 * p["con"] + 0.2 * p["ceb"]
    assert float(out.loss.detach()) == pytest.approx(float(want), rel=1e-5)
    assert {f"jsd_{m}" for m in model.modalities} <= set(p)


def test_bad_hyperparameters_are_one_line():
    with pytest.raises(ConfigError, match="method.game"):
        METHODS.get("mcr")(game="selfish")
    with pytest.raises(ConfigError, match="method.num_samples"):
        METHODS.get("mcr")(num_samples=0)
