"""Fine-tuned Hugging Face backbones as encoders: ``hf-image`` and ``hf-text``.

The backbone directory travels with the data: a dataset built in fine-tuning mode (``hateful-memes`` with
``data.finetune=true``) records ``info.extra["encoders"][m] = "hf-image"`` and
``info.extra["encoder_options"][m] = {"path": DIR, "pooling": ...}``; :func:`~interplay.models.build_model`
passes those options to the encoder it builds for ``m``. Loading and pooling live in :mod:`interplay.backbones`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..backbones import load_backbone, run_image, run_text
from ..errors import ConfigError
from .encoders import ENCODERS


def _require_path(path: str | None, kind: str) -> str:
    if not path:
        raise ConfigError(f"model.encoder hf-{kind}: no {kind} backbone given; a dataset in fine-tuning mode names "
                          f"it, e.g. --set data.{kind}_backbone=DIR --set data.finetune=true")
    return path


class HFImageEncoder(nn.Module):
    """A trainable backbone on ``(B, 3, H, W)`` pixel values -> ``(B, D)`` pooled features (``D``: the backbone's)."""

    def __init__(self, input_shape: Sequence[int], path: str, pooling: str = "auto", dropout: float = 0.0) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(f"model.encoder: hf-image expects (3, H, W) pixel values, got shape {tuple(input_shape)}")
        self.backbone = load_backbone(path, "data.image_backbone").train()
        self.pooling = pooling
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        with torch.no_grad():
            self.out_dim = int(self._features(torch.zeros(1, *input_shape)).shape[1])

    def _features(self, x: Tensor) -> Tensor:
        return run_image(self.backbone, x, self.pooling)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self._features(x))


class HFTextEncoder(nn.Module):
    """A trainable text backbone on ``(B, 2, L)`` inputs (row 0: token ids, row 1: attention mask, stored as
    floats) -> ``(B, D)`` pooled features."""

    def __init__(self, input_shape: Sequence[int], path: str, pooling: str = "auto", dropout: float = 0.0) -> None:
        super().__init__()
        if len(input_shape) != 2 or int(input_shape[0]) != 2:
            raise ConfigError(f"model.encoder: hf-text expects (2, L) [token ids; attention mask] inputs, got shape "
                              f"{tuple(input_shape)}")
        self.backbone = load_backbone(path, "data.text_backbone").train()
        self.pooling = pooling
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        length = int(input_shape[1])
        with torch.no_grad():
            dummy = torch.stack([torch.zeros(length), torch.ones(length)])[None]
            self.out_dim = int(self._features(dummy).shape[1])

    def _features(self, x: Tensor) -> Tensor:
        ids, mask = x[:, 0].round().long(), x[:, 1].round().long()
        return run_text(self.backbone, ids, mask, self.pooling)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self._features(x))


@ENCODERS.register("hf-image")
def build_hf_image(input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0,
                   path: str | None = None, pooling: str = "auto") -> nn.Module:
    return HFImageEncoder(input_shape, _require_path(path, "image"), pooling, dropout)


@ENCODERS.register("hf-text")
def build_hf_text(input_shape: Sequence[int], hidden: Sequence[int], dropout: float = 0.0,
                  path: str | None = None, pooling: str = "auto") -> nn.Module:
    return HFTextEncoder(input_shape, _require_path(path, "text"), pooling, dropout)
