"""The bench directory as a ledger: fingerprints, refusal of changed grids, --rerun-changed, marked tables,
failed cells, locks (in-process; the tests with real processes and signals are in test_signals.py)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from interplay._version import __version__
from interplay.bench import ledger
from interplay.bench import runner as runner_mod
from interplay.bench.grid import load_spec, plan
from interplay.bench.ledger import Cell, CellLock, digest, fingerprint
from interplay.bench.report import make_report, summary_tables
from interplay.bench.runner import run_bench
from interplay.cli import main
from interplay.errors import ConfigError

from .helpers import TINY, snapshot, table, wait_for


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    base = tmp_path_factory.mktemp("ledger")
    spec = base / "b.yaml"
    spec.write_text(TINY)
    result = run_bench(spec, base / "out", jobs=1, quiet=True)
    assert not result.failed and len(result.rows) == 4
    return spec, base / "out"


@pytest.fixture
def bench(finished, tmp_path):
    """A private copy of the finished tiny grid: (spec path, out dir)."""
    spec, out = finished
    shutil.copy(spec, tmp_path / "b.yaml")
    shutil.copytree(out, tmp_path / "out")
    return tmp_path / "b.yaml", tmp_path / "out"


def _no_training(monkeypatch):
    monkeypatch.setattr(runner_mod, "_run_one", lambda *a: pytest.fail("a cell was trained"))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("interplay: error: ")
    return err[0]


def test_every_cell_records_its_fingerprint(finished):
    spec, out = finished
    for run in plan(load_spec(spec)):
        rec = json.loads(Cell(out, run.rel_dir).record_path.read_text())
        assert rec["fingerprint"] == fingerprint(run.config)
        assert rec["fingerprint"]["interplay"] == __version__
        assert rec["fingerprint"]["config"]["data"]["n_train"] == 100  # data parameters are part of it
        assert rec["status"] == "finished" and len(rec["attempts"]) == 1
    rows = table(out)
    assert {r["fingerprint"] for r in rows} == {digest(fingerprint(r.config)) for r in plan(load_spec(spec))}


@pytest.mark.parametrize("old, new, change", [
    ("epochs: 1", "epochs: 2", "train.epochs: 1 -> 2"),
    ("beta: 0.1", "beta: 0.5", "method.beta: 0.1 -> 0.5"),
    ("n_train: 100", "n_train: 80", "data.n_train: 100 -> 80"),
    ("redundant=0.5,synergistic=0.5", "redundant=0.6,synergistic=0.4",
     'data.mix: "redundant=0.5,synergistic=0.5" -> "redundant=0.6,synergistic=0.4"'),
], ids=["epochs", "method-param", "data-param", "data-mix"])
def test_changed_grid_is_refused_before_anything_is_written(bench, monkeypatch, capsys, old, new, change):
    spec, out = bench
    spec.write_text(spec.read_text().replace(old, new))
    before = snapshot(out)
    _no_training(monkeypatch)
    assert main(["bench", str(spec), "--out", str(out), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert change in line and "--rerun-changed" in line and "were run with other settings" in line
    assert snapshot(out) == before  # bench.yaml, results.csv, records: untouched
    with pytest.raises(ConfigError, match="--rerun-changed"):  # the library says the same
        run_bench(spec, out, jobs=1, quiet=True)


def test_package_version_is_part_of_the_fingerprint(bench, monkeypatch, capsys):
    spec, out = bench
    monkeypatch.setattr(ledger, "__version__", "99.0")
    _no_training(monkeypatch)
    assert main(["bench", str(spec), "--out", str(out), "--quiet"]) == 2
    assert f"interplay version: {__version__} -> 99.0" in _one_error_line(capsys)


def test_rerun_changed_moves_stale_cells_aside_and_trains_them(bench):
    spec, out = bench
    old_metrics = {p.relative_to(out): p.read_bytes() for p in out.rglob("metrics.json")}
    spec.write_text(spec.read_text().replace("beta: 0.1", "beta: 0.5"))
    messages: list[str] = []
    result = run_bench(spec, out, jobs=1, quiet=True, rerun_changed=True, notify=messages.append)
    assert result.summary["ran_now"] == 2 and len(result.stale) == 2  # conf_penalty's two seeds; joint kept
    assert result.moved_to is not None and result.moved_to.parent == out / "stale"
    assert len(messages) == 1 and str(result.moved_to) in messages[0] and "kept, not deleted" in messages[0]
    for rel, content in old_metrics.items():  # joint untouched; conf_penalty's old results kept, same layout
        kept = out / rel if "/joint/" in rel.as_posix() else result.moved_to / rel
        assert kept.read_bytes() == content
    rows = table(out)
    assert len(rows) == 4
    assert {json.loads(r["hyperparameters"])["beta"] for r in rows if r["method"] == "conf_penalty"} == {0.5}
    again = run_bench(spec, out, jobs=1, quiet=True)  # now the ledger matches: nothing to do, nothing refused
    assert again.summary["ran_now"] == 0 and table(out) == rows


def test_tables_show_only_cells_matching_the_grid(bench, monkeypatch):
    spec, out = bench
    run = next(r for r in plan(load_spec(spec)) if r.method.label == "joint" and r.seed == 1)
    cell = Cell(out, run.rel_dir)
    rec = json.loads(cell.record_path.read_text())
    rec["fingerprint"]["config"]["train"]["epochs"] = 7  # as if trained with other settings
    cell.record_path.write_text(json.dumps(rec))
    text = summary_tables(out)
    joint = next(line for line in text.splitlines() if line.startswith("| joint"))
    assert "(n=1/2)" in joint and "(n=" not in next(line for line in text.splitlines()
                                                     if line.startswith("| conf_penalty"))
    assert "1 run with other settings" in text
    report = make_report(out).read_text()
    assert "(n=1/2)" in report and "3 of 4 runs finished" in report
    # the bench refuses (names the field), and results.csv is never rebuilt with the stale cell in it
    with pytest.raises(ConfigError, match=r"train.epochs: 7 -> 1"):
        run_bench(spec, out, jobs=1, quiet=True)
    _no_training(monkeypatch)
    rows = runner_mod.collect(out, plan(load_spec(spec)))
    assert str(run.rel_dir) not in {r["run_dir"] for r in rows}
    assert not any(r["selected"] for r in rows if r["method"] == "joint" and r["seed"] == 1)


def test_failed_cell_is_marked_and_retried(bench, monkeypatch, capsys):
    spec, out = bench
    run = next(r for r in plan(load_spec(spec)) if r.method.label == "conf_penalty" and r.seed == 1)
    cell = Cell(out, run.rel_dir)
    shutil.rmtree(cell.run_dir)
    cell.record_path.unlink()
    real = runner_mod._run_one

    def fail(config, run_dir):
        raise RuntimeError("boom")

    monkeypatch.setattr(runner_mod, "_run_one", fail)
    assert main(["bench", str(spec), "--out", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == f"interplay: error: run {run.rel_dir} failed: RuntimeError: boom"
    cp = next(line for line in captured.out.splitlines() if line.startswith("| conf_penalty"))
    assert "(n=1/2)" in cp
    assert "**failed**: conf_penalty seed 1 (RuntimeError: boom)" in captured.out
    rec = json.loads(cell.record_path.read_text())
    assert rec["status"] == "failed" and rec["error"] == "RuntimeError: boom" and "Traceback" in rec["traceback"]
    assert len(table(out)) == 3
    monkeypatch.setattr(runner_mod, "_run_one", real)
    result = run_bench(spec, out, jobs=1, quiet=True)  # a failed cell is retried
    assert result.summary["ran_now"] == 1 and not result.failed and len(table(out)) == 4
    assert len(json.loads(cell.record_path.read_text())["attempts"]) == 2


def test_run_directories_from_before_the_ledger(bench, monkeypatch):
    """A bench directory without records is judged by its runs' config.yaml and env.json."""
    spec, out = bench
    for p in out.rglob("*.cell.json"):
        p.unlink()
    _no_training(monkeypatch)
    assert run_bench(spec, out, jobs=1, quiet=True).summary["ran_now"] == 0
    assert len(table(out)) == 4
    spec.write_text(spec.read_text().replace("epochs: 1", "epochs: 2"))
    with pytest.raises(ConfigError, match=r"4 of 4 cells \(4 finished\) were run with other settings "
                                          r"\(train.epochs: 1 -> 2\)"):
        run_bench(spec, out, jobs=1, quiet=True)


def test_lock_of_a_dead_process_is_taken_over(bench):
    spec, out = bench
    run = plan(load_spec(spec))[0]
    cell = Cell(out, run.rel_dir)
    shutil.rmtree(cell.run_dir)
    cell.record_path.unlink()
    cell.lock_path.write_text(json.dumps({"pid": 999999999, "host": "gone", "since": "yesterday"}))
    result = run_bench(spec, out, jobs=1, quiet=True)
    assert result.summary["ran_now"] == 1 and len(table(out)) == 4
    assert json.loads(cell.lock_path.read_text())["pid"] == os.getpid()


def test_cell_locked_elsewhere_is_waited_for(bench):
    """A cell another process is training is skipped, waited for at the end, and not trained twice."""
    spec, out = bench
    runs = plan(load_spec(spec))
    for r in runs:  # all four cells to do again
        shutil.rmtree(Cell(out, r.rel_dir).run_dir)
        Cell(out, r.rel_dir).record_path.unlink()
    held = Cell(out, runs[0].rel_dir)
    other = CellLock(held.lock_path)  # "another bench" (its own open file, so its own lock)
    assert other.acquire()
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", run_bench(spec, out, jobs=1, quiet=True)))
    thread.start()
    try:
        assert wait_for(lambda: len(list(out.rglob("metrics.json"))) == 3, 60), "the free cells were not trained"
        assert thread.is_alive() and not (held.run_dir / "metrics.json").exists()
        # the other bench finishes the cell, then lets go
        fp = fingerprint(runs[0].config)
        held.write_record({**ledger.new_record(fp, None), "status": "finished"})
        runner_mod._run_one(runs[0].config.to_dict(), str(held.run_dir))
    finally:
        other.release()
    thread.join(60)
    result = box["result"]
    assert result.summary["ran_now"] == 3 and result.summary["finished_elsewhere"] == 1
    assert len(table(out)) == 4
    for r in runs:
        assert len(json.loads(Cell(out, r.rel_dir).record_path.read_text())["attempts"]) == 1


def test_unknown_mix_source_fails_before_any_directory(tmp_path, capsys):
    """Needs resolve_config to check pid-xor's mix (another change); one line, nothing created."""
    spec = tmp_path / "b.yaml"
    spec.write_text(TINY.replace("redundant=0.5,synergistic=0.5", "redundant=0.5,bogus=0.5"))
    out = tmp_path / "out"
    assert main(["bench", str(spec), "--out", str(out), "--jobs", "2", "--quiet"]) == 2
    assert "bogus" in _one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--jobs", "0"], "--jobs: expected a positive integer, got 0"),
    (["--seeds", "0"], "seeds must be a positive integer"),
    (["@dataset=nope"], "unknown dataset 'nope'"),
    (["@method=nope"], "unknown method 'nope'"),
    (["@file=nope"], "nope: no such benchmark file or preset; presets: "),
    (["@file="], "expected a benchmark YAML file or a preset name"),
    (["@out="], "--out DIR is required"),
], ids=["jobs0", "seeds0", "dataset", "method", "preset", "no-file", "no-out"])
def test_bad_inputs_one_line_nothing_written(tmp_path, capsys, args, message):
    spec = tmp_path / "b.yaml"
    text = TINY
    file, out = str(spec), str(tmp_path / "out")
    for a in [a for a in args if a.startswith("@")]:
        key, _, value = a[1:].partition("=")
        if key == "dataset":
            text = text.replace("name: pid-xor", f"name: {value}")
        elif key == "method":
            text = text.replace("  - joint", f"  - {value}")
        elif key == "file":
            file = value
        else:
            out = value
    spec.write_text(text)
    argv = ["bench", *([file] if file else []), *(["--out", out] if out else []), "--quiet",
            *[a for a in args if not a.startswith("@")]]
    assert main(argv) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_bench_list_prints_the_presets(capsys):
    assert main(["bench", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert {"demo", "synib_xor", "interactions", "mfeat", "omib_beta"} <= set(names)
    assert all(len(line.split(None, 1)) == 2 for line in lines)


@pytest.fixture
def unprivileged():
    """Run the body without root's permission override (seteuid to nobody and back), in a world-readable
    temporary folder (pytest's own is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="interplay-ro-"))
    base.chmod(0o755)
    root = hasattr(os, "geteuid") and os.geteuid() == 0

    class Context:
        folder = base

        def __enter__(self):
            if root:
                os.seteuid(65534)

        def __exit__(self, *exc):
            if root:
                os.seteuid(0)

    try:
        yield Context()
    finally:
        for p in [base, *base.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_read_only_output_directory(finished, unprivileged, capsys):
    spec, done = finished
    base = unprivileged.folder
    shutil.copy(spec, base / "b.yaml")
    (base / "b.yaml").chmod(0o644)
    ro = base / "ro"
    ro.mkdir()
    shutil.copytree(done, ro / "bench")
    for p in [ro, *ro.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    with unprivileged:
        code_new = main(["bench", str(base / "b.yaml"), "--out", str(ro / "new"), "--quiet"])
        err_new = capsys.readouterr().err.strip().splitlines()
        code_done = main(["bench", str(base / "b.yaml"), "--out", str(ro / "bench"), "--quiet"])
        err_done = capsys.readouterr().err.strip().splitlines()
        code_report = main(["report", str(ro / "bench")])
        err_report = capsys.readouterr().err.strip().splitlines()
    assert code_new == 2 and len(err_new) == 1 and f"--out {ro / 'new'}: cannot write" in err_new[0]
    assert "Permission denied" in err_new[0]
    assert code_done == 2 and len(err_done) == 1 and f"--out {ro / 'bench'}: cannot write" in err_done[0]
    assert code_report == 2 and len(err_report) == 1
    assert "permission denied" in err_report[0] and str(ro / "bench") in err_report[0]
    assert not (ro / "new").exists() and not (ro / "bench" / "report.md").exists()


def test_ctrl_c_with_one_job(bench, monkeypatch, capsys):
    """``--jobs 1`` trains in the bench's own process: KeyboardInterrupt stops it, one line, exit 130."""
    spec, out = bench
    run = plan(load_spec(spec))[1]
    cell = Cell(out, run.rel_dir)
    shutil.rmtree(cell.run_dir)
    cell.record_path.unlink()

    def interrupted(config, run_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner_mod, "_run_one", interrupted)
    assert main(["bench", str(spec), "--out", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["interplay: interrupted: stopped: 3 of 4 cells finished, 1 stopped mid-run (they resume from "
                   "their last finished epoch); rerun the same command to resume"]
    assert not CellLock(cell.lock_path).held_elsewhere()  # the lock was let go


def test_a_field_added_to_the_schema_later_at_its_default_is_no_change():
    """A cell recorded before a config field existed matches when the field holds its default (new options keep
    the old behaviour by default); any other value, or a removed field, is a change."""
    from interplay.config import RunConfig

    changes = ledger.changes
    new = fingerprint(RunConfig())
    old = {"interplay": new["interplay"], "config": {k: dict(v) for k, v in new["config"].items()}}
    del old["config"]["train"]["scheduler"]
    assert changes(old, new) == []
    changed = RunConfig()
    changed.train.scheduler = "cosine"
    assert changes(old, fingerprint(changed)) == ['train.scheduler: (unset) -> "cosine"']
    assert changes(new, {"interplay": new["interplay"], "config": old["config"]}) == \
        ['train.scheduler: "none" -> (unset)']
