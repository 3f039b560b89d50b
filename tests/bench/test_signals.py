"""Real processes, real signals: Ctrl-C during ``bench --jobs 2``, a killed main process, two benches on one
directory. Each test runs the CLI as a subprocess in its own session and bounds every wait."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from interplay.bench.grid import load_spec, plan
from interplay.bench.ledger import Cell
from interplay.bench.runner import _Signals

from .helpers import TINY, alive, bench_cmd, children, env, popen, table, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; signals as on Linux")

#: cells long enough (hundreds of epochs) to be mid-run whenever the signal comes
LONG = TINY.replace("epochs: 1", "epochs: 400")

#: how long a bench may take to start its workers on a busy two-core machine (each imports torch)
START_S = 120


def _start(tmp_path, spec_text: str, *extra: str) -> tuple[subprocess.Popen, list[int]]:
    """Start ``bench --jobs 2`` and wait until both workers are inside a cell; return it and its workers."""
    spec = tmp_path / "b.yaml"
    spec.write_text(spec_text)
    out = tmp_path / "out"
    proc = popen(bench_cmd(spec, out, "--jobs", "2", *extra))
    started = wait_for(lambda: len(list(out.rglob("*.cell.json"))) >= 2 or proc.poll() is not None, START_S)
    assert started and proc.poll() is None, proc.communicate()
    workers = [p for p in children(proc.pid) if "multiprocessing.spawn" in _cmdline(p)]
    assert len(workers) == 2, [(p, _cmdline(p)) for p in children(proc.pid)]
    return proc, workers


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _leftovers(workers: list[int]) -> list[int]:
    return [p for p in workers if alive(p)]


@pytest.mark.parametrize("how", ["once-to-main", "twice-to-group"])
def test_ctrl_c_stops_jobs2_within_seconds(tmp_path, how):
    """First SIGINT: no new cells, running cells interrupted, exit 130 with one line. ``once-to-main`` is
    ``kill -INT`` of the main process (it must pass the stop on); ``twice-to-group`` is Ctrl-C Ctrl-C in a
    terminal (every process of the group gets both)."""
    proc, workers = _start(tmp_path, LONG)
    t0 = time.monotonic()
    if how == "once-to-main":
        proc.send_signal(signal.SIGINT)
    else:
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"bench still running 10 s after SIGINT: {proc.communicate()}")
    elapsed = time.monotonic() - t0
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interplay: interrupted: stopped: 0 of 4 cells finished"), err
    assert "Traceback" not in err
    assert wait_for(lambda: not _leftovers(workers), 3), f"workers left: {_leftovers(workers)}"
    assert elapsed < 10
    records = [json.loads(p.read_text()) for p in (tmp_path / "out").rglob("*.cell.json")]
    assert len(records) == 2, "no cell was started after the signal"
    assert all(r["status"] == "running" for r in records)  # interrupted, resumable


def test_workers_die_with_the_main_process(tmp_path):
    """SIGKILL of the main process only (not its group): the workers are gone within a few seconds."""
    proc, workers = _start(tmp_path, LONG)
    proc.kill()
    proc.communicate()
    assert wait_for(lambda: not _leftovers(workers), 5), f"orphaned workers: {_leftovers(workers)}"


def test_watchdog_ends_a_worker_whose_parent_died(tmp_path):
    """The watchdog alone (no prctl, as on other systems): a grandchild outlives its parent by < 2 s."""
    code = ("import os, sys, time; sys.platform = 'other'; from interplay.bench.pool import die_with_parent; "
            "die_with_parent(os.getppid()); print(os.getpid(), flush=True); time.sleep(60)")
    parent = subprocess.Popen(["/bin/sh", "-c", f'"{sys.executable}" -c "{code}" & sleep 30'],
                              stdout=subprocess.PIPE, text=True, env=env(), start_new_session=True)
    child = int(parent.stdout.readline())
    assert alive(child)
    parent.kill()
    parent.wait()
    assert wait_for(lambda: not alive(child), 3), "the orphan kept running"


def test_second_signal_kills_workers_at_once():
    class Pool:
        killed = 0

        def signal_kill(self):
            self.killed += 1

    pool = Pool()
    signals = _Signals(pool)  # type: ignore[arg-type]
    signals._handle(signal.SIGTERM, None)
    assert signals.count == 1 and pool.killed == 0 and signals.signum == signal.SIGTERM
    signals._handle(signal.SIGINT, None)
    assert signals.count == 2 and pool.killed == 1 and signals.signum == signal.SIGTERM


def test_two_benches_on_one_directory_split_the_cells(tmp_path):
    """Started together on one --out: every cell trained exactly once, both end with the full table."""
    spec = tmp_path / "b.yaml"
    spec.write_text(TINY.replace("seeds: 2", "seeds: 4").replace("epochs: 1", "epochs: 30"))
    out = tmp_path / "out"
    procs = [popen(bench_cmd(spec, out, "--jobs", "1")) for _ in range(2)]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    runs = plan(load_spec(spec))
    attempts = {str(r.rel_dir): json.loads(Cell(out, r.rel_dir).record_path.read_text())["attempts"] for r in runs}
    assert all(len(a) == 1 for a in attempts.values()), attempts
    ran = [int(re.search(r"(\d+) runs \((\d+) now", o).group(2)) for o, _ in results]
    assert sum(ran) == len(runs) == 8, results
    assert len(table(out)) == 8
    pids = {a[0]["pid"] for a in attempts.values()}
    assert pids <= {p.pid for p in procs}
