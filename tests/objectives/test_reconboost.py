"""ReconBoost: the alternation schedule, the boosting loss with its reconcilement term against a naive
computation (it down-weights what the other learners already get right), and who is trained in each phase."""

import pytest
import torch
import torch.nn.functional as F

from interplay.config import ModelConfig
from interplay.data import pid_xor
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState
from interplay.objectives.reconboost import boosting_loss


def test_schedule():
    obj = METHODS.get("reconboost")(boost_epochs=2, rectify_epochs=1)
    got = [obj.schedule(e, ["a", "b", "c"]) for e in range(10)]
    assert got == [("a", "boost"), ("a", "boost"), ("a", "rectify"), ("b", "boost"), ("b", "boost"),
                   ("b", "rectify"), ("c", "boost"), ("c", "boost"), ("c", "rectify"), ("a", "boost")]


def test_boosting_loss_and_reconcilement_weights():
    learner = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]], requires_grad=True)
    others = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    y = torch.tensor([0, 1])
    loss = boosting_loss(learner, others, y, w1=5.0, w2=1.0)
    onehot = F.one_hot(y, 3).float()
    # the authors' form: -w1 * mean_c(y * log p) + w2 * mean_c(y * softmax(others) * log p)
    logp = F.log_softmax(learner, -1)
    naive = -5.0 * (onehot * logp).mean(-1) + 1.0 * (onehot * F.softmax(others, -1) * logp).mean(-1)
    assert torch.allclose(loss, naive)
    # per-sample CE weights (w1 - w2 q) / C: the sample the others get right (q large) weighs less
    q = F.softmax(others, -1)[torch.arange(2), y]
    weights = (5.0 - q) / 3
    ce = F.cross_entropy(learner, y, reduction="none")
    assert torch.allclose(loss, weights * ce)
    assert q[0] > q[1] and weights[0] < weights[1]
    # the reconcilement term lowers the gradient on the sample already solved by the others
    g_rec, = torch.autograd.grad(loss.sum(), learner)
    g_ce, = torch.autograd.grad((5.0 / 3 * ce).sum(), learner)
    assert g_rec[0].norm() < g_ce[0].norm()
    # no other learner yet: q = 1 (the authors' first stage)
    assert torch.allclose(boosting_loss(learner, None, y, 5.0, 1.0), (5.0 - 1.0) / 3 * ce)


@pytest.fixture()
def setup():
    torch.manual_seed(0)
    data = pid_xor(seed=0, n_train=64, n_test=16, mix="unique1=0.5,unique2=0.5")
    model = build_model(ModelConfig(encoder_hidden=[6], fusion_hidden=[8]), data.info)
    obj = METHODS.get("reconboost")(boost_epochs=1, rectify_epochs=1)
    obj.setup(model, data)
    return data, model, obj, data.train.batch(torch.arange(32))


def grads(model, m):
    return [p.grad for p in [*model.encoder_parameters(m), *model.unimodal_heads[m].parameters()]]


def test_phases_train_the_right_learners(setup):
    data, model, obj, batch = setup
    # epoch 0: boost x1 alone (nobody has joined yet: q = 1)
    model.zero_grad()
    out = obj(model, batch, TrainState(epoch=0))
    out.loss.backward()
    assert all(g is not None for g in grads(model, "x1")) and all(g is None for g in grads(model, "x2"))
    with torch.no_grad():
        l1 = model.unimodal_heads["x1"](model.encoders["x1"](batch.inputs["x1"]))
    assert out.loss.item() == pytest.approx(((5.0 - 1.0) / 2 * F.cross_entropy(l1, batch.target)).item(), rel=1e-5)
    assert obj.joined.tolist() == [True, False]
    # epoch 2: boost x2 against the ensemble of x1
    model.zero_grad()
    out = obj(model, batch, TrainState(epoch=2))
    out.loss.backward()
    assert all(g is None for g in grads(model, "x1")) and all(g is not None for g in grads(model, "x2"))
    with torch.no_grad():
        l2 = model.unimodal_heads["x2"](model.encoders["x2"](batch.inputs["x2"]))
    expect = boosting_loss(l2, l1, batch.target, 5.0, 1.0).mean()
    assert out.loss.item() == pytest.approx(expect.item(), rel=1e-5)
    # epoch 3: global rectification of the ensemble sum; both learners trained
    model.zero_grad()
    out = obj(model, batch, TrainState(epoch=3))
    out.loss.backward()
    assert all(g is not None for m in ("x1", "x2") for g in grads(model, m))
    assert out.loss.item() == pytest.approx(F.cross_entropy(l1 + l2, batch.target).item(), rel=1e-5)
    model.eval()
    pred = obj.predict(model, batch)
    assert torch.allclose(pred.logits, l1 + l2, atol=1e-6)
