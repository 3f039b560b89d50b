"""Models: per-modality encoders, fusion, heads, and :class:`MultimodalModel`."""

from . import backbones as _backbones  # noqa: F401  (registers "hf-image", "hf-text")
from . import sequence as _sequence  # noqa: F401  (registers "gru", "transformer")
from . import vision as _vision  # noqa: F401  (registers "cnn", "frames")
from .builder import AUTO_ENCODERS, build_model, encoder_name
from .encoders import ENCODERS, MLPEncoder, mlp
from .fusion import FUSIONS, ConcatFusion, Replacement, Shuffled, stack_variants
from .model import MultimodalModel

__all__ = ["AUTO_ENCODERS", "ENCODERS", "FUSIONS", "ConcatFusion", "MLPEncoder", "MultimodalModel", "Replacement",
           "Shuffled", "build_model", "encoder_name", "mlp", "stack_variants"]
