"""SynIB: loss values, the single batched fusion call, fills, masks, schedule, options and a behavioural check."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from interplay.config import ModelConfig
from interplay.data import gaussian_split, pid_xor
from interplay.engine import train
from interplay.errors import ConfigError
from interplay.models import build_model
from interplay.objectives import METHODS, TrainState, method_params
from interplay.objectives import synib as synib_module
from interplay.objectives.synib import SynIB, cyclic_derangement

from ..conftest import make_config


@pytest.fixture(scope="module")
def data():
    return pid_xor(seed=0, n_train=80, n_test=16, mix={"redundant": 1 / 3, "synergistic": 1 / 3, "unique1": 1 / 3})


@pytest.fixture(scope="module")
def data3():
    return pid_xor(seed=0, n_train=48, n_test=16, modalities=3, mix="redundant=0.5,synergistic=0.5")


def make(data, hidden=(), seed=0, **kw):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=list(hidden)), data.info)
    obj = SynIB(**kw)
    obj.setup(model, data)
    return model, obj


def batch_of(data, n=16):
    return data.train.batch(torch.arange(n))


def count_calls(module):
    calls = []
    handle = module.register_forward_hook(lambda mod, args, out: calls.append(out.shape[0]))
    return calls, handle


# ------------------------------------------------------------------ divergences by hand
LOGITS = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])  # p = (.5, .5) and (.75, .25)


def test_divergences_on_a_hand_checked_case():
    obj = SynIB(divergence="prior_kl")
    obj.log_prior = torch.tensor([0.8, 0.2]).log()
    kl = obj._divergence(LOGITS, None, None)
    expected = [0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2),
                0.75 * math.log(0.75 / 0.8) + 0.25 * math.log(0.25 / 0.2)]
    assert torch.allclose(kl, torch.tensor(expected), atol=1e-6)

    uni = SynIB(divergence="uniform_kl")._divergence(LOGITS, None, None)
    assert torch.allclose(uni, torch.tensor([0.0, math.log(2) + 0.75 * math.log(0.75) + 0.25 * math.log(0.25)]),
                          atol=1e-6)

    gauss = SynIB(divergence="gaussian")  # KL(N(logits, diag e^s) || N(0, I))
    assert torch.allclose(gauss._divergence(LOGITS, None, torch.zeros(2, 2)),
                          torch.tensor([0.0, 0.5 * math.log(3.0) ** 2]), atol=1e-6)  # lam/2 ||logits||^2
    assert torch.allclose(gauss._divergence(LOGITS, None, torch.ones(2, 2)),
                          torch.tensor([math.e - 2, 0.5 * math.log(3.0) ** 2 + math.e - 2]), atol=1e-6)

    ref = torch.tensor([[0.5, 0.5], [0.5, 0.5]]).log()  # anchor: KL(p_ref || p_masked)
    anchor = SynIB(divergence="unimodal_anchor")._divergence(LOGITS, ref, None)
    assert torch.allclose(anchor, torch.tensor([0.0, 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)]),
                          atol=1e-6)

    hinge = SynIB(divergence="uniform_kl", hinge=True)
    ref = torch.tensor([[0.9, 0.1], [0.6, 0.4]]).log()  # confident reference: no penalty; weak: the excess
    h_ref = math.log(2) + 0.6 * math.log(0.6) + 0.4 * math.log(0.4)
    assert torch.allclose(hinge._divergence(LOGITS, ref, None), torch.tensor([0.0, float(uni[1]) - h_ref]), atol=1e-6)


@pytest.mark.parametrize("divergence,hinge", [("prior_kl", False), ("uniform_kl", False), ("gaussian", False),
                                              ("unimodal_anchor", False), ("prior_kl", True)])
def test_loss_matches_a_manual_computation(data, divergence, hinge):
    """Zero fill, whole masking: the masked pass of m is the fusion with m absent (ConcatFusion zeros it)."""
    model, obj = make(data, divergence=divergence, hinge=hinge, fill="zero", lam=2.5)
    batch = batch_of(data)
    out = obj(model, batch, TrainState())
    counts = torch.bincount(data.train.target, minlength=2).float()
    assert torch.allclose(obj.log_prior, (counts / counts.sum()).log())
    with torch.no_grad():
        feats = model.encode(batch.inputs)
        logits = model.logits(feats)
        expected = F.cross_entropy(logits, batch.target)
        uni = model.unimodal_logits(feats) if obj.needs_heads else None
        if uni is not None:  # probes
            expected += sum(F.cross_entropy(v, batch.target) for v in uni.values())
        for m in model.modalities:
            other = [k for k in model.modalities if k != m]
            masked = model.logits(feats, present=other)
            logp = masked.log_softmax(-1)
            p = logp.exp()
            if divergence == "prior_kl":
                d = (p * (logp - obj.log_prior)).sum(-1)
            elif divergence == "uniform_kl":
                d = (p * logp).sum(-1) + math.log(2)
            elif divergence == "gaussian":  # the log-variance head starts at 0
                d = 0.5 * masked.pow(2).sum(-1)
            else:
                ref = uni[other[0]].log_softmax(-1)
                d = (ref.exp() * (ref - logp)).sum(-1)
            if hinge:
                ref = uni[other[0]].log_softmax(-1)
                d = (d - (ref.exp() * (ref - obj.log_prior)).sum(-1)).clamp_min(0)
            expected += 2.5 * d.mean()
    assert torch.allclose(out.loss, expected, atol=1e-5)
    assert torch.allclose(out.logits, logits, atol=1e-6)
    assert set(out.parts) >= {"task", "penalty"}


def test_gaussian_divergence_log_variance_head(data):
    """The head (zero-initialised, one log-variance per class) is trained towards its optimum s = 0."""
    model, obj = make(data, divergence="gaussian")
    assert obj.logvar is not None and obj.logvar.out_features == 2
    with torch.no_grad():
        obj.logvar.bias.fill_(0.5)
    obj(model, batch_of(data), TrainState()).loss.backward()
    assert (obj.logvar.bias.grad > 0).all()  # d/ds of (e^s - s - 1) / 2 at s = 0.5, times lam, per pass


# ------------------------------------------------------------------ one batched fusion call
@pytest.mark.parametrize("kw", [{"mask": "whole"}, {"mask": "random", "p": 0.3}, {"mask": "whole", "fill": "zero"},
                                {"mask": "whole", "hinge": True}, {"mask": "random", "w_aug": 1.0, "w_uni": 0.5},
                                {"mask": "learned", "steps": 2}])
def test_encoders_and_fusion_run_once_per_step(data, kw):
    model, obj = make(data, hidden=(8,), **kw)
    fusion, fh = count_calls(model.fusion.net[-1])  # the fusion layers after the (shared) first one
    head, hh = count_calls(model.head)
    enc = {m: count_calls(model.encoders[m]) for m in model.modalities}
    out = obj(model, batch_of(data), TrainState())
    out.loss.backward()
    fh.remove()
    hh.remove()
    for calls, h in enc.values():
        h.remove()
        assert calls == [16]
    passes = 1 + 2 * (kw.get("w_aug", 0) > 0) + (1 if kw == {"mask": "whole"} else 2)  # default: one shared pass
    assert fusion == [16 * passes] and head == [16 * passes]


def test_oracle_masks_the_synergy_block_and_reencodes_in_the_same_call(data):
    model, obj = make(data, mask="oracle")
    batch = batch_of(data)
    masked = obj._oracle_inputs(batch)
    for m in model.modalities:
        syn = data.info.block_map[m]["synergy"]
        rest = [i for i in range(batch.inputs[m].shape[1]) if i not in syn]
        assert torch.equal(masked[m][:, rest], batch.inputs[m][:, rest])
        rows = {tuple(r) for r in batch.inputs[m][:, syn].tolist()}
        assert all(tuple(r) in rows for r in masked[m][:, syn].tolist())  # taken from other samples
        assert not torch.equal(masked[m][:, syn], batch.inputs[m][:, syn])
    enc = {m: count_calls(model.encoders[m]) for m in model.modalities}
    fusion, fh = count_calls(model.head)
    obj(model, batch, TrainState()).loss.backward()
    assert all(calls == [32] for calls, _ in enc.values()) and fusion == [48]  # 2x encoder rows, 3 passes


def test_oracle_needs_a_block_map():
    other = gaussian_split(seed=0, n_train=40, n_test=8)
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=[]), other.info)
    with pytest.raises(ConfigError, match="method.mask"):
        SynIB(mask="oracle").setup(model, other)


def test_shared_pass_equals_two_passes_with_coupled_shuffles(data, monkeypatch):
    """M=2, whole masking, shuffle fill: one pass f(z1[pi], z2) counted twice == passes f(z1[pi], z2) and
    f(z1, z2[pi^-1]) -- same loss, same gradient for every parameter."""
    batch = batch_of(data)
    torch.manual_seed(1)
    pi = cyclic_derangement(16)
    inv = torch.argsort(pi)
    grads = []
    for shared in (True, False):
        model, obj = make(data, hidden=(8,), lam=3.0)
        perms = iter([pi, inv])
        monkeypatch.setattr(synib_module, "cyclic_derangement", lambda n, device=None, it=perms: next(it))
        if not shared:  # the explicit per-modality path (as for the hinge), with the same divergence
            monkeypatch.setattr(synib_module, "_SYMMETRIC", ())
        out = obj(model, batch, TrainState())
        out.loss.backward()
        grads.append((out.loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (l1, g1), (l2, g2) = grads
    assert torch.allclose(l1, l2, atol=1e-6)
    assert len(g1) == len(g2) and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g1, g2))


# ------------------------------------------------------------------ fills and masks
def test_shuffle_fill_keeps_the_marginal():
    z = torch.randn(32, 5)
    obj = SynIB()
    fill = obj._fill_for(0, z)
    assert torch.equal(fill.sort(0).values, z.sort(0).values)  # a permutation of the batch's rows
    assert not (fill == z).all(1).any()  # no sample keeps its own features
    assert torch.equal(cyclic_derangement(1), torch.tensor([0]))


def test_random_mask_replaces_a_fraction_p_with_other_samples_features():
    torch.manual_seed(0)
    z = torch.randn(400, 50)
    obj = SynIB(mask="random", p=0.3)
    masked = obj._random_mask(0, z)
    replaced = masked != z
    assert abs(replaced.float().mean().item() - 0.3) < 0.02
    for j in range(50):  # every value of column j comes from column j of some row: the marginal is kept
        col = set(z[:, j].tolist())
        assert all(v in col for v in masked[:, j].tolist())


def test_gaussian_fill_uses_running_statistics(data):
    model, obj = make(data, fill="gaussian", ema=0.5)
    st = obj.stats["0"]
    a, b = torch.randn(64, 8) * 2 + 1, torch.randn(64, 8) - 3
    st.update(a)
    assert torch.allclose(st.mean, a.mean(0)) and torch.allclose(st.var, a.var(0, unbiased=False))
    st.update(b)
    assert torch.allclose(st.mean, 0.5 * a.mean(0) + 0.5 * b.mean(0), atol=1e-6)
    sample = st.sample(torch.empty(20000, 8))
    assert torch.allclose(sample.mean(0), st.mean, atol=0.1)
    assert torch.allclose(sample.var(0), st.var, rtol=0.1)
    assert torch.equal(SynIB(fill="zero")._fill_for(0, a), torch.zeros_like(a))
    model.train()
    obj.train()
    obj(model, batch_of(data), TrainState())  # the training step updates the statistics of the features
    assert not torch.allclose(st.mean, 0.5 * a.mean(0) + 0.5 * b.mean(0))


def test_learned_mask_leaves_the_model_untouched_and_logs_gates(data):
    model, obj = make(data, mask="learned", steps=3)
    head_calls, h = count_calls(model.unimodal_heads["x1"])
    out = obj(model, batch_of(data), TrainState())
    h.remove()
    assert len(head_calls) == 3 + 1  # inner steps, then the probe
    assert all(p.grad is None for p in model.parameters())  # inner steps touch no parameter gradient
    out.loss.backward()
    logs = obj.pop_epoch_logs()
    assert 0 < logs["gate_mean_x1"] < 1 and "masked_acc_x2" in logs
    assert obj.trains_unimodal_heads


# ------------------------------------------------------------------ M modalities, logs, schedule, options
@pytest.mark.parametrize("kw", [{}, {"mask": "random"}, {"divergence": "unimodal_anchor"}, {"hinge": True}])
def test_three_modalities(data3, kw):
    model, obj = make(data3, hidden=(8,), **kw)
    fusion, fh = count_calls(model.head)
    out = obj(model, batch_of(data3), TrainState())
    out.loss.backward()
    assert fusion == [16 * 4]  # clean + one masked pass per modality
    logs = obj.pop_epoch_logs()
    assert {f"masked_conf_x{i}" for i in (1, 2, 3)} <= set(logs) and "penalty_x3" in logs


def test_reference_of_three_modalities_is_the_mean_of_the_others():
    obj = SynIB(divergence="unimodal_anchor")
    uni = {"a": torch.tensor([[2.0, 0.0]]), "b": torch.tensor([[0.0, 1.0]]), "c": torch.tensor([[5.0, 5.0]])}
    ref = obj._reference(uni, "a").exp()
    assert torch.allclose(ref, (uni["b"].softmax(-1) + uni["c"].softmax(-1)) / 2)


def test_epoch_logs_show_masked_confidence_and_accuracy(data):
    model, obj = make(data)
    obj(model, batch_of(data), TrainState())
    logs = obj.pop_epoch_logs()
    for m in ("x1", "x2"):
        assert 0.5 <= logs[f"masked_conf_{m}"] <= 1 and 0 <= logs[f"masked_acc_{m}"] <= 1
        assert logs[f"penalty_{m}"] >= 0
    assert logs["lam"] == 1.0 and "clean_conf" in logs


@pytest.mark.parametrize("shared", [True, False])
def test_epoch_statistics_equal_a_per_step_computation(shared):
    """The kept steps are reduced in batches; the epoch means must equal a naive per-step loop (sample-weighted),
    across a change of batch size and a flush in the middle of the epoch."""
    gen = torch.Generator().manual_seed(0)
    obj = SynIB()
    expected: dict[str, list[tuple[float, int]]] = {}

    def add(key, value, n):
        expected.setdefault(key, []).append((float(value), n))

    for step, n in enumerate([8, 8, 8, 5, 8]):
        k = 1 if shared else 2
        logits = torch.randn((1 + k) * n, 3, generator=gen)
        target = torch.randint(0, 3, (n,), generator=gen)
        idx = torch.randperm(n, generator=gen)
        masked_for = [("a", 1, None), ("b", 1, idx)] if shared else [("a", 1, None), ("b", 2, None)]
        pen = torch.rand(k, n, generator=gen)  # per-row penalty of each pass
        obj._log_masked(logits, target, masked_for, pen, {})
        if step == 1:
            obj._reduce_records()  # as when the kept logits reach the memory bound
        probs = logits.softmax(-1)
        add("clean_conf", probs[:n].max(-1).values.mean(), n)
        for m, p, index in masked_for:
            rows = probs[p * n:(p + 1) * n]
            t = target if index is None else target[index]
            add(f"masked_conf_{m}", rows.max(-1).values.mean(), n)
            add(f"masked_acc_{m}", (rows.argmax(-1) == t).float().mean(), n)
            add(f"penalty_{m}", pen[p - 1].mean(), n)
    logs = obj.pop_epoch_logs()
    assert set(logs) == set(expected)
    for key, values in expected.items():
        want = sum(v * n for v, n in values) / sum(n for _, n in values)
        assert logs[key] == pytest.approx(want, abs=1e-6), key
    assert obj.pop_epoch_logs() == {}  # nothing is kept across epochs


def test_lambda_warmup_and_switch_off(data):
    obj = SynIB(lam=8.0, warmup_epochs=4, off_epoch=6)
    assert [obj.lam_at(e) for e in range(8)] == [2.0, 4.0, 6.0, 8.0, 8.0, 8.0, 0.0, 0.0]
    assert SynIB(lam=3.0).lam_at(100) == 3.0
    model, obj = make(data, hidden=(8,), lam=8.0, off_epoch=2)
    fusion, fh = count_calls(model.fusion)
    out = obj(model, batch_of(data), TrainState(epoch=2))
    assert fusion == [16] and "penalty" not in out.parts  # switched off: plain joint training
    assert torch.allclose(out.loss, F.cross_entropy(out.logits, batch_of(data).target))


@pytest.mark.parametrize("key,value", [("mask", "bogus"), ("fill", "noise"), ("divergence", "kl"), ("p", 0.0),
                                       ("lam", -1), ("steps", 0), ("ema", 1.0), ("off_epoch", -1),
                                       ("random_modality", "maybe")])
def test_invalid_options_name_the_field(key, value):
    with pytest.raises(ConfigError, match=f"method.{key}"):
        SynIB(**{key: value})
    with pytest.raises(ConfigError, match=f"method.{key}"):
        SynIB(**method_params("synib", {key: value}))


def test_option_combinations_and_requirements(data):
    with pytest.raises(ConfigError, match="method.hinge"):
        SynIB(hinge=True, divergence="gaussian")
    with pytest.raises(ConfigError, match="method.hinge"):
        SynIB(hinge=True, divergence="unimodal_anchor")
    model = build_model(ModelConfig(encoder_hidden=[8], fusion_hidden=[], unimodal_heads=False), data.info)
    with pytest.raises(ConfigError, match="unimodal_heads"):
        SynIB(divergence="unimodal_anchor").setup(model, data)
    SynIB().setup(model, data)  # the default needs no unimodal heads
    assert not SynIB().trains_unimodal_heads and SynIB(w_uni=0.5).trains_unimodal_heads
    params = method_params("synib", {"lam": "10", "mask": "random", "p": 0.3})
    assert params["lam"] == 10.0 and params["mask"] == "random" and params["p"] == 0.3
    assert METHODS.get("synib") is SynIB


def test_masked_statistics_land_in_log_jsonl(tmp_path):
    cfg = make_config("synib", epochs=2, n_train=120, n_test=40, method={"lam": 10, "mask": "random", "p": 0.3})
    train(cfg, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        logs = row["objective"]
        assert {"masked_conf_x1", "masked_acc_x2", "penalty_x1", "clean_conf"} <= set(logs) and logs["lam"] == 10
        assert "penalty" in row["train"] and "task" in row["train"]


# ------------------------------------------------------------------ behaviour
def test_synib_learns_the_synergy_joint_training_misses():
    """pid-xor redundant .8 / synergistic .2, 1000 samples, reference model sizes, 15 epochs, seed 0
    (measured: joint .47, synib .93 on synergistic test samples; over seeds 0-3 joint <= .63, synib >= .90)."""
    ref = {"encoder_hidden": [256, 256], "fusion_hidden": [128, 128]}

    def syn_acc(method):
        cfg = make_config(method, epochs=15, seed=0, n_train=1000, n_test=1000,
                          data={"mix": "redundant=0.8,synergistic=0.2"}, model=ref)
        return train(cfg)["test"]["accuracy_by_interaction"]["synergistic"]

    joint, synib = syn_acc("joint"), syn_acc("synib")
    assert synib >= 0.8 and synib >= joint + 0.2, (joint, synib)


# ------------------------------------------------------------------ the strategies one by one
def fake_step(data, n=16, **kw):
    model, obj = make(data, **kw)
    batch = batch_of(data, n)
    feats = model.encode(batch.inputs)
    return model, obj, synib_module.MaskStep(model, feats, {}, batch.target)


def test_strategies_are_built_from_the_hyperparameters(data):
    obj = SynIB(mask="random", p=0.3, fill="gaussian", divergence="uniform_kl", hinge=True)
    assert isinstance(obj.masker, synib_module.RandomMask) and obj.masker.p == 0.3
    assert isinstance(obj.filler, synib_module.GaussianFill) and obj.filler.ema == 0.99
    assert isinstance(obj.divergence_fn, synib_module.Hinge)
    assert isinstance(obj.divergence_fn.base, synib_module.UniformKL)
    assert obj.uses_reference and obj.needs_heads
    learned = SynIB(mask="learned", steps=3, mask_lr=0.2, tau=0.5, sparsity=2.0)
    assert isinstance(learned.masker, synib_module.LearnedMask) and learned.needs_heads
    assert (learned.masker.steps, learned.masker.lr, learned.masker.tau, learned.masker.sparsity) == (3, 0.2, 0.5, 2.0)
    assert isinstance(SynIB(mask="oracle").masker, synib_module.OracleMask)
    assert isinstance(SynIB(divergence="unimodal_anchor").divergence_fn, synib_module.UnimodalAnchor)
    # strategies with state are the objective's modules: their state is saved with it
    model, obj = make(data, fill="gaussian", divergence="gaussian")
    keys = set(obj.state_dict())
    assert {"log_prior", "filler.stats.0.mean", "filler.stats.1.var", "divergence_fn.logvar.weight"} <= keys
    assert obj.stats is obj.filler.stats and obj.logvar is obj.divergence_fn.logvar
    assert SynIB().stats is None and SynIB().logvar is None


def test_whole_mask_withholds_every_feature_of_the_modality(data):
    model, obj, step = fake_step(data)
    whole = synib_module.WholeMask()
    z = step.feats["x1"]
    zeros = whole.withhold(0, "x1", step, synib_module.ZeroFill())
    assert torch.equal(zeros.replacement, torch.zeros_like(z)) and zeros.gates is None
    shuffled = whole.withhold(0, "x1", step, synib_module.ShuffleFill()).replacement
    assert isinstance(shuffled, synib_module.Shuffled)  # every row takes another row's features
    assert sorted(shuffled.index.tolist()) == list(range(16)) and (shuffled.index != torch.arange(16)).all()


def test_random_mask_withholds_the_features_a_bernoulli_draw_picks(data):
    model, obj, step = fake_step(data)
    z = step.feats["x2"]
    torch.manual_seed(3)
    picked = torch.rand_like(z) < 0.4
    torch.manual_seed(3)
    out = synib_module.RandomMask(0.4).withhold(1, "x2", step, synib_module.ZeroFill()).replacement
    assert torch.equal(out, torch.where(picked, torch.zeros_like(z), z))  # exactly the picked features, zeroed
    every = synib_module.RandomMask(1.0).withhold(1, "x2", step, synib_module.ZeroFill()).replacement
    assert torch.equal(every, torch.zeros_like(z))  # p = 1: whole masking


def test_learned_mask_gates_mix_features_and_fill_against_the_unimodal_head(data):
    model, obj, step = fake_step(data, mask="learned")
    z, head = step.feats["x1"], model.unimodal_heads["x1"]
    before = [p.detach().clone() for p in model.parameters()]
    mask = synib_module.LearnedMask(steps=20, lr=0.1, tau=1.0, sparsity=0.0)
    fill = torch.randn_like(z)

    class Fixed(synib_module.FillStrategy):
        def values(self, i, x):
            return fill

    out = mask.withhold(0, "x1", step, Fixed())
    g = out.gates
    assert g.shape == z.shape and ((g > 0) & (g < 1)).all()
    assert torch.allclose(out.replacement, g * z + (1 - g) * fill, atol=1e-6)
    start = torch.sigmoid(torch.ones_like(z))  # the gates before the inner steps
    with torch.no_grad():  # the inner steps raised the unimodal head's loss: they withheld what it needs
        ce = F.cross_entropy(head(out.replacement), step.target)
        assert ce > F.cross_entropy(head(start * z + (1 - start) * fill), step.target)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_oracle_mask_withholds_exactly_the_synergy_block(data):
    model, obj = make(data, mask="oracle", fill="zero")
    batch = batch_of(data)
    masked = obj.masker.masked_inputs(batch.inputs, obj.filler)
    for m in model.modalities:
        syn = data.info.block_map[m]["synergy"]
        keep = torch.ones(batch.inputs[m].shape[1], dtype=torch.bool)
        keep[syn] = False
        assert torch.equal(masked[m][:, syn], torch.zeros_like(masked[m][:, syn]))
        assert torch.equal(masked[m][:, keep], batch.inputs[m][:, keep])
    feats, masked_feats = obj.masker.encode(model, batch.inputs, obj.filler, penalise=True, observe=False)
    with torch.no_grad():
        for m in model.modalities:
            assert torch.allclose(feats[m], model.encoders[m](batch.inputs[m]), atol=1e-6)
            assert torch.allclose(masked_feats[m], model.encoders[m](masked[m]), atol=1e-6)
    step = synib_module.MaskStep(model, feats, masked_feats, batch.target)
    assert obj.masker.withhold(0, "x1", step, obj.filler).replacement is masked_feats["x1"]
    plain, none = obj.masker.encode(model, batch.inputs, obj.filler, penalise=False, observe=False)
    assert none == {} and all(v.shape[0] == 16 for v in plain.values())  # no penalty: clean features only


def test_fills():
    z = torch.randn(12, 4)
    assert torch.equal(synib_module.ZeroFill().replace_all(0, z), torch.zeros_like(z))
    values = synib_module.ShuffleFill().values(0, z)
    assert torch.equal(values.sort(0).values, z.sort(0).values) and not (values == z).all(1).any()
    gauss = synib_module.GaussianFill(ema=0.0)
    gauss.setup([4, 2])
    gauss.observe(0, z)
    assert torch.allclose(gauss.stats["0"].mean, z.mean(0)) and torch.equal(gauss.stats["1"].mean, torch.zeros(2))
    assert gauss.values(0, z).shape == z.shape


PRIOR = torch.tensor([0.7, 0.2, 0.1]).log()


def rows(logits, reference=None, logvar=None):
    return synib_module.MaskedRows(logits, PRIOR, reference, logvar)


@pytest.mark.parametrize("name", ["prior_kl", "uniform_kl", "gaussian", "unimodal_anchor", "hinge"])
def test_each_divergence_is_zero_at_its_target_and_positive_elsewhere(name):
    torch.manual_seed(0)
    other = torch.randn(5, 3) * 3
    reference = torch.randn(5, 3).log_softmax(-1)
    at_target = {"prior_kl": rows(PRIOR.expand(5, 3) + 2.0),  # softmax = the prior (logits up to a constant)
                 "uniform_kl": rows(torch.full((5, 3), 0.7)),
                 "gaussian": rows(torch.zeros(5, 3), logvar=torch.zeros(5, 3)),
                 "unimodal_anchor": rows(reference + 1.0, reference),
                 "hinge": rows(reference, reference)}  # as confident as the reference: free
    elsewhere = {"prior_kl": rows(other), "uniform_kl": rows(other), "gaussian": rows(other, logvar=other),
                 "unimodal_anchor": rows(other, reference), "hinge": rows(other, PRIOR.expand(5, 3))}
    div = synib_module.make_divergence("prior_kl", True) if name == "hinge" else \
        synib_module.make_divergence(name, False)
    assert torch.allclose(div.per_sample(at_target[name]), torch.zeros(5), atol=1e-6)
    assert (div.per_sample(elsewhere[name]) > 1e-3).all()
    if name == "hinge":  # less confident than the reference: free as well
        assert torch.equal(div.per_sample(rows(PRIOR.expand(5, 3).clone(), reference)), torch.zeros(5))


def test_one_shared_pass_only_where_it_equals_two(data, data3):
    assert make(data)[1]._shares_one_pass()  # two modalities, whole, shuffle, a target-free divergence
    for kw in ({"fill": "zero"}, {"mask": "random"}, {"hinge": True}, {"divergence": "unimodal_anchor"}):
        assert not make(data, **kw)[1]._shares_one_pass(), kw
    assert make(data, divergence="gaussian")[1]._shares_one_pass()
    assert not make(data3)[1]._shares_one_pass()


def test_oracle_with_gaussian_fill_and_augmentation_keeps_feature_statistics_of_its_own(data):
    """The oracle's gaussian fill holds input statistics; the w_aug augmentation masks features, so it gets
    running statistics of the features."""
    model, obj = make(data, mask="oracle", fill="gaussian", w_aug=1.0)
    assert obj.stats["0"].mean.numel() == data.info.modalities["x1"][0]  # input width
    assert obj.aug_filler is not None and obj.aug_filler.stats["0"].mean.numel() == model.feature_dims()["x1"]
    model.train()
    obj.train()
    out = obj(model, batch_of(data), TrainState())
    out.loss.backward()
    assert {"task", "aug", "penalty"} <= set(out.parts) and bool(obj.aug_filler.stats["0"].seen)
    assert "aug_filler.stats.0.mean" in obj.state_dict()
    assert make(data, fill="gaussian", w_aug=1.0)[1].aug_filler is None  # features: the fill's own statistics


# ---------------------------------------------------------------------- SynIBLoss (your own training loop)
def _synib_loss_inputs(b: int = 6, t: int = 7, d: int = 5):
    g = torch.Generator().manual_seed(0)
    embeds = torch.randn(b, t, d, generator=g)
    image = torch.zeros(b, t, dtype=torch.bool)
    image[:, 1:4] = True
    text = torch.zeros(b, t, dtype=torch.bool)
    text[:, 4:] = True  # position 0: a special token of neither modality
    return embeds, {"image": image, "text": text}, torch.randint(0, 3, (b,), generator=g)


def _recording_forward():
    """A linear model of the attended embeddings ``(B, T, 5) -> (B, 3)`` that records every call's
    ``(embeds, attention)``: ``(forward, calls, head)``."""
    head = torch.nn.Linear(5, 3)
    calls: list = []

    def forward(e, a):
        calls.append((e, a))
        return head((e * a[..., None]).sum(1))

    return forward, calls, head


@pytest.mark.parametrize("fill", ["noise", "shuffle", "drop"])
def test_synib_loss_withholds_exactly_the_modality_positions(fill):
    from interplay.objectives.synib import SynIBLoss

    embeds, masks, labels = _synib_loss_inputs()
    forward, seen, head = _recording_forward()

    loss_fn = SynIBLoss(lam=2.0, fill=fill).train()
    loss, logits = loss_fn(forward, embeds, masks, labels)
    (e, a), = seen  # one forward call on (1 + M) B rows
    assert e.shape == (18, 7, 5) and torch.equal(e[:6], embeds) and torch.equal(logits, forward(embeds, a[:6]))
    for k, m in enumerate(sorted(masks)):
        rows = slice(6 * (k + 1), 6 * (k + 2))
        if fill == "drop":
            assert torch.equal(e[rows], embeds) and torch.equal(a[rows].bool(), ~masks[m])
        else:
            assert torch.equal(a[rows], a[:6])
            changed = (e[rows] != embeds).any(-1)
            assert torch.equal(changed, masks[m])
    logp = torch.log_softmax(forward(e, a)[6:], -1)
    kl = (logp.exp() * (logp + math.log(3))).sum(-1).view(2, 6).mean(1).sum()
    want = torch.nn.functional.cross_entropy(logits, labels) + 2.0 * kl
    assert torch.allclose(loss, want, atol=1e-6)
    loss.backward()
    assert head.weight.grad is not None


@pytest.mark.parametrize("fill", ["noise", "shuffle", "drop"])
def test_synib_loss_random_modality_is_one_sequence_with_one_modality_per_row(fill):
    """random_modality: one masked sequence (2B rows); row b has exactly the positions of its modality withheld;
    the penalty is M * mean_b KL_b; the noise statistics still see every row's tokens."""
    from interplay.objectives.synib import SynIBLoss

    embeds, masks, labels = _synib_loss_inputs()
    forward, seen, head = _recording_forward()

    loss_fn = SynIBLoss(lam=2.0, fill=fill, random_modality=True).train()
    torch.manual_seed(0)
    loss, logits = loss_fn(forward, embeds, masks, labels)
    (e, a), = seen
    assert e.shape == (12, 7, 5)
    masked_e, masked_a = e[6:], a[6:]
    changed = (masked_e != embeds).any(-1) if fill != "drop" else ~masked_a.bool()
    owners = []
    for b in range(6):
        hits = [m for m in sorted(masks) if torch.equal(changed[b], masks[m][b])]
        assert len(hits) == 1, (b, changed[b])  # exactly one modality's positions, nothing else
        owners.append(hits[0])
    assert sorted(owners.count(m) for m in sorted(masks)) == [3, 3]  # balanced
    logp = torch.log_softmax(forward(masked_e, masked_a), -1)
    kl = (logp.exp() * (logp + math.log(3))).sum(-1).mean() * 2
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits, labels) + 2.0 * kl, atol=1e-6)
    if fill == "noise":
        assert torch.allclose(loss_fn.stats["image"].mean, embeds[masks["image"]].mean(0), atol=1e-6)


def test_synib_loss_noise_tracks_the_modality_statistics():
    from interplay.objectives.synib import SynIBLoss

    embeds, masks, labels = _synib_loss_inputs(b=200)
    loss_fn = SynIBLoss(fill="noise", chunk=1).train()
    loss_fn(lambda e, a: e.sum(1)[:, :3], embeds, masks, labels)
    stats = loss_fn.stats["image"]
    assert torch.allclose(stats.mean, embeds[masks["image"]].mean(0), atol=1e-6)
    assert torch.allclose(stats.var, embeds[masks["image"]].var(0, unbiased=False), atol=1e-5)


def test_synib_loss_in_a_transformers_trainer(tmp_path):
    """The docs example: SynIBLoss inside transformers.Trainer.compute_loss (tiny random text classifier; the
    two text fields are the modalities)."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from interplay.objectives.synib import SynIBLoss

    torch.manual_seed(0)
    config = transformers.LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      num_key_value_heads=2, vocab_size=32, num_labels=2, pad_token_id=0)
    model = transformers.LlamaForSequenceClassification(config)
    ids = torch.randint(1, 32, (16, 8))
    field_a = torch.zeros(16, 8, dtype=torch.bool)
    field_a[:, :4] = True
    rows = [{"input_ids": ids[i], "attention_mask": torch.ones(8, dtype=torch.long), "labels": int(i % 2),
             "mask_a": field_a[i], "mask_b": ~field_a[i]} for i in range(16)]

    class SynIBTrainer(transformers.Trainer):
        def __init__(self, *args, synib: SynIBLoss, **kwargs):
            super().__init__(*args, **kwargs)
            self.synib = synib

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            masks = {"a": inputs.pop("mask_a"), "b": inputs.pop("mask_b")}
            embeds = model.get_input_embeddings()(inputs["input_ids"])
            loss, logits = self.synib(lambda e, a: model(inputs_embeds=e, attention_mask=a).logits, embeds, masks,
                                      inputs["labels"], inputs["attention_mask"])
            return (loss, {"logits": logits}) if return_outputs else loss

    args = transformers.TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=2,
                                          report_to=[], remove_unused_columns=False, use_cpu=True, save_strategy="no",
                                          logging_strategy="no")
    before = model.score.weight.detach().clone()
    trainer = SynIBTrainer(model=model, args=args, train_dataset=rows, synib=SynIBLoss(lam=1.0, fill="noise"))
    trainer.train()
    assert not torch.equal(model.score.weight.detach(), before)
    assert set(trainer.synib.stats) == {"a", "b"} and "penalty" in trainer.synib.last_parts


# ------------------------------------------------------------------ random_modality: one masked pass, M * mean
def test_balanced_assignment_is_uniform_per_row_and_balanced():
    """Every row's modality is uniform on range(k) (also where k does not divide n) and the counts differ by at
    most one; checked on 6,000 draws (4 standard errors)."""
    torch.manual_seed(0)
    n, k, draws = 7, 3, 6000
    a = torch.stack([synib_module.balanced_assignment(n, k) for _ in range(draws)])  # (draws, n)
    counts = F.one_hot(a, k).sum(1)  # (draws, k)
    assert (counts.max(1).values - counts.min(1).values).max() <= 1
    hits = F.one_hot(a, k).sum(0).float()  # (n, k)
    se = math.sqrt((1 / k) * (1 - 1 / k) / draws)
    assert ((hits / draws) - 1 / k).abs().max() < 4 * se, hits / draws


@pytest.mark.parametrize("kw", [{"fill": "zero"}, {"fill": "zero", "divergence": "unimodal_anchor"}])
def test_random_modality_penalty_is_m_times_the_mean_over_its_rows_and_unbiased(data3, kw):
    """With a deterministic fill: D_b(m) from the default (one pass per modality) gives, for the assignment drawn,
    the random-modality penalty M * mean_b D_b(m_b) exactly; averaged over 200 draws (of the balanced assignment)
    it and its gradient approach the default's sum_m mean_b D_b(m)."""
    batch = batch_of(data3, 12)
    model, obj = make(data3, hidden=(8,), **kw)
    state = TrainState()
    out = obj(model, batch, state)
    per_row = obj._records[-1].pen  # (M, B): D_b(m), the default's passes
    default = out.parts["penalty"]
    assert torch.allclose(default, per_row.mean(1).sum())
    model.zero_grad()
    (out.loss - out.parts["task"]).backward()  # lam = 1: the penalty's gradient (the anchor's probe term included)
    g_default = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    rnd = SynIB(random_modality=True, **kw)
    rnd.setup(model, data3)
    torch.manual_seed(3)
    values, grads = [], []
    for _ in range(200):
        model.zero_grad()
        out = rnd(model, batch, state)
        which = rnd._records[-1].rows
        assigned = torch.stack([rows.float() for rows, _ in which])  # (M, B) one-hot by row
        assert torch.equal(assigned.sum(0), torch.ones(12))  # each row withholds exactly one modality
        expected = 3 * (per_row * assigned).sum(0).mean()
        assert torch.allclose(out.parts["penalty"], expected, atol=1e-6)
        values.append(out.parts["penalty"])
        (out.loss - out.parts["task"]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.stack(values).mean() == pytest.approx(float(default), rel=0.03)
    g_mean = torch.stack(grads).mean(0)
    assert (g_mean - g_default).norm() < 0.1 * g_default.norm()


def test_random_modality_is_one_pass_of_b_rows(data3):
    model, obj = make(data3, hidden=(8,), random_modality=True, fill="gaussian")
    calls, handle = count_calls(model.head)
    batch = batch_of(data3, 12)
    out = obj(model, batch, TrainState())
    handle.remove()
    assert calls == [24]  # clean + one masked pass, in one call: not (1 + 3) * 12
    logs = obj.pop_epoch_logs()
    assert {f"masked_conf_{m}" for m in ("x1", "x2", "x3")} <= set(logs) and out.parts["penalty"] > 0


def test_random_modality_withholds_one_modality_per_row(data3):
    """The one variant: row b has modality which[b]'s features replaced by the fill's and every other modality
    clean; a shuffled modality stays a Shuffled whose other rows index themselves."""
    for fill in ("zero", "shuffle"):
        model, obj = make(data3, random_modality=True, fill=fill)
        batch = batch_of(data3, 12)
        feats = model.encode(batch.inputs)
        torch.manual_seed(0)
        passes = obj._masked_passes(synib_module.MaskStep(model, feats, {}, batch.target))
        assert len(passes.variants) == 1 and passes.which is not None
        variant = passes.variants[0]
        for i, m in enumerate(obj.modalities):
            rows = passes.which == i
            r = variant[m]
            z = feats[m][r.index] if isinstance(r, synib_module.Shuffled) else r
            if isinstance(r, synib_module.Shuffled):
                assert torch.equal(r.index[~rows], torch.arange(12)[~rows])
                assert (r.index[rows] != rows.nonzero()[:, 0]).all()  # the assigned rows: another row's features
            else:
                assert torch.equal(z[rows], torch.zeros_like(z[rows]))
            assert torch.equal(z[~rows], feats[m][~rows])


def test_random_modality_with_the_shared_pass_is_the_shared_pass(data):
    """Two modalities, whole, shuffle, prior_kl: the exact shared pass already costs one pass; it is kept."""
    batch = batch_of(data)
    losses = []
    for flag in (False, True):
        model, obj = make(data, hidden=(8,), random_modality=flag)
        torch.manual_seed(5)
        losses.append(obj(model, batch, TrainState()).loss)
    assert torch.equal(losses[0], losses[1])
