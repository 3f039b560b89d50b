"""Per-modality encoders. Each maps ``(B, *shape)`` inputs to ``(B, out_dim)`` features."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import mlp
from ..registry import Registry

#: encoder name -> builder ``(input_shape, hidden, dropout) -> module with an ``out_dim`` attribute``
ENCODERS: Registry[Callable[..., nn.Module]] = Registry("encoder", package="interplay.models",
                                                       group="interplay.encoders")


class MLPEncoder(nn.Module):
    """Flattens each sample and applies an MLP: ``(B, *shape) -> (B, hidden[-1])``."""

    def __init__(self, input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        if not hidden:
            raise ConfigError("model.encoder_hidden: the MLP encoder needs at least one layer width")
        self.in_dim = math.prod(input_shape)
        self.out_dim = int(hidden[-1])
        self.net = mlp([self.in_dim, *hidden], dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


@ENCODERS.register("mlp")
def build_mlp_encoder(input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0) -> nn.Module:
    return MLPEncoder(input_shape, hidden, dropout)
