"""Build a :class:`MultimodalModel` from a :class:`~interplay.config.ModelConfig` and dataset info."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from ..data import DataInfo
from .encoders import ENCODERS, mlp
from .fusion import FUSIONS
from .model import MultimodalModel


def build_model(cfg: ModelConfig, info: DataInfo) -> MultimodalModel:
    """Encoders (``cfg.encoder``) per modality of ``info``, ``cfg.fusion`` fusion, a linear head with
    ``info.num_classes`` outputs, and (if ``cfg.unimodal_heads``) per-modality heads with the fusion
    MLP's widths, so a unimodal model has the same capacity as the fused one."""
    build_encoder = ENCODERS.get(cfg.encoder)
    encoders = nn.ModuleDict({m: build_encoder(shape, cfg.encoder_hidden, cfg.dropout)
                              for m, shape in sorted(info.modalities.items())})
    dims = {m: int(e.out_dim) for m, e in encoders.items()}
    fusion = FUSIONS.get(cfg.fusion)(dims, cfg.fusion_hidden, cfg.dropout)
    head = nn.Linear(fusion.out_dim, info.num_classes)
    unimodal = None
    if cfg.unimodal_heads:
        unimodal = nn.ModuleDict({
            m: nn.Sequential(mlp([d, *cfg.fusion_hidden], cfg.dropout),
                             nn.Linear(cfg.fusion_hidden[-1] if cfg.fusion_hidden else d, info.num_classes))
            for m, d in dims.items()})
    return MultimodalModel(encoders, fusion, head, unimodal)
