"""Data: the :class:`Batch` type, in-memory multimodal datasets, splits and the dataset registry.

Every module of this package is imported on the registry's first lookup (:mod:`interplay.registry`), so adding
``data/NAME.py`` with ``@DATASETS.register("NAME")`` is all it takes to add a dataset."""

from .batch import Batch
from .dataset import COMMON_FIELDS, DATASETS, VERIFIERS, Check, DataInfo, DataSplits, MultimodalDataset, check_labels
from .synthetic import gaussian_split, parse_mix, pid_xor

__all__ = ["Batch", "COMMON_FIELDS", "DATASETS", "VERIFIERS", "Check", "DataInfo", "DataSplits", "MultimodalDataset",
           "check_labels", "gaussian_split", "parse_mix", "pid_xor"]
