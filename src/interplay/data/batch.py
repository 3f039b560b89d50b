"""The unit every model and objective consumes: a :class:`Batch` of aligned modalities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass
class Batch:
    """A mini-batch of ``B`` samples.

    Attributes:
        inputs: modality name -> tensor of shape ``(B, ...)`` (keys sorted, two or more).
        target: ``(B,)`` class indices (long) or ``(B,)`` regression targets (float).
        index: ``(B,)`` position of each sample in its dataset split (for per-sample outputs).
        meta: per-batch extras. Tensors with leading dimension ``B`` are per-sample values, e.g.
            ``meta["interaction"]``: ``(B,)`` ground-truth source codes on synthetic data.
    """

    inputs: dict[str, Tensor]
    target: Tensor
    index: Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return sorted(self.inputs)

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor moved to ``device``."""

        def move(v: Any) -> Any:
            return v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v

        return Batch(
            inputs={k: move(v) for k, v in self.inputs.items()},
            target=move(self.target),
            index=move(self.index),
            meta={k: move(v) for k, v in self.meta.items()},
        )
