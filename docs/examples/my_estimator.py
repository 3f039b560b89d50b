"""An interaction estimator defined outside the package: how much each modality alone says about the label,
measured by the largest absolute correlation between one of its features and the label.

Load it with ``--plugin docs/examples/my_estimator.py`` (or ``INTERPLAY_PLUGINS``, or an entry point in the group
``interplay.estimators``), then ``ESTIMATORS.get("my_label_correlation")(splits)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from interplay.pid.estimator import LabelledSplits, register_estimator


@dataclass(frozen=True)
class LabelCorrelationSettings:
    """``split``: which split to measure (train, val or test)."""

    split: str = "test"


@register_estimator("my_label_correlation", LabelCorrelationSettings, level="dataset")
def label_correlation(data: LabelledSplits, settings: LabelCorrelationSettings) -> dict[str, float]:
    """Per modality: max over its features of |corr(feature, label)| (0: no linear signal, 1: a perfect one)."""
    split = getattr(data, settings.split)
    y = split.target.float()
    y = (y - y.mean()) / y.std().clamp_min(1e-12)
    out = {}
    for m in split.modalities:
        x = split.inputs[m].flatten(1).float()
        x = (x - x.mean(0)) / x.std(0).clamp_min(1e-12)
        out[m] = float((x * y[:, None]).mean(0).abs().max().clamp(max=1.0)) if len(y) > 1 else 0.0
    return out


__all__ = ["LabelCorrelationSettings", "label_correlation"]
