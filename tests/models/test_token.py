"""Token-level models (interplay.models.token / hf): masking positions, batched variants, gradients, LoRA,
checkpoint loading and the optional extra. Tiny random transformers built offline from configs."""

from __future__ import annotations

import sys

import pytest
import torch

from interplay.config import MethodConfig, ModelConfig
from interplay.data import DataInfo, DataSplits, MultimodalDataset
from interplay.errors import ConfigError, DataError
from interplay.models import Absent, Shuffled, TokenModel, build_model
from interplay.objectives import METHODS, TrainState, build_objective
from interplay.objectives import synib as synib_module

pytest.importorskip("transformers")

VLM_INFO = DataInfo("toy", {"image": (3, 8, 8), "text": (2, 6)}, 2, extra={"vocab_size": 30})
TEXT_INFO = DataInfo("toy2", {"premise": (5,), "hypothesis": (2, 4)}, 3, extra={"vocab_size": 30})


def splits_for(info: DataInfo, inputs: dict[str, torch.Tensor], target: torch.Tensor) -> DataSplits:
    ds = MultimodalDataset(inputs, target, {"interaction": torch.zeros_like(target)})
    return DataSplits(ds, ds, ds, info)


def vlm(**kw) -> TokenModel:
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="tiny-vlm", **kw), VLM_INFO)
    assert isinstance(model, TokenModel)
    return model


def vlm_inputs(b: int = 4, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 30, (b, 6), generator=g).float()
    lengths = torch.tensor([6, 4, 5, 2][:b] + [6] * max(0, b - 4))
    mask = (torch.arange(6)[None] < lengths[:, None]).float()
    return {"image": torch.randn(b, 3, 8, 8, generator=g), "text": torch.stack([ids * mask, mask], 1)}


def test_token_features_and_padding():
    model = vlm()
    feats = model.encode(vlm_inputs())
    assert feats["image"].shape == (4, 4, 32) and feats["text"].shape == (4, 6, 32)  # 8x8 image, 4x4 patches
    assert model.feature_dims() == {"image": 4 * 32, "text": 6 * 32}
    valid = feats["text"].ne(0).any(-1)
    assert valid.sum(1).tolist() == [6, 4, 5, 2]  # padded positions are zero rows
    _, att, spans = model.fusion.assemble(feats)
    assert att.sum(1).tolist() == [10, 8, 9, 6]
    assert spans["image"][:, :4].all() and not spans["image"][:, 4:].any()  # image span first, then text, pads last
    assert (spans["text"].sum(1) == valid.sum(1)).all()


@pytest.mark.parametrize("strategy", ["noise", "embedding"])
@pytest.mark.parametrize("masked", ["image", "text"])
def test_withholding_changes_exactly_the_modality_tokens(strategy, masked):
    model = vlm(token_mask=strategy).train()
    feats = model.encode(vlm_inputs())
    model.fusion(feats)  # noise: EMA statistics from a training batch
    clean, att, spans = model.fusion.assemble(feats)
    out, att2, spans2 = model.fusion.assemble(feats, {masked: Absent()})
    assert torch.equal(att, att2) and all(torch.equal(spans[m], spans2[m]) for m in spans)
    changed = (out != clean).any(-1)
    assert torch.equal(changed, spans[masked])  # every token of the masked modality, nothing else
    assert torch.equal(out[~spans[masked]], clean[~spans[masked]])


def test_noise_matches_the_ema_statistics():
    model = vlm(token_mask="noise").train()
    feats = model.encode(vlm_inputs(b=64, seed=3))
    model.fusion(feats)  # first batch initialises the statistics
    stats = model.fusion.stats["image"]
    z = feats["image"].detach().reshape(-1, 32)
    assert torch.allclose(stats.mean, z.mean(0), atol=1e-5)
    assert torch.allclose(stats.var, z.var(0, unbiased=False), atol=1e-5)
    model.fusion(model.encode(vlm_inputs(b=64, seed=4)))
    z2 = model.encode(vlm_inputs(b=64, seed=4))["image"].detach().reshape(-1, 32)
    assert torch.allclose(stats.mean, 0.99 * z.mean(0) + 0.01 * z2.mean(0), atol=1e-5)
    torch.manual_seed(5)
    noise = model.fusion.withheld_values("image", torch.zeros(500, 4, 32)).reshape(-1, 32)
    assert torch.allclose(noise.mean(0), stats.mean, atol=0.1)
    assert torch.allclose(noise.std(0), stats.var.sqrt(), rtol=0.1)


@pytest.mark.parametrize("masked", ["image", "text"])
def test_drop_removes_the_tokens_from_the_sequence(masked):
    model = vlm(token_mask="drop")
    feats = model.encode(vlm_inputs())
    clean, att, spans = model.fusion.assemble(feats)
    out, att2, spans2 = model.fusion.assemble(feats, {masked: Absent()})
    kept = "text" if masked == "image" else "image"
    assert not spans2[masked].any() and torch.equal(att2.sum(1), spans[kept].sum(1))
    for i in range(4):  # the kept tokens, in order, at the front of the row
        assert torch.equal(out[i][att2[i]], clean[i][spans[kept][i]])


def test_shuffled_span_takes_the_other_rows_tokens_and_padding():
    model = vlm()
    feats = model.encode(vlm_inputs())
    idx = torch.tensor([1, 2, 3, 0])
    clean, att, spans = model.fusion.assemble(feats)
    out, att2, spans2 = model.fusion.assemble(feats, {"text": Shuffled(idx)})
    assert torch.equal(spans2["text"].sum(1), spans["text"].sum(1)[idx])
    for i in range(4):
        assert torch.equal(out[i][spans2["text"][i]], clean[int(idx[i])][spans["text"][int(idx[i])]])
        assert torch.equal(out[i][spans2["image"][i]], clean[i][spans["image"][i]])


@pytest.mark.parametrize("strategy", ["noise", "embedding", "drop"])
def test_batched_variants_equal_separate_forwards(strategy):
    model = vlm(token_mask=strategy).eval()
    feats = model.encode(vlm_inputs())
    g = torch.Generator().manual_seed(0)
    variants = [{"image": Absent()}, {"text": Absent()}, {"image": Shuffled(torch.tensor([3, 0, 1, 2]))},
                {"text": torch.randn(4, 6, 32, generator=g)}]
    torch.manual_seed(7)
    batched = model.fuse_variants(feats, variants)
    torch.manual_seed(7)
    separate = torch.cat([model.fusion.encode_sequence(*model.fusion.assemble(feats, v)[:2]) for v in ({}, *variants)])
    assert batched.shape == (20, 32)
    assert torch.allclose(batched, separate, atol=1e-5)
    model.fusion.chunk = 2
    torch.manual_seed(7)
    assert torch.allclose(model.fuse_variants(feats, variants), batched, atol=1e-5)
    # fuse(present) is the same withholding
    if strategy != "noise":
        assert torch.allclose(model.fuse(feats, present={"text"}), batched[4:8], atol=1e-5)


def test_pooling_last_reads_the_last_attended_token():
    model = vlm(pooling="last").eval()
    feats = model.encode(vlm_inputs())
    embeds, att, _ = model.fusion.assemble(feats)
    hidden = model.fusion.backbone(embeds, att.long())
    want = torch.stack([hidden[i, int(att[i].sum()) - 1] for i in range(4)])
    assert torch.allclose(model.fuse(feats), want)


def test_withheld_modality_gets_no_gradient():
    model = vlm(token_mask="noise").train()
    feats = {m: z.detach().requires_grad_() for m, z in model.encode(vlm_inputs()).items()}
    model.fuse(feats, present={"text"}).sum().backward()
    assert feats["image"].grad is None  # no path from the withheld tokens to the output
    assert float(feats["text"].grad.abs().sum()) > 0.0


def test_lora_trains_only_adapters_and_heads():
    model = vlm(lora_r=2, lora_targets=["q_proj", "v_proj"])
    names = [n for n, _ in model.named_parameters()]
    assert names and all("lora_" in n or n.startswith(("head.", "unimodal_heads.")) for n in names)
    assert any("vision_tower" in n for n in names) and any("language_model" in n or "fusion.backbone" in n
                                                           for n in names)
    for _, p in model.named_parameters():  # what a training stage does: cannot unfreeze the base
        p.requires_grad_(True)
    frozen = model.frozen_parameters()
    assert frozen and not any(p.requires_grad for p in frozen)
    assert len(model.state_dict()) > len(names)  # the base weights are saved
    data = splits_for(VLM_INFO, vlm_inputs(8), torch.tensor([0, 1] * 4))
    objective = build_objective(MethodConfig("synib", {}))
    objective.setup(model, data)
    out = objective(model, data.train.batch(torch.arange(8)), TrainState())
    out.loss.backward()
    assert all(p.grad is None for p in frozen)
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)


def test_lora_targets_that_match_nothing_are_one_line():
    with pytest.raises(ConfigError, match=r"model.lora_targets: \['nope'\]"):
        vlm(lora_r=2, lora_targets=["nope"])


def test_text_only_model_with_two_text_fields():
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="tiny-text"), TEXT_INFO)
    x = {"premise": torch.randint(1, 30, (3, 5)).float(),
         "hypothesis": torch.stack([torch.randint(1, 30, (3, 4)).float(), torch.ones(3, 4)], 1)}
    assert model(x).shape == (3, 3)
    assert model.encoders["premise"].embedding is model.encoders["hypothesis"].embedding  # one table
    _, att, spans = model.fusion.assemble(model.encode(x), {"premise": Absent()})
    assert spans["premise"].sum().item() == 15 and spans["hypothesis"].sum().item() == 12  # noise: positions kept
    with pytest.raises(ConfigError, match="tiny-text is a text model; modality 'image'"):
        build_model(ModelConfig(backbone="tiny-text"), VLM_INFO)


def test_local_checkpoint_directory(tmp_path):
    from interplay.models.hf import tiny_backbone

    torch.manual_seed(0)
    hf = tiny_backbone("tiny-vlm", VLM_INFO)
    hf.save_pretrained(tmp_path / "ckpt")
    model = build_model(ModelConfig(backbone=str(tmp_path / "ckpt")), VLM_INFO)
    saved = dict(hf.named_parameters())
    loaded = dict(model.fusion.backbone.model.named_parameters())
    assert loaded and all(torch.equal(p, saved[f"language_model.{n}"]) for n, p in loaded.items())
    assert model(vlm_inputs()).shape == (4, 2)


def test_missing_checkpoint_is_one_line(tmp_path):
    with pytest.raises(DataError) as err:
        build_model(ModelConfig(backbone=str(tmp_path / "absent")), VLM_INFO)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "absent") in msg and "downloaded by the user" in msg


def test_vocabulary_too_small_is_refused(tmp_path):
    from interplay.models.hf import tiny_backbone

    tiny_backbone("tiny-vlm", VLM_INFO).save_pretrained(tmp_path / "ckpt")  # 30 tokens
    info = DataInfo("big", {"image": (3, 8, 8), "text": (4,)}, 2, extra={"vocab_size": 100})
    with pytest.raises(ConfigError, match="has a vocabulary of 30 tokens; dataset 'big' uses 100"):
        build_model(ModelConfig(backbone=str(tmp_path / "ckpt")), info)


@pytest.mark.parametrize("package", ["transformers", "peft"])
def test_missing_extra_is_one_line(monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(ConfigError) as err:
        vlm(lora_r=2)
    msg = str(err.value)
    assert "\n" not in msg and package in msg and "interplay[hf]" in msg


def test_bad_model_options_are_one_line():
    with pytest.raises(ConfigError, match="model.token_mask: expected one of 'noise', 'embedding', 'drop'"):
        vlm(token_mask="blur")
    with pytest.raises(ConfigError, match="model.pooling"):
        vlm(pooling="max")
    with pytest.raises(ConfigError, match="model.variant_chunk"):
        vlm(variant_chunk=0)


METHOD_SETTINGS = [("joint", {}), ("conf_penalty", {}), ("label_smoothing", {}), ("multi_loss", {}),
                   ("unimodal", {"modality": "text"}), ("ogm_ge", {}), ("synib", {}),
                   ("synib", {"fill": "gaussian"}), ("synib", {"fill": "model"}), ("synib", {"mask": "random"}),
                   ("synib", {"mask": "random", "fill": "model"}), ("synib", {"mask": "learned", "steps": 2}),
                   ("synib", {"hinge": True}), ("synib", {"divergence": "gaussian"}), ("synib", {"w_aug": 1.0}),
                   ("synib", {"fill": "model", "random_modality": True}),
                   ("synib", {"fill": "model", "random_modality": True, "hinge": True})]


@pytest.mark.parametrize(("method", "params", "strategy"), [
    (m, p, s) for m, p in METHOD_SETTINGS for s in ("noise", "drop")
    if not (s == "drop" and p.get("fill") == "model" and p.get("mask") in ("random", "learned"))])  # refused, below
def test_objectives_run_on_a_token_model(method, params, strategy):
    model = vlm(token_mask=strategy).train()
    data = splits_for(VLM_INFO, vlm_inputs(8), torch.tensor([0, 1] * 4))
    objective = build_objective(MethodConfig(method, dict(params)))
    objective.setup(model, data)
    out = objective(model, data.train.batch(torch.arange(8)), TrainState())
    assert out.logits.shape == (8, 2) and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.head.weight.grad is not None or method == "unimodal"


def test_drop_with_per_token_model_fill_is_refused():
    model = vlm(token_mask="drop")
    data = splits_for(VLM_INFO, vlm_inputs(8), torch.tensor([0, 1] * 4))
    objective = build_objective(MethodConfig("synib", {"mask": "random", "fill": "model"}))
    with pytest.raises(ConfigError, match="method.fill: 'model' with model.token_mask=drop supports mask 'whole'"):
        objective.setup(model, data)


def test_synib_masked_pass_is_the_models_withholding():
    """SynIB with fill=model: its masked logits are the model's fuse(present=others) logits."""
    model = vlm(token_mask="drop").eval()
    data = splits_for(VLM_INFO, vlm_inputs(8), torch.tensor([0, 1] * 4))
    objective = build_objective(MethodConfig("synib", {"fill": "model", "lam": 1.0}))
    objective.setup(model, data)
    objective.eval()
    batch = data.train.batch(torch.arange(8))
    out = objective(model, batch, TrainState())
    feats = model.encode(batch.inputs)
    want = sum(objective._divergence(model.logits(feats, present={o}), None, None).mean()
               for o in ("image", "text"))
    assert torch.allclose(out.parts["penalty"], want, atol=1e-5)


@pytest.mark.parametrize("strategy", ["noise", "embedding", "drop"])
def test_absent_on_rows_withholds_only_those_rows(strategy):
    """Absent(rows): the rows named are exactly the whole-row withholding, the other rows are the clean sequence."""
    model = vlm(token_mask=strategy).train()
    feats = model.encode(vlm_inputs())
    model.fusion(feats)  # noise statistics
    rows = torch.tensor([True, False, False, True])
    clean = model.fusion.assemble(feats)
    torch.manual_seed(2)
    whole = model.fusion.assemble(feats, {"text": Absent()})
    torch.manual_seed(2)
    some = model.fusion.assemble(feats, {"text": Absent(rows)})
    for got, c, w in zip(some[:2], clean[:2], whole[:2]):
        assert torch.equal(got[rows], w[rows]) and torch.equal(got[~rows], c[~rows])
    assert all(torch.equal(some[2][m][~rows], clean[2][m][~rows]) for m in ("image", "text"))


@pytest.mark.parametrize("strategy", ["noise", "embedding"])
def test_synib_random_modality_on_a_token_model_is_one_masked_sequence(strategy):
    """fill=model + random_modality: the backbone runs once on 2B rows; row b of the masked sequence has exactly
    the tokens of its assigned modality replaced (noise, mask embedding), every other position bit-identical; the
    penalty is 2 * mean_b D_b(m_b) with D_b(m) from the model's own withholding (checked where it is
    deterministic: the mask embedding)."""
    model = vlm(token_mask=strategy).eval()
    data = splits_for(VLM_INFO, vlm_inputs(8), torch.tensor([0, 1] * 4))
    objective = build_objective(MethodConfig("synib", {"fill": "model", "random_modality": True}))
    objective.setup(model, data)
    objective.eval()
    model.fusion(model.encode(data.train.inputs))  # noise statistics (eval: frozen from here)
    batch = data.train.batch(torch.arange(8))
    calls = []
    handle = model.fusion.backbone.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    out = objective(model, batch, TrainState())
    handle.remove()
    assert calls == [16]
    feats = model.encode(batch.inputs)
    which = objective._records[-1].rows
    rows = {m: r for m, (r, _) in zip(("image", "text"), which)}
    assert torch.equal(rows["image"] ^ rows["text"], torch.ones(8, dtype=torch.bool))
    torch.manual_seed(0)
    passes = objective._masked_passes(synib_module.MaskStep(model, feats, {}, batch.target))
    clean, _, spans = model.fusion.assemble(feats)
    masked, _, _ = model.fusion.assemble(feats, passes.variants[0])
    changed = (masked != clean).any(-1)
    for i, m in enumerate(("image", "text")):
        on = passes.which == i
        assert torch.equal(changed[on], spans[m][on])  # all of m's tokens on its rows, nothing else
    if strategy == "embedding":
        per_modality = torch.stack([objective._divergence(model.logits(feats, present={o}), None, None)
                                    for o in ("text", "image")])  # (2, B): image withheld, text withheld
        assigned = torch.stack([rows["image"], rows["text"]]).float()
        assert torch.allclose(out.parts["penalty"], 2 * (per_modality * assigned).sum(0).mean(), atol=1e-5)


def test_random_mask_replaces_whole_tokens():
    from interplay.objectives.synib import RandomMask, ZeroFill

    z = torch.randn(16, 6, 32) + 5
    torch.manual_seed(0)
    out = RandomMask(0.5).replace(0, z, ZeroFill())
    zeroed = (out == 0)
    assert torch.equal(zeroed.all(-1), zeroed.any(-1))  # a token is replaced entirely or not at all
    assert 0.3 < zeroed.all(-1).float().mean() < 0.7


# ---------------------------------------------------------------------- behaviour (slow: six 30-epoch runs)
def _synergistic_accuracy(method: str, seed: int) -> float:
    """Synergistic test accuracy of one token-xor run (module level: it runs in a spawned worker)."""
    from interplay.config import RunConfig
    from interplay.engine import train

    torch.set_num_threads(1)
    cfg = RunConfig.from_dict({"data": {"name": "token-xor"}, "method": {"name": method},
                               "model": {"backbone": "tiny-vlm"}, "train": {"seed": seed, "lr": 1e-3}})
    return float(train(cfg)["test"]["accuracy_by_interaction"]["synergistic"])


@pytest.mark.slow
def test_synib_beats_joint_on_token_xor_synergy():
    """token-xor redundant .9 / synergistic .1 (2,000 training, 1,000 test samples), tiny-vlm fully fine-tuned,
    30 epochs, lr 1e-3, batch 64, best-validation checkpoint, seeds 0-2 (data seed = training seed). Measured
    synergistic test accuracy, joint / synib: seed 0 .494 / .565, seed 1 .423 / .529, seed 2 .426 / .812 (gaps .07,
    .11, .39; mean .19). The test asks for a positive gap on every seed and a mean gap of at least 0.05. About a
    minute of CPU per run; the six runs go to two spawned workers (one thread each: the suite uses one core)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    runs = [(method, seed) for seed in (0, 1, 2) for method in ("synib", "joint")]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        acc = dict(zip(runs, pool.map(_synergistic_accuracy, *zip(*runs))))
    gaps = [acc["synib", s] - acc["joint", s] for s in (0, 1, 2)]
    assert min(gaps) > 0 and sum(gaps) / 3 >= 0.05, (gaps, acc)


@pytest.mark.parametrize("method", sorted(METHODS.names()))
def test_every_method_trains_on_a_token_model_or_refuses_in_one_line(method):
    """A token-level model gives (B, L, D) features: a method either takes one step (every phase) and predicts, or
    says in one line that it needs one feature vector per modality (never a shape error from deep inside)."""
    model = vlm().train()
    data = splits_for(VLM_INFO, vlm_inputs(8), torch.tensor([0, 1] * 4))
    objective = build_objective(MethodConfig(method, {}))
    if objective.needs_feature_vectors:
        with pytest.raises(ConfigError, match=f"method {method!r} works on one feature vector per modality"):
            objective.setup(model, data)
        return
    objective.setup(model, data)
    state = TrainState()
    objective.on_train_epoch_start(model, data.train, state)
    for phase in objective.phases(state):
        state.phase = phase
        out = objective(model, data.train.batch(torch.arange(8)), state)
        assert out.logits.shape == (8, 2) and torch.isfinite(out.loss)
        objective.backward(model, out, state, lambda loss: loss)
    objective.eval()
    model.eval()
    assert objective.predict(model, data.train.batch(torch.arange(8))).logits.shape == (8, 2)
