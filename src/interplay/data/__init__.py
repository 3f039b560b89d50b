"""Data: the :class:`Batch` type, in-memory multimodal datasets, splits and the dataset registry."""

from . import mfeat as _mfeat  # noqa: F401  (registers "mfeat")
from . import synthetic as _synthetic  # noqa: F401  (registers "pid-xor", "gaussian-split")
from .batch import Batch
from .dataset import COMMON_FIELDS, DATASETS, VERIFIERS, Check, DataInfo, DataSplits, MultimodalDataset, check_labels
from .synthetic import gaussian_split, parse_mix, pid_xor

__all__ = ["Batch", "COMMON_FIELDS", "DATASETS", "VERIFIERS", "Check", "DataInfo", "DataSplits", "MultimodalDataset",
           "check_labels", "gaussian_split", "parse_mix", "pid_xor"]
