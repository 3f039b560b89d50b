"""Shared fixtures. Tests run on one math thread (as CI does) and on small data."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from interplay.config import RunConfig  # noqa: E402

torch.set_num_threads(1)


def make_config(name: str = "joint", dataset: str = "pid-xor", epochs: int = 3, seed: int = 0,
                n_train: int = 400, n_test: int = 400, **sections) -> RunConfig:
    """A small run config; ``sections`` maps a section name to extra keys (e.g. ``data={"mix": ...}``)."""
    raw = {"data": {"name": dataset, "n_train": n_train, "n_test": n_test}, "method": {"name": name},
           "train": {"epochs": epochs, "seed": seed}, "model": {"encoder_hidden": [64, 64], "fusion_hidden": [32]}}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return RunConfig.from_dict(raw)


@pytest.fixture
def config_factory():
    return make_config


@pytest.fixture(autouse=True)
def _restore_sigint() -> Iterator[None]:
    """A command interrupted in-process ignores further Ctrl-C on its way out (cli._ignore_further_interrupts);
    later tests, and the processes they start (Ray's), get the handler back."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own feature cache (tests never touch ~/.cache)."""
    monkeypatch.setenv("INTERPLAY_CACHE", str(tmp_path / "interplay-cache"))


def run_cli(args, capsys):
    """Run ``interplay ARGS`` in-process: ``(exit code, stdout, stderr)``."""
    from interplay.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@contextlib.contextmanager
def interrupted_after(epoch: int | None = None) -> Iterator[None]:
    """Inside the block, training raises ``KeyboardInterrupt`` right after ``last.pt`` of epoch ``epoch`` (any
    epoch: ``None``) is saved: a simulated Ctrl-C at the worst moment for a resume."""
    from interplay.engine.trainer import Trainer

    original = Trainer._save_last

    def save_then_die(self, optimizer, stage_index, saved_epoch, best):  # type: ignore[no-untyped-def]
        original(self, optimizer, stage_index, saved_epoch, best)
        if epoch is None or saved_epoch == epoch:
            raise KeyboardInterrupt

    Trainer._save_last = save_then_die  # type: ignore[method-assign]
    try:
        yield
    finally:
        Trainer._save_last = original  # type: ignore[method-assign]
