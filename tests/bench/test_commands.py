"""``interplay bench --print-commands``: one ``interplay train`` line per unfinished cell, reproducing the cell
exactly (config, run directory in the bench layout), so that the bench afterwards collects them as finished."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from interplay.bench import runner as runner_mod
from interplay.bench.commands import _yaml_value, cell_command
from interplay.bench.grid import load_spec, plan
from interplay.bench.ledger import Cell
from interplay.bench.presets import preset_paths
from interplay.bench.runner import run_bench
from interplay.cli import build_parser, config_from_args, main
from interplay.config import parse_override
from interplay.engine import resolve_config

from .helpers import TINY, table

#: what differs between two trainings of the same config: wall-clock times
TIME_KEYS = ("train_time_s", "time_s", "epoch_time_s", "wall_s")


def _to_config(argv):
    return config_from_args(build_parser().parse_args(argv))


def _strip_times(obj):
    if isinstance(obj, dict):
        return {k: _strip_times(v) for k, v in obj.items() if k not in TIME_KEYS and not k.endswith("_time_s")}
    if isinstance(obj, list):
        return [_strip_times(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The 4-cell grid trained by the bench (local executor, in this process)."""
    root = tmp_path_factory.mktemp("commands")
    spec = root / "tiny.yaml"
    spec.write_text(TINY)
    assert not run_bench(spec, root / "bench", jobs=1, quiet=True).failed
    return spec, root


def _print(capsys, *argv):
    code = main(["bench", *map(str, argv), "--print-commands"])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def test_printed_commands_train_what_the_bench_trains(reference, capsys, monkeypatch):
    """Each printed line, run as it is, writes the run directory the bench writes (same config.yaml, metrics,
    per-epoch log and predictions); the bench then finds every cell finished and writes the same results.csv."""
    spec, root = reference
    out = root / "cmds"
    code, lines, err = _print(capsys, spec, "--out", out)
    assert code == 0 and len(lines) == 4 and err == [
        f"bench tiny: 4 of 4 cells to train (0 finished in {out}); afterwards `interplay bench {spec} --out {out}` "
        f"collects them into results.csv"]
    assert not out.exists()  # printing writes nothing
    runs = plan(load_spec(spec))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a bench worker trains (and OMP_NUM_THREADS=1 in a job script)
    try:
        for line, run in zip(lines, runs):
            argv = shlex.split(line)
            assert argv[:2] == ["interplay", "train"] and argv[argv.index("--out") + 1] == str(out / run.rel_dir)
            assert main(argv[1:]) == 0
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    for run in runs:
        mine, theirs = out / run.rel_dir, root / "bench" / run.rel_dir
        assert {p.name for p in theirs.iterdir()} - {p.name for p in mine.iterdir()} == {"timing.json"}
        for name in ("config.yaml", "predictions.csv"):
            assert (mine / name).read_bytes() == (theirs / name).read_bytes(), name
        assert _strip_times(json.loads((mine / "metrics.json").read_text())) == \
            _strip_times(json.loads((theirs / "metrics.json").read_text()))
        log = [_strip_times(json.loads(x)) for x in (mine / "log.jsonl").read_text().splitlines()]
        assert log == [_strip_times(json.loads(x)) for x in (theirs / "log.jsonl").read_text().splitlines()]
    monkeypatch.setattr(runner_mod, "_run_one", lambda *a: pytest.fail("a cell trained by a command was retrained"))
    result = run_bench(spec, out, jobs=1, quiet=True)
    assert result.summary["ran_now"] == 0 and not result.failed
    assert table(out) == table(root / "bench")  # same metrics, selection, fingerprints
    code, lines, err = _print(capsys, spec, "--out", out)
    assert code == 0 and lines == [] and "0 of 4 cells to train (4 finished" in err[0]


def test_only_unfinished_cells_are_printed_and_stale_ones_refused(reference, capsys, tmp_path):
    spec, root = reference
    runs = plan(load_spec(spec))
    code, lines, _ = _print(capsys, spec, "--out", root / "bench")
    assert code == 0 and lines == []
    # a failed cell is printed again (as the bench retries it)
    partial = tmp_path / "partial"
    shutil.copytree(root / "bench", partial)
    failed = Cell(partial, runs[2].rel_dir)
    shutil.rmtree(failed.run_dir)
    failed.write_record({**json.loads(failed.record_path.read_text()), "status": "failed", "error": "boom"})
    code, lines, _ = _print(capsys, spec, "--out", partial)
    assert code == 0 and len(lines) == 1 and lines[0].endswith(f"--out {partial / runs[2].rel_dir} --quiet")
    changed = tmp_path / "changed.yaml"
    changed.write_text(TINY.replace("epochs: 1", "epochs: 2"))
    code, lines, err = _print(capsys, changed, "--out", partial)
    assert code == 2 and lines == [] and len(err) == 1 and "train.epochs: 1 -> 2" in err[0]
    assert "--rerun-changed" in err[0]


def test_every_preset_cell_survives_the_command_line(capsys):
    """For one cell (seed 0) of every (dataset, method) of every shipped preset: the printed line, split as a
    shell splits it and read by the CLI, resolves to exactly the cell's config, in its run directory; and it is
    the short form (only what differs from `interplay train --data D --method M`)."""
    parser = build_parser()
    checked = 0
    for path in preset_paths().values():
        spec = load_spec(path, seeds=1)  # seed 0 (the seed of a command: the tiny grid's seed 1 above)
        for method in spec.methods:  # the last point of each search: the grid's other points differ only there
            method.search = {k: v[-1:] for k, v in method.search.items()}
        for run in plan(spec):
            line = cell_command(run, "OUT DIR", lambda argv: config_from_args(parser.parse_args(argv)))
            argv = shlex.split(line)
            parsed = parser.parse_args(argv[1:])
            assert parsed.out == str(Path("OUT DIR") / run.rel_dir)
            assert resolve_config(config_from_args(parsed)).to_dict() == run.config.to_dict(), line
            assert "--set data.name" not in line and "--set train.lr=0.0003" not in line, line
            checked += 1
    assert checked >= 20


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3),
    max_leaves=6)


@settings(max_examples=100, deadline=None)
@given(JSONISH)
def test_set_values_parse_back_exactly(value):
    """`--set KEY=<printed>` through a shell and the CLI's YAML reading gives the value back (types included:
    the string '010' stays a string, 1e-05 a float)."""
    arg = shlex.split(shlex.join([f"--set=method.x={_yaml_value(value)}"]))[0].removeprefix("--set=")
    key, back = parse_override(arg)
    assert key == "method.x"
    assert back == value and type(back) is type(value)
