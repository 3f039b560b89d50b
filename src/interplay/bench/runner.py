"""``interplay bench``: run a grid in parallel worker processes, resumably, into one results table.

Layout of ``--out DIR``::

    bench.yaml                  the grid as last run
    runs/<dataset>/<method>/<hyperparameters>/seed<k>/   one run directory each (the core format) + timing.json
    runs/.../seed<k>.cell.json  the cell's ledger record: fingerprint, status, error, attempts (see ledger.py)
    runs/.../seed<k>.lock       held by the process that trains the cell
    results.csv                 one row per finished run of this grid (rebuilt from the run directories)
    selection.json              the hyperparameters chosen on validation per (dataset, method, seed)
    bench.json                  grid wall time, summed run wall time, parallel efficiency
    stale/<time>/               cells trained with other settings, moved aside by ``--rerun-changed``

Guarantees (docs/reliability.md names the test of each):

- **Ledger.** A finished cell is reused only while its fingerprint (package version + resolved run config)
  equals the grid's; otherwise the bench refuses with one line naming the changed fields, before writing
  anything, and ``--rerun-changed`` moves the stale cells aside and trains them again. Tables show only cells
  whose fingerprints match the grid they describe.
- **Validation first.** The whole grid is expanded and every run's config resolved before anything is written.
- **Resume.** Interrupted (Ctrl-C, kill, power loss between atomic writes) and started again, finished cells are
  skipped and unfinished ones resume from their last finished epoch; the final table equals an uninterrupted
  run's.
- **Signals** (``--jobs`` > 1). The first SIGINT (or SIGTERM) stops scheduling, interrupts the running cells
  (each keeps its last finished epoch) and exits within seconds (:class:`BenchInterrupted`); a second one kills
  the workers at once. Workers die with the main process (see pool.py).
- **Locks.** A process trains a cell only while it holds the cell's lock, so benches sharing one ``--out`` split
  the cells between them; a bench that meets a cell another live process is training moves on and, once
  everything else is done, *waits* for it (taking it over if its holder dies without finishing it), so every
  bench ends with every cell in its table, each trained exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from ..errors import ConfigError, InterplayError
from ..io import atomic_write_csv, atomic_write_json, atomic_write_text, read_json
from ..metrics import selection_metric, selection_score
from .executors import Executor, make_executor
from .grid import RunSpec, load_spec, plan
from .ledger import Cell, CellLock, CellState, cell_state, digest, fingerprint, move_aside, new_record
from .presets import resolve_preset
from .tables import flatten

#: seconds between two looks at a cell that another process is training
BUSY_RETRY_S = 0.5
#: seconds the workers get to stop after the first Ctrl-C before they are killed
STOP_GRACE_S = 5.0


class BenchInterrupted(KeyboardInterrupt):
    """The bench stopped on a signal; its directory is resumable. ``signum``: SIGINT or SIGTERM."""

    def __init__(self, message: str, signum: int = int(signal.SIGINT)) -> None:
        super().__init__(message)
        self.message = message
        self.signum = signum


def _run_one(config: dict[str, Any], run_dir: str) -> float:
    """Train one run into ``run_dir`` (resuming if possible); returns wall seconds."""
    import torch

    from ..config import RunConfig
    from ..engine import Trainer

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    Trainer(RunConfig.from_dict(config), run_dir, quiet=True).fit()
    wall = time.perf_counter() - t0
    timing = Path(run_dir) / "timing.json"
    previous = read_json(timing)["wall_s"] if timing.exists() else 0.0  # a resumed run adds to its first part
    atomic_write_json(timing, {"wall_s": round(previous + wall, 3)})
    return wall


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InterplayError):
        return " ".join(str(exc).split())
    return " ".join("".join(traceback.format_exception_only(type(exc), exc)).split())


def attempt_cell(task: dict[str, Any]) -> tuple[str, Any]:
    """Train one cell if this process can take its lock (run in a worker, or in the main process with one job).

    Returns ``("trained", wall_s)``, ``("finished_elsewhere", None)`` (another process finished it meanwhile),
    ``("busy", owner)`` (another live process holds its lock), or ``("failed", message)``. KeyboardInterrupt
    propagates (the cell stays resumable).
    """
    cell = Cell(Path(task["out"]), Path(task["rel_dir"]))
    expected = task["fingerprint"]
    lock = CellLock(cell.lock_path)
    if not lock.acquire():
        return "busy", lock.owner()
    with lock:
        state = cell_state(cell, expected)  # again, under the lock: another bench may have been here
        if state.status == "finished":
            return "finished_elsewhere", None
        if state.status == "stale":
            return "failed", f"changed by another bench meanwhile ({'; '.join(state.changes[:3])})"
        record = new_record(expected, cell.record())
        cell.write_record(record)
        try:
            wall = _run_one(task["config"], str(cell.run_dir))
        except Exception as exc:
            record.update(status="failed", error=_describe(exc),
                          traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
            cell.write_record(record)
            return "failed", record["error"]
        record.update(status="finished")
        cell.write_record(record)
        return "trained", wall


def _validation_score(metrics: dict[str, Any], select_metric: str) -> float:
    key = selection_metric(select_metric, regression="mae" in metrics["val"])
    return selection_score(key, metrics["val"].get(key))


@dataclass
class BenchResult:
    """What :func:`run_bench` returns: the table's rows, the failed cells, the invocation's summary."""

    rows: list[dict[str, Any]]
    failed: list[tuple[str, str]]
    summary: dict[str, Any]
    moved_to: Path | None = None
    stale: list[str] = field(default_factory=list)


def grid_states(out: Path, runs: list[RunSpec]) -> list[CellState]:
    """The ledger state of every run of the grid in ``out`` (read only)."""
    return [cell_state(Cell(out, r.rel_dir), fingerprint(r.config)) for r in runs]


def collect(out: Path, runs: list[RunSpec]) -> list[dict[str, Any]]:
    """One row per finished run whose fingerprint matches the grid (read from its directory), with the
    validation-based selection marked. A (dataset, method, seed) whose search is incomplete (a point failed, is
    unfinished or stale) has no selected run: selecting among part of the search space is not the protocol."""
    rows = []
    complete: dict[tuple[str, str, int], bool] = {}
    for r in runs:
        cell = Cell(out, r.rel_dir)
        expected = fingerprint(r.config)
        if cell_state(cell, expected).status != "finished":
            complete[r.group] = False
            continue
        complete.setdefault(r.group, True)
        d = cell.run_dir
        metrics = read_json(d / "metrics.json")
        timing = read_json(d / "timing.json") if (d / "timing.json").exists() else {}
        row: dict[str, Any] = {
            "dataset": r.dataset.label, "dataset_name": r.dataset.name,
            "dataset_params": json.dumps(r.dataset.params, sort_keys=True), "method": r.method.label,
            "method_name": r.method.name, "hyperparameters": json.dumps(r.config.method.params, sort_keys=True),
            "searched": json.dumps(r.hp, sort_keys=True), **{f"hp.{k}": v for k, v in r.hp.items()},
            "seed": r.seed, "run_dir": str(r.rel_dir), "wall_s": timing.get("wall_s"),
            "fingerprint": digest(expected), "_score": _validation_score(metrics, r.config.train.select_metric),
        }
        row.update({k: v for k, v in flatten(metrics).items() if k not in ("method", "data", "seed")})
        rows.append(row)
    best: dict[tuple, dict[str, Any]] = {}
    for row in rows:  # first best in grid order wins ties
        key = (row["dataset"], row["method"], row["seed"])
        if complete[key] and (key not in best or row["_score"] > best[key]["_score"]):
            best[key] = row
    for row in rows:
        row["selected"] = best.get((row["dataset"], row["method"], row["seed"])) is row
        del row["_score"]
    return rows


def write_results(out: Path, rows: list[dict[str, Any]]) -> None:
    """``results.csv`` and ``selection.json`` from ``rows`` (atomically)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    front = ["dataset", "method", "seed", "selected", "searched"]
    header = front + [k for k in keys if k not in front]
    atomic_write_csv(out / "results.csv", header, [[_cell(row.get(k)) for k in header] for row in rows])
    selection: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in rows:
        if row["selected"]:
            selection[f"{row['dataset']} / {row['method']}"][f"seed{row['seed']}"] = json.loads(row["searched"])
    atomic_write_json(out / "selection.json", selection)


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return v


# ---------------------------------------------------------------------------------------------- checks
def stale_message(out: Path, runs: list[RunSpec], states: list[CellState]) -> str:
    """One line: how many cells are stale, which fields changed, what to do."""
    stale = [s for s in states if s.status == "stale"]
    fields: list[str] = []
    for s in stale:
        fields += [c for c in s.changes if c not in fields]
    shown = "; ".join(fields[:6]) + (f"; and {len(fields) - 6} more" if len(fields) > 6 else "")
    finished = sum((Cell(out, r.rel_dir).run_dir / "metrics.json").exists()
                   for r, s in zip(runs, states) if s.status == "stale")
    return (f"{out}: {len(stale)} of {len(runs)} cells ({finished} finished) were run with other settings "
            f"({shown}); rerun with --rerun-changed to move them to {out / 'stale'}/ and train them again, "
            f"or use another --out")


def _writable(out: Path) -> None:
    """Create ``out`` and check that files can be written there; one line naming the path otherwise."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) and exc.filename else str(out)
        if not isinstance(exc, FileExistsError) and Path(where).name.startswith(".write-test."):
            where = str(out)
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"--out {out}: cannot write the bench directory ({reason}: {where})") from None


def move_stale(out: Path, runs: list[RunSpec], states: list[CellState]) -> Path:
    cells = [Cell(out, r.rel_dir) for r, s in zip(runs, states) if s.status == "stale"]
    locks = []
    try:
        for cell in cells:
            lock = CellLock(cell.lock_path)
            if not lock.acquire():
                raise ConfigError(f"{cell.run_dir}: being trained by {lock.owner()} with other settings; stop "
                                  f"that bench (or let it finish) before --rerun-changed")
            locks.append(lock)
        return move_aside(cells, out)
    finally:
        for lock in locks:
            lock.release()


# ---------------------------------------------------------------------------------------------- scheduling
class _Schedule:
    """Cells to attempt: the queue first, then cells found busy (retried every :data:`BUSY_RETRY_S`)."""

    def __init__(self, pending: list[int]) -> None:
        self.queue = deque(pending)
        self.deferred: dict[int, float] = {}
        self.owners: dict[int, str] = {}

    def next(self) -> int | None:
        if self.queue:
            return self.queue.popleft()
        now = time.monotonic()
        ready = [i for i, t in self.deferred.items() if t <= now]
        if not ready:
            return None
        i = min(ready, key=self.deferred.__getitem__)
        del self.deferred[i]
        return i

    def defer(self, i: int, owner: str) -> None:
        self.deferred[i] = time.monotonic() + BUSY_RETRY_S
        self.owners[i] = owner

    def empty(self) -> bool:
        return not self.queue and not self.deferred


class _Signals:
    """While an executor that :attr:`~.executors.Executor.takes_signals` runs: SIGINT / SIGTERM set a flag
    instead of raising in the middle of bookkeeping; the second one also calls the executor's ``signal_kill``.
    (Main thread only; elsewhere signals keep their handlers.) :meth:`install` again after starting an executor
    that sets handlers of its own (``ray.init`` sets one for SIGTERM); leaving restores the handlers from before
    the first install."""

    def __init__(self, executor: Executor, active: bool = True) -> None:
        self.executor = executor
        self.active = active
        self.count = 0
        self.signum: int = int(signal.SIGINT)
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.signum = signum if self.count == 1 else self.signum
        if self.count >= 2:
            self.executor.signal_kill()

    def install(self) -> None:
        if self.active and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous = signal.signal(sig, self._handle)
                self._previous.setdefault(sig, previous)

    def __enter__(self) -> _Signals:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------------------------- the bench
def run_bench(path: str | Path, out: str | Path, seeds: int | None = None, jobs: int | None = 1,
              quiet: bool = False, rerun_changed: bool = False,
              notify: Callable[[str], None] | None = None, executor: str | Executor = "local",
              address: str | None = None) -> BenchResult:
    """Run (or resume) the grid of ``path`` (a file or a preset name) into ``out``.

    ``executor``: where the cells run (:mod:`~interplay.bench.executors`): ``"local"`` (this process for
    ``jobs`` = 1, else ``jobs`` worker processes), ``"ray"`` (Ray tasks: a local Ray instance with ``jobs`` CPUs,
    or the cluster at ``address``, ``jobs`` then capping the cells in flight; ``None``: all its CPUs), or an
    :class:`~interplay.bench.executors.Executor`. Every executor gives the same run directories and tables.

    ``notify`` receives one-line messages the user should see whatever ``quiet`` says (stale cells moved aside).

    Raises :class:`~interplay.errors.ConfigError` (nothing written) for a bad grid, executor (e.g. ``ray`` not
    installed), an unwritable ``out`` or cells run with other settings (unless ``rerun_changed``), and
    :class:`BenchInterrupted` on Ctrl-C.
    """
    runner = executor if isinstance(executor, Executor) else make_executor(executor, attempt_cell, jobs, address)
    spec = load_spec(resolve_preset(path), seeds)
    runs = plan(spec)  # every config resolved: a bad grid fails here, before anything is written
    runner.check()  # e.g. ray importable: before anything is written too
    out = Path(out)
    states = grid_states(out, runs)
    stale = [str(r.rel_dir) for r, s in zip(runs, states) if s.status == "stale"]
    if stale and not rerun_changed:
        raise ConfigError(stale_message(out, runs, states))
    _writable(out)
    try:
        moved_to = move_stale(out, runs, states) if stale else None
        if moved_to is not None:
            states = grid_states(out, runs)
            if notify is not None:
                notify(f"bench: moved {len(stale)} cell(s) run with other settings to {moved_to} (kept, not "
                       f"deleted); training them again")
        atomic_write_text(out / "bench.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False))
        return _execute(spec.name, out, runs, states, runner, quiet, moved_to, stale)
    except PermissionError as exc:
        raise ConfigError(f"{exc.filename or out}: permission denied") from None


def _execute(name: str, out: Path, runs: list[RunSpec], states: list[CellState], executor: Executor, quiet: bool,
             moved_to: Path | None, stale: list[str]) -> BenchResult:
    pending = [i for i, s in enumerate(states) if s.status != "finished"]
    # an absolute path: a Ray worker runs elsewhere (another working directory, another node of the cluster)
    tasks = {i: {"out": str(out.absolute()), "rel_dir": str(runs[i].rel_dir), "config": runs[i].config.to_dict(),
                 "fingerprint": fingerprint(runs[i].config)} for i in pending}
    bar = tqdm(total=len(runs), initial=len(runs) - len(pending), desc=f"bench {name}", unit="run",
               disable=True if quiet else None, dynamic_ncols=True)
    failed: list[tuple[str, str]] = []
    walls: list[float] = []
    counts = {"elsewhere": 0, "stopped": 0}
    schedule = _Schedule(pending)
    t0 = time.perf_counter()
    stopping = False

    def handle(i: int, kind: str, value: Any) -> None:
        if kind == "busy":
            if not schedule.owners and not quiet:
                tqdm.write(f"bench: {runs[i].rel_dir} is being trained by {value}; this bench takes the other "
                           f"cells and waits for the ones trained elsewhere at the end", file=sys.stderr)
            schedule.defer(i, value)
            bar.set_postfix(elsewhere=len(schedule.deferred), refresh=True)
            return
        if kind == "interrupted" or (kind == "died" and stopping):
            counts["stopped"] += 1  # resumable: its last finished epoch is saved
            return
        if kind == "trained":
            walls.append(float(value))
        elif kind == "finished_elsewhere":
            counts["elsewhere"] += 1
        else:
            msg = value if kind == "failed" else (f"worker process died ({value})" if kind == "died"
                                                  else f"{kind}: {value}")
            failed.append((str(runs[i].rel_dir), msg))
        write_results(out, collect(out, runs))
        bar.update(1)
        if schedule.deferred:
            bar.set_postfix(elsewhere=len(schedule.deferred), refresh=True)

    def interrupted(signum: int) -> BenchInterrupted:
        write_results(out, collect(out, runs))
        done = sum(s.status == "finished" for s in grid_states(out, runs))
        return BenchInterrupted(f"stopped: {done} of {len(runs)} cells finished, {counts['stopped']} stopped "
                                f"mid-run (they resume from their last finished epoch); rerun the same command "
                                f"to resume", signum)

    try:
        if pending:
            with _Signals(executor, active=executor.takes_signals) as signals:
                try:
                    executor.start(len(pending))
                    signals.install()  # again: starting may have set handlers of its own (ray.init: SIGTERM)
                    while not signals.count:
                        while executor.free():
                            i = schedule.next()
                            if i is None:
                                break
                            executor.submit(i, tasks[i])
                        if schedule.empty() and not executor.busy():
                            break
                        for i, kind, value in executor.poll(0.2):
                            handle(i, kind, value)
                    if signals.count:
                        stopping = True
                        for i, kind, value in executor.stop(STOP_GRACE_S, hurry=lambda: signals.count >= 2):
                            handle(i, kind, value)
                        raise interrupted(signals.signum)
                except BenchInterrupted:
                    raise
                except KeyboardInterrupt:  # an executor that leaves signals alone: Ctrl-C in this process
                    stopping = True
                    counts["stopped"] += executor.busy()
                    raise interrupted(signal.SIGINT) from None
                finally:
                    executor.close()
    finally:
        bar.close()
    grid_wall = time.perf_counter() - t0
    rows = collect(out, runs)
    write_results(out, rows)
    slots = executor.slots
    summary = {"name": name, "runs": len(runs), "ran_now": len(walls), "failed": len(failed),
               "finished_elsewhere": counts["elsewhere"], "executor": executor.name, "jobs": slots,
               "grid_wall_s": round(grid_wall, 2), "sum_run_wall_s": round(sum(walls), 2),
               "speedup": round(sum(walls) / grid_wall, 3) if walls and grid_wall > 0 else None,
               "parallel_efficiency": round(sum(walls) / (grid_wall * slots), 3) if walls and grid_wall > 0 else None}
    if walls or not (out / "bench.json").exists():  # keep the timing of the last invocation that ran something
        atomic_write_json(out / "bench.json", summary)
    return BenchResult(rows, failed, summary, moved_to, stale)
