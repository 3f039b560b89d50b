"""Fine-tuned Hugging Face backbones as encoders: ``hf-image`` and ``hf-text``.

The backbone directory travels with the data: a dataset built in fine-tuning mode (``hateful-memes`` with
``data.finetune=true``) records ``info.extra["encoders"][m] = "hf-image"`` and
``info.extra["encoder_options"][m] = {"path": DIR, "pooling": ...}``; :func:`~interplay.models.build_model`
passes those options to the encoder it builds for ``m``. Loading and pooling live in :mod:`interplay.backbones`.

Token-level models (``model.backbone``, :func:`build_token_model`): a transformer whose modalities enter as token
spans of one sequence (:mod:`interplay.models.token`), from a built-in tiny random config (``tiny-vlm``,
``tiny-text``) or a local checkpoint directory; LoRA through ``peft`` (``model.lora_r``, ``model.lora_targets``).
transformers and peft are imported when a model is built (extra ``interplay[hf]``).
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..backbones import load_backbone, quiet_transformers, run_image, run_text
from ..config import ModelConfig
from ..data import DataInfo
from ..errors import ConfigError, DataError
from .encoders import ENCODERS
from .token import PooledTokenHead, TokenEmbedding, TokenFusion, TokenModel, freeze


def _require_path(path: str | None, kind: str) -> str:
    if not path:
        raise ConfigError(f"model.encoder hf-{kind}: no {kind} backbone given; a dataset in fine-tuning mode names "
                          f"it, e.g. --set data.{kind}_backbone=DIR --set data.finetune=true")
    return path


class HFImageEncoder(nn.Module):
    """A trainable backbone on ``(B, 3, H, W)`` pixel values -> ``(B, D)`` pooled features (``D``: the backbone's)."""

    def __init__(self, input_shape: Sequence[int], path: str, pooling: str = "auto", dropout: float = 0.0) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(f"model.encoder: hf-image expects (3, H, W) pixel values, got shape {tuple(input_shape)}")
        self.backbone = load_backbone(path, "data.image_backbone").train()
        self.pooling = pooling
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        with torch.no_grad():
            self.out_dim = int(self._features(torch.zeros(1, *input_shape)).shape[1])

    def _features(self, x: Tensor) -> Tensor:
        return run_image(self.backbone, x, self.pooling)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self._features(x))


class HFTextEncoder(nn.Module):
    """A trainable text backbone on ``(B, 2, L)`` inputs (row 0: token ids, row 1: attention mask, stored as
    floats) -> ``(B, D)`` pooled features."""

    def __init__(self, input_shape: Sequence[int], path: str, pooling: str = "auto", dropout: float = 0.0) -> None:
        super().__init__()
        if len(input_shape) != 2 or int(input_shape[0]) != 2:
            raise ConfigError(f"model.encoder: hf-text expects (2, L) [token ids; attention mask] inputs, got shape "
                              f"{tuple(input_shape)}")
        self.backbone = load_backbone(path, "data.text_backbone").train()
        self.pooling = pooling
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        length = int(input_shape[1])
        with torch.no_grad():
            dummy = torch.stack([torch.zeros(length), torch.ones(length)])[None]
            self.out_dim = int(self._features(dummy).shape[1])

    def _features(self, x: Tensor) -> Tensor:
        ids, mask = x[:, 0].round().long(), x[:, 1].round().long()
        return run_text(self.backbone, ids, mask, self.pooling)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self._features(x))


@ENCODERS.register("hf-image")
def build_hf_image(input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0,
                   path: str | None = None, pooling: str = "auto") -> nn.Module:
    return HFImageEncoder(input_shape, _require_path(path, "image"), pooling, dropout)


@ENCODERS.register("hf-text")
def build_hf_text(input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0,
                  path: str | None = None, pooling: str = "auto") -> nn.Module:
    return HFTextEncoder(input_shape, _require_path(path, "text"), pooling, dropout)


# ---------------------------------------------------------------------- token-level models (model.backbone)
#: built-in tiny randomly initialised backbones (offline; for tests, examples and CPU runs)
TINY_BACKBONES = ("tiny-vlm", "tiny-text")
TINY_WIDTH = 32


class HFSequence(nn.Module):
    """A Hugging Face transformer on input embeddings: ``(embeds (N, T, D), attention (N, T)) -> (N, T, D)``
    (``model(inputs_embeds=..., attention_mask=...).last_hidden_state``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeds: Tensor, attention: Tensor) -> Tensor:
        return self.model(inputs_embeds=embeds, attention_mask=attention).last_hidden_state


class ImagePatchTokens(nn.Module):
    """``(B, 3, H, W)`` pixel values -> ``(B, P, D)`` projected patch tokens of a Llava-style vision-language model
    (``vlm.get_image_features(pixel_values=...)``: vision tower, feature layer, projector). Registers the vision
    tower and projector; the language model is not part of this encoder."""

    def __init__(self, vlm: nn.Module, input_shape: Sequence[int], where: str) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(f"model.backbone: image modality needs (C, H, W) pixel values, got {tuple(input_shape)}")
        self.vision_tower = getattr(vlm, "vision_tower", None)
        self.projector = getattr(vlm, "multi_modal_projector", None)
        if not callable(getattr(vlm, "get_image_features", None)) or self.vision_tower is None:
            raise ConfigError(f"model.backbone: {where} has no Llava-style vision tower (get_image_features, "
                              f"vision_tower); image modalities need a vision-language model")
        # the vlm itself is not registered here: its language model belongs to the fusion
        self._image_features = typing.cast(typing.Callable[..., Any], vlm.get_image_features)
        try:
            with torch.no_grad():
                probe = self._tokens(torch.zeros(1, *input_shape))
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ConfigError(f"model.backbone: {where}: image features of a {tuple(input_shape)} input failed "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        self.num_tokens, self.out_dim = int(probe.shape[1]), int(probe.shape[2])

    def _tokens(self, x: Tensor) -> Tensor:
        out = self._image_features(pixel_values=x)
        feats = getattr(out, "pooler_output", out)
        return torch.stack(list(feats)) if isinstance(feats, (list, tuple)) else feats

    def forward(self, x: Tensor) -> Tensor:
        return self._tokens(x)


def _require_hf(field: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise ConfigError(f"{field}: token-level models need the optional dependency {package} "
                          f"(pip install 'interplay[hf]')") from None


def tiny_backbone(name: str, info: DataInfo) -> nn.Module:
    """A randomly initialised 2-layer model built offline from a transformers config class: ``tiny-vlm`` a
    Llava (CLIP vision tower, patch 4, on the dataset's image size; Llama language model), ``tiny-text`` a Llama
    model; hidden size 32, 2 heads, vocabulary ``info.extra["vocab_size"]`` (default 64). Trained from scratch it
    needs ``train.lr=1e-3`` (or more epochs) for SynIB to beat joint on token-xor; at the default 3e-4 it has not
    within 30 epochs (docs/methods/synib.md)."""
    transformers = _require_hf("model.backbone", "transformers")
    vocab = int(info.extra.get("vocab_size", 64))
    width = TINY_WIDTH
    text = transformers.LlamaConfig(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                                    num_attention_heads=2, num_key_value_heads=2, vocab_size=vocab,
                                    max_position_embeddings=512, pad_token_id=0)
    if name == "tiny-text":
        with quiet_transformers():
            return transformers.LlamaModel(text)
    images = [s for s in info.modalities.values() if len(s) == 3]
    size = int(images[0][1]) if images else 16
    if size % 4:
        raise ConfigError(f"model.backbone: tiny-vlm uses 4x4 patches; image size {size} is not a multiple of 4")
    vision = transformers.CLIPVisionConfig(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
                                           num_attention_heads=2, image_size=size, patch_size=4,
                                           num_channels=int(images[0][0]) if images else 3)
    cfg = transformers.LlavaConfig(vision_config=vision, text_config=text, image_token_index=vocab - 1,
                                   vision_feature_layer=-1, vision_feature_select_strategy="default",
                                   projector_hidden_act="gelu")
    with quiet_transformers():
        return transformers.LlavaModel(cfg)


def load_backbone_dir(path: str) -> nn.Module:
    """``AutoModel.from_pretrained(path, local_files_only=True)``; a missing directory is one line saying that
    weights must be downloaded by the user (nothing is downloaded at run time)."""
    _require_hf("model.backbone", "transformers")
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        what = "directory not found" if not p.exists() else "no config.json in it"
        raise DataError(f"model.backbone: {p}: {what}; expected a local Hugging Face checkpoint directory "
                        f"(save_pretrained layout). Weights must be downloaded by the user, e.g. "
                        f"`huggingface-cli download llava-hf/llava-interleave-qwen-0.5b-hf --local-dir {p}`; "
                        f"nothing is downloaded at run time")
    return load_backbone(p, "model.backbone").train()


def _language_model(model: nn.Module) -> nn.Module:
    """The text transformer of a vision-language model (``language_model``), or the model itself."""
    inner = getattr(model, "model", None)
    for owner in (model, inner):
        lm = getattr(owner, "language_model", None) if owner is not None else None
        if isinstance(lm, nn.Module):
            return lm
    return model


def _vision_model(model: nn.Module) -> nn.Module | None:
    for owner in (model, getattr(model, "model", None)):
        if owner is not None and getattr(owner, "vision_tower", None) is not None:
            return owner
    return None


def add_lora(model: nn.Module, r: int, alpha: float, dropout: float, targets: Sequence[str]) -> None:
    """Inject LoRA adapters (peft) of rank ``r`` into the modules named ``targets`` of ``model``; every other weight
    of ``model`` is frozen (flagged, see :class:`~interplay.models.token.TokenModel`)."""
    peft = _require_hf("model.lora_r", "peft")
    if not targets:
        raise ConfigError("model.lora_targets: LoRA needs at least one target module name, e.g. [q_proj, v_proj]")
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets))
    try:
        peft.inject_adapter_in_model(config, model)
    except ValueError as exc:
        raise ConfigError(f"model.lora_targets: {list(targets)} ({str(exc).splitlines()[0]})") from None
    freeze(model, lambda name: "lora_" in name)


def build_token_model(cfg: ModelConfig, info: DataInfo) -> TokenModel:
    """The :class:`~interplay.models.token.TokenModel` of ``cfg.backbone`` for the modalities of ``info``: ``(C, H,
    W)`` modalities become image patch tokens (vision-language backbones), ``(L,)`` / ``(2, L)`` modalities text
    tokens (shared embedding table); a linear head on the pooled sequence; pooled unimodal heads."""
    name = typing.cast(str, cfg.backbone)
    hf = tiny_backbone(name, info) if name in TINY_BACKBONES else load_backbone_dir(name)
    where = name if name in TINY_BACKBONES else f"checkpoint {name}"
    vlm = _vision_model(hf)
    lm = _language_model(hf)
    embedding = hf.get_input_embeddings()  # type: ignore[operator]
    vocab = int(embedding.num_embeddings)
    if int(info.extra.get("vocab_size", 0)) > vocab:
        raise ConfigError(f"model.backbone: {where} has a vocabulary of {vocab} tokens; dataset {info.name!r} uses "
                          f"{info.extra['vocab_size']}")
    encoders = nn.ModuleDict()
    for m in sorted(info.modalities):
        shape = info.modalities[m]
        if len(shape) == 3:
            if vlm is None:
                raise ConfigError(f"model.backbone: {where} is a text model; modality {m!r} is an image "
                                  f"{tuple(shape)} (use a vision-language backbone, e.g. tiny-vlm)")
            encoders[m] = ImagePatchTokens(vlm, shape, where)
        else:
            encoders[m] = TokenEmbedding(embedding, shape, m)
    width = int(embedding.embedding_dim)
    fusion = TokenFusion(HFSequence(lm), list(encoders), width, cfg.token_mask, cfg.pooling,
                         chunk=cfg.variant_chunk)
    head = nn.Linear(width, info.num_classes)
    unimodal = nn.ModuleDict({m: PooledTokenHead(width, cfg.fusion_hidden, info.num_classes, cfg.dropout)
                              for m in encoders}) if cfg.unimodal_heads else None
    if cfg.lora_r < 0:
        raise ConfigError(f"model.lora_r: expected a non-negative integer, got {cfg.lora_r}")
    if cfg.lora_r > 0:
        add_lora(hf, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets)
    return TokenModel(encoders, fusion, head, unimodal)
