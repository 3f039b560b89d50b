"""The bench runner: parallel, resumable, validation-based selection; the report."""

import csv
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from interplay.bench import runner as runner_mod
from interplay.bench.report import make_report
from interplay.bench.runner import run_bench

from .helpers import bench_cmd, children, env, popen, wait_for

SPEC = """
name: t
seeds: 2
model: {encoder_hidden: [16], fusion_hidden: [16]}
train: {epochs: 2}
datasets:
  - {name: pid-xor, label: mixed, params: {mix: "redundant=0.5,synergistic=0.5", n_train: 200, n_test: 100}}
methods:
  - joint
  - {name: conf_penalty, search: {beta: [0.1, 2.0]}}
"""


#: the kill test's grid: runs of a few tenths of a second, so that kills land inside runs and between them
KILL_SPEC = SPEC.replace("epochs: 2", "epochs: 30")


def _table(path: Path) -> list[dict]:
    rows = list(csv.DictReader((path / "results.csv").open()))
    for r in rows:
        r.pop("wall_s")
        r.pop("train_time_s")
    return rows


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    spec = out / "b.yaml"
    spec.write_text(SPEC)
    result = run_bench(spec, out / "bench", jobs=1, quiet=True)
    return spec, out / "bench", result


def test_results_table_and_selection(reference):
    _, out, result = reference
    rows = _table(out)
    assert len(rows) == 6 and not result.failed
    assert {"dataset", "method", "seed", "selected", "searched", "hyperparameters", "wall_s", "test.accuracy",
            "val.accuracy", "test.accuracy_by_interaction.synergistic"} <= set(csv.DictReader(
                (out / "results.csv").open()).fieldnames)
    for seed in ("0", "1"):
        cp = [r for r in rows if r["method"] == "conf_penalty" and r["seed"] == seed]
        chosen = [r for r in cp if r["selected"] == "True"]
        assert len(chosen) == 1
        assert float(chosen[0]["val.accuracy"]) == max(float(r["val.accuracy"]) for r in cp)
    assert (out / "selection.json").exists() and (out / "bench.json").exists()


def test_rerun_skips_finished_runs(reference, monkeypatch):
    spec, out, _ = reference
    before = {p: p.stat().st_mtime_ns for p in out.rglob("metrics.json")}
    monkeypatch.setattr(runner_mod, "_run_one", lambda *a: pytest.fail("a finished run was recomputed"))
    result = run_bench(spec, out, jobs=1, quiet=True)
    assert result.summary["ran_now"] == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("metrics.json")} == before


def test_report_writes_markdown_and_plots(reference):
    _, out, _ = reference
    path = make_report(out)
    text = path.read_text()
    assert "| joint" in text and "synergistic" in text and "±" in text
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    for kind in ("interactions", "beta", "curves"):
        assert any(kind in p for p in pngs), kind
    for name in pngs:
        assert f"plots/{name}" in text


@pytest.fixture(scope="module")
def kill_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("kill")
    spec = out / "b.yaml"
    spec.write_text(KILL_SPEC)
    run_bench(spec, out / "bench", jobs=1, quiet=True)
    return spec, out / "bench"


def _epochs_done(out: Path) -> int:
    """Finished epochs over all runs of a bench directory (from the log files)."""
    total = 0
    for log in out.rglob("log.jsonl"):
        try:
            total += len(log.read_text().splitlines())
        except OSError:
            pass
    return total


def _kill_after_progress(cmd: list[str], out: Path, delay: float) -> bool:
    """Start ``cmd``; once it has finished an epoch (past start-up), wait ``delay`` seconds and SIGKILL its
    whole process group (the main process and its workers). False if it finished before the kill."""
    before = _epochs_done(out)
    proc = popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: _epochs_done(out) > before or proc.poll() is not None, 120)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode in (0, -signal.SIGKILL)
    return proc.returncode == -signal.SIGKILL


def test_kill_and_resume_equals_uninterrupted(kill_reference, tmp_path):
    """SIGKILL of the whole process group at random points (seeded), three times, with one worker and with two;
    then the same command again: the table equals an uninterrupted run's, finished runs untouched."""
    spec, ref_out = kill_reference
    out = tmp_path / "bench"
    rng = random.Random(20)
    first_finished = None
    rows_before: dict[str, dict] = {}
    finished: dict[Path, bytes] = {}
    # one kill with two workers (which resume what the first kill left), two cheaper ones: every process imports
    # torch, which is most of this test's time
    for jobs in ["1", "2", "1"]:
        if not _kill_after_progress(bench_cmd(spec, out, "--jobs", jobs), out, rng.uniform(0.0, 0.4)):
            break  # (a fast machine finished the grid: nothing left to kill)
        finished.update({p: p.read_bytes() for p in out.rglob("metrics.json") if p not in finished})
        if first_finished is None:
            first_finished = len(finished)
        if (out / "results.csv").exists():
            rows_before.update({r["run_dir"]: r for r in _table(out)})
    assert first_finished < 6, "the first kill should land mid-grid"
    done = subprocess.run(bench_cmd(spec, out, "--jobs", "1"), env=env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert {p: p.read_bytes() for p in finished} == finished  # finished runs untouched
    after = _table(out)
    for r in after:  # rows of runs finished before a kill keep their values
        if r["run_dir"] in rows_before:
            before_row = {k: v for k, v in rows_before[r["run_dir"]].items() if v != "" and k != "selected"}
            assert {k: r[k] for k in before_row} == before_row
    assert after == _table(ref_out)
    assert not [p for p in children(os.getpid()) if "interplay.cli" in _cmdline(p)]


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    except OSError:
        return ""
