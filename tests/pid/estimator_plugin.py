"""A tiny PID estimator registered from outside the package, as a user's plugin would register one.

``tests/pid/test_estimator_registry.py`` loads this file through ``$INTERPLAY_PLUGINS`` and runs it with
``interplay pid --estimator mean-gap``. Not a test module (pytest does not collect it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interplay.pid.estimator import LabelledSplits, pick_pair, register_estimator


@dataclass(frozen=True)
class MeanGapSettings:
    """Options of ``mean-gap``: the pair, a scale and the seed (set by ``--seed``)."""

    modalities: tuple[str, str] | None = None
    scale: float = 1.0
    seed: int = 0


@register_estimator("mean-gap", MeanGapSettings, level="dataset")
def mean_gap(data: LabelledSplits, settings: MeanGapSettings) -> dict[str, float]:
    """Scaled gap between the two modalities' mean feature values on the test split (a toy, not a PID)."""
    m1, m2 = pick_pair(data.test.modalities, settings.modalities, data.test.name)
    x1, x2 = data.test.inputs[m1].float(), data.test.inputs[m2].float()
    gap = settings.scale * float(torch.abs(x1.mean() - x2.mean()))
    return {"gap": gap, "n": len(data.test), "seed": settings.seed}
