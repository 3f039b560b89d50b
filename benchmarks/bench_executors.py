"""The bench's executors side by side: one grid run by ``--executor local`` and by ``--executor ray`` (a local Ray
instance), each in a fresh ``interplay bench`` process with the same ``--jobs``; wall times, their ratio, and
whether the two results.csv are equal (apart from the timing columns ``wall_s`` and ``train_time_s``).

    python benchmarks/bench_executors.py                       # the 4-cell tiny grid of the tests, --jobs 2
    python benchmarks/bench_executors.py --grid demo --jobs 2  # the acceptance check of issue 14 (minutes)
    python benchmarks/bench_executors.py --keep /tmp/h2        # keep the bench directories (OUT/local, OUT/ray)

The order alternates with ``--repeat`` (local first, then ray first, ...) so load drift hits both alike. The
last line is ``ray/local wall-time ratio: X.XX; results equal: True``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

#: the 4-cell grid the bench tests use too (tests/bench/helpers.py)
TINY_GRID = Path(__file__).with_name("tiny_grid.yaml")

TIMING = ("wall_s", "train_time_s")


def _table(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _bench(grid: str, out: Path, executor: str, jobs: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "interplay.cli", "bench", grid, "--out", str(out), "--jobs", str(jobs),
           "--executor", executor, "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="tiny", help="a bench preset or YAML file (default: the tiny 4-cell grid)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs (alternating order)")
    parser.add_argument("--keep", help="put the bench directories here (OUT/local, OUT/ray) and keep them")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-executors-"))
    root.mkdir(parents=True, exist_ok=True)
    grid = str(TINY_GRID) if args.grid == "tiny" else args.grid
    walls: dict[str, list[float]] = {"local": [], "ray": []}
    equal = True
    try:
        for k in range(args.repeat):
            order = ("local", "ray") if k % 2 == 0 else ("ray", "local")
            for executor in order:
                wall = _bench(grid, root / executor, executor, args.jobs)
                walls[executor].append(wall)
                print(f"{executor:>5}: {wall:7.1f} s wall ({args.grid}, --jobs {args.jobs})", flush=True)
            equal = equal and _table(root / "local") == _table(root / "ray")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    local, ray = min(walls["local"]), min(walls["ray"])
    print(f"ray/local wall-time ratio: {ray / local:.2f}; results equal: {equal}")


if __name__ == "__main__":
    main()
