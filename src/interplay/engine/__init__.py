"""Engine: the training loop, evaluation, metrics, checkpoints, seeding and atomic I/O."""

from .evaluation import EvalOutput, evaluate, split_metrics
from .trainer import Trainer, build_data, resolve_config, train, trained

__all__ = ["EvalOutput", "Trainer", "build_data", "evaluate", "resolve_config", "split_metrics", "train", "trained"]
