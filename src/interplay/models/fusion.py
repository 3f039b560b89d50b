"""Fusion modules: combine per-modality features, some of which may be withheld."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..registry import Registry
from .encoders import mlp

#: fusion name -> builder ``(feature_dims: dict[str, int], hidden, dropout) -> module with ``out_dim````
FUSIONS: Registry[Callable[..., nn.Module]] = Registry("fusion")


class ConcatFusion(nn.Module):
    """Concatenate modality features in sorted-name order and apply an MLP.

    ``forward(feats, present)``: ``feats[m]`` is ``(B, d_m)``; modalities not in ``present`` are replaced
    by zeros (the fusion MLP sees a fixed-width input whatever is withheld). Output ``(B, out_dim)``;
    with ``hidden=[]`` the fusion is the identity on the concatenation (a linear classifier on top of it
    is then a linear late-fusion head, as OGM-GE assumes).
    """

    def __init__(self, feature_dims: Mapping[str, int], hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        self.modalities = sorted(feature_dims)
        self.feature_dims = {m: int(feature_dims[m]) for m in self.modalities}
        width = sum(self.feature_dims.values())
        self.net = mlp([width, *hidden], dropout) if hidden else nn.Identity()
        self.out_dim = int(hidden[-1]) if hidden else width

    def forward(self, feats: Mapping[str, Tensor], present: Collection[str] | None = None) -> Tensor:
        parts = []
        for m in self.modalities:
            z = feats[m]
            if present is not None and m not in present:
                z = torch.zeros_like(z)
            parts.append(z)
        return self.net(torch.cat(parts, dim=-1))


@FUSIONS.register("concat")
def build_concat_fusion(feature_dims: Mapping[str, int], hidden: Sequence[int], dropout: float = 0.0) -> nn.Module:
    return ConcatFusion(feature_dims, hidden, dropout)
