"""Interplay: learning and measuring multimodal interactions.

Redundant, unique and synergistic information between modalities, learned (SynIB, OMIB, DMIL and
their baselines, all on one model API) and measured (exact PID, dataset and per-sample estimators).
"""

from ._version import __version__

__all__ = ["__version__"]
