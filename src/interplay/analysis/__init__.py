"""``interplay analyze``: which interactions a dataset holds and which a trained model uses (being built)."""

from .settings import AnalysisSettings

__all__ = ["AnalysisSettings"]
