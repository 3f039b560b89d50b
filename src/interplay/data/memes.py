"""Hateful Memes (Kiela et al., NeurIPS 2020): is a meme hateful, from its image and its overlaid text?

On-disk layout under ``--data-root`` (the official release)::

    img/<id>.png                 the meme images
    train.jsonl                  {"id": 42953, "img": "img/42953.png", "label": 0, "text": "..."} per line (8,500)
    dev_seen.jsonl (or dev.jsonl), test_seen.jsonl   (500 / 1,000); dev_unseen / test_unseen optional

Modalities ``image`` and ``text``, each from one of (per modality, first that applies):

* a feature file (``image_features`` / ``text_features``): ``.npz`` or ``.pt`` with ``id`` (N,) and ``features``
  (N, D) covering every meme used, e.g. embeddings computed elsewhere;
* a frozen local backbone (``image_backbone`` / ``text_backbone``: a Hugging Face model directory such as
  CLIP-ViT or DeBERTa): one embedding per meme, computed once and cached on disk; with ``finetune=true``
  the raw backbone inputs instead (pixel values / token ids), trained end to end through the ``hf-image`` /
  ``hf-text`` encoders (``--set model.encoders='{image: hf-image, text: hf-text}'``);
* a built-in weak baseline: ``image`` = RGB pixels resized to ``image_size`` (``(3, S, S)``, ``cnn`` encoder),
  ``text`` = a hashed bag of words (``hash_dim`` buckets of ``log(1 + count)``).

All decoded inputs are cached (:func:`interplay.data.cache.cached`) keyed by the annotation file, the image
files' sizes and modification times, the backbone directory and the parameters. See
``docs/data/hateful-memes.md``.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from .. import backbones
from ..errors import ConfigError, DataError
from .cache import cached, files_fingerprint
from .dataset import (
    DATASETS,
    VERIFIERS,
    Check,
    DataInfo,
    DataSplits,
    MultimodalDataset,
    data_root,
    problems,
    split_indices,
)
from .media import read_image

CLASS_NAMES = ["not_hateful", "hateful"]
#: split name -> candidate annotation files (first that exists); the first release called dev_seen "dev"
SPLIT_FILES: dict[str, tuple[str, ...]] = {"train": ("train.jsonl",), "dev_seen": ("dev_seen.jsonl", "dev.jsonl"),
                                           "test_seen": ("test_seen.jsonl",), "dev_unseen": ("dev_unseen.jsonl",),
                                           "test_unseen": ("test_unseen.jsonl",)}
USUAL_SIZES = {"train": 8500, "dev_seen": 500, "test_seen": 1000, "dev_unseen": 540, "test_unseen": 2000}
PREPROCESSING_VERSION = "1"
WHERE = ("get the Hateful Memes release (img/, train.jsonl, dev_seen.jsonl, test_seen.jsonl) from "
         "https://hatefulmemeschallenge.com (Meta AI, licence acceptance required) and put it under --data-root "
         "(see docs/data/hateful-memes.md)")
TOKEN = re.compile(r"[a-z0-9']+")


@dataclass
class Meme:
    id: str
    img: str
    text: str
    label: int
    line: int


def split_file(base: Path, split: str) -> Path:
    """The annotation file of ``split`` (``train``, ``dev_seen``, ``test_seen``, ... or any ``NAME`` for
    ``NAME.jsonl``)."""
    names = SPLIT_FILES.get(split, (f"{split}.jsonl",))
    for name in names:
        if (base / name).is_file():
            return base / name
    raise DataError(f"{base / names[0]}: file not found (split {split}); {WHERE}")


def read_jsonl(path: Path) -> list[Meme]:
    """Parse one annotation file; every line needs ``id``, ``img``, ``text`` and a 0/1 ``label``."""
    memes: list[Meme] = []
    seen: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; {WHERE}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable annotation file ({exc})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(rec, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object with id, img, label, text")
        for key in ("id", "img", "text", "label"):
            if key not in rec:
                hint = " (test labels are needed: use --set data.test_split=dev_seen --set data.val_split=train " \
                       "if this copy lacks them)" if key == "label" else ""
                raise DataError(f"{path}:{lineno}: missing field {key!r}{hint}")
        if rec["label"] not in (0, 1) or isinstance(rec["label"], bool):
            raise DataError(f"{path}:{lineno}: label must be 0 or 1, got {rec['label']!r}")
        if not isinstance(rec["text"], str) or not isinstance(rec["img"], str):
            raise DataError(f"{path}:{lineno}: fields img and text must be strings")
        mid = str(rec["id"])
        if mid in seen:
            raise DataError(f"{path}:{lineno}: meme id {mid} appears twice")
        seen.add(mid)
        memes.append(Meme(mid, rec["img"], rec["text"], int(rec["label"]), lineno))
    if not memes:
        raise DataError(f"{path}: no memes (expected one JSON object per line)")
    return memes


def image_path(base: Path, meme: Meme, source: Path) -> Path:
    path = base / meme.img
    if not path.is_file():
        raise DataError(f"{path}: file not found (referenced by {source}:{meme.line}); {WHERE}")
    return path


def load_image(path: Path) -> Any:
    """The RGB PIL image at ``path`` (fully decoded), or a :class:`DataError` naming it."""
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError("reading images needs the optional dependency pillow (pip install pillow)") from None
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except Exception as exc:  # PIL raises OSError, SyntaxError, struct.error, ... on damaged files
        raise DataError(f"{path}: unreadable image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") \
            from None


def hashed_bow(texts: Sequence[str], dim: int) -> Tensor:
    """``(N, dim)`` ``log(1 + count)`` of lower-cased word tokens hashed (CRC-32, stable across runs) into
    ``dim`` buckets."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        for tok in TOKEN.findall(text.lower()):
            out[i, zlib.crc32(tok.encode()) % dim] += 1.0
    return torch.from_numpy(np.log1p(out))


def read_feature_file(path: str | Path, field: str) -> dict[str, np.ndarray]:
    """``{id: (D,) vector}`` from a ``.npz`` / ``.pt`` file with ``id`` (N,) and ``features`` (N, D)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p}: file not found ({field} expects a .npz or .pt file with 'id' (N,) and "
                        f"'features' (N, D))")
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        else:
            raw = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to parse the file is the file's fault
        raise DataError(f"{p}: unreadable feature file ({str(exc).splitlines()[0] if str(exc) else exc!r})") \
            from None
    if not isinstance(raw, dict) or "id" not in raw or "features" not in raw:
        raise DataError(f"{p}: expected keys 'id' and 'features', got {sorted(raw) if isinstance(raw, dict) else raw}")
    feats = raw["features"].numpy() if isinstance(raw["features"], Tensor) else np.asarray(raw["features"])
    ids = raw["id"].tolist() if isinstance(raw["id"], (Tensor, np.ndarray)) else list(raw["id"])
    if feats.ndim != 2 or not np.issubdtype(feats.dtype, np.number):
        raise DataError(f"{p}: 'features' must be a numeric (N, D) array, got shape {feats.shape}")
    if len(ids) != feats.shape[0]:
        raise DataError(f"{p}: {len(ids)} ids but {feats.shape[0]} feature rows (truncated file?)")
    if not np.isfinite(feats).all():
        raise DataError(f"{p}: 'features' contains NaN or inf")
    return {str(i): feats[k].astype(np.float32) for k, i in enumerate(ids)}


def features_for(memes: Sequence[Meme], table: dict[str, np.ndarray], path: str, source: Path) -> Tensor:
    missing = [m for m in memes if m.id not in table]
    if missing:
        raise DataError(f"{path}: no features for meme id {missing[0].id} ({source}:{missing[0].line}); "
                        f"{len(missing)} of {len(memes)} missing")
    return torch.from_numpy(np.stack([table[m.id] for m in memes]))


# ----------------------------------------------------------------------------------------------- builder
@dataclass
class _Split:
    memes: list[Meme]
    source: Path


def _subsample(split: _Split, n: int | None, rng: np.random.Generator) -> _Split:
    if n is None or n >= len(split.memes):
        return split
    if n < 1:
        raise ConfigError(f"data.n_train / data.n_test: expected a positive number of samples, got {n}")
    idx = np.sort(rng.choice(len(split.memes), size=n, replace=False))
    return _Split([split.memes[i] for i in idx], split.source)


def _image_input(base: Path, split: _Split, mode: str, opts: dict[str, Any]) -> Tensor:
    paths = [image_path(base, m, split.source) for m in split.memes]
    params = {"root": str(base.resolve()), "source": str(split.source), "ids": [m.id for m in split.memes],
              "files": files_fingerprint([split.source, *paths]), "mode": mode}
    if mode == "pixels":
        size = opts["image_size"]

        def build() -> Tensor:
            return torch.from_numpy(np.stack([read_image(p, size) for p in paths]))

        return cached("hateful-memes", {**params, "image_size": size}, PREPROCESSING_VERSION, build)
    bdir = backbones.backbone_dir(opts["image_backbone"], "data.image_backbone")
    params.update(backbone=str(bdir.resolve()), backbone_files=files_fingerprint(sorted(bdir.rglob("*"))),
                  pooling=opts["pooling"])
    if mode == "finetune":
        def build_pixels() -> Tensor:
            model = backbones.load_backbone(bdir, "data.image_backbone")
            prep = backbones.image_preprocessor(bdir, model, "data.image_backbone")
            return torch.cat([prep([load_image(p) for p in paths[i:i + 64]]).float()
                              for i in range(0, len(paths), 64)])

        return cached("hateful-memes", params, PREPROCESSING_VERSION, build_pixels)

    def build_embeddings() -> Tensor:
        return backbones.image_embeddings(bdir, lambda i: load_image(paths[i]), len(paths), opts["batch_size"],
                                          opts["pooling"], opts["device"], progress="hateful-memes: image features")

    return cached("hateful-memes", params, PREPROCESSING_VERSION, build_embeddings)


def _text_input(split: _Split, mode: str, opts: dict[str, Any]) -> Tensor:
    texts = [m.text for m in split.memes]
    if mode == "hashed":
        return hashed_bow(texts, opts["hash_dim"])
    bdir = backbones.backbone_dir(opts["text_backbone"], "data.text_backbone")
    params = {"texts": texts, "mode": mode, "backbone": str(bdir.resolve()), "max_length": opts["max_text_length"],
              "backbone_files": files_fingerprint(sorted(bdir.rglob("*"))), "pooling": opts["pooling"]}
    if mode == "finetune":
        def build_ids() -> Tensor:
            tok = backbones.load_tokenizer(bdir, "data.text_backbone")
            ids, mask = backbones.tokenize(tok, texts, opts["max_text_length"])
            return torch.stack([ids, mask], 1).float()

        return cached("hateful-memes", params, PREPROCESSING_VERSION, build_ids)

    def build_embeddings() -> Tensor:
        return backbones.text_embeddings(bdir, texts, opts["batch_size"], opts["max_text_length"], opts["pooling"],
                                         opts["device"], progress="hateful-memes: text features")

    return cached("hateful-memes", params, PREPROCESSING_VERSION, build_embeddings)


def _standardise(x: dict[str, Tensor], axes: tuple[int, ...]) -> dict[str, Tensor]:
    """Standardise with the training split's mean / std over ``axes`` (kept as broadcast dims)."""
    mean = x["train"].mean(axes, keepdim=True)
    std = x["train"].std(axes, keepdim=True).clamp_min(1e-6) if x["train"].shape[0] > 1 else torch.ones_like(mean)
    return {k: (v - mean) / std for k, v in x.items()}


@DATASETS.register("hateful-memes")
def hateful_memes(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
                  root: str | None = None, val_split: str = "dev_seen", test_split: str = "test_seen",
                  image_backbone: str | None = None, text_backbone: str | None = None,
                  image_features: str | None = None, text_features: str | None = None, finetune: bool = False,
                  pooling: Literal["auto", "mean", "cls", "pooler"] = "auto", image_size: int = 32,
                  hash_dim: int = 1024, max_text_length: int = 64, backbone_batch_size: int = 32,
                  backbone_device: str = "cpu") -> DataSplits:
    """Hateful Memes: hateful (1) or not (0) from ``image`` and ``text``; train.jsonl / dev_seen / test_seen
    (8,500 / 500 / 1,000). The official metric, AUROC, is reported as ``test.auroc`` in metrics.json.

    Inputs per modality: ``image_features`` / ``text_features`` (.npz/.pt files of id + features), else
    ``image_backbone`` / ``text_backbone`` (local Hugging Face model directories; frozen embeddings computed once
    and cached, or raw backbone inputs with ``finetune=true``), else a weak built-in baseline (``image_size``
    pixels; ``hash_dim`` hashed bag of words). ``val_split=train`` holds ``val_fraction`` of train out instead.
    """
    if image_size < 4 or hash_dim < 1 or max_text_length < 2 or backbone_batch_size < 1:
        raise ConfigError("data.image_size >= 4, data.hash_dim >= 1, data.max_text_length >= 2 and "
                          "data.backbone_batch_size >= 1 are required")
    base = data_root(root, "hateful-memes", "img/ and the .jsonl files", WHERE)
    if not (base / "img").is_dir():
        raise DataError(f"{base / 'img'}: directory not found (the meme images); {WHERE}")
    if finetune and not (image_backbone or text_backbone):
        raise ConfigError("data.finetune: needs data.image_backbone and/or data.text_backbone")
    rng = np.random.default_rng(seed)
    train_file = split_file(base, "train")
    train = _Split(read_jsonl(train_file), train_file)
    test_file = split_file(base, test_split)
    test = _subsample(_Split(read_jsonl(test_file), test_file), n_test, rng)
    train = _subsample(train, n_train, rng)
    if val_split == "train":
        if not 0 < val_fraction < 1:
            raise ConfigError(f"data.val_fraction: expected a number in (0, 1), got {val_fraction}")
        labels = np.asarray([m.label for m in train.memes])
        tr, va = split_indices(len(labels), (1 - val_fraction,), rng, strata=labels)
        if len(va) == 0 or len(tr) == 0:
            raise DataError(f"{train_file}: too few memes ({len(labels)}) to hold out validation")
        val = _Split([train.memes[i] for i in va], train_file)
        train = _Split([train.memes[i] for i in tr], train_file)
    else:
        val_file = split_file(base, val_split)
        if val_file == test_file:
            raise ConfigError(f"data.val_split and data.test_split both read {val_file.name}; use data.val_split=train")
        val = _Split(read_jsonl(val_file), val_file)
    splits = {"train": train, "val": val, "test": test}
    for name, other in (("val", val), ("test", test)):
        if other.source != train.source:
            shared = {m.id for m in train.memes} & {m.id for m in other.memes}
            if shared:
                raise DataError(f"{other.source}: meme id {sorted(shared)[0]} is also in {train.source.name} "
                                f"({len(shared)} shared); the {name} split must be disjoint from train")
    image_mode = "file" if image_features else ("finetune" if finetune else "frozen") if image_backbone else "pixels"
    text_mode = "file" if text_features else ("finetune" if finetune else "frozen") if text_backbone else "hashed"
    opts = {"image_size": image_size, "hash_dim": hash_dim, "max_text_length": max_text_length, "pooling": pooling,
            "batch_size": backbone_batch_size, "device": backbone_device, "image_backbone": image_backbone,
            "text_backbone": text_backbone}
    if image_features:  # image_mode == "file"
        table = read_feature_file(image_features, "data.image_features")
        image = {k: features_for(s.memes, table, image_features, s.source) for k, s in splits.items()}
    else:
        image = {k: _image_input(base, s, image_mode, opts) for k, s in splits.items()}
    if text_features:  # text_mode == "file"
        table = read_feature_file(text_features, "data.text_features")
        text = {k: features_for(s.memes, table, text_features, s.source) for k, s in splits.items()}
    else:
        text = {k: _text_input(s, text_mode, opts) for k, s in splits.items()}
    image = {k: v.float() for k, v in image.items()}
    if image_mode == "pixels":
        image = _standardise({k: v / 255.0 for k, v in image.items()}, (0, 2, 3))
    elif image_mode in ("file", "frozen"):
        image = _standardise(image, (0,))
    if text_mode in ("file", "frozen"):
        text = _standardise(text, (0,))
    suggested: dict[str, str] = {}
    options: dict[str, dict[str, str]] = {}
    if finetune:  # the backbone directory travels in DataInfo to the hf-image / hf-text encoders
        for kind, mode, path in (("image", image_mode, image_backbone), ("text", text_mode, text_backbone)):
            if mode == "finetune":
                suggested[kind] = f"hf-{kind}"
                options[kind] = {"path": str(path), "pooling": pooling}
    sets = {}
    for name, s in splits.items():
        meta = {"id": torch.as_tensor([int(m.id) for m in s.memes])} if all(m.id.isdigit() for m in s.memes) else {}
        sets[name] = MultimodalDataset({"image": image[name], "text": text[name]},
                                       torch.as_tensor([m.label for m in s.memes]), meta,
                                       name=f"hateful-memes/{name}")
    info = DataInfo(name="hateful-memes", modalities={"image": tuple(image["train"].shape[1:]),
                                                      "text": tuple(text["train"].shape[1:])},
                    num_classes=2, class_names=list(CLASS_NAMES),
                    extra={"inputs": {"image": image_mode, "text": text_mode}, "encoders": suggested,
                           "encoder_options": options,
                           "splits": {k: s.source.name for k, s in splits.items()},
                           "preprocessing_version": PREPROCESSING_VERSION})
    return DataSplits(train=sets["train"], val=sets["val"], test=sets["test"], info=info)


# ----------------------------------------------------------------------------------------------- verify
def verify_memes(root: str | None) -> list[Check]:
    """Layout, every annotation file (fields, labels, sizes vs the release), referenced images present and
    decodable (header check), split disjointness. No checksums are published for the release."""
    if root is None:
        return [Check(False, f"hateful-memes: no data root given; {WHERE}")]
    base = Path(root).expanduser()
    if not base.is_dir():
        return [Check(False, f"{base}: directory not found; {WHERE}")]
    checks = [Check((base / "img").is_dir(), f"{base / 'img'}: " + (
        f"{sum(1 for _ in (base / 'img').iterdir()):,} files" if (base / "img").is_dir()
        else f"directory not found (the meme images); {WHERE}"))]
    ids: dict[str, set[str]] = {}
    for split in SPLIT_FILES:
        optional = split in ("dev_unseen", "test_unseen")
        try:
            path = split_file(base, split)
        except DataError as exc:
            if not optional:
                checks.append(Check(False, str(exc)))
            continue
        try:
            memes = read_jsonl(path)
        except DataError as exc:
            checks.append(Check(False, str(exc)))
            continue
        ids[split] = {m.id for m in memes}
        missing, bad = [], []
        for m in memes:
            p = base / m.img
            if not p.is_file():
                missing.append(p)
                continue
            try:
                from PIL import Image

                with Image.open(p) as im:
                    im.verify()
            except Exception as exc:  # any decoder failure means an unreadable image
                bad.append(f"{p} ({exc})")
        usual = USUAL_SIZES[split]
        note = "the release size" if len(memes) == usual else f"the release has {usual:,}"
        hateful = sum(m.label for m in memes)
        if missing or bad:
            found = problems({"images missing": missing, "unreadable": bad})
            checks.append(Check(False, f"{path}: {found}; {WHERE}"))
        else:
            checks.append(Check(True, f"{path}: {len(memes):,} memes ({note}), {hateful} hateful, all images "
                                      f"present and readable"))
    if "train" in ids:
        for split, s in ids.items():
            if split != "train" and s & ids["train"]:
                checks.append(Check(False, f"{split}: {len(s & ids['train'])} meme ids also in train "
                                           f"(first: {sorted(s & ids['train'])[0]})"))
    return checks


VERIFIERS.register("hateful-memes")(verify_memes)
