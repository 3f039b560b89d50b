"""Choosing an executor (``--executor``, ``--address``, ``--jobs``): bad values and a missing Ray are one line,
before anything is written. (The Ray executor itself: test_ray.py; the local one: test_runner.py,
test_signals.py, test_ledger.py.)"""

from __future__ import annotations

import sys

import pytest

from interplay.bench.executors import InlineExecutor, LocalExecutor, RayExecutor, make_executor
from interplay.bench.runner import attempt_cell, run_bench
from interplay.cli import main
from interplay.errors import ConfigError

from .helpers import TINY


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def _one_line(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def test_missing_ray_is_one_line_naming_the_extra(spec, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "out"
    code, stdout, err = _one_line(capsys, ["bench", str(spec), "--out", str(out), "--executor", "ray"])
    assert code == 2 and stdout == "" and err == [
        "interplay: error: --executor ray needs the optional dependency ray (pip install 'interplay[ray]')"]
    assert not out.exists()
    with pytest.raises(ConfigError, match=r"interplay\[ray\]"):
        run_bench(spec, out, executor="ray")


@pytest.mark.parametrize("extra, message", [
    (["--executor", "slurm"], "--executor: expected one of local, ray, got 'slurm'"),
    (["--address", "auto"], "--address auto: only with --executor ray (the local executor runs on this machine)"),
    (["--executor", "ray", "--address", " "], "--address: expected a Ray address (auto, HOST:PORT or "
                                              "ray://HOST:PORT), got ' '"),
    (["--jobs", "0", "--executor", "ray"], "--jobs: expected a positive integer, got 0"),
    (["--executor", "slurm", "--print-commands"], "--executor: expected one of local, ray, got 'slurm'"),
])
def test_bad_executor_options_are_one_line(spec, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    code, stdout, err = _one_line(capsys, ["bench", str(spec), "--out", str(out), *extra])
    assert code == 2 and stdout == "" and err == [f"interplay: error: {message}"]
    assert not out.exists()


def test_make_executor_picks_the_implementation():
    assert isinstance(make_executor("local", attempt_cell), InlineExecutor)
    assert isinstance(make_executor("local", attempt_cell, 1), InlineExecutor)
    local = make_executor("local", attempt_cell, 3)
    assert isinstance(local, LocalExecutor) and local.slots == 3
    ray = make_executor("ray", attempt_cell, 2, " auto ")
    assert isinstance(ray, RayExecutor) and ray.address == "auto" and ray.jobs == 2
    with pytest.raises(ConfigError, match="--jobs: expected a positive integer, got True"):
        make_executor("local", attempt_cell, True)
