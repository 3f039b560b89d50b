"""A small pool of spawned worker processes that the bench controls completely (signals, shutdown, orphans).

Why not ``concurrent.futures.ProcessPoolExecutor``: after Ctrl-C it kept starting queued runs, a second Ctrl-C
could hang it, and workers outlived a killed main process. Here:

- the main process decides what runs: one task per worker at a time over a pipe, nothing queued in the workers,
  so stopping the schedule is not sending the next task;
- workers start with SIGINT ignored (the disposition survives ``exec``, so no KeyboardInterrupt traceback while
  they import torch) and then install a handler that raises KeyboardInterrupt *once* (a second SIGINT, from the
  terminal and from the main process, is ignored): a task interrupted this way answers ``interrupted``;
- :meth:`WorkerPool.stop` interrupts busy workers, ends idle ones at once, waits a bounded grace period and then
  kills whatever is left; :meth:`WorkerPool.kill` kills everything now (the second Ctrl-C);
- workers end when the main process ends, however it ends: on Linux the kernel sends them SIGKILL
  (``prctl(PR_SET_PDEATHSIG)``), and on every platform a watchdog thread polls the parent's pid, and an idle
  worker sees its pipe close.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

#: seconds between the watchdog's looks at the parent process
WATCHDOG_INTERVAL = 0.5


def _alive(pid: int) -> bool:
    if os.name != "posix":  # pragma: no cover - os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent(parent_pid: int) -> None:
    """End this process (at once, without cleanup) when process ``parent_pid`` ends.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``. Everywhere: a daemon thread that checks every
    :data:`WATCHDOG_INTERVAL` seconds that the parent still exists and is still this process's parent.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog alone
            pass
    if os.getppid() != parent_pid and os.name == "posix":  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_INTERVAL)
            if (os.name == "posix" and os.getppid() != parent_pid) or not _alive(parent_pid):
                os._exit(1)

    threading.Thread(target=watch, name="interplay-parent-watchdog", daemon=True).start()


def _worker_main(conn: Connection, parent_pid: int, fn: Callable[[Any], Any]) -> None:
    """A worker: run ``fn(task)`` for every task received until told to stop, the pipe closes or SIGINT."""
    die_with_parent(parent_pid)
    # tqdm's default lock is a multiprocessing semaphore; a worker killed by a second Ctrl-C would leave it to the
    # resource tracker, which then warns on stderr. A worker draws no bars: a thread lock is all it needs.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())

    def interrupt(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # one interrupt per worker; the rest is shutdown
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    try:
        while True:
            task = conn.recv()
            if task is None:
                return
            try:
                reply: tuple[str, Any] = ("ok", fn(task))
            except KeyboardInterrupt:
                conn.send(("interrupted", None))
                return
            except Exception as exc:  # reported as the task's failure; the worker goes on
                reply = ("error", "".join(traceback.format_exception_only(type(exc), exc)).strip())
            conn.send(reply)
    except (KeyboardInterrupt, EOFError, OSError):  # interrupted while idle, or the main process is gone
        return
    finally:
        # leave now: every file is written (atomically) and closed, and an interpreter that has imported torch
        # takes seconds to tear itself down on a busy machine. multiprocessing's exit hook still runs: it
        # releases the semaphores this process registered (tqdm's lock), which the resource tracker would
        # otherwise report as leaked
        with contextlib.suppress(Exception):
            from multiprocessing import util

            util._exit_function()  # type: ignore[attr-defined]
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while children start (they inherit the disposition through exec)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class _Worker:
    proc: BaseProcess
    conn: Connection
    key: Any = None  # the task it is running; None when idle
    closing: bool = False  # answered "interrupted" or closed its pipe: takes no more tasks


#: one event of the pool: (task key, kind, value); kind ``ok`` (value: fn's result), ``error`` (value: the
#: exception's one-line description), ``interrupted`` (stopped by SIGINT) or ``died`` (value: exit code)
Event = tuple[Any, str, Any]


class WorkerPool:
    """``size`` spawned processes running ``fn`` (a picklable module-level function) on one task at a time."""

    def __init__(self, size: int, fn: Callable[[Any], Any]) -> None:
        self.size = size
        self.fn = fn
        self.workers: list[_Worker] = []
        self._ctx = get_context("spawn")

    def start(self) -> None:
        """Start workers until there are ``size``."""
        with _sigint_ignored():
            for _ in range(self.size - len(self.workers)):
                parent, child = self._ctx.Pipe()
                proc = self._ctx.Process(target=_worker_main, args=(child, os.getpid(), self.fn), daemon=True,
                                         name="interplay-bench-worker")
                proc.start()
                child.close()
                self.workers.append(_Worker(proc, parent))

    def idle(self) -> list[_Worker]:
        return [w for w in self.workers if w.key is None and not w.closing]

    def busy(self) -> int:
        return sum(w.key is not None for w in self.workers)

    def submit(self, worker: _Worker, key: Any, task: Any) -> None:
        worker.key = key
        worker.conn.send(task)

    def _drain(self, w: _Worker) -> list[Event]:
        events: list[Event] = []
        while not w.closing:
            try:
                if not w.conn.poll():
                    break
                kind, value = w.conn.recv()
            except (EOFError, OSError):
                w.closing = True
                break
            events.append((w.key, kind, value))
            w.key = None
            w.closing = kind == "interrupted"
        return events

    def poll(self, timeout: float, respawn: bool = True) -> list[Event]:
        """Wait up to ``timeout`` seconds for answers; a worker that died is replaced (``respawn``)."""
        handles = [w.conn for w in self.workers if not w.closing] + [w.proc.sentinel for w in self.workers]
        if handles:
            wait(handles, timeout)
        else:
            time.sleep(timeout)
        events: list[Event] = []
        removed = False
        for w in list(self.workers):
            alive = w.proc.is_alive()
            events += self._drain(w)  # after the liveness check: what a dead worker sent is all there
            if not alive:
                if w.key is not None:
                    events.append((w.key, "died", w.proc.exitcode))
                w.conn.close()
                self.workers.remove(w)
                removed = True
        if respawn and removed:
            self.start()
        return events

    def stop(self, grace: float, hurry: Callable[[], bool]) -> list[Event]:
        """Interrupt busy workers (SIGINT), end idle ones now, wait up to ``grace`` seconds (less once
        ``hurry()`` is true) for them to finish, then kill what is left. Returns the answers that came."""
        for w in self.workers:
            with contextlib.suppress(OSError, ValueError):
                if w.key is None:
                    w.proc.kill()
                elif os.name == "posix" and w.proc.pid is not None:
                    os.kill(w.proc.pid, signal.SIGINT)
                else:  # pragma: no cover - no SIGINT for another process: stop it outright
                    w.proc.terminate()
        events: list[Event] = []
        deadline = time.monotonic() + grace
        while self.workers and time.monotonic() < deadline and not hurry():
            events += self.poll(0.1, respawn=False)
        self.kill()
        for w in self.workers:
            events += self._drain(w)
            if w.key is not None:
                events.append((w.key, "died", w.proc.exitcode))
            w.conn.close()
        self.workers = []
        return events

    def signal_kill(self) -> None:
        """SIGKILL every worker and nothing else (safe inside a signal handler: no waiting, no bookkeeping)."""
        for w in list(self.workers):
            if w.proc.pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(w.proc.pid, getattr(signal, "SIGKILL", signal.SIGTERM))

    def kill(self) -> None:
        """SIGKILL every worker now (safe at any moment: run directories are written atomically)."""
        for w in self.workers:
            with contextlib.suppress(OSError, ValueError):
                w.proc.kill()
        for w in self.workers:
            with contextlib.suppress(OSError, ValueError, AssertionError):
                w.proc.join(timeout=5)

    def close(self) -> None:
        """Tell the workers to exit and wait briefly; kill any that remain."""
        for w in self.workers:
            with contextlib.suppress(OSError, ValueError):
                w.conn.send(None)
        deadline = time.monotonic() + 5
        for w in self.workers:
            w.proc.join(timeout=max(0.0, deadline - time.monotonic()))
        self.kill()
        for w in self.workers:
            w.conn.close()
        self.workers = []
