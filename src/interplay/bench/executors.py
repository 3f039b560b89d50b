"""Where the cells of a grid run: the bench's scheduling loop drives an :class:`Executor`, whatever it is.

The runner (runner.py) decides *what* runs: it expands the grid, reads the ledger, picks the next cell, records
each outcome and writes the tables. An executor decides only *where* a cell's task, ``fn(task)`` (the runner's
``attempt_cell``: take the cell's lock, train into its run directory, update its record), runs:

``inline``  (``--executor local --jobs 1``) in the bench's own process; Ctrl-C raises KeyboardInterrupt in the
            running cell, which keeps its last finished epoch.
``local``   (``--executor local --jobs J``, J > 1) in J spawned worker processes (:class:`~.pool.WorkerPool`).
``ray``     (``--executor ray [--address ADDR]``) as Ray tasks: on a local Ray instance started for the bench
            (``num_cpus`` = ``--jobs``) and shut down at its end, or on an existing Ray cluster. The task writes
            the same run directory, cell record and lock as a local worker, so the cluster's nodes must share
            the bench directory's filesystem at the same path.

Since the task itself does all the writing, every executor gives the same run directories, resume, selection
and tables; an executor only reports what became of each task it was given, as events ``(key, kind, value)``:

=====================  ==========================================================================================
``trained``            the cell was trained; value: its wall seconds
``finished_elsewhere`` another process finished it meanwhile
``busy``               another live process holds its lock; value: who
``failed``             it failed; value: one line (the training error, or why the task could not run)
``interrupted``        stopped by :meth:`Executor.stop` (or Ctrl-C); the cell resumes from its last finished epoch
``died``               the process running it died; value: how (e.g. ``exit code -9``)
=====================  ==========================================================================================
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError, one_line
from .pool import WorkerPool

#: the executors ``--executor`` names
EXECUTORS = ("local", "ray")

MISSING_RAY = "--executor ray needs the optional dependency ray (pip install 'interplay[ray]')"

#: one event of an executor: (task key, kind, value); kinds in the module docstring
Event = tuple[Any, str, Any]


class Executor(ABC):
    """Runs ``fn(task)`` for the cells the runner submits, up to :meth:`free` more at a time.

    Life cycle: :meth:`check` (before the bench writes anything: is the executor usable at all?), :meth:`start`,
    then :meth:`submit` / :meth:`poll` until the grid is done, :meth:`stop` on a signal, and :meth:`close` always.
    """

    #: the name of ``--executor`` (and in bench.json)
    name: str = ""
    #: whether the runner turns SIGINT/SIGTERM into a flag while this executor runs (then calls :meth:`stop`);
    #: ``False``: the signal raises KeyboardInterrupt in the bench's process, where the cell runs
    takes_signals: bool = True

    def __init__(self, fn: Callable[[Any], tuple[str, Any]]) -> None:
        self.fn = fn

    @property
    @abstractmethod
    def slots(self) -> int:
        """How many cells run at once (after :meth:`start`): the parallelism of bench.json's efficiency."""

    def check(self) -> None:
        """Raise :class:`~interplay.errors.ConfigError` (one line) if this executor cannot run here."""
        return None

    def start(self, tasks: int) -> None:
        """Acquire the workers (processes, a Ray connection); ``tasks``: how many cells wait to run."""
        return None

    @abstractmethod
    def free(self) -> int:
        """How many more tasks :meth:`submit` takes now."""

    @abstractmethod
    def busy(self) -> int:
        """How many submitted tasks have not been reported yet."""

    @abstractmethod
    def submit(self, key: Any, task: dict[str, Any]) -> None:
        """Start ``fn(task)``; its outcome comes back from :meth:`poll` under ``key``."""

    @abstractmethod
    def poll(self, timeout: float) -> list[Event]:
        """The outcomes that arrive within ``timeout`` seconds (possibly none)."""

    def stop(self, grace: float, hurry: Callable[[], bool]) -> list[Event]:
        """Interrupt the running tasks (each keeps its last finished epoch), wait up to ``grace`` seconds (less
        once ``hurry()`` is true) and then end them by force. Returns the outcomes that came."""
        return []

    def signal_kill(self) -> None:
        """The second Ctrl-C, from inside a signal handler: end the running tasks now if that is safe here
        (no waiting, no locks), else leave it to :meth:`stop`, which sees ``hurry()``."""
        return None

    def close(self) -> None:
        """Release the workers (always called, also after an error)."""
        return None


# ---------------------------------------------------------------------------------------------- local
class InlineExecutor(Executor):
    """One cell at a time in the bench's own process (``--jobs 1``): no start-up cost, and Ctrl-C interrupts the
    running cell directly. An exception of ``fn`` other than the cell's own failure (which ``fn`` records and
    reports) propagates to the bench's caller, as any error of the bench itself does."""

    name = "local"
    takes_signals = False

    def __init__(self, fn: Callable[[Any], tuple[str, Any]]) -> None:
        super().__init__(fn)
        self._task: tuple[Any, dict[str, Any]] | None = None

    @property
    def slots(self) -> int:
        return 1

    def free(self) -> int:
        return 0 if self._task is not None else 1

    def busy(self) -> int:
        return 0 if self._task is None else 1

    def submit(self, key: Any, task: dict[str, Any]) -> None:
        self._task = (key, task)

    def poll(self, timeout: float) -> list[Event]:
        if self._task is None:
            time.sleep(timeout)
            return []
        key, task = self._task
        kind, value = self.fn(task)  # KeyboardInterrupt propagates with the task still counted as busy
        self._task = None
        return [(key, kind, value)]


class LocalExecutor(Executor):
    """``jobs`` spawned worker processes on this machine (:class:`~.pool.WorkerPool`: signals, orphans)."""

    name = "local"

    def __init__(self, fn: Callable[[Any], tuple[str, Any]], jobs: int) -> None:
        super().__init__(fn)
        self.jobs = jobs
        self.pool = WorkerPool(jobs, fn)

    @property
    def slots(self) -> int:
        return self.jobs

    def start(self, tasks: int) -> None:
        self.pool.size = max(1, min(self.jobs, tasks))  # no idle workers for a grid of fewer cells
        # spawn: fresh interpreters, no inherited torch thread pools; one math thread each
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.pool.start()

    def free(self) -> int:
        return len(self.pool.idle())

    def busy(self) -> int:
        return self.pool.busy()

    def submit(self, key: Any, task: dict[str, Any]) -> None:
        self.pool.submit(self.pool.idle()[0], key, task)

    @staticmethod
    def _events(raw: list[Event]) -> list[Event]:
        out: list[Event] = []
        for key, kind, value in raw:
            if kind == "ok":
                kind, value = value
            elif kind == "error":
                kind = "failed"
            elif kind == "died":
                value = f"exit code {value}"
            out.append((key, kind, value))
        return out

    def poll(self, timeout: float) -> list[Event]:
        return self._events(self.pool.poll(timeout))

    def stop(self, grace: float, hurry: Callable[[], bool]) -> list[Event]:
        return self._events(self.pool.stop(grace, hurry))

    def signal_kill(self) -> None:
        self.pool.signal_kill()

    def close(self) -> None:
        self.pool.close()


# ---------------------------------------------------------------------------------------------- ray
def run_interruptible(fn: Callable[[Any], tuple[str, Any]], task: Any) -> tuple[str, Any]:
    """``fn(task)`` in a Ray worker with SIGINT raising KeyboardInterrupt. Ray's cancel interrupts a running task
    with SIGINT; a Ray instance started from a process that ignores SIGINT (a background job of a shell script,
    ``nohup``-like wrappers) passes the ignoring on to its workers, whose cells would then run on until the force
    kill and lose their current epoch."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return fn(task)


def import_ray() -> Any:
    """The ``ray`` package (imported now), or the one-line :class:`ConfigError` naming the extra."""
    try:
        import ray
    except ImportError:
        raise ConfigError(MISSING_RAY) from None
    return ray


def task_resources(task: dict[str, Any]) -> dict[str, float]:
    """What a cell asks of the Ray scheduler: one CPU, and ``train.devices`` GPUs when ``train.device`` names
    CUDA (``cuda``, ``cuda:N``; ``auto`` asks for none). A DDP cell on CPUs (``train.devices`` > 1) still counts
    as one CPU."""
    train = task["config"].get("train", {})
    device = str(train.get("device", "cpu"))
    gpus = float(train.get("devices", 1) or 1) if device.startswith("cuda") else 0.0
    return {"num_cpus": 1.0, "num_gpus": gpus}


class RayExecutor(Executor):
    """Each cell as a Ray task (one CPU; GPUs as :func:`task_resources` says), at most :attr:`slots` in flight.

    ``address=None``: start a local Ray instance with ``num_cpus=jobs`` (no dashboard, warnings and errors
    only) and shut it down at the end. ``address`` given (``auto``, ``HOST:PORT``, ``ray://HOST:10001``):
    connect to that cluster; ``jobs`` then caps the cells in flight (default: the cluster's CPUs). A process
    already connected to Ray (``ray.is_initialized()``) uses its connection and leaves it open.

    Failures are the local executor's: a task is never retried by Ray (``max_retries=0``), so a cell whose
    training raised is ``failed`` with the error its record holds, one whose worker or node died is ``died``,
    and a task that could not run at all (e.g. ``interplay`` missing on a node) is ``failed`` with Ray's reason.
    :meth:`stop` cancels every task (a running one gets KeyboardInterrupt and keeps its last finished epoch),
    and after the grace period (or a second Ctrl-C) cancels what is left by force (its worker is killed).
    """

    name = "ray"

    def __init__(self, fn: Callable[[Any], tuple[str, Any]], jobs: int | None = None,
                 address: str | None = None) -> None:
        super().__init__(fn)
        self.jobs = jobs
        self.address = address
        self._ray: Any = None
        self._owned = False
        self._slots = jobs or 1
        self._remote: Any = None
        self._running: dict[Any, Any] = {}  # ObjectRef -> key
        self._gpus = 0.0

    @property
    def slots(self) -> int:
        return self._slots

    def check(self) -> None:
        self._ray = import_ray()

    def start(self, tasks: int) -> None:
        ray = self._ray or import_ray()
        self._ray = ray
        if not ray.is_initialized():
            options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
            if self.address is None:  # "local": a new instance even when RAY_ADDRESS names a cluster
                ray.init(address="local", num_cpus=self.jobs or 1, include_dashboard=False, **options)
            else:
                try:
                    ray.init(address=self.address, **options)
                except (ConnectionError, ValueError, RuntimeError) as exc:
                    raise ConfigError(f"--address {self.address}: cannot connect to a Ray cluster "
                                      f"({one_line(exc)})") from None
            self._owned = True
        resources = ray.cluster_resources()
        self._gpus = float(resources.get("GPU", 0.0))
        self._slots = self.jobs or max(1, int(resources.get("CPU", 1)))
        env = {k: os.environ[k] for k in ("INTERPLAY_PLUGINS",) if os.environ.get(k)}
        options = {"max_retries": 0, "retry_exceptions": False}
        if env:  # plugins reach the workers as they reach spawned local workers: through the environment
            options["runtime_env"] = {"env_vars": env}
        self._remote = ray.remote(**options)(run_interruptible)

    def free(self) -> int:
        return max(0, self._slots - len(self._running))

    def busy(self) -> int:
        return len(self._running)

    def submit(self, key: Any, task: dict[str, Any]) -> None:
        resources = task_resources(task)
        if resources["num_gpus"] > self._gpus:  # Ray would wait for GPUs that never come
            ref = self._ray.put(("failed", f"needs {resources['num_gpus']:g} GPU(s) (train.device "
                                           f"{task['config']['train']['device']}); the Ray cluster has "
                                           f"{self._gpus:g}"))
        else:
            ref = self._remote.options(**resources).remote(self.fn, task)
        self._running[ref] = key

    def _outcome(self, ref: Any) -> Event:
        ray = self._ray
        key = self._running.pop(ref)
        from ray import exceptions as rex

        try:
            kind, value = ray.get(ref)
        except rex.TaskCancelledError:
            return key, "interrupted", None
        except (rex.WorkerCrashedError, rex.NodeDiedError, rex.LocalRayletDiedError) as exc:
            return key, "died", f"Ray: {one_line(exc)[:300]}"
        except rex.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, KeyboardInterrupt):
                return key, "interrupted", None
            return key, "failed", one_line(cause) if isinstance(cause, BaseException) else one_line(exc)
        except rex.RayError as exc:
            return key, "failed", f"Ray: {one_line(exc)[:300]}"
        return key, kind, value

    def poll(self, timeout: float) -> list[Event]:
        if not self._running:
            time.sleep(timeout)
            return []
        refs = list(self._running)
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        return [self._outcome(ref) for ref in ready]

    def stop(self, grace: float, hurry: Callable[[], bool]) -> list[Event]:
        ray = self._ray
        for ref in list(self._running):
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=False)  # pending: dropped; running: KeyboardInterrupt in the task
        events: list[Event] = []
        deadline = time.monotonic() + grace
        while self._running and time.monotonic() < deadline and not hurry():
            events += self.poll(0.1)
        if self._running:
            for ref in list(self._running):
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)  # kills the worker process: the cell keeps its last epoch
            deadline = time.monotonic() + 5.0
            while self._running and time.monotonic() < deadline:
                events += self.poll(0.1)
            events += [(key, "died", "killed") for key in self._running.values()]
            self._running.clear()
        return events

    def close(self) -> None:
        ray = self._ray
        if ray is None:
            return
        for ref in list(self._running):
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        self._running.clear()
        if self._owned:
            self._owned = False
            with contextlib.suppress(Exception):
                ray.shutdown()


# ---------------------------------------------------------------------------------------------- choice
def make_executor(name: str, fn: Callable[[Any], tuple[str, Any]], jobs: int | None = None,
                  address: str | None = None) -> Executor:
    """The executor ``--executor name`` names, for ``--jobs jobs`` (``None``: the default) and ``--address``.

    ``local``: in this process for one job, else ``jobs`` worker processes. ``ray``: see :class:`RayExecutor`.
    A bad name, ``--jobs`` or an ``--address`` without ``ray`` raises a one-line
    :class:`~interplay.errors.ConfigError`."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"--jobs: expected a positive integer, got {jobs}")
    if name == "local":
        if address is not None:
            raise ConfigError(f"--address {address}: only with --executor ray (the local executor runs on this "
                              f"machine)")
        return InlineExecutor(fn) if (jobs or 1) == 1 else LocalExecutor(fn, jobs or 1)
    if name == "ray":
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ConfigError(f"--address: expected a Ray address (auto, HOST:PORT or ray://HOST:PORT), got "
                              f"{address!r}")
        return RayExecutor(fn, jobs, address.strip() if address else None)
    raise ConfigError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {name!r}")
