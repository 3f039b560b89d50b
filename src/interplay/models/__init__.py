"""Models: per-modality encoders, fusion, heads, and :class:`MultimodalModel`."""

from .builder import build_model
from .encoders import ENCODERS, MLPEncoder, mlp
from .fusion import FUSIONS, ConcatFusion
from .model import MultimodalModel

__all__ = ["ENCODERS", "FUSIONS", "ConcatFusion", "MLPEncoder", "MultimodalModel", "build_model", "mlp"]
