"""Shared pieces of the bench tests: tiny grids, the CLI as a subprocess, process inspection without psutil."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

#: a grid of 4 cells that trains in about a second in total (once torch is warm); the executors benchmark runs it too
TINY = (Path(__file__).resolve().parents[2] / "benchmarks" / "tiny_grid.yaml").read_text()

#: metric columns compare; timing columns differ between two runs of the same grid
TIMING_COLUMNS = ("wall_s", "train_time_s")


def table(out: Path) -> list[dict[str, str]]:
    """results.csv without its timing columns."""
    with (out / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for key in TIMING_COLUMNS:
            r.pop(key, None)
    return rows


def bench_cmd(spec: Path | str, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "interplay.cli", "bench", str(spec), "--out", str(out), "--quiet", *extra]


def env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1")


def popen(cmd: list[str], **kwargs) -> subprocess.Popen:
    """The CLI in its own session (its own process group), output captured unless ``kwargs`` say otherwise."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **kwargs}
    return subprocess.Popen(cmd, env=env(), start_new_session=True, **options)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not Path("/proc").is_dir()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d.name))
    return out


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``root`` with its modification time and content."""
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}
