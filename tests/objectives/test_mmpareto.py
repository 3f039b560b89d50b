"""MMPareto: the integrated encoder gradient has a non-negative inner product with the multimodal and the unimodal
gradient (the paper's common-direction property), checked against separately computed gradients."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from interplay.config import ModelConfig
from interplay.data import pid_xor
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState
from interplay.objectives.mmpareto import min_norm_weights, pareto_combination


def test_min_norm_weights_match_a_grid_search():
    g1, g2 = torch.tensor([1.0, 0.2, -0.5]), torch.tensor([-0.6, 0.9, 0.1])
    w, v = min_norm_weights(g1, g2)
    grid = torch.linspace(0, 1, 10001)
    norms = (grid[:, None] * g1 + (1 - grid)[:, None] * g2).norm(dim=1)
    assert w + v == pytest.approx(1.0)
    assert w == pytest.approx(float(grid[norms.argmin()]), abs=1e-3)


def test_combination_on_hand_cases():
    # aligned: plain sum times gamma
    assert pareto_combination(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), 1.5) == (1.5, 1.5)
    # opposed along one axis, orthogonal on the other: g1=(1,0), g2=(-1,1): min-norm w = (g2-g1).g2/|g1-g2|^2
    # = (2+1)/5 = 0.6 -> d = 0.6 g1 + 0.4 g2 = (0.2, 0.4); doubled (0.4, 0.8), norm 0.894 < |g1+g2| = 1 -> stretched
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    c1, c2 = pareto_combination(g1, g2, 1.0)
    stretch = 1.0 / (2 * torch.tensor([0.2, 0.4])).norm().item()
    assert c1 == pytest.approx(1.2 * stretch) and c2 == pytest.approx(0.8 * stretch)


vec = st.lists(st.floats(-3, 3, allow_nan=False), min_size=4, max_size=4)


@settings(max_examples=100, deadline=None)
@given(vec, vec, st.floats(0.5, 3.0))
def test_final_gradient_is_a_common_descent_direction(a, b, gamma):
    g1, g2 = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    c1, c2 = pareto_combination(g1, g2, gamma)
    d = c1 * g1 + c2 * g2
    scale = (g1.norm() * g2.norm()).item() + 1e-12
    assert d.dot(g1).item() >= -1e-9 * scale and d.dot(g2).item() >= -1e-9 * scale
    assert c1 >= 0 and c2 >= 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_engine_backward_applies_the_combination(seed):
    torch.manual_seed(seed)
    data = pid_xor(seed=seed, n_train=64, n_test=16, mix="unique1=0.5,synergistic=0.5")
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=[8]), data.info)
    obj = METHODS.get("mmpareto")(gamma=1.5)
    obj.setup(model, data)
    batch = data.train.batch(torch.arange(48))
    state = TrainState()
    # reference: each loss's gradient on each encoder, taken separately
    model.zero_grad()
    out = obj(model, batch, state)
    losses = dict(obj._losses)
    ref = {}
    for m in model.modalities:
        params = model.encoder_parameters(m)
        g_mm = torch.cat([g.reshape(-1) for g in torch.autograd.grad(losses[""], params, retain_graph=True)])
        g_u = torch.cat([g.reshape(-1) for g in torch.autograd.grad(losses[m], params, retain_graph=True)])
        ref[m] = (g_mm, g_u)
    head_ref = torch.autograd.grad(out.loss, list(model.head.parameters()), retain_graph=True)
    obj.backward(model, out, state, lambda loss: loss)
    for m, (g_mm, g_u) in ref.items():
        got = torch.cat([p.grad.reshape(-1) for p in model.encoder_parameters(m)])
        c_mm, c_u = pareto_combination(g_mm, g_u, 1.5)
        assert torch.allclose(got, c_mm * g_mm + c_u * g_u, atol=1e-6)
        assert got.dot(g_mm) >= -1e-7 and got.dot(g_u) >= -1e-7
    # heads get their ordinary gradients
    for g, p in zip(head_ref, model.head.parameters()):
        assert torch.allclose(p.grad, g, atol=1e-7)


def test_conflict_is_resolved_on_a_hand_built_model():
    """The x1 unimodal head is the negated x1 block of a linear fusion head: the two losses pull x1's encoder in
    opposite directions (a conflict, checked), and the integrated gradient still agrees with both."""
    torch.manual_seed(0)
    data = pid_xor(seed=0, n_train=64, n_test=8, mix="unique1=1")
    model = build_model(ModelConfig(encoder_hidden=[4], fusion_hidden=[]), data.info)
    obj = METHODS.get("mmpareto")(gamma=1.0)
    obj.setup(model, data)
    with torch.no_grad():
        model.head.weight[:, 4:] = 0  # x2 plays no part
        model.unimodal_heads["x1"][0].weight.copy_(-model.head.weight[:, :4])
        model.unimodal_heads["x1"][0].bias.copy_(-model.head.bias)
    batch = data.train.batch(torch.arange(32))
    model.zero_grad()
    out = obj(model, batch, TrainState())
    params = model.encoder_parameters("x1")
    g_mm = torch.cat([g.reshape(-1) for g in torch.autograd.grad(obj._losses[""], params, retain_graph=True)])
    g_u = torch.cat([g.reshape(-1) for g in torch.autograd.grad(obj._losses["x1"], params, retain_graph=True)])
    assert g_mm.dot(g_u) < 0, "the construction must produce a conflict"
    obj.backward(model, out, TrainState(), lambda loss: loss)
    got = torch.cat([p.grad.reshape(-1) for p in params])
    assert got.dot(g_mm) >= -1e-7 and got.dot(g_u) >= -1e-7
    w, v = min_norm_weights(g_mm, g_u)
    assert torch.allclose(got / got.norm(), (w * g_mm + v * g_u) / (w * g_mm + v * g_u).norm(), atol=1e-5)
