"""The one model API every objective uses."""

from __future__ import annotations

import typing
from collections.abc import Collection, Mapping, Sequence
from typing import ClassVar

from torch import Tensor, nn

from ..errors import DataError
from .fusion import Replacement, stack_variants


class MultimodalModel(nn.Module):
    """Encoders per modality, a fusion module, a classifier head, optional unimodal heads.

    Shapes (``B`` samples, ``C`` outputs)::

        encode(inputs: {m: (B, *shape_m)}) -> {m: (B, d_m)}     # one pass of every encoder
        fuse(feats, present=None)          -> (B, d_fused)      # only ``present`` modalities are seen
        head(fused)                        -> (B, C)
        logits(feats, present=None)        = head(fuse(feats, present))
        fuse_variants(feats, variants)     -> (B * (1 + V), d_fused)  # clean pass, then V variants batched
        unimodal_logits(feats)             -> {m: (B, C)}       # needs unimodal heads
        forward(inputs)                    = logits(encode(inputs))

    Masking, dropping or replacing a modality happens on ``feats``, so encoders run once per step.
    """

    #: ``True`` for models whose features are token sequences ``(B, L_m, D)`` (:class:`~interplay.models.TokenModel`)
    #: rather than one vector ``(B, d_m)`` per sample; objectives that need vectors refuse them (one line)
    token_level: ClassVar[bool] = False

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

    def fuse_variants(self, feats: Mapping[str, Tensor], variants: Sequence[Mapping[str, Replacement]]) -> Tensor:
        """Fuse the clean features and ``V`` variants of them in one call: rows ``[v * B, (v + 1) * B)`` are
        variant ``v`` (0: clean; ``v >= 1``: ``variants[v - 1]``, a ``{modality: replacement}`` dict, the other
        modalities kept). Equal to ``fuse`` on the stacked variants (:func:`~interplay.models.fusion.stack_variants`);
        a fusion module with its own ``fuse_variants`` may compute it faster by sharing work between variants.
        """
        shared = getattr(self.fusion, "fuse_variants", None)
        if shared is not None:
            return shared(feats, variants)
        return self.fusion(stack_variants(feats, variants))

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
        return {m: int(typing.cast(int, self.encoders[m].out_dim)) for m in self.modalities}
