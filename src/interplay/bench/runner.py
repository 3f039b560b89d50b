"""``interplay bench``: run a grid in parallel worker processes, resumably, into one results table.

Layout of ``--out DIR``::

    bench.yaml                  the grid as last run
    runs/<dataset>/<method>/<hyperparameters>/seed<k>/   one run directory each (the core format) + timing.json
    results.csv                 one row per finished run (rebuilt from the run directories after every run)
    selection.json              the hyperparameters chosen on validation per (dataset, method, seed)
    bench.json                  grid wall time, summed run wall time, parallel efficiency

Interrupted (Ctrl-C or kill) and started again with the same command, finished runs are skipped (their
directories are complete and their rows are rebuilt from them unchanged) and unfinished runs resume from
their last epoch.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from ..errors import InterplayError
from ..io import atomic_write_csv, atomic_write_json, atomic_write_text, read_json
from ..metrics import selection_metric, selection_score
from .grid import RunSpec, load_spec, plan


def _run_one(config: dict[str, Any], run_dir: str) -> float:
    """Worker: train one run into ``run_dir`` (resuming if possible); returns wall seconds."""
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


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"test": {"accuracy": 1}}`` -> ``{"test.accuracy": 1}``."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def _validation_score(metrics: dict[str, Any], select_metric: str) -> float:
    key = selection_metric(select_metric, regression="mae" in metrics["val"])
    return selection_score(key, metrics["val"].get(key))


@dataclass
class BenchResult:
    rows: list[dict[str, Any]]
    failed: list[tuple[str, str]]
    summary: dict[str, Any]


def collect(out: Path, runs: list[RunSpec]) -> list[dict[str, Any]]:
    """One row per finished run (read from its directory), with the validation-based selection marked."""
    rows = []
    for r in runs:
        d = out / r.rel_dir
        if not (d / "metrics.json").exists():
            continue
        metrics = read_json(d / "metrics.json")
        timing = read_json(d / "timing.json") if (d / "timing.json").exists() else {}
        row: dict[str, Any] = {
            "dataset": r.dataset.label, "dataset_name": r.dataset.name,
            "dataset_params": json.dumps(r.dataset.params, sort_keys=True), "method": r.method.label,
            "method_name": r.method.name, "hyperparameters": json.dumps(r.config.method.params, sort_keys=True),
            "searched": json.dumps(r.hp, sort_keys=True), **{f"hp.{k}": v for k, v in r.hp.items()},
            "seed": r.seed, "run_dir": str(r.rel_dir), "wall_s": timing.get("wall_s"),
            "_score": _validation_score(metrics, r.config.train.select_metric),
        }
        row.update({k: v for k, v in flatten(metrics).items() if k not in ("method", "data", "seed")})
        rows.append(row)
    best: dict[tuple, dict[str, Any]] = {}
    for row in rows:  # first best in grid order wins ties
        key = (row["dataset"], row["method"], row["seed"])
        if key not in best or row["_score"] > best[key]["_score"]:
            best[key] = row
    for row in rows:
        row["selected"] = best[(row["dataset"], row["method"], row["seed"])] is row
        del row["_score"]
    return rows


def write_results(out: Path, rows: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    front = ["dataset", "method", "seed", "selected", "searched"]
    header = front + [k for k in keys if k not in front]
    atomic_write_csv(out / "results.csv", header, [[_cell(row.get(k)) for k in header] for row in rows])
    selection = defaultdict(dict)
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


def run_bench(path: str | Path, out: str | Path, seeds: int | None = None, jobs: int = 1,
              quiet: bool = False) -> BenchResult:
    """Run (or resume) the grid of ``path`` into ``out`` with ``jobs`` worker processes."""
    spec = load_spec(path, seeds)
    runs = plan(spec)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "bench.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False))
    pending = [r for r in runs if not (out / r.rel_dir / "metrics.json").exists()]
    bar = tqdm(total=len(runs), initial=len(runs) - len(pending), desc=f"bench {spec.name}", unit="run",
               disable=quiet, dynamic_ncols=True)
    failed: list[tuple[str, str]] = []
    walls: list[float] = []
    t0 = time.perf_counter()

    def done(run: RunSpec, fut: Future | None, wall: float | None, error: BaseException | None) -> None:
        if error is not None:
            msg = str(error) if isinstance(error, InterplayError) else "".join(
                traceback.format_exception_only(type(error), error)).strip()
            failed.append((str(run.rel_dir), msg))
            atomic_write_text(out / run.rel_dir / "error.txt", msg + "\n")
        else:
            walls.append(float(wall or 0.0))
        write_results(out, collect(out, runs))
        bar.update(1)

    try:
        if jobs <= 1:
            for run in pending:
                try:
                    done(run, None, _run_one(run.config.to_dict(), str(out / run.rel_dir)), None)
                except InterplayError as exc:
                    done(run, None, None, exc)
        else:
            # spawn: fresh interpreters, no inherited torch thread pools; one math thread each
            os.environ.setdefault("OMP_NUM_THREADS", "1")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(_run_one, r.config.to_dict(), str(out / r.rel_dir)): r for r in pending}
                remaining = set(futures)
                while remaining:
                    finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        exc = fut.exception()
                        done(futures[fut], fut, None if exc else fut.result(), exc)
    finally:
        bar.close()
    grid_wall = time.perf_counter() - t0
    rows = collect(out, runs)
    write_results(out, rows)
    summary = {"name": spec.name, "runs": len(runs), "ran_now": len(walls), "failed": len(failed), "jobs": jobs,
               "grid_wall_s": round(grid_wall, 2), "sum_run_wall_s": round(sum(walls), 2),
               "speedup": round(sum(walls) / grid_wall, 3) if walls and grid_wall > 0 else None,
               "parallel_efficiency": round(sum(walls) / (grid_wall * jobs), 3) if walls and grid_wall > 0 else None}
    if walls or not (out / "bench.json").exists():  # keep the timing of the last invocation that ran something
        atomic_write_json(out / "bench.json", summary)
    return BenchResult(rows, failed, summary)
