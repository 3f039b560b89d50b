"""``interplay bench --executor ray``: grid cells as Ray tasks on a local Ray instance (one per module: starting Ray
costs seconds), the same run directories, ledger, resume and tables as the local executor."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time

import pytest

from interplay.bench.executors import RayExecutor
from interplay.bench.grid import load_spec, plan
from interplay.bench.ledger import Cell, CellLock
from interplay.bench.runner import run_bench
from interplay.cli import main
from interplay.errors import ConfigError

from .helpers import TINY, table

ray = pytest.importorskip("ray")

#: one cell whose training raises in the worker (the loss overflows to nan in its first epoch)
DIVERGING = TINY.replace("seeds: 2", "seeds: 1").replace("batch_size: 64}", "batch_size: 64, lr: 1.0e+30}") \
    .replace("  - {name: conf_penalty, params: {beta: 0.1}}\n", "")


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray instance with two CPUs for the whole module (the executor reuses a connected process's),
    started while SIGINT is ignored, as it is for a background job of a shell script: Ray's processes inherit that,
    and the executor must still interrupt its cells (Ray's cancel arrives as SIGINT)."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
                 log_to_driver=False)
    finally:
        signal.signal(signal.SIGINT, old)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The 4-cell grid trained by the local executor (in this process)."""
    root = tmp_path_factory.mktemp("ray")
    spec = root / "tiny.yaml"
    spec.write_text(TINY)
    result = run_bench(spec, root / "local", jobs=1, quiet=True)
    assert not result.failed
    return spec, root


def test_ray_grid_equals_the_local_grid(ray_session, reference):
    spec, root = reference
    out = root / "ray"
    result = run_bench(spec, out, jobs=2, quiet=True, executor="ray")
    assert not result.failed and result.summary["ran_now"] == 4
    assert result.summary["executor"] == "ray" and result.summary["jobs"] == 2
    assert table(out) == table(root / "local")  # same seeds, same metrics, same selection, same fingerprints
    for run in plan(load_spec(spec)):
        record = json.loads(Cell(out, run.rel_dir).record_path.read_text())
        assert record["status"] == "finished" and len(record["attempts"]) == 1
        assert record["attempts"][0]["pid"] != os.getpid()  # trained in a Ray worker process
        assert not CellLock(Cell(out, run.rel_dir).lock_path).held_elsewhere()
        assert (out / run.rel_dir / "timing.json").exists()
    assert ray.is_initialized()  # a connection the bench found is left open


def test_ray_resumes_a_grid_and_the_cli_reports_it(ray_session, reference, capsys):
    """Half the cells finished (by the local executor), the other half left to Ray: only those are trained, and
    the table equals the local one; a second invocation trains nothing."""
    spec, root = reference
    out = root / "half"
    shutil.copytree(root / "local", out)
    runs = plan(load_spec(spec))
    for run in runs[1::2]:
        cell = Cell(out, run.rel_dir)
        shutil.rmtree(cell.run_dir)
        cell.record_path.unlink()
    assert main(["bench", str(spec), "--out", str(out), "--executor", "ray", "--jobs", "2", "--quiet"]) == 0
    stdout = capsys.readouterr().out
    assert "4 runs (2 now, 2 already finished)" in stdout and "with 2 job(s) on ray" in stdout
    assert table(out) == table(root / "local")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("metrics.json")}
    result = run_bench(spec, out, jobs=2, quiet=True, executor="ray")
    assert result.summary["ran_now"] == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("metrics.json")} == before


def test_a_failed_cell_is_reported_as_the_local_executor_reports_it(ray_session, tmp_path):
    spec = tmp_path / "diverging.yaml"
    spec.write_text(DIVERGING)
    local = run_bench(spec, tmp_path / "local", jobs=1, quiet=True)
    remote = run_bench(spec, tmp_path / "ray", jobs=2, quiet=True, executor="ray")
    assert len(local.failed) == 1 and remote.failed == local.failed
    assert "loss became nan at epoch 1" in remote.failed[0][1]
    run = plan(load_spec(spec))[0]
    for out in ("local", "ray"):
        record = json.loads(Cell(tmp_path / out, run.rel_dir).record_path.read_text())
        assert record["status"] == "failed" and record["error"] == local.failed[0][1]
        assert not (tmp_path / out / run.rel_dir / "metrics.json").exists()
    assert table(tmp_path / "ray") == []  # never a row for a result not computed


# ---------------------------------------------------------------------------------------------- the executor
def _task(task):
    """A stand-in for ``attempt_cell`` (shipped to the Ray workers by value: this module is not installed)."""
    mode = task["mode"]
    if mode == "die":
        os._exit(3)
    if mode == "raise":
        raise ValueError("boom")
    if mode == "sleep":  # Ray's cancel raises KeyboardInterrupt between bytecodes, as in a training loop
        for _ in range(12000):
            time.sleep(0.01)
    return "trained", task["wall"]


@pytest.fixture
def by_value():
    from ray import cloudpickle  # Ray's own copy pickles the tasks

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


def _drain(executor, timeout=60.0):
    events, deadline = [], time.monotonic() + timeout
    while executor.busy() and time.monotonic() < deadline:
        events += executor.poll(0.2)
    return sorted(events)


def _cfg(mode, **extra):
    return {"mode": mode, "config": {"train": {"device": "cpu", "devices": 1}}, **extra}


def test_outcomes_failures_deaths_and_stop(ray_session, by_value):
    """Ray's outcomes in the runner's terms: a result, an exception (failed, one line), a dead worker (died, never
    retried), a cell needing GPUs the cluster lacks (failed at once), and stop() interrupting running tasks."""
    ex = RayExecutor(_task, jobs=4)
    ex.check()
    ex.start(4)
    try:
        assert ex.slots == 4 and ex.free() == 4
        ex.submit(0, _cfg("ok", wall=1.5))
        ex.submit(1, _cfg("raise"))
        ex.submit(2, _cfg("die"))
        ex.submit(3, {"mode": "ok", "config": {"train": {"device": "cuda", "devices": 2}}})
        assert ex.free() == 0
        events = _drain(ex)
        assert [(k, kind) for k, kind, _ in events] == [(0, "trained"), (1, "failed"), (2, "died"), (3, "failed")]
        assert events[0][2] == 1.5 and events[1][2] == "ValueError: boom"
        assert "needs 2 GPU(s)" in events[3][2] and "\n" not in events[2][2]
        ex.submit(4, _cfg("sleep"))
        ex.submit(5, _cfg("sleep"))
        time.sleep(3)  # let them start
        t0 = time.monotonic()
        stopped = ex.stop(60.0, hurry=lambda: False)  # a loaded machine may need seconds; the tasks sleep 120 s
        assert sorted((k, kind) for k, kind, _ in stopped) == [(4, "interrupted"), (5, "interrupted")]
        assert time.monotonic() - t0 < 60 and ex.busy() == 0
    finally:
        ex.close()
    assert ray.is_initialized()


def test_starts_its_own_instance_and_shuts_it_down(ray_session, monkeypatch):
    """Without --address: ray.init(address="local", num_cpus=jobs, no dashboard, quiet), shutdown at close; with
    --address: ray.init(address=...) and its failure one line naming the address."""
    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(("init", kw)))
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append(("shutdown", None)))
    ex = RayExecutor(_task, jobs=3)
    ex.start(5)
    ex.close()
    assert calls == [("init", {"address": "local", "num_cpus": 3, "include_dashboard": False,
                               "logging_level": logging.ERROR, "log_to_driver": False}), ("shutdown", None)]
    calls.clear()
    ex = RayExecutor(_task, jobs=None, address="10.0.0.1:6379")
    ex.start(5)
    assert ex.slots == 2  # the cluster's CPUs (here the module's instance)
    ex.close()
    assert calls[0] == ("init", {"address": "10.0.0.1:6379", "logging_level": logging.ERROR,
                                 "log_to_driver": False}) and calls[1] == ("shutdown", None)

    def refuse(**kw):
        raise ConnectionError("could not find any running Ray instance")

    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(ConfigError, match=r"^--address 10\.0\.0\.1:6379: cannot connect to a Ray cluster "
                                          r"\(ConnectionError: could not find any running Ray instance\)$"):
        RayExecutor(_task, address="10.0.0.1:6379").start(1)
