"""Settings shared by every part of ``interplay analyze`` (dataset PID, model PID, per-sample types, report)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AnalysisSettings:
    """What ``interplay analyze`` measures and how.

    units: ``"bits"`` or ``"nats"`` for every information quantity written.
    split: which split the dataset-level PID uses (``"all"`` = train+val+test, as ``interplay pid`` does).
    clusters: k-means clusters per modality for the cluster estimator (``None``: the estimator's own rule).
    bootstrap: bootstrap resamples for the intervals (0 = no interval).
    confidence: level of the bootstrap interval.
    seed: seed for clustering, bootstrap and the per-sample reference classifiers.
    per_sample: per-sample type methods to run on a trained run's test set (``agreement``, ``lsmi``, ...).
    """

    units: str = "bits"
    split: str = "all"
    clusters: int | None = None
    bootstrap: int = 200
    confidence: float = 0.95
    seed: int = 0
    per_sample: tuple[str, ...] = ("agreement", "lsmi")
