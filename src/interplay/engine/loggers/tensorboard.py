"""``train.loggers: [tensorboard]``: TensorBoard event files under ``RUN_DIR/tensorboard/``.

On fit start: the config as hyperparameters (the HParams dashboard) and as YAML text; after each epoch: every
numeric value of the log.jsonl row (``train/loss``, ``val/accuracy``, ``val/accuracy_by_interaction/synergistic``,
``lr``, ``objective/...``) at step = the epoch number; on fit end: the test metrics (``test/...``) at the last
epoch's step. The event file is created at the first epoch (a run that fails before it leaves nothing behind).
Needs the optional dependency ``tensorboard`` (``pip install 'interplay[tensorboard]'``); the package
is imported only when the logger is checked or built.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from ...errors import ConfigError
from ..callbacks import LOGGERS, Callback, flatten_numbers

MISSING = ("train.loggers: tensorboard needs the optional dependency tensorboard "
           "(pip install 'interplay[tensorboard]')")

#: the metrics the HParams dashboard shows beside the hyperparameters
HPARAM_METRICS = ("val/accuracy", "test/accuracy")


def _tensorboard() -> Any:
    """``torch.utils.tensorboard`` (imported now), or the one-line :class:`ConfigError` if it cannot be."""
    try:
        import torch.utils.tensorboard as tb
    except ImportError:
        raise ConfigError(MISSING) from None
    return tb


def _hparam(value: Any) -> bool | int | float | str:
    return value if isinstance(value, (bool, int, float, str)) else str(value)


@LOGGERS.register("tensorboard")
class TensorBoardLogger(Callback):
    """Write the run's config, epoch rows and test metrics as TensorBoard events under ``RUN_DIR/tensorboard/``
    (nothing, with one warning line, for a run without a directory)."""

    subdir = "tensorboard"

    @classmethod
    def check(cls) -> None:
        _tensorboard()

    def __init__(self) -> None:
        self._tb = _tensorboard()
        self.writer: Any = None
        self._config: dict[str, Any] | None = None
        self._last_step = 0

    def on_fit_start(self, trainer: Any, config: dict[str, Any]) -> None:
        if trainer.out is None:
            print("interplay: warning: train.loggers: tensorboard writes nothing for a run without a run directory "
                  "(--out)", file=sys.stderr)
            return
        self._config = config

    def _open(self, trainer: Any, epoch: float) -> None:
        """Create the writer before logging ``epoch`` (at the first epoch: a run that fails before it leaves no
        event file behind, so its directory can be reused) and write the config."""
        if self.writer is not None or self._config is None:
            return
        config, self._config = self._config, None
        log = [r for r in trainer.log if r["epoch"] < epoch]  # the epochs of earlier invocations
        self._last_step = int(log[-1]["epoch"]) if log else 0
        # a resumed run: events at later steps from an interrupted invocation are superseded by this one's
        self.writer = self._tb.SummaryWriter(str(trainer.out / self.subdir),
                                             purge_step=self._last_step + 1 if log else None)
        from torch.utils.tensorboard.summary import hparams

        flat = {f"{section}.{key}": _hparam(value) for section, values in config.items()
                for key, value in values.items()}
        for summary in hparams(flat, {name: 0.0 for name in HPARAM_METRICS}):
            self.writer.file_writer.add_summary(summary)
        text = yaml.safe_dump(config, sort_keys=False)
        self.writer.add_text("config", "\n".join("    " + line for line in text.splitlines()), 0)
        self.writer.flush()

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        self._open(trainer, row["epoch"])
        if self.writer is None:
            return
        step = int(row["epoch"])
        for tag, value in flatten_numbers({k: v for k, v in row.items() if k != "epoch"}).items():
            self.writer.add_scalar(tag, value, step)
        self._last_step = step
        self.writer.flush()

    def on_fit_end(self, trainer: Any, metrics: dict[str, Any]) -> None:
        self._open(trainer, float("inf"))  # a resumed run with no epoch left to train
        if self.writer is None:
            return
        for tag, value in flatten_numbers({"test": metrics.get("test", {})}).items():
            self.writer.add_scalar(tag, value, self._last_step)
        self.writer.close()
        self.writer = None
