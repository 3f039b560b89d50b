"""MLA: one optimiser step per modality in turn through one shared head (checked against a naive loop), the
head-gradient projector and the entropy-weighted fusion as defined; the engine honours the phases."""

import copy

import pytest
import torch
import torch.nn.functional as F

from interplay.config import ModelConfig, RunConfig
from interplay.data import pid_xor
from interplay.engine.trainer import trained
from interplay.errors import ConfigError
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState
from interplay.objectives.mla import entropy_weights, projector_update


def test_projector_update_by_hand():
    p, r, alpha = torch.eye(3), torch.tensor([2.0, 0.0, 0.0]), 0.1
    new = projector_update(p, r, alpha)
    raw = torch.eye(3) - torch.outer(r, r) / (alpha + 4.0)  # k = P r = r
    assert torch.allclose(new, raw / raw.norm())
    # the direction of r is (nearly) removed: P_new r = r * alpha / (alpha + 4), up to the normalisation
    assert torch.allclose(new @ r, r * (alpha / (alpha + 4.0)) / raw.norm())


def test_entropy_weights_favour_the_certain_modality():
    certain, unsure = torch.tensor([[8.0, 0.0]]), torch.tensor([[0.1, 0.0]])
    w = entropy_weights({"a": certain, "b": unsure})
    h = [-(F.softmax(v, -1) * F.log_softmax(v, -1)).sum() for v in (certain, unsure)]
    expect = torch.softmax(-torch.stack(h), 0)
    assert torch.allclose(w[:, 0], expect) and w[0, 0] > w[1, 0]


def test_alternating_steps_match_a_naive_loop():
    torch.manual_seed(0)
    data = pid_xor(seed=0, n_train=64, n_test=16, mix="unique1=0.5,unique2=0.5")
    model = build_model(ModelConfig(encoder_hidden=[6], fusion_hidden=[8]), data.info)
    obj = METHODS.get("mla")()
    obj.setup(model, data)
    naive_enc = {m: copy.deepcopy(model.encoders[m]) for m in model.modalities}
    naive_head = copy.deepcopy(obj.shared_head)
    params = [*model.parameters(), *obj.parameters()]
    opt = torch.optim.SGD(params, lr=0.5)
    naive_params = [*naive_head.parameters(), *(p for e in naive_enc.values() for p in e.parameters())]
    naive_opt = torch.optim.SGD(naive_params, lr=0.5)
    proj, updates = torch.eye(6), 0
    batches = [torch.arange(0, 24), torch.arange(24, 48)]
    for bi, idx in enumerate(batches):
        batch = data.train.batch(idx)
        state = TrainState(batch_index=bi, num_batches=len(batches))
        assert obj.phases(state) == ("x1", "x2")  # alternation order: the modalities by name
        for phase in obj.phases(state):
            state.phase = phase
            opt.zero_grad()
            out = obj(model, batch, state)
            obj.backward(model, out, state, lambda loss: loss)
            # only the phase's encoder and the shared head receive gradients
            other = [m for m in model.modalities if m != phase][0]
            assert all(p.grad is None for p in model.encoder_parameters(other))
            assert all(p.grad is None for p in model.head.parameters())
            obj.on_after_backward(model, state)
            opt.step()
            # the naive loop: CE through the one head, projected head gradient after the first update
            naive_opt.zero_grad()
            z = naive_enc[phase](batch.inputs[phase])
            F.cross_entropy(naive_head(z), batch.target).backward()
            if updates > 0:
                proj = projector_update(proj, z.detach().mean(0), 0.1 ** (bi / len(batches) + 1))
                naive_head.weight.grad = naive_head.weight.grad @ proj.T
            updates += 1
            naive_opt.step()
    assert torch.allclose(obj.projector, proj, atol=1e-6)
    assert torch.allclose(obj.shared_head.weight, naive_head.weight, atol=1e-6)
    for m in model.modalities:
        for a, b in zip(model.encoder_parameters(m), naive_enc[m].parameters()):
            assert torch.allclose(a, b, atol=1e-6)
    # prediction: the entropy-weighted sum of the shared head's unimodal logits
    model.eval()
    pred = obj.predict(model, data.test.batch(torch.arange(16)))
    w = entropy_weights(pred.unimodal_logits)
    assert torch.allclose(pred.logits, w[0, :, None] * pred.unimodal_logits["x1"] + w[1, :, None]
                          * pred.unimodal_logits["x2"], atol=1e-6)


def _cfg(**train):
    return RunConfig.from_dict({"data": {"name": "pid-xor", "n_train": 120, "n_test": 40}, "method": {"name": "mla"},
                                "model": {"encoder_hidden": [8], "fusion_hidden": [8]},
                                "train": {"epochs": 1, "batch_size": 32, **train}})


def test_engine_takes_one_step_per_phase():
    trainer, metrics = trained(_cfg())
    n_batches = len(list(trainer.data.train.index_batches(32)))
    assert int(trainer.objective.updates) == 2 * n_batches
    assert metrics["test"]["accuracy"] >= 0


def test_engine_refuses_accumulation_with_phases():
    with pytest.raises(ConfigError, match="train.accumulate"):
        trained(_cfg(accumulate=2))
