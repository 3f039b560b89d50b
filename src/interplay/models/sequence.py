"""Sequence encoders for ``(B, T, d)`` inputs (e.g. MultiBench's per-word audio/visual/text features)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .encoders import ENCODERS


def _check(input_shape: Sequence[int], name: str) -> tuple[int, int]:
    if len(input_shape) != 2:
        raise ConfigError(f"model.encoder: {name} expects (T, d) sequences per sample, got shape {tuple(input_shape)}")
    return int(input_shape[0]), int(input_shape[1])


class GRUEncoder(nn.Module):
    """A (bidirectional) GRU over time; output the mean of the last layer's states over valid steps.

    ``(B, T, d) -> (B, hidden[-1])``; ``len(hidden)`` layers of width ``hidden[-1] // 2`` per direction.
    Rows that are entirely zero are treated as padding (MultiBench pads sequences with zeros).
    """

    def __init__(self, input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        _, d = _check(input_shape, "gru")
        width = int(hidden[-1])
        if width % 2:
            raise ConfigError(f"model.encoder_hidden: the GRU encoder needs an even width, got {width}")
        self.out_dim = width
        self.gru = nn.GRU(d, width // 2, num_layers=max(1, len(hidden)), batch_first=True, bidirectional=True,
                          dropout=dropout if len(hidden) > 1 else 0.0)

    def forward(self, x: Tensor) -> Tensor:
        valid = (x.abs().sum(-1) > 0).float()  # (B, T)
        states, _ = self.gru(x)
        weights = valid / valid.sum(1, keepdim=True).clamp_min(1.0)
        return (states * weights.unsqueeze(-1)).sum(1)


class TransformerEncoder(nn.Module):
    """A small Transformer encoder with a learned [CLS] token and learned positions.

    ``(B, T, d) -> (B, hidden[-1])``: project to width ``hidden[-1]``, ``len(hidden)`` layers, 4 heads (or fewer
    if the width is not divisible), read the [CLS] state. All-zero rows are masked as padding.
    """

    def __init__(self, input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        t, d = _check(input_shape, "transformer")
        width = int(hidden[-1])
        heads = next(h for h in (4, 2, 1) if width % h == 0)
        self.out_dim = width
        self.proj = nn.Linear(d, width)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.randn(1, t + 1, width) / math.sqrt(width))
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=max(1, len(hidden)), enable_nested_tensor=False)

    def forward(self, x: Tensor) -> Tensor:
        pad = x.abs().sum(-1) == 0  # (B, T)
        h = torch.cat([self.cls.expand(x.shape[0], -1, -1), self.proj(x)], 1) + self.pos[:, : x.shape[1] + 1]
        mask = torch.cat([torch.zeros_like(pad[:, :1]), pad], 1)
        return self.encoder(h, src_key_padding_mask=mask)[:, 0]


@ENCODERS.register("gru")
def build_gru(input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> nn.Module:
    return GRUEncoder(input_shape, hidden, dropout)


@ENCODERS.register("transformer")
def build_transformer(input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> nn.Module:
    return TransformerEncoder(input_shape, hidden, dropout)
