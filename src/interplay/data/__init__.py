"""Data: the :class:`Batch` type, in-memory multimodal datasets, splits and the dataset registry."""

from . import affect as _affect  # noqa: F401  (registers "mosi", "mosei", "mustard", "urfunny")
from . import cremad as _cremad  # noqa: F401  (registers "cremad", "cremad-irony")
from . import features as _features  # noqa: F401  (registers "features")
from . import kinetics as _kinetics  # noqa: F401  (registers "kinetics-sounds")
from . import memes as _memes  # noqa: F401  (registers "hateful-memes")
from . import mfeat as _mfeat  # noqa: F401  (registers "mfeat")
from . import synthetic as _synthetic  # noqa: F401  (registers "pid-xor", "gaussian-split")
from . import ucf101 as _ucf101  # noqa: F401  (registers "ucf101")
from .batch import Batch
from .dataset import COMMON_FIELDS, DATASETS, VERIFIERS, Check, DataInfo, DataSplits, MultimodalDataset, check_labels
from .synthetic import gaussian_split, parse_mix, pid_xor

__all__ = ["Batch", "COMMON_FIELDS", "DATASETS", "VERIFIERS", "Check", "DataInfo", "DataSplits", "MultimodalDataset",
           "check_labels", "gaussian_split", "parse_mix", "pid_xor"]
