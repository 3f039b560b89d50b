"""Token-level multimodal models: the modalities enter one transformer as token spans of a single sequence.

A :class:`TokenModel` is a :class:`~interplay.models.MultimodalModel` whose parts are token-level:

* **encoders** map each modality's input to token embeddings ``(B, L_m, D)``: an image through a vision tower
  and projector to patch tokens, token ids through the embedding table (``D``: the backbone's hidden size).
  *Convention:* a token row that is exactly zero is padding (the text embedder zeroes padded positions; padded
  positions are never attended, so this changes nothing for the backbone);
* the **fusion** (:class:`TokenFusion`) concatenates the spans in sorted modality order into one sequence
  ``(B, T = sum_m L_m, D)`` of input embeddings, moves padding to the end of each row (valid tokens keep their
  order), runs the sequence backbone (a transformer on ``inputs_embeds``) and pools the attended positions
  (``mean`` or ``last``) to ``(B, D)``;
* the **head** is ``Linear(D, C)``; the **unimodal heads** average a modality's valid tokens and apply an MLP.

The per-modality boolean token masks over the sequence (``(B, T)``, disjoint) come with every assembled
sequence (:meth:`TokenFusion.assemble`). *Withholding* modality ``m`` (``fuse(feats, present)`` without ``m``,
or an :class:`Absent` replacement in ``fuse_variants``, which SynIB sends with ``fill=model``) uses the
model's ``withhold`` strategy, on ``m``'s valid token positions only:

* ``noise`` (default; the SynIB authors' choice): ``N(mu_m, diag sigma_m^2)`` per embedding dimension, with
  ``mu_m, sigma_m^2`` exponential moving averages (momentum ``ema``) of ``m``'s clean valid tokens in training
  batches (buffers, saved with the model);
* ``embedding``: a learned vector ``e_m`` ``(D,)`` at every token of ``m`` (the model can learn to recognise
  it, as with a zero fill);
* ``drop``: ``m``'s tokens removed from attention and pooling (the row is shorter; padding at its end).

``Absent(rows)`` withholds ``m`` on the rows ``rows`` ``(B,)`` only. Every other replacement SynIB knows works
unchanged on token features: :class:`~interplay.models.Shuffled` (another row's tokens *with that row's padding*),
or a new ``(B, L_m, D)`` tensor (the row's own padding kept).
``fuse_variants`` stacks the clean sequence and the ``V`` variant sequences along the batch and runs the
backbone once on ``(1 + V) B`` rows, or on ``chunk`` variants at a time (less memory, same values).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import ConfigError, DataError
from ..layers import RunningStats, mlp
from .fusion import Replacement, Shuffled
from .model import MultimodalModel

WITHHOLD = ("noise", "embedding", "drop")
POOLINGS = ("mean", "last")

#: a sequence backbone: ``(embeds (N, T, D), attention (N, T) long) -> hidden states (N, T, D)``
SequenceBackbone = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True, eq=False)
class Absent:
    """A replacement of modality ``m`` in a variant pass: withheld by the model's own strategy (a
    :class:`TokenModel`'s ``withhold``). Feature-level fusions do not accept it.

    ``rows``: ``(B,)`` bool, withhold ``m`` only on these rows (the others keep their clean tokens); None: every
    row. (SynIB's ``random_modality``: one variant in which each row withholds a modality of its own.)
    """

    rows: Tensor | None = None


def valid_tokens(z: Tensor) -> Tensor:
    """``(B, L)`` bool: the token rows of ``z`` ``(B, L, D)`` that are not padding (not all zero)."""
    return z.ne(0).any(-1)


class TokenEmbedding(nn.Module):
    """Token ids -> ``(B, L, D)`` embeddings, zero at padded positions.

    Inputs per sample: ``(L,)`` token ids (every position valid) or ``(2, L)`` [token ids; attention mask] (the
    ``hf-text`` convention); ids are stored as floats and rounded. ``embedding`` may be shared by several
    modalities (two text fields of one model).
    """

    def __init__(self, embedding: nn.Embedding, input_shape: Sequence[int], modality: str) -> None:
        super().__init__()
        shape = tuple(int(s) for s in input_shape)
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[0] != 2):
            raise ConfigError(f"model.backbone: modality {modality!r} has shape {shape}; token ids must be (L,) or "
                              f"(2, L) [ids; attention mask] per sample")
        self.embedding = embedding
        self.num_tokens = shape[-1]
        self.out_dim = int(embedding.embedding_dim)

    def forward(self, x: Tensor) -> Tensor:
        ids = (x if x.dim() == 2 else x[:, 0]).round().long()
        z = self.embedding(ids)
        if x.dim() == 3:
            z = z * x[:, 1, :, None].round().to(z.dtype)
        return z


class TokenFusion(nn.Module):
    """Sequence assembly + backbone + pooling: ``forward(feats, present) -> (B, D)``; see the module docstring.

    Args:
        backbone: ``(embeds (N, T, D), attention (N, T)) -> (N, T, D)``, an ``nn.Module``.
        modalities: the modality names (spans in sorted order).
        width: ``D``.
        withhold: ``noise`` | ``embedding`` | ``drop``.
        pooling: ``mean`` over attended positions, or the ``last`` attended position.
        ema: momentum of the ``noise`` statistics.
        chunk: variants (each ``B`` rows) per backbone call in ``fuse_variants``; None: all in one call.
    """

    def __init__(self, backbone: nn.Module, modalities: Sequence[str], width: int, withhold: str = "noise",
                 pooling: str = "mean", ema: float = 0.99, chunk: int | None = None) -> None:
        super().__init__()
        if withhold not in WITHHOLD:
            raise ConfigError(f"model.token_mask: expected one of {', '.join(map(repr, WITHHOLD))}, got {withhold!r}")
        if pooling not in POOLINGS:
            raise ConfigError(f"model.pooling: expected one of {', '.join(map(repr, POOLINGS))}, got {pooling!r}")
        if chunk is not None and chunk < 1:
            raise ConfigError(f"model.variant_chunk: expected null or a positive integer, got {chunk}")
        self.backbone = backbone
        self.modalities = sorted(modalities)
        self.out_dim = int(width)
        self.withhold, self.pooling, self.chunk = withhold, pooling, chunk
        self.stats = nn.ModuleDict({m: RunningStats(width, ema) for m in self.modalities}) \
            if withhold == "noise" else None
        self.mask_embedding = nn.ParameterDict({m: nn.Parameter(torch.randn(width) * 0.02) for m in self.modalities}) \
            if withhold == "embedding" else None

    # ------------------------------------------------------------------ sequences
    def _observe(self, feats: Mapping[str, Tensor], valid: Mapping[str, Tensor]) -> None:
        if self.stats is not None and self.training:
            for m in self.modalities:
                typing.cast(RunningStats, self.stats[m]).update(feats[m].flatten(0, 1), valid[m].flatten())

    def _withheld(self, m: str, z: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """Modality ``m``'s span and attention ``(B, L, D), (B, L)`` under the ``withhold`` strategy."""
        keep = valid[..., None].to(z.dtype)
        if self.withhold == "noise":
            assert self.stats is not None
            return typing.cast(RunningStats, self.stats[m]).sample(z) * keep, valid
        if self.withhold == "embedding":
            assert self.mask_embedding is not None
            return self.mask_embedding[m].to(z.dtype).expand_as(z) * keep, valid
        return torch.zeros_like(z), torch.zeros_like(valid)

    def withheld_values(self, m: str, z: Tensor) -> Tensor:
        """Replacement values ``(B, L, D)`` for modality ``m``'s tokens ``z`` under ``noise`` or ``embedding``
        withholding (for per-token masks; ``drop`` has none)."""
        if self.withhold == "drop":
            raise ConfigError("model.token_mask: 'drop' removes tokens from attention and has no replacement values")
        return self._withheld(m, z, torch.ones(z.shape[:2], dtype=torch.bool, device=z.device))[0]

    def _span(self, m: str, z: Tensor, valid: Tensor, r: Replacement | Absent | None) -> tuple[Tensor, Tensor]:
        if r is None:
            return z, valid
        if isinstance(r, Shuffled):
            return z[r.index], valid[r.index]
        if isinstance(r, Absent):
            out, att = self._withheld(m, z, valid)
            if r.rows is None:
                return out, att
            rows = r.rows.to(torch.bool)
            return torch.where(rows[:, None, None], out, z), torch.where(rows[:, None], att, valid)
        if r.shape != z.shape:
            raise DataError(f"replacement of modality {m!r} has shape {tuple(r.shape)}, expected {tuple(z.shape)}")
        return r * valid[..., None].to(r.dtype), valid

    def assemble(self, feats: Mapping[str, Tensor], variant: Mapping[str, Replacement | Absent] | None = None,
                 valid: Mapping[str, Tensor] | None = None) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """One variant's sequences: ``embeds`` ``(B, T, D)``, ``attention`` ``(B, T)`` bool and the modality token
        masks ``{m: (B, T) bool}`` (the positions holding ``m``'s tokens; dropped tokens hold none). Valid tokens
        come first in each row, in span order; padding (and dropped tokens) at the end."""
        variant = variant or {}
        if valid is None:
            valid = {m: valid_tokens(feats[m]) for m in self.modalities}
        spans, atts, owner = [], [], []
        for i, m in enumerate(self.modalities):
            z, a = self._span(m, feats[m], valid[m], variant.get(m))
            spans.append(z)
            atts.append(a)
            owner.append(torch.full(a.shape, i, dtype=torch.long, device=a.device))
        embeds, att, who = torch.cat(spans, 1), torch.cat(atts, 1), torch.cat(owner, 1)
        order = torch.argsort((~att).to(torch.int8), dim=1, stable=True)  # valid first, order kept
        embeds = embeds.gather(1, order[..., None].expand_as(embeds))
        att, who = att.gather(1, order), who.gather(1, order)
        return embeds, att, {m: att & (who == i) for i, m in enumerate(self.modalities)}

    def _pool(self, hidden: Tensor, att: Tensor) -> Tensor:
        if self.pooling == "last":
            last = (att.sum(1) - 1).clamp_min(0)
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        w = att.to(hidden.dtype)[..., None]
        return (hidden * w).sum(1) / w.sum(1).clamp_min(1.0)

    def encode_sequence(self, embeds: Tensor, att: Tensor) -> Tensor:
        """``(N, D)`` pooled backbone output of assembled sequences."""
        return self._pool(self.backbone(embeds, att.long()), att)

    # ------------------------------------------------------------------ the fusion API
    def forward(self, feats: Mapping[str, Tensor], present: Collection[str] | None = None) -> Tensor:
        valid = {m: valid_tokens(feats[m]) for m in self.modalities}
        self._observe(feats, valid)
        variant = {} if present is None else {m: Absent() for m in self.modalities if m not in present}
        embeds, att, _ = self.assemble(feats, variant, valid)
        return self.encode_sequence(embeds, att)

    def fuse_variants(self, feats: Mapping[str, Tensor],
                      variants: Sequence[Mapping[str, Replacement | Absent]]) -> Tensor:
        """The clean pass and every variant pass, ``(B * (1 + V), D)``: the sequences stacked along the batch, one
        backbone call (or one per ``chunk`` variants)."""
        valid = {m: valid_tokens(feats[m]) for m in self.modalities}
        self._observe(feats, valid)
        seqs = [self.assemble(feats, v, valid) for v in ({}, *variants)]
        step = len(seqs) if self.chunk is None else self.chunk
        out = []
        for start in range(0, len(seqs), step):
            part = seqs[start:start + step]
            out.append(self.encode_sequence(torch.cat([s[0] for s in part]), torch.cat([s[1] for s in part])))
        return torch.cat(out)


class PooledTokenHead(nn.Module):
    """A unimodal head on token features: the mean of the valid (non-zero) tokens ``(B, L, D) -> (B, D)``, then an
    MLP ``[D, *hidden, C]``."""

    def __init__(self, width: int, hidden: Sequence[int], classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = mlp([width, *hidden, classes], dropout, last_activation=False)

    def forward(self, z: Tensor) -> Tensor:
        w = valid_tokens(z).to(z.dtype)[..., None]
        return self.net((z * w).sum(1) / w.sum(1).clamp_min(1.0))


class TokenModel(MultimodalModel):
    """A :class:`MultimodalModel` with token-level encoders and a :class:`TokenFusion` (module docstring).

    Shapes: ``encode(inputs) -> {m: (B, L_m, D)}``; ``fuse(feats, present=None) -> (B, D)``;
    ``fuse_variants(feats, variants) -> (B (1 + V), D)``; ``head: (B, D) -> (B, C)``.
    ``feature_dims()`` gives the number of values per row, ``L_m * D`` (what a feature-level fill replaces).

    Frozen weights (the base model under LoRA) are flagged and left out of :meth:`named_parameters` /
    ``parameters()``, so a training stage that (re)enables every listed parameter cannot unfreeze them; they stay
    in ``state_dict()``.
    """

    fusion: TokenFusion
    token_level = True

    def __init__(self, encoders: nn.ModuleDict, fusion: TokenFusion, head: nn.Module,
                 unimodal_heads: nn.ModuleDict | None = None) -> None:
        super().__init__(encoders, fusion, head, unimodal_heads)

    def feature_dims(self) -> dict[str, int]:
        return {m: int(typing.cast(int, e.num_tokens)) * int(typing.cast(int, e.out_dim))
                for m, e in self.encoders.items()}

    def token_counts(self) -> dict[str, int]:
        """``{m: L_m}``."""
        return {m: int(typing.cast(int, e.num_tokens)) for m, e in self.encoders.items()}

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, nn.Parameter]]:
        for name, p in super().named_parameters(prefix, recurse, remove_duplicate):
            if not getattr(p, "interplay_frozen", False):
                yield name, p

    def frozen_parameters(self) -> list[nn.Parameter]:
        """The flagged (frozen) weights."""
        return [p for _, p in nn.Module.named_parameters(self) if getattr(p, "interplay_frozen", False)]


def freeze(module: nn.Module, keep: Callable[[str], bool]) -> int:
    """Flag every parameter of ``module`` whose name ``keep`` rejects as frozen (``requires_grad=False``);
    returns how many were frozen."""
    n = 0
    for name, p in module.named_parameters():
        if not keep(name):
            p.requires_grad_(False)
            p.interplay_frozen = True  # type: ignore[attr-defined]
            n += 1
    return n
