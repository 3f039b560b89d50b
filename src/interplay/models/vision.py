"""Convolutional encoders for images ``(C, H, W)`` and frame stacks ``(T, C, H, W)``.

``model.encoder=auto`` picks ``cnn`` for rank-3 inputs (an RGB image, or a ``(1, F, T)`` log-spectrogram) and
``frames`` for rank-4 inputs (a clip's sampled video frames). ``model.encoder_hidden`` gives the *channel
widths* of the convolution blocks, so image runs want small widths, e.g. ``model.encoder_hidden=[32,64,128]``;
the default ``[256, 256]`` works but is slow on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from ..errors import ConfigError
from .encoders import ENCODERS


def _groups(channels: int) -> int:
    """Number of GroupNorm groups: the largest of 8, 4, 2, 1 that divides ``channels``."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class ConvEncoder(nn.Module):
    """A small convolutional network: ``(B, C, H, W) -> (B, hidden[-1])``.

    One block per entry of ``hidden``: ``Conv2d(3x3, stride 2) -> GroupNorm -> ReLU`` with ``hidden[i]`` output
    channels, then global average pooling (and dropout when ``dropout > 0``). Each block halves the spatial
    size; once a side reaches 1 the stride along it becomes 1, so small inputs (e.g. 8x8) work with any depth.
    GroupNorm rather than BatchNorm: a sample's features never depend on the other samples in its batch, so
    evaluation is deterministic and batch-size independent, and objectives that re-run fusion on masked or
    shuffled features see the same encoder outputs.
    """

    def __init__(self, input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(f"model.encoder: cnn expects (C, H, W) inputs per sample, got shape {tuple(input_shape)}")
        if not hidden:
            raise ConfigError("model.encoder_hidden: the cnn encoder needs at least one channel width")
        c, h, w = (int(s) for s in input_shape)
        layers: list[nn.Module] = []
        for width in hidden:
            width = int(width)
            stride = (2 if h > 1 else 1, 2 if w > 1 else 1)
            layers += [nn.Conv2d(c, width, 3, stride=stride, padding=1), nn.GroupNorm(_groups(width), width),
                       nn.ReLU(inplace=True)]
            c, h, w = width, math.ceil(h / stride[0]), math.ceil(w / stride[1])
        self.net = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.out_dim = int(hidden[-1])

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.pool(self.net(x)).flatten(1))


class FramesEncoder(nn.Module):
    """Per-frame :class:`ConvEncoder` (shared weights), mean over frames: ``(B, T, C, H, W) -> (B, hidden[-1])``."""

    def __init__(self, input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        if len(input_shape) != 4:
            raise ConfigError(f"model.encoder: frames expects (T, C, H, W) inputs per sample, got shape "
                              f"{tuple(input_shape)}")
        self.frame = ConvEncoder(input_shape[1:], hidden, dropout)
        self.out_dim = self.frame.out_dim

    def forward(self, x: Tensor) -> Tensor:
        b, t = x.shape[:2]
        return self.frame(x.flatten(0, 1)).view(b, t, -1).mean(1)


@ENCODERS.register("cnn")
def build_cnn(input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> nn.Module:
    return ConvEncoder(input_shape, hidden, dropout)


@ENCODERS.register("frames")
def build_frames(input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> nn.Module:
    return FramesEncoder(input_shape, hidden, dropout)
