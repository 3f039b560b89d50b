"""Pretrained Hugging Face ``transformers`` backbones loaded from a local directory (never downloaded).

Two uses:

* frozen feature extraction (:func:`image_embeddings`, :func:`text_embeddings`): a dataset precomputes one
  vector per sample once and caches it, and training runs on the vectors (cheap);
* fine-tuning through the encoder registry: ``hf-image`` / ``hf-text`` (:mod:`interplay.models.hf`) wrap the
  backbone that a dataset built in fine-tuning mode names in its ``DataInfo`` (``hateful-memes`` with
  ``data.finetune=true``).

This module sits below both ``data`` (which embeds with it) and ``models`` (which fine-tunes with it).

A backbone directory is anything ``save_pretrained`` wrote (``config.json`` + weights), loaded with the ``Auto``
classes and ``local_files_only=True``: CLIP (``CLIPModel``, ``CLIPVisionModel``, ``CLIPTextModel``), ViT,
DeBERTa, BERT, ... Pooling (``auto``): CLIP-style models give their projected or pooled embedding
(``image_embeds`` / ``text_embeds`` / ``pooler_output``); other models the mean of the last hidden states over
tokens (masked by the attention mask) or over the spatial grid. ``cls`` takes the first token, ``mean`` always
averages, ``pooler`` requires a pooled output. Needs the optional dependency ``transformers``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .device import resolve_device
from .errors import ConfigError, DataError

POOLINGS = ("auto", "mean", "cls", "pooler")
#: CLIP's pixel normalisation, used when a backbone directory has no preprocessor_config.json
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def require_transformers(field: str) -> Any:
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"{field}: backbones need the optional dependency transformers "
                          f"(pip install transformers)") from None
    return transformers


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' info/warning logs and weight-loading progress bars inside the block."""
    import transformers

    log = transformers.utils.logging
    verbosity, bars = log.get_verbosity(), log.is_progress_bar_enabled()
    log.set_verbosity_error()
    log.disable_progress_bar()
    try:
        yield
    finally:
        log.set_verbosity(verbosity)
        if bars:
            log.enable_progress_bar()


def backbone_dir(path: str | Path, field: str) -> Path:
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        what = "directory not found" if not p.exists() else "no config.json"
        raise DataError(f"{p}: not a local Hugging Face model directory ({what}); {field} expects a directory "
                        f"written by save_pretrained (e.g. a downloaded openai/clip-vit-base-patch32 or "
                        f"microsoft/deberta-v3-base snapshot); nothing is downloaded")
    return p


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_backbone(path: str | Path, field: str) -> nn.Module:
    """``AutoModel.from_pretrained(path, local_files_only=True)`` in eval mode, with a one-line error."""
    transformers = require_transformers(field)
    p = backbone_dir(path, field)
    try:
        with quiet_transformers():
            model = transformers.AutoModel.from_pretrained(str(p), local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise DataError(f"{p}: cannot load the backbone named by {field} ({_first_line(exc)})") from None
    return model.eval()


def model_type(model: nn.Module) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", "") or "")


def _image_size(model: nn.Module) -> int:
    cfg = getattr(model, "config", None)
    for c in (cfg, getattr(cfg, "vision_config", None)):
        size = getattr(c, "image_size", None)
        if isinstance(size, int):
            return size
        if isinstance(size, (list, tuple)) and size:
            return int(size[0])
    return 224


def image_preprocessor(path: str | Path, model: nn.Module, field: str) -> Callable[[list[Any]], Tensor]:
    """A function mapping PIL images to ``(B, 3, H, W)`` pixel values: the directory's image processor, or (when
    it has none) a bilinear resize to the model's ``image_size`` with CLIP's mean/std."""
    transformers = require_transformers(field)
    p = Path(path)
    if (p / "preprocessor_config.json").is_file():
        try:
            with quiet_transformers():
                proc = transformers.AutoImageProcessor.from_pretrained(str(p), local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{p / 'preprocessor_config.json'}: cannot load the image processor "
                            f"({_first_line(exc)})") from None
        return lambda images: proc(images=images, return_tensors="pt")["pixel_values"]
    size = _image_size(model)
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)

    def fallback(images: list[Any]) -> Tensor:
        from PIL import Image

        arrs = [np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
                for im in images]
        x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2) / 255.0
        return (x - mean) / std

    return fallback


def load_tokenizer(path: str | Path, field: str) -> Any:
    transformers = require_transformers(field)
    p = backbone_dir(path, field)
    try:
        with quiet_transformers():
            return transformers.AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{p}: cannot load the tokenizer named by {field} ({_first_line(exc)})") from None


def pool(output: Any, pooling: str, kind: str, attention_mask: Tensor | None = None,
         clip_like: bool = False) -> Tensor:
    """One ``(B, D)`` vector per sample from a backbone's output (see the module docstring)."""
    if isinstance(output, Tensor):  # transformers 4's get_*_features return the embeddings directly
        return output.flatten(1)
    if pooling == "pooler" or (pooling == "auto" and clip_like):
        for name in (f"{kind}_embeds", "pooler_output"):
            value = getattr(output, name, None)
            if isinstance(value, Tensor):
                return value.flatten(1)
        if pooling == "pooler":
            raise ConfigError(f"{kind} pooling 'pooler': the backbone has no pooled output; use mean or cls")
    h = getattr(output, "last_hidden_state", None)
    if not isinstance(h, Tensor):
        raise ConfigError(f"{kind} backbone output has no last_hidden_state to pool")
    if h.dim() == 4:  # convolutional feature map (B, C, H, W)
        return h.mean((2, 3))
    if pooling == "cls":
        return h[:, 0]
    if attention_mask is None:
        return h.mean(1)
    m = attention_mask.to(h.dtype).unsqueeze(-1)
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


def run_image(model: nn.Module, pixels: Tensor, pooling: str) -> Tensor:
    clip_like = "clip" in model_type(model) or "siglip" in model_type(model)
    features = getattr(model, "get_image_features", None)
    out = features(pixel_values=pixels) if callable(features) else model(pixel_values=pixels)
    return pool(out, pooling, "image", clip_like=clip_like)


def run_text(model: nn.Module, ids: Tensor, mask: Tensor, pooling: str) -> Tensor:
    clip_like = "clip" in model_type(model) or "siglip" in model_type(model)
    features = getattr(model, "get_text_features", None)
    out = features(input_ids=ids, attention_mask=mask) if callable(features) else model(input_ids=ids,
                                                                                        attention_mask=mask)
    return pool(out, pooling, "text", mask, clip_like=clip_like)


def _device(name: str) -> torch.device:
    return resolve_device(name, "data.backbone_device")


@torch.no_grad()
def image_embeddings(path: str | Path, load: Callable[[int], Any], n: int, batch_size: int = 32,
                     pooling: str = "auto", device: str = "cpu", field: str = "data.image_backbone",
                     progress: str | None = None) -> Tensor:
    """``(n, D)`` float32 frozen embeddings of images ``load(0) .. load(n-1)`` (PIL images)."""
    model = load_backbone(path, field)
    prep = image_preprocessor(path, model, field)
    dev = _device(device)
    model.to(dev)
    out = []
    for start in _batches(n, batch_size, progress):
        pixels = prep([load(i) for i in range(start, min(n, start + batch_size))]).to(dev)
        out.append(run_image(model, pixels, pooling).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


@torch.no_grad()
def text_embeddings(path: str | Path, texts: Sequence[str], batch_size: int = 32, max_length: int = 64,
                    pooling: str = "auto", device: str = "cpu", field: str = "data.text_backbone",
                    progress: str | None = None) -> Tensor:
    """``(len(texts), D)`` float32 frozen embeddings."""
    model = load_backbone(path, field)
    tok = load_tokenizer(path, field)
    dev = _device(device)
    model.to(dev)
    out = []
    for start in _batches(len(texts), batch_size, progress):
        ids, mask = tokenize(tok, texts[start:start + batch_size], max_length)
        out.append(run_text(model, ids.to(dev), mask.to(dev), pooling).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def tokenize(tok: Any, texts: Sequence[str], max_length: int) -> tuple[Tensor, Tensor]:
    """``(B, max_length)`` input ids and attention mask (padded / truncated to ``max_length``)."""
    if getattr(tok, "pad_token", None) is None:
        tok.pad_token = tok.eos_token if getattr(tok, "eos_token", None) is not None else tok.unk_token
    enc = tok(list(texts), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def _batches(n: int, batch_size: int, progress: str | None) -> Iterator[int]:
    from tqdm import tqdm

    starts = range(0, n, max(1, batch_size))
    return iter(tqdm(starts, desc=progress, disable=None if progress else True, leave=False))
