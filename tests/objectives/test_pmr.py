"""PMR: prototypes are the class means of the encoder features (with momentum), the rebalance coefficients
and the loss follow the formulas, checked against naive loops."""

import pytest
import torch
import torch.nn.functional as F

from interplay.config import ModelConfig
from interplay.data import pid_xor
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState
from interplay.objectives.pmr import rebalance_coefficients


@pytest.fixture()
def setup():
    torch.manual_seed(0)
    data = pid_xor(seed=0, n_train=80, n_test=16, mix="unique1=0.5,redundant=0.5")
    model = build_model(ModelConfig(encoder_hidden=[6], fusion_hidden=[8]), data.info)
    obj = METHODS.get("pmr")(alpha=1.0, mu=0.1, momentum=0.2)
    obj.setup(model, data)
    return data, model, obj


def naive_means(model, split, m, num_classes):
    with torch.no_grad():
        z = model.encoders[m](split.inputs[m])
    return torch.stack([torch.stack([z[i] for i in range(len(z)) if split.target[i] == k]).mean(0)
                        for k in range(num_classes)])


def test_prototypes_are_class_means_then_momentum_blends(setup):
    data, model, obj = setup
    obj.on_train_epoch_start(model, data.train, TrainState())
    first = {m: naive_means(model, data.train, m, 2) for m in model.modalities}
    for i, m in enumerate(model.modalities):
        assert torch.allclose(obj.prototypes[i], first[m], atol=1e-5)
    with torch.no_grad():  # the encoders move; the next epoch blends 0.8 new + 0.2 old
        for p in model.encoder_parameters("x1"):
            p.add_(0.1)
    obj.on_train_epoch_start(model, data.train, TrainState(epoch=1))
    new = naive_means(model, data.train, "x1", 2)
    assert torch.allclose(obj.prototypes[0], 0.8 * new + 0.2 * first["x1"], atol=1e-5)


def test_rebalance_coefficients_by_hand():
    assert rebalance_coefficients(torch.tensor([3.0, 1.5])).tolist() == [0.0, 1.0]  # clip(2 - 1, 0, 1)
    assert rebalance_coefficients(torch.tensor([1.6, 2.0])).tolist() == pytest.approx([0.25, 0.0])
    assert rebalance_coefficients(torch.tensor([4.0, 1.0, 3.0])).tolist() == pytest.approx([0.0, 1.0, 1 / 3])
    assert rebalance_coefficients(torch.tensor([2.0, 2.0])).tolist() == [0.0, 0.0]


def test_loss_matches_the_formula(setup):
    data, model, obj = setup
    obj.on_train_epoch_start(model, data.train, TrainState())
    model.train()
    batch = data.train.batch(torch.arange(40))
    out = obj(model, batch, TrainState())
    with torch.no_grad():
        feats = model.encode(batch.inputs)
        fused = F.cross_entropy(model.logits(feats), batch.target)
        sims = {m: -torch.stack([(feats[m] - obj.prototypes[i, k]).norm(dim=1) for k in range(2)], 1)
                for i, m in enumerate(model.modalities)}
        scores = torch.stack([F.softmax(s, 1)[torch.arange(40), batch.target].sum() for s in sims.values()])
        dom = int(scores.argmax())
        rho = [0.0 if i == dom else min(max(float(scores[dom] / scores[i]) - 1, 0.0), 1.0) for i in range(2)]
        pce = [F.cross_entropy(s, batch.target) for s in sims.values()]
        p = F.softmax(list(sims.values())[dom], 1)
        ent = -(p * p.log()).sum(1).mean()
        expect = fused + 1.0 * (rho[0] * pce[0] + rho[1] * pce[1]) - 0.1 * max(rho) * ent
    assert max(rho) > 0, "the case must exercise the rebalancing terms"
    assert out.loss.item() == pytest.approx(expect.item(), rel=1e-5)
    # after the entropy epochs only the prototypical term remains
    late = obj(model, batch, TrainState(epoch=10))
    assert late.loss.item() == pytest.approx((fused + rho[0] * pce[0] + rho[1] * pce[1]).item(), rel=1e-5)
    # outside the window: the fused loss alone
    obj.end_epoch = 5
    assert obj(model, batch, TrainState(epoch=6)).loss.item() == pytest.approx(fused.item(), rel=1e-6)
