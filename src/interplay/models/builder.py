"""Build a :class:`MultimodalModel` from a :class:`~interplay.config.ModelConfig` and dataset info."""

from __future__ import annotations

from typing import cast

from torch import nn

from ..config import ModelConfig
from ..data import DataInfo
from ..errors import ConfigError
from ..layers import mlp
from .encoders import ENCODERS
from .fusion import FUSIONS
from .model import MultimodalModel

#: encoder chosen by ``model.encoder=auto`` from the number of per-sample input dimensions
AUTO_ENCODERS = {1: "mlp", 2: "gru", 3: "cnn", 4: "frames"}


def encoder_name(cfg: ModelConfig, modality: str, shape: tuple[int, ...]) -> str:
    """The encoder for ``modality``: ``model.encoders[modality]``, else ``model.encoder``; ``auto`` picks by
    input rank (vectors: mlp, ``(T, d)`` sequences: gru, ``(C, H, W)`` images: cnn, ``(T, C, H, W)``
    frames: frames)."""
    name = cfg.encoders.get(modality, cfg.encoder)
    if name == "auto":
        name = AUTO_ENCODERS.get(len(shape), "mlp")
    return name


def dataset_encoder(cfg: ModelConfig, info: DataInfo, modality: str) -> str:
    """:func:`encoder_name`, except that with ``model.encoder=auto`` a dataset's own choice
    (``info.extra["encoders"][modality]``, e.g. a fine-tuned backbone for token ids) takes precedence."""
    wanted = info.extra.get("encoders", {}).get(modality)
    if wanted and modality not in cfg.encoders and cfg.encoder == "auto":
        return wanted
    return encoder_name(cfg, modality, info.modalities[modality])


def _out_dim(module: nn.Module) -> int:
    """The feature width an encoder or fusion module declares in its ``out_dim`` attribute."""
    return int(cast(int, module.out_dim))


def _build_encoder(cfg: ModelConfig, info: DataInfo, modality: str) -> nn.Module:
    """The encoder of ``modality``; when it is the one the dataset suggests, with the dataset's options for it
    (``info.extra["encoder_options"][modality]``, e.g. the directory of a backbone to fine-tune)."""
    name = dataset_encoder(cfg, info, modality)
    options = info.extra.get("encoder_options", {}).get(modality, {}) \
        if name == info.extra.get("encoders", {}).get(modality) else {}
    return ENCODERS.get(name)(info.modalities[modality], cfg.encoder_hidden, cfg.dropout, **options)


def build_model(cfg: ModelConfig, info: DataInfo) -> MultimodalModel:
    """Encoders per modality of ``info`` (:func:`encoder_name`), ``cfg.fusion`` fusion, a linear head with
    ``info.num_classes`` outputs, and (if ``cfg.unimodal_heads``) per-modality heads with the fusion
    MLP's widths, so a unimodal model has the same capacity as the fused one.

    With ``cfg.backbone`` set, a token-level model instead (:func:`interplay.models.hf.build_token_model`)."""
    if cfg.backbone:
        from .hf import build_token_model

        return build_token_model(cfg, info)
    unknown = sorted(set(cfg.encoders) - set(info.modalities))
    if unknown:
        raise ConfigError(f"model.encoders: unknown modality {unknown[0]!r}; expected one of "
                          f"{', '.join(sorted(info.modalities))}")
    encoders = nn.ModuleDict({m: _build_encoder(cfg, info, m) for m in sorted(info.modalities)})
    dims = {m: _out_dim(e) for m, e in encoders.items()}
    fusion = FUSIONS.get(cfg.fusion)(dims, cfg.fusion_hidden, cfg.dropout)
    head = nn.Linear(_out_dim(fusion), info.num_classes)
    unimodal = None
    if cfg.unimodal_heads:
        unimodal = nn.ModuleDict({
            m: mlp([d, *cfg.fusion_hidden, info.num_classes], cfg.dropout, last_activation=False)
            for m, d in dims.items()})
    return MultimodalModel(encoders, fusion, head, unimodal)
