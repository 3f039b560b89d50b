"""Callbacks: user code the engine calls at the start of a fit, after each epoch and at the end.

    class PrintLoss(Callback):
        def on_epoch_end(self, trainer, row):
            print(row["epoch"], row["train"]["loss"], row["val"]["accuracy"])

    Trainer(cfg, "runs/x", callbacks=[PrintLoss()]).fit()

``row`` is the epoch's line of ``log.jsonl`` (already written when the callback runs) and ``metrics`` the content
of ``metrics.json``: the run directory stays the source of truth, callbacks only observe it. Under DDP only rank 0
calls them. A resumed run calls ``on_fit_start`` once per invocation and ``on_epoch_end`` only for the epochs it
trains; a run that is already complete calls none.

Loggers are callbacks registered by name in :data:`LOGGERS` and chosen with ``train.loggers`` (e.g.
``--set train.loggers=[tensorboard]``). The ones shipped live in ``interplay/engine/loggers/`` (one module each);
a plugin registers its own with ``@LOGGERS.register("NAME")`` or an ``interplay.loggers`` entry point. A logger
class is built with no arguments; its optional classmethod ``check()`` raises :class:`ConfigError` when it cannot
run (a missing optional dependency), and is called when the config is resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import ConfigError
from ..registry import Registry


class Callback:
    """Base class of callbacks and loggers: every hook does nothing unless overridden.

    ``trainer`` is the :class:`~interplay.engine.trainer.Trainer` (``trainer.out``: the run directory or
    ``None``; ``trainer.cfg``: the resolved config; ``trainer.model`` and ``trainer.objective`` once built).
    """

    def on_fit_start(self, trainer: Any, config: dict[str, Any]) -> None:
        """Before the first epoch of this invocation; ``config`` is the resolved config (config.yaml's content)."""

    def on_epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        """After each epoch trained in this invocation; ``row`` is its log.jsonl line."""

    def on_fit_end(self, trainer: Any, metrics: dict[str, Any]) -> None:
        """After the test; ``metrics`` is metrics.json's content."""


#: logger callbacks by name (``train.loggers``): the modules of ``interplay.engine.loggers`` and the
#: ``interplay.loggers`` entry points register here
LOGGERS: Registry[type[Callback]] = Registry("logger", package="interplay.engine.loggers", group="interplay.loggers")


def check_loggers(names: Sequence[str]) -> None:
    """Raise a one-line :class:`ConfigError` for an unknown logger name or a logger that cannot run here."""
    for name in names:
        if name not in LOGGERS:
            raise ConfigError(f"train.loggers: unknown logger {name!r}; expected one of: "
                              f"{', '.join(LOGGERS.names()) or '(none registered)'}")
        check = getattr(LOGGERS.get(name), "check", None)
        if check is not None:
            check()


def build_loggers(names: Sequence[str]) -> list[Callback]:
    """The logger callbacks ``train.loggers`` names, built (checked first: see :func:`check_loggers`)."""
    check_loggers(names)
    return [LOGGERS.get(name)() for name in names]


def call(callbacks: Iterable[Callback], hook: str, trainer: Any, arg: dict[str, Any]) -> None:
    """Call ``hook`` of every callback in order."""
    for cb in callbacks:
        getattr(cb, hook)(trainer, arg)


def flatten_numbers(values: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"train": {"loss": 0.5}, "lr": 0.1, "best": True}`` -> ``{"train/loss": 0.5, "lr": 0.1}``: every finite
    or non-finite int/float leaf of nested dicts under its slash-joined path (booleans, strings, ``None`` and lists
    are left out)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_numbers(value, f"{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


__all__ = ["Callback", "LOGGERS", "build_loggers", "check_loggers", "flatten_numbers"]
