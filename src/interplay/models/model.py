"""The one model API every objective uses."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from torch import Tensor, nn

from ..errors import DataError


class MultimodalModel(nn.Module):
    """Encoders per modality, a fusion module, a classifier head, optional unimodal heads.

    Shapes (``B`` samples, ``C`` outputs)::

        encode(inputs: {m: (B, *shape_m)}) -> {m: (B, d_m)}     # one pass of every encoder
        fuse(feats, present=None)          -> (B, d_fused)      # only ``present`` modalities are seen
        head(fused)                        -> (B, C)
        logits(feats, present=None)        = head(fuse(feats, present))
        unimodal_logits(feats)             -> {m: (B, C)}       # needs unimodal heads
        forward(inputs)                    = logits(encode(inputs))

    Masking, dropping or replacing a modality happens on ``feats``, so encoders run once per step.
    """

    def __init__(self, encoders: nn.ModuleDict, fusion: nn.Module, head: nn.Module,
                 unimodal_heads: nn.ModuleDict | None = None) -> None:
        super().__init__()
        if len(encoders) < 2:
            raise ValueError("a MultimodalModel needs at least two modality encoders")
        self.encoders = encoders
        self.fusion = fusion
        self.head = head
        self.unimodal_heads = unimodal_heads

    @property
    def modalities(self) -> list[str]:
        return sorted(self.encoders.keys())

    def encode(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise DataError(f"batch is missing modality {missing[0]!r}; the model expects {self.modalities}")
        return {m: self.encoders[m](inputs[m]) for m in self.modalities}

    def fuse(self, feats: Mapping[str, Tensor], present: Collection[str] | None = None) -> Tensor:
        return self.fusion(feats, present)

    def logits(self, feats: Mapping[str, Tensor], present: Collection[str] | None = None) -> Tensor:
        return self.head(self.fuse(feats, present))

    def unimodal_logits(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        if self.unimodal_heads is None:
            raise RuntimeError("this model has no unimodal heads (set model.unimodal_heads=true)")
        return {m: self.unimodal_heads[m](feats[m]) for m in self.modalities}

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        return self.logits(self.encode(inputs))

    def encoder_parameters(self, modality: str) -> list[nn.Parameter]:
        return list(self.encoders[modality].parameters())

    def feature_dims(self) -> dict[str, int]:
        return {m: int(self.encoders[m].out_dim) for m in self.modalities}
