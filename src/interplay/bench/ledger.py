"""The bench directory as a ledger: what each cell of a grid was trained with, who is training it, what failed.

Beside each run directory ``runs/<dataset>/<method>/<hyperparameters>/seed<k>/`` (the core run format, which the
trainer owns) a cell has two files of its own::

    seed<k>.cell.json   the cell's record: its fingerprint (package version + resolved run config), status
                        (running / finished / failed, with the error), and every attempt (pid, host, start time)
    seed<k>.lock        the lock a process holds while it trains the cell (never deleted)

A finished cell is reused only while its fingerprint equals the one the current grid asks for; a cell trained with
other settings is *stale*: the bench refuses to run (naming the changed fields) until ``--rerun-changed`` moves
the stale cells aside into ``stale/<time>/`` and trains them again. Run directories from before the ledger
existed (no record) are judged by their ``config.yaml`` and ``env.json``.

Locks are advisory OS locks (``fcntl.flock``; ``msvcrt.locking`` on Windows) on the lock file, so the operating
system releases them when the holder dies, however it dies: a lock left by a dead process is simply taken over.
The lock file holds the holder's pid, host and start time for messages. (Network file systems must support
``flock`` for two hosts to share one bench directory; Linux NFS does.)
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._version import __version__
from ..config import RunConfig
from ..io import atomic_write_json, read_json, to_jsonable
from .tables import flatten

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
try:  # Windows
    import msvcrt
except ImportError:
    msvcrt = None  # type: ignore[assignment]

#: what a changed cell may differ in, in messages: the package version and every field of the run config
VERSION_FIELD = "interplay version"
STALE_DIR = "stale"


def fingerprint(config: RunConfig) -> dict[str, Any]:
    """Everything that determines a cell's results: the package version and the resolved run config (data
    parameters, model sizes, method hyperparameters, training settings and seed)."""
    return {"interplay": __version__, "config": json.loads(json.dumps(to_jsonable(config.to_dict())))}


def digest(fp: dict[str, Any]) -> str:
    """A short stable hash of a fingerprint (the ``fingerprint`` column of results.csv)."""
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


_UNSET = object()


def _show(value: Any) -> str:
    return "(unset)" if value is _UNSET else json.dumps(value)


def _schema_defaults() -> dict[str, Any]:
    """The default of every fixed config field (``train.epochs`` -> 30, ...), as fingerprints store them."""
    return flatten(json.loads(json.dumps(to_jsonable(RunConfig().to_dict()))))


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The fields in which fingerprint ``old`` differs from ``new``, as ``"train.epochs: 20 -> 21"``.

    A fixed config field that ``old`` lacks (added to the config schema after that cell ran) and that ``new``
    holds at its default is not a change: a new field's default reproduces the behaviour from before it existed
    (the rule every new option follows; e.g. ``train.scheduler: none``)."""
    out = []
    if old.get("interplay") is not None and old.get("interplay") != new.get("interplay"):
        out.append(f"{VERSION_FIELD}: {old.get('interplay')} -> {new.get('interplay')}")
    a, b = flatten(old.get("config") or {}), flatten(new.get("config") or {})
    defaults = _schema_defaults()
    for key in list(a) + [k for k in b if k not in a]:
        va, vb = a.get(key, _UNSET), b.get(key, _UNSET)
        if va is _UNSET and key in defaults and vb == defaults[key]:
            continue
        if va != vb:
            out.append(f"{key}: {_show(va)} -> {_show(vb)}")
    return out


# ---------------------------------------------------------------------------------------------- cells
@dataclass
class Cell:
    """Where one run of the grid lives in a bench directory."""

    out: Path
    rel_dir: Path

    @property
    def run_dir(self) -> Path:
        """The run directory (the trainer's format)."""
        return self.out / self.rel_dir

    @property
    def record_path(self) -> Path:
        """``seed<k>.cell.json`` beside the run directory (inside it the trainer wants nothing but a run)."""
        return self.run_dir.with_name(self.run_dir.name + ".cell.json")

    @property
    def lock_path(self) -> Path:
        """``seed<k>.lock`` beside the run directory."""
        return self.run_dir.with_name(self.run_dir.name + ".lock")

    def record(self) -> dict[str, Any] | None:
        """The cell's record; for a run directory without one (written before the ledger existed) a record
        rebuilt from its ``config.yaml`` and ``env.json``; ``None`` for a cell nothing was written for."""
        if self.record_path.exists():
            try:
                rec = read_json(self.record_path)
            except (OSError, ValueError):
                return {"fingerprint": {}, "unreadable": True}
            return rec if isinstance(rec, dict) else {"fingerprint": {}, "unreadable": True}
        cfg_path = self.run_dir / "config.yaml"
        if not cfg_path.exists():
            return None
        try:
            config = yaml.safe_load(cfg_path.read_text()) or {}
            env = read_json(self.run_dir / "env.json") if (self.run_dir / "env.json").exists() else {}
        except (OSError, ValueError, yaml.YAMLError):
            return {"fingerprint": {}, "unreadable": True}
        return {"fingerprint": {"interplay": env.get("interplay"), "config": json.loads(json.dumps(config))},
                "legacy": True}

    def write_record(self, rec: dict[str, Any]) -> None:
        """Replace the cell's record (atomically)."""
        atomic_write_json(self.record_path, rec)


@dataclass
class CellState:
    """What a bench directory holds for one cell, judged against the fingerprint the grid asks for.

    ``status``: ``new`` (nothing yet), ``partial`` (started, resumable), ``failed`` (its last attempt raised;
    retried by the next bench), ``finished`` (reusable), ``stale`` (trained or started with other settings).
    """

    status: str
    changes: list[str] = field(default_factory=list)
    error: str | None = None


def cell_state(cell: Cell, expected: dict[str, Any]) -> CellState:
    """The state of ``cell`` for a grid whose run has fingerprint ``expected``."""
    rec = cell.record()
    if rec is None:
        return CellState("partial" if cell.run_dir.exists() and any(cell.run_dir.iterdir()) else "new")
    if rec.get("unreadable"):
        return CellState("stale", ["cell record unreadable"])
    diff = changes(rec.get("fingerprint") or {}, expected)
    if diff:
        return CellState("stale", diff)
    if (cell.run_dir / "metrics.json").exists():
        return CellState("finished")
    if rec.get("status") == "failed":
        return CellState("failed", error=rec.get("error"))
    return CellState("partial" if cell.run_dir.exists() else "new")


def new_record(expected: dict[str, Any], rec: dict[str, Any] | None) -> dict[str, Any]:
    """The record of a cell about to be trained (keeping the attempts of a matching earlier record)."""
    attempts = list(rec.get("attempts", [])) if rec and not rec.get("legacy") else []
    attempts.append({"pid": os.getpid(), "host": socket.gethostname(), "started": _now()})
    return {"fingerprint": expected, "digest": digest(expected), "status": "running", "attempts": attempts}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def move_aside(cells: list[Cell], out: Path) -> Path:
    """Move the run directories and records of ``cells`` into ``out/stale/<time>/`` (same relative layout);
    return that folder. Nothing is deleted."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = out / STALE_DIR / stamp
    k = 1
    while dest.exists():
        k += 1
        dest = out / STALE_DIR / f"{stamp}-{k}"
    for cell in cells:
        target = dest / cell.rel_dir
        target.parent.mkdir(parents=True, exist_ok=True)
        if cell.run_dir.exists():
            os.replace(cell.run_dir, target)
        if cell.record_path.exists():
            os.replace(cell.record_path, target.with_name(target.name + ".cell.json"))
    return dest


# ---------------------------------------------------------------------------------------------- locks
class CellLock:
    """An exclusive, non-blocking lock on one cell, released by the OS when its holder dies.

    ``acquire()`` returns ``False`` when another process holds the lock (``owner()`` then describes it).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            elif msvcrt is not None:  # pragma: no cover - Windows
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
                return False
            raise
        self._fd = fd
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}).encode()
        if fcntl is not None:  # the Windows lock covers the bytes: the holder alone reads and writes them
            os.ftruncate(fd, 0)
            os.write(fd, info)
        return True

    def owner(self) -> str:
        """``"pid 123 on host since ..."`` of the holder, as far as the lock file says."""
        try:
            info = json.loads(self.path.read_text() or "{}")
            return f"pid {info['pid']} on {info['host']} since {info['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            elif msvcrt is not None:  # pragma: no cover - Windows
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        finally:
            os.close(fd)

    def __enter__(self) -> CellLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def held_elsewhere(self) -> bool:
        """Whether another process holds the lock now (tries it and lets go at once)."""
        if not self.path.exists():
            return False
        try:
            got = self.acquire()
        except OSError:
            return False
        if got:
            self.release()
        return not got
