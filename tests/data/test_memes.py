"""Hateful Memes on a tiny fixture in the release layout (img/, train.jsonl, dev_seen.jsonl, test_seen.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

import interplay.models.vision  # noqa: E402,F401  (registers "cnn")
from interplay.data import memes as hm  # noqa: E402
from interplay.errors import DataError  # noqa: E402

from ..conftest import run_cli as run

WORDS = ["cat", "dog", "love", "hate", "sun", "rain", "happy", "people"]
SIZES = {"train": 16, "dev_seen": 6, "test_seen": 8}
SMALL = ["--set", "model.encoder_hidden=[8]", "--set", "model.fusion_hidden=[8]", "--batch-size", "8", "--quiet"]


def make_memes(root: Path) -> Path:
    """A few 32x32 memes per split, ids unique across splits, text and image weakly tied to the label."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    next_id = 10000
    for split, n in SIZES.items():
        lines = []
        for i in range(n):
            label = i % 2
            mid = next_id
            next_id += 1
            pix = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            pix[..., 0] = 200 if label else 30
            Image.fromarray(pix).save(root / "img" / f"{mid}.png")
            text = " ".join(rng.choice(WORDS, 4)) + (" hate" if label else "")
            lines.append(json.dumps({"id": mid, "img": f"img/{mid}.png", "label": label, "text": text}))
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def root(tmp_path):
    return make_memes(tmp_path / "hm")


def test_builtin_baseline_inputs(root):
    s = hm.hateful_memes(root=str(root), image_size=16, hash_dim=64)
    assert s.info.modalities == {"image": (3, 16, 16), "text": (64,)} and s.info.num_classes == 2
    assert (len(s.train), len(s.val), len(s.test)) == (16, 6, 8)
    assert s.info.extra["inputs"] == {"image": "pixels", "text": "hashed"}
    assert s.test.meta["id"].min() >= 10000 and torch.isfinite(s.train.inputs["image"]).all()
    held = hm.hateful_memes(root=str(root), image_size=16, hash_dim=64, val_split="train", val_fraction=0.25)
    assert (len(held.train), len(held.val)) == (12, 4)
    assert torch.equal(hm.hashed_bow(["Hate hate, love"], 8), hm.hashed_bow(["love hate HATE"], 8))


def test_train_two_methods_end_to_end(root, tmp_path, capsys):
    for method in ("joint", "ensemble"):
        out = tmp_path / method
        code, stdout, err = run(["train", "--data", "hateful-memes", "--data-root", str(root), "--method", method,
                                 "--epochs", "1", "--set", "data.image_size=16", "--set", "data.hash_dim=64", *SMALL,
                                 "--out", str(out)], capsys)
        assert code == 0, err
        assert "test accuracy" in stdout and (out / "predictions.csv").exists()


def test_feature_files(root, tmp_path):
    ids = np.arange(10000, 10000 + sum(SIZES.values()))
    np.savez(tmp_path / "img.npz", id=ids, features=np.random.default_rng(0).normal(size=(ids.size, 5)))
    torch.save({"id": ids.tolist(), "features": torch.randn(ids.size, 3)}, tmp_path / "txt.pt")
    s = hm.hateful_memes(root=str(root), image_features=str(tmp_path / "img.npz"),
                         text_features=str(tmp_path / "txt.pt"))
    assert s.info.modalities == {"image": (5,), "text": (3,)}
    assert abs(float(s.train.inputs["image"].mean())) < 1e-5  # standardised with training statistics
    np.savez(tmp_path / "short.npz", id=ids[:-1], features=np.zeros((ids.size - 1, 5)))
    with pytest.raises(DataError, match=r"short.npz: no features for meme id 10029 \(.*test_seen.jsonl:8\)"):
        hm.hateful_memes(root=str(root), image_features=str(tmp_path / "short.npz"))
    np.savez(tmp_path / "torn.npz", id=ids, features=np.zeros((ids.size - 3, 5)))
    with pytest.raises(DataError, match="torn.npz: 30 ids but 27 feature rows"):
        hm.hateful_memes(root=str(root), image_features=str(tmp_path / "torn.npz"))
    np.savez(tmp_path / "dims.npz", id=ids, features=np.zeros((ids.size, 5, 2)))
    with pytest.raises(DataError, match=r"dims.npz: 'features' must be a numeric \(N, D\) array"):
        hm.hateful_memes(root=str(root), image_features=str(tmp_path / "dims.npz"))


def _train_error(root, tmp_path, capsys, *extra):
    out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
    code, _, err = run(["train", "--data", "hateful-memes", "--data-root", str(root), "--method", "joint",
                        "--epochs", "1", *SMALL, *extra, "--out", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("interplay: error: ") and "Traceback" not in err
    return err


def test_corrupt_jsonl_line(root, tmp_path, capsys):
    path = root / "train.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:-5]
    path.write_text("\n".join(lines) + "\n")
    assert "train.jsonl:3: invalid JSON" in _train_error(root, tmp_path, capsys)


def test_missing_split_image_and_label(root, tmp_path, capsys):
    (root / "dev_seen.jsonl").unlink()
    assert "dev_seen.jsonl: file not found (split dev_seen)" in _train_error(root, tmp_path, capsys)
    (root / "dev_seen.jsonl").write_text(json.dumps({"id": 1, "img": "img/1.png", "label": 0, "text": "x"}) + "\n")
    assert "img/1.png: file not found (referenced by" in _train_error(root, tmp_path, capsys)
    (root / "img" / "10020.png").write_bytes(b"\x89PNG broken")
    (root / "dev_seen.jsonl").write_text(json.dumps({"id": 10020, "img": "img/10020.png", "label": 0, "text": "x"}))
    assert "10020.png: unreadable image" in _train_error(root, tmp_path, capsys)
    (root / "dev_seen.jsonl").write_text(json.dumps({"id": 1, "img": "img/1.png", "text": "x"}))
    assert "dev_seen.jsonl:1: missing field 'label'" in _train_error(root, tmp_path, capsys)


def test_verify(root, capsys):
    code, out, err = run(["data", "verify", "--data", "hateful-memes", "--data-root", str(root)], capsys)
    assert code == 0, err + out
    assert "16 memes (the release has 8,500), 8 hateful, all images present and readable" in out
    (root / "img" / "10003.png").unlink()
    code, out, err = run(["data", "verify", "--data", "hateful-memes", "--data-root", str(root)], capsys)
    assert code == 2 and "1 images missing" in err and "10003.png" in err and "hatefulmemeschallenge" in err


# ------------------------------------------------------------------------------------------ transformers backbones
def make_backbones(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny random CLIP vision tower (+ image processor) and a tiny DeBERTa (+ word-level tokenizer), saved."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    vision, text = tmp_path / "clip-vit", tmp_path / "deberta"
    cfg = transformers.CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=32, patch_size=16)
    torch.manual_seed(0)
    transformers.CLIPVisionModel(cfg).save_pretrained(vision)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        vision)
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                         cls_token="[CLS]", sep_token="[SEP]").save_pretrained(text)
    tcfg = transformers.DebertaV2Config(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    transformers.DebertaV2Model(tcfg).save_pretrained(text)
    return vision, text


def test_frozen_and_finetuned_backbones(root, tmp_path, capsys, monkeypatch):
    vision, text = make_backbones(tmp_path)
    kw = {"root": str(root), "image_backbone": str(vision), "text_backbone": str(text), "max_text_length": 8}
    s = hm.hateful_memes(**kw)
    assert s.info.modalities == {"image": (16,), "text": (16,)}
    assert s.info.extra["inputs"] == {"image": "frozen", "text": "frozen"}
    from interplay import backbones

    def boom(*a, **k):
        raise AssertionError("embeddings recomputed instead of read from the cache")

    monkeypatch.setattr(backbones, "image_embeddings", boom)
    monkeypatch.setattr(backbones, "text_embeddings", boom)
    again = hm.hateful_memes(**kw)
    assert torch.equal(again.test.inputs["text"], s.test.inputs["text"])
    monkeypatch.undo()
    monkeypatch.setenv("INTERPLAY_CACHE", str(tmp_path / "cache"))
    backbone = ["--set", f"data.image_backbone={vision}", "--set", f"data.text_backbone={text}",
                "--set", "data.max_text_length=8"]
    for method in ("joint", "multi_loss"):
        code, stdout, err = run(["train", "--data", "hateful-memes", "--data-root", str(root), "--method", method,
                                 "--epochs", "1", *backbone, *SMALL, "--out", str(tmp_path / method)], capsys)
        assert code == 0, err
    code, stdout, err = run(["train", "--data", "hateful-memes", "--data-root", str(root), "--method", "joint",
                             "--epochs", "1", *backbone, "--set", "data.finetune=true",
                             "--set", "model.encoders={image: hf-image, text: hf-text}", *SMALL,
                             "--out", str(tmp_path / "ft")], capsys)
    assert code == 0, err
    ft = hm.hateful_memes(**kw, finetune=True)
    assert ft.info.modalities == {"image": (3, 32, 32), "text": (2, 8)}
    assert ft.info.extra["encoders"] == {"image": "hf-image", "text": "hf-text"}
    assert ft.info.extra["encoder_options"] == {"image": {"path": str(vision), "pooling": "auto"},
                                                "text": {"path": str(text), "pooling": "auto"}}
    # without preprocessor_config.json: resize to the model's image_size with CLIP's normalisation
    (vision / "preprocessor_config.json").unlink()
    model = backbones.load_backbone(vision, "data.image_backbone")
    pixels = backbones.image_preprocessor(vision, model, "data.image_backbone")([Image.new("RGB", (50, 40))])
    assert pixels.shape == (1, 3, 32, 32)


def test_backbone_errors(root, tmp_path, capsys):
    pytest.importorskip("transformers")
    err = _train_error(root, tmp_path, capsys, "--set", f"data.image_backbone={tmp_path / 'nowhere'}")
    assert "nowhere: not a local Hugging Face model directory (directory not found)" in err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    err = _train_error(root, tmp_path, capsys, "--set", f"data.text_backbone={tmp_path / 'broken'}")
    assert "broken: cannot load the" in err
