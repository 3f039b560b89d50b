"""The bench runner: parallel, resumable, validation-based selection; the report."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interplay.bench import runner as runner_mod
from interplay.bench.report import make_report
from interplay.bench.runner import run_bench

SPEC = """
name: t
seeds: 2
model: {encoder_hidden: [16], fusion_hidden: [16]}
train: {epochs: 2}
datasets:
  - {name: pid-xor, label: mixed, params: {mix: "redundant=1,synergistic=1", n_train: 200, n_test: 100}}
methods:
  - joint
  - {name: conf_penalty, search: {beta: [0.1, 2.0]}}
"""


#: the kill test's grid: long enough runs (about 0.3 s each) that a kill after the first finished runs lands
#: mid-grid (with 2-epoch runs the whole grid sometimes finished between two polls)
SLOW_SPEC = SPEC.replace("epochs: 2", "epochs: 40")


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
def slow_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("slow")
    spec = out / "b.yaml"
    spec.write_text(SLOW_SPEC)
    run_bench(spec, out / "bench", jobs=1, quiet=True)
    return spec, out / "bench"


def test_kill_and_resume_equals_uninterrupted(slow_reference, tmp_path):
    """A real SIGKILL of a two-worker grid, then the same command again."""
    spec, ref_out = slow_reference
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "interplay.cli", "bench", str(spec), "--out", str(out), "--jobs", "2", "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.rglob("metrics.json")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p: p.read_bytes() for p in out.rglob("metrics.json")}
    assert 1 <= len(finished) < 6, "the kill should land mid-grid"
    rows_before = {r["run_dir"]: r for r in _table(out)} if (out / "results.csv").exists() else {}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert {p: p.read_bytes() for p in finished} == finished  # finished runs untouched
    after = _table(out)
    for r in after:  # rows of runs finished before the kill keep their values
        if r["run_dir"] in rows_before:
            before = {k: v for k, v in rows_before[r["run_dir"]].items() if v != "" and k != "selected"}
            assert {k: r[k] for k in before} == before
    assert after == _table(ref_out)
