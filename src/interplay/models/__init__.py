"""Models: per-modality encoders, fusion, heads, and :class:`MultimodalModel`."""

from ..layers import mlp
from .builder import AUTO_ENCODERS, build_model, encoder_name
from .encoders import ENCODERS, MLPEncoder
from .fusion import FUSIONS, ConcatFusion, Replacement, Shuffled, stack_variants
from .model import MultimodalModel

__all__ = ["AUTO_ENCODERS", "ENCODERS", "FUSIONS", "ConcatFusion", "MLPEncoder", "MultimodalModel", "Replacement",
           "Shuffled", "build_model", "encoder_name", "mlp", "stack_variants"]
