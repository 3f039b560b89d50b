"""Settings shared by every part of ``interplay analyze`` (dataset PID, model PID, per-sample types, report)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

#: the units ``interplay analyze`` can report (the same as ``interplay pid``)
UNITS: tuple[str, ...] = ("bits", "nats")
#: the splits the dataset-level PID can pool
SPLITS: tuple[str, ...] = ("all", "train", "val", "test")
#: how the dataset-level PID discretises each modality (:attr:`interplay.pid.cluster.ClusterSettings.clusterer`)
CLUSTERERS: tuple[str, ...] = ("gmm", "kmeans")
#: the bias corrections of the dataset-level PID (:attr:`interplay.pid.cluster.ClusterSettings.correction`)
CORRECTIONS: tuple[str, ...] = ("bootstrap", "shuffle")


@dataclass
class AnalysisSettings:
    """What ``interplay analyze`` measures and how.

    units: ``"bits"`` or ``"nats"`` for every information quantity written.
    split: which split the dataset-level PID uses (``"all"`` = train+val+test, as ``interplay pid`` does).
    clusters: clusters per modality for the cluster estimator (``None``: the estimator's rule,
        ``floor(sqrt(N / (10 |Y|)))`` clipped to ``[2, 20]``).
    clusterer: how the cluster estimator discretises each modality: ``"gmm"`` (default: a full-covariance Gaussian
        mixture, which recovers pid-xor's known PID within its interval) or ``"kmeans"`` (the PID repository's
        choice, which loses 0.05-0.1 bits there; docs/analysis.md, "Which discretiser").
    correction: the bias subtracted from the plug-in PID: ``"bootstrap"`` (default: Efron's bootstrap bias
        estimate, which follows the table's own bias) or ``"shuffle"`` (the label-shuffle null mean, ``interplay
        pid``'s default, which over-corrects a nearly deterministic table by up to 0.015 bits of synergy on pid-xor;
        docs/analysis.md). With ``bootstrap = 0`` there are no draws to estimate it from and the shuffle mean is
        used (``analysis.json`` records the correction applied).
    bootstrap: bootstrap resamples for the intervals (0 = no interval).
    confidence: level of the bootstrap interval.
    seed: seed for clustering, bootstrap and the per-sample reference classifiers.
    per_sample: per-sample type methods to run on a trained run's test set (:data:`interplay.analysis.types.METHODS`:
        ``agreement``, ``confidence``, ``lsmi``, ``cluster``); ``confidence`` measured best (docs/analysis.md).
    permutations: label-shuffle draws of the bias correction (0 = no correction: plug-in values).
    estimator: further fields of :class:`interplay.pid.cluster.ClusterSettings` (e.g. ``{"row_normalize": True,
        "pca_dim": 2}``; ``--set estimator.KEY=VALUE`` on the command line), validated when the analysis starts.
    quiet: no progress messages on stderr.
    reference_epochs: epochs of the unimodal reference classifiers fitted when a run has neither unimodal
        reference runs nor unimodal heads.
    cluster_pca_dim: PCA dimension before k-means for the ``cluster`` per-sample method (``None``: none).
    model_permutations: label-shuffle draws of the bias correction of the model PID.
    """

    units: str = "bits"
    split: str = "all"
    clusters: int | None = None
    clusterer: str = "gmm"
    correction: str = "bootstrap"
    bootstrap: int = 200
    confidence: float = 0.95
    seed: int = 0
    per_sample: tuple[str, ...] = ("agreement", "confidence", "lsmi")
    permutations: int = 100
    estimator: dict[str, Any] = field(default_factory=dict)
    quiet: bool = False
    reference_epochs: int = 100
    cluster_pca_dim: int | None = None
    model_permutations: int = 100

    def check(self) -> None:
        """Raise :class:`ConfigError` (one line naming the field) for a value outside its range."""
        if self.units not in UNITS:
            raise ConfigError(f"units: expected bits or nats, got {self.units!r}")
        if self.split not in SPLITS:
            raise ConfigError(f"split: expected one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.clusters is not None and (isinstance(self.clusters, bool) or self.clusters < 2):
            raise ConfigError(f"clusters: expected an integer >= 2, got {self.clusters}")
        if self.clusterer not in CLUSTERERS:
            raise ConfigError(f"clusterer: expected gmm or kmeans, got {self.clusterer!r}")
        if self.correction not in CORRECTIONS:
            raise ConfigError(f"correction: expected bootstrap or shuffle, got {self.correction!r}")
        for name in ("bootstrap", "permutations", "model_permutations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name}: expected an integer >= 0, got {value!r}")
        if not 0.0 < float(self.confidence) < 1.0:
            raise ConfigError(f"confidence: expected a level in (0, 1), got {self.confidence}")
        from .types import check_methods

        check_methods(self.per_sample)
        if isinstance(self.reference_epochs, bool) or not isinstance(self.reference_epochs, int) \
                or self.reference_epochs < 1:
            raise ConfigError(f"reference_epochs: expected an integer >= 1, got {self.reference_epochs!r}")
        if self.cluster_pca_dim is not None and (isinstance(self.cluster_pca_dim, bool) or self.cluster_pca_dim < 1):
            raise ConfigError(f"cluster_pca_dim: expected an integer >= 1 or None, got {self.cluster_pca_dim!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed: expected a non-negative integer, got {self.seed!r}")
