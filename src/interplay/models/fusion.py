"""Fusion modules: combine per-modality features, some of which may be withheld or replaced."""

from __future__ import annotations

import functools
import operator
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import mlp
from ..registry import Registry

#: fusion name -> builder ``(feature_dims: dict[str, int], hidden, dropout) -> module with ``out_dim````
FUSIONS: Registry[Callable[..., nn.Module]] = Registry("fusion", package="interplay.models", group="interplay.fusions")


@dataclass(frozen=True)
class Shuffled:
    """A replacement of modality ``m``'s features by other rows' features: ``feats[m][index]``, ``index`` ``(B,)``.

    Saying *which rows* rather than passing the gathered tensor lets a fusion reuse work done for the clean pass
    (for a linear first layer, ``W z[index] = (W z)[index]``).
    """

    index: Tensor


#: what replaces a modality's ``(B, d_m)`` features in a variant pass: new features, or other rows' features
Replacement = Tensor | Shuffled


def replaced(feats: Mapping[str, Tensor], variant: Mapping[str, Replacement]) -> dict[str, Tensor]:
    """``feats`` with the modalities named in ``variant`` replaced (materialised)."""
    out = dict(feats)
    for m, r in variant.items():
        out[m] = feats[m][r.index] if isinstance(r, Shuffled) else r
    return out


def stack_variants(feats: Mapping[str, Tensor], variants: Sequence[Mapping[str, Replacement]]) -> dict[str, Tensor]:
    """``{m: (B * (1 + V), d_m)}``: the clean features, then each variant's, stacked along the batch."""
    passes = [feats, *(replaced(feats, v) for v in variants)]
    return {m: torch.cat([p[m] for p in passes]) for m in feats}


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

    def fuse_variants(self, feats: Mapping[str, Tensor], variants: Sequence[Mapping[str, Replacement]]) -> Tensor:
        """The clean pass and every variant pass, ``(B * (1 + V), out_dim)``, equal to ``forward`` on
        :func:`stack_variants` but cheaper: the first layer is linear in each modality's block,
        ``W [z_1; ...; z_M] = sum_m W_m z_m``, so each block's product ``W_m z_m`` is computed once for
        ``(B, d_m)`` rows and reused by every variant that keeps (or, :class:`Shuffled`, permutes) ``z_m``;
        only replacements given as new tensors cost a product of their own.
        """
        if not isinstance(self.net, nn.Sequential):
            return self(stack_variants(feats, variants))
        first = typing.cast(nn.Linear, self.net[0])
        blocks = dict(zip(self.modalities, first.weight.split(list(self.feature_dims.values()), dim=1)))
        bias = {m: first.bias if i == 0 else None for i, m in enumerate(self.modalities)}  # added once per row
        proj = {m: F.linear(feats[m], blocks[m], bias[m]) for m in self.modalities}

        def block(variant: Mapping[str, Replacement], m: str) -> Tensor:
            r = variant.get(m)
            if r is None:
                return proj[m]
            return proj[m][r.index] if isinstance(r, Shuffled) else F.linear(r, blocks[m], bias[m])

        pre = [functools.reduce(operator.add, (block(v, m) for m in self.modalities)) for v in ({}, *variants)]
        out = torch.cat(pre)
        for layer in list(self.net)[1:]:
            out = layer(out)
        return out


@FUSIONS.register("concat")
def build_concat_fusion(feature_dims: Mapping[str, int], hidden: Sequence[int], dropout: float = 0.0) -> nn.Module:
    return ConcatFusion(feature_dims, hidden, dropout)
