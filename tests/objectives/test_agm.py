"""AGM: Shapley mono-modal responses and modulation coefficients as defined, against naive computations."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from interplay.config import ModelConfig
from interplay.data import pid_xor
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState
from interplay.objectives.agm import modulation_coefficients, response_scores, shapley_responses


def test_two_modality_shapley_by_hand():
    f = {frozenset(): torch.tensor([[0.0, 1.0]]), frozenset({"a"}): torch.tensor([[2.0, 1.0]]),
         frozenset({"b"}): torch.tensor([[0.5, 3.0]]), frozenset({"a", "b"}): torch.tensor([[4.0, 0.0]])}
    phi = shapley_responses(f, ["a", "b"])
    # phi_a = 1/2 [(f(ab) - f(b)) + (f(a) - f(0))]
    ab, a, b, none = f[frozenset("ab")], f[frozenset("a")], f[frozenset("b")], f[frozenset()]
    assert torch.allclose(phi["a"], 0.5 * ((ab - b) + (a - none)))
    assert torch.allclose(phi["b"], 0.5 * ((ab - a) + (b - none)))


def naive_shapley(value, players, m):
    """Average over every ordering of the marginal contribution of ``m`` (the permutation definition)."""
    total = 0
    perms = list(itertools.permutations(players))
    for order in perms:
        before = frozenset(order[:order.index(m)])
        total = total + value[before | {m}] - value[before]
    return total / len(perms)


def test_three_modality_shapley_matches_permutation_definition_and_sums_to_the_fused_difference():
    torch.manual_seed(0)
    players = ["a", "b", "c"]
    value = {frozenset(c): torch.randn(5, 4) for k in range(4) for c in itertools.combinations(players, k)}
    phi = shapley_responses(value, players)
    for m in players:
        assert torch.allclose(phi[m], naive_shapley(value, players, m), atol=1e-6)
    assert torch.allclose(sum(phi.values()), value[frozenset(players)] - value[frozenset()], atol=1e-6)


def test_scores_and_coefficients_follow_the_definition():
    target = torch.tensor([0, 1, 1])
    resp = {"a": torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), "b": torch.zeros(3, 2)}
    s = response_scores(resp, target)
    expect_a = -(F.log_softmax(resp["a"], -1).gather(1, target[:, None])).mean()
    assert s[0].item() == pytest.approx(expect_a.item()) and s[1].item() == pytest.approx(math.log(2))
    scores, running = torch.tensor([0.3, 0.9]), torch.tensor([0.5, 0.6])
    k = modulation_coefficients(scores, running, alpha=0.5, clip=10.0)
    # two modalities: r_a = exp(s_b - s_a), eta_a = exp(s_hat_b - s_hat_a)
    r_a, eta_a = math.exp(0.9 - 0.3), math.exp(0.6 - 0.5)
    r_b, eta_b = math.exp(0.3 - 0.9), math.exp(0.5 - 0.6)
    assert k[0].item() == pytest.approx(math.exp(0.5 * (eta_a - r_a)))
    assert k[1].item() == pytest.approx(math.exp(0.5 * (eta_b - r_b)))
    assert k[0] < 1 < k[1]  # the modality ahead of its usual share is slowed, the other sped up
    assert modulation_coefficients(torch.tensor([5.0, 0.0]), torch.tensor([0.0, 5.0]), 1.0, 2.0)[0].item() == \
        pytest.approx(math.exp(2.0))  # clipped exponent


def test_step_scales_each_encoder_by_its_coefficient_and_keeps_running_means():
    torch.manual_seed(0)
    data = pid_xor(seed=0, n_train=64, n_test=16, mix="unique1=0.5,redundant=0.5")
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=[8]), data.info)
    obj = METHODS.get("agm")(alpha=0.3)
    obj.setup(model, data)
    batches = [data.train.batch(torch.arange(0, 24)), data.train.batch(torch.arange(24, 48))]
    seen = []
    for batch in batches:
        model.zero_grad()
        running_before = obj.running.clone()
        out = obj(model, batch, TrainState())
        # scores from an independent computation of the responses
        with torch.no_grad():
            model.eval()
            feats = model.encode(batch.inputs)
            sub = {frozenset(c): model.logits(feats, present=set(c)) for k in range(3)
                   for c in itertools.combinations(model.modalities, k)}
            model.train()
        scores = response_scores(shapley_responses(sub, model.modalities), batch.target).double()
        seen.append(scores)
        out.loss.backward()
        raw = {m: [p.grad.clone() for p in model.encoder_parameters(m)] for m in model.modalities}
        k = modulation_coefficients(scores, running_before, 0.3, 10.0)
        obj.on_after_backward(model, TrainState())
        for i, m in enumerate(model.modalities):
            for g0, p in zip(raw[m], model.encoder_parameters(m)):
                assert torch.allclose(p.grad, g0 * k[i].float(), atol=1e-6)
    assert torch.allclose(obj.running, (seen[0] + seen[1]) / 2, atol=1e-6)
    assert obj.iterations.item() == 2
