"""Sequence encoders for ``(B, T, d)`` inputs (e.g. MultiBench's per-word audio/visual/text features).

Padding. A sample's *span* is the run of steps from its first to its last step with a non-zero value; the
all-zero steps before it (front padding, MultiBench's layout) and after it (back padding) are padding, all-zero
steps inside it are real steps (e.g. a silent audio frame). Both encoders first move every span to the start of
the time axis (:func:`compact`) and cut the axis to the batch's longest span, then

* the GRU runs over packed sequences (``pack_padded_sequence`` with the span lengths, as MultiBench's encoders do),
  so the backward direction starts at the last real step and no state ever sees a padding step;
* the Transformer masks the steps beyond each span, and positions count from the span's first step.

So a sample's output depends on its span only, never on how much padding surrounds it (front or back): the
tensors the layers see are identical, and the outputs equal bit for bit (``tests/models/test_sequence_padding.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import ConfigError
from .encoders import ENCODERS


def _check(input_shape: Sequence[int], name: str) -> tuple[int, int]:
    if len(input_shape) != 2:
        raise ConfigError(f"model.encoder: {name} expects (T, d) sequences per sample, got shape {tuple(input_shape)}")
    return int(input_shape[0]), int(input_shape[1])


def spans(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(start, length)``, ``(B,)`` int64 each, of every sample's span in ``x`` ``(B, T, d)``.

    ``start`` = first step with a non-zero value, ``length`` = last such step - start + 1; an all-zero sample has
    ``start = 0, length = 0``.
    """
    valid = x.ne(0).any(-1)  # (B, T)
    t = x.shape[1]
    steps = torch.arange(t, device=x.device)
    any_valid = valid.any(1)
    first = torch.where(valid, steps, t).amin(1)
    last = torch.where(valid, steps, -1).amax(1)
    start = torch.where(any_valid, first, torch.zeros_like(first))
    length = torch.where(any_valid, last - first + 1, torch.zeros_like(first))
    return start, length


def compact(x: Tensor) -> tuple[Tensor, Tensor]:
    """Move each sample's span to the start of the time axis and cut the axis to the longest span.

    ``(B, T, d) -> ((B, L, d), lengths (B,))`` with ``L = max(1, max length)``; steps ``>= lengths[b]`` of sample
    ``b`` are zero. Exact (a gather), so padding never changes the values.
    """
    start, length = spans(x)
    width = max(1, int(length.max())) if x.shape[0] else 1
    steps = torch.arange(width, device=x.device)
    index = (start.unsqueeze(1) + steps).clamp_max(x.shape[1] - 1)  # (B, L)
    out = torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))
    inside = steps.unsqueeze(0) < length.unsqueeze(1)
    return out * inside.unsqueeze(-1).to(out.dtype), length


class GRUEncoder(nn.Module):
    """A (bidirectional) GRU over each sample's span; output the mean of the last layer's states over the span.

    ``(B, T, d) -> (B, hidden[-1])``; ``len(hidden)`` layers of width ``hidden[-1] // 2`` per direction. The
    spans are packed (see the module docstring), so padding, front or back, never enters the recurrence; an
    all-zero sample encodes to zeros.
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
        packed_x, lengths = compact(x)
        packed = pack_padded_sequence(packed_x, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True,
                                        total_length=packed_x.shape[1])  # (B, L, width), zero beyond each length
        valid = (torch.arange(states.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)).to(states.dtype)
        weights = valid / lengths.clamp_min(1).unsqueeze(1).to(states.dtype)
        return (states * weights.unsqueeze(-1)).sum(1)


class TransformerEncoder(nn.Module):
    """A small Transformer encoder with a learned [CLS] token and learned positions.

    ``(B, T, d) -> (B, hidden[-1])``: project to width ``hidden[-1]``, ``len(hidden)`` layers, 4 heads (or fewer
    if the width is not divisible), read the [CLS] state. Steps outside each sample's span are masked and
    positions start at the span's first step (see the module docstring).
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
        x, lengths = compact(x)
        pad = torch.arange(x.shape[1], device=x.device).unsqueeze(0) >= lengths.unsqueeze(1)  # (B, L)
        h = torch.cat([self.cls.expand(x.shape[0], -1, -1), self.proj(x)], 1) + self.pos[:, : x.shape[1] + 1]
        mask = torch.cat([torch.zeros_like(pad[:, :1]), pad], 1)
        return self.encoder(h, src_key_padding_mask=mask)[:, 0]


@ENCODERS.register("gru")
def build_gru(input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> nn.Module:
    return GRUEncoder(input_shape, hidden, dropout)


@ENCODERS.register("transformer")
def build_transformer(input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> nn.Module:
    return TransformerEncoder(input_shape, hidden, dropout)
