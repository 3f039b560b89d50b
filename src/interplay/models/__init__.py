"""Models: per-modality encoders, fusion, heads, and :class:`MultimodalModel`."""

from ..layers import mlp
from .builder import AUTO_ENCODERS, build_model, encoder_name
from .encoders import ENCODERS, MLPEncoder
from .fusion import FUSIONS, ConcatFusion, Replacement, Shuffled, stack_variants
from .model import MultimodalModel
from .token import Absent, TokenFusion, TokenModel

__all__ = ["AUTO_ENCODERS", "Absent", "ENCODERS", "FUSIONS", "ConcatFusion", "MLPEncoder", "MultimodalModel",
           "Replacement", "Shuffled", "TokenFusion", "TokenModel", "build_model", "encoder_name", "mlp",
           "stack_variants"]
