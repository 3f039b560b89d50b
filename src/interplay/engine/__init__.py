"""Engine: the training loop, evaluation, metrics, checkpoints, seeding, atomic I/O, and reloading trained runs."""

from .callbacks import Callback
from .evaluation import EvalOutput, evaluate, split_metrics
from .reload import (
    LoadedRun,
    Predictions,
    data_info_from_dict,
    data_info_to_dict,
    evaluate_run,
    load_run,
    predict,
    write_data_info,
)
from .trainer import Trainer, build_data, resolve_config, train, trained

__all__ = ["Callback", "EvalOutput", "LoadedRun", "Predictions", "Trainer", "build_data", "data_info_from_dict",
           "data_info_to_dict", "evaluate", "evaluate_run", "load_run", "predict", "resolve_config", "split_metrics",
           "train", "trained", "write_data_info"]
