"""OMIB's beta sweep on gaussian-split: test accuracy against beta, relative to the estimated bounds M_l / M_u.

For every preset (default sim1, sim3) and seed (default 0, 1, 2) it trains ``joint``, ``omib`` with its
default beta (= M_l estimated on that seed's training split) and ``omib`` at fixed betas spanning
``M_l / 10 .. 1000 M_u`` (multiples of the bounds estimated on seed 0's training split), prints a Markdown
table (mean +- std over seeds) and writes a PNG plot when matplotlib is importable
(``pip install matplotlib``; optional, only for the plot)::

    OMP_NUM_THREADS=1 python benchmarks/omib_beta_sweep.py --out runs/omib_beta_sweep \
        --plot docs/methods/omib_beta.png

Every run has its own directory under ``--out`` (``PRESET/LABEL/seedS``); rerunning skips finished runs
and resumes interrupted ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from interplay.config import RunConfig
from interplay.data import DATASETS
from interplay.engine import train
from interplay.estimators import EstimatorSettings, information_report
from interplay.objectives.omib import beta_bounds

#: grid points: (label, reference bound, multiplier)
GRID: list[tuple[str, str, float]] = [
    ("M_l/10", "M_l", 0.1), ("M_u", "M_u", 1.0), ("3 M_u", "M_u", 3.0), ("10 M_u", "M_u", 10.0),
    ("30 M_u", "M_u", 30.0), ("100 M_u", "M_u", 100.0), ("300 M_u", "M_u", 300.0), ("1000 M_u", "M_u", 1000.0),
]


def bounds_for(preset: str, seed: int, n_train: int | None) -> dict[str, float]:
    """M_l and M_u (OMIB's default estimator) on the training split of one gaussian-split dataset."""
    data = DATASETS.get("gaussian-split")(seed=seed, n_train=n_train, n_test=16, val_fraction=0.1, root=None,
                                          preset=preset)
    m_l, m_u = beta_bounds(information_report(data.train.inputs, EstimatorSettings()))
    return {"M_l": m_l, "M_u": m_u}


def config(preset: str, method: dict[str, Any], seed: int, epochs: int, n_train: int | None) -> RunConfig:
    return RunConfig.from_dict({"data": {"name": "gaussian-split", "preset": preset, "n_train": n_train},
                                "method": method, "train": {"epochs": epochs, "seed": seed}})


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/omib_beta_sweep", help="directory of the run directories")
    p.add_argument("--presets", default="sim1,sim3")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--n-train", type=int, default=None, help="training samples incl. validation (default 2000)")
    p.add_argument("--plot", default=None, help="PNG path (default OUT/omib_beta.png)")
    args = p.parse_args(argv)
    out = Path(args.out)
    presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]

    results: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for preset in presets:
        ref = bounds_for(preset, seeds[0], args.n_train)
        betas = {label: float(f"{ref[bound] * mult:.3g}") for label, bound, mult in GRID}
        runs: list[tuple[str, dict[str, Any]]] = [("joint", {"name": "joint"}), ("omib (beta=M_l, default)",
                                                                                  {"name": "omib"})]
        runs += [(label, {"name": "omib", "beta": b}) for label, b in betas.items()]
        res: dict[str, Any] = {"reference_bounds": ref, "betas": betas, "rows": {}, "bounds_per_seed": []}
        for label, method in runs:
            dirname = "joint" if method["name"] == "joint" else (
                "omib_default" if "beta" not in method else f"omib_beta{method['beta']:.3g}")
            accs, used = [], []
            for seed in seeds:
                run_dir = out / preset / dirname / f"seed{seed}"
                metrics = train(config(preset, method, seed, args.epochs, args.n_train), run_dir, quiet=True)
                accs.append(metrics["test"]["accuracy"])
                if "omib" in metrics:
                    used.append(metrics["omib"]["beta"])
                    if "beta" not in method:
                        res["bounds_per_seed"].append({"seed": seed, "M_l": metrics["omib"]["M_l"],
                                                       "M_u": metrics["omib"]["M_u"]})
                print(f"[{time.perf_counter() - t0:7.0f}s] {preset} {label:<26} seed {seed}: "
                      f"test accuracy {metrics['test']['accuracy']:.4f}", file=sys.stderr, flush=True)
            res["rows"][label] = {"accuracy": accs, "beta": statistics.fmean(used) if used else None}
        bayes = DATASETS.get("gaussian-split")(seed=0, n_train=16, n_test=16, val_fraction=0.25, root=None,
                                               preset=preset).info.extra.get("bayes_accuracy")
        res["bayes_accuracy"] = bayes
        results[preset] = res

    table = markdown(results, presets, seeds)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "beta_sweep.md").write_text(table + "\n")
    (out / "beta_sweep.json").write_text(json.dumps(results, indent=1))
    plot(results, presets, Path(args.plot) if args.plot else out / "omib_beta.png")
    return 0


def markdown(results: dict[str, dict[str, Any]], presets: list[str], seeds: list[int]) -> str:
    head = "| method | " + " | ".join(f"{p}: beta | {p}: test accuracy" for p in presets) + " |"
    lines = [f"Test accuracy, mean +- std over seeds {', '.join(map(str, seeds))}.", "", head,
             "|---|" + "---:|---:|" * len(presets)]
    labels = list(next(iter(results.values()))["rows"])
    for label in labels:
        cells = []
        for p in presets:
            row = results[p]["rows"][label]
            m, s = mean_std(row["accuracy"])
            cells.append(("-" if row["beta"] is None else f"{row['beta']:.3g}") + f" | {m:.4f} +- {s:.4f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    for p in presets:
        r = results[p]
        per_seed = r["bounds_per_seed"]
        ml = statistics.fmean(b["M_l"] for b in per_seed) if per_seed else r["reference_bounds"]["M_l"]
        mu = statistics.fmean(b["M_u"] for b in per_seed) if per_seed else r["reference_bounds"]["M_u"]
        lines.append(f"- {p}: grid built on seed {seeds[0]}'s bounds M_l = {r['reference_bounds']['M_l']:.4g}, "
                     f"M_u = {r['reference_bounds']['M_u']:.4g}; mean over seeds M_l = {ml:.4g}, M_u = {mu:.4g}; "
                     f"Bayes accuracy {r['bayes_accuracy']:.4f}")
    return "\n".join(lines)


def plot(results: dict[str, dict[str, Any]], presets: list[str], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, len(presets), figsize=(4.2 * len(presets), 3.2), squeeze=False, sharey=True)
    for ax, p in zip(axes[0], presets):
        r = results[p]
        pts = sorted((row["beta"], *mean_std(row["accuracy"])) for label, row in r["rows"].items()
                     if row["beta"] is not None)
        xs, ms, ss = zip(*pts)
        ax.errorbar(xs, ms, yerr=ss, marker="o", ms=3, capsize=2, label="omib")
        j, js = mean_std(r["rows"]["joint"]["accuracy"])
        ax.axhline(j, color="gray", ls="--", lw=1, label=f"joint ({j:.3f})")
        if r.get("bayes_accuracy"):
            ax.axhline(r["bayes_accuracy"], color="black", ls=":", lw=1, label="Bayes")
        ax.axvline(r["reference_bounds"]["M_l"], color="green", lw=0.8, label="M_l")
        ax.axvline(r["reference_bounds"]["M_u"], color="red", lw=0.8, label="M_u")
        ax.set_xscale("log")
        ax.set_xlabel("beta")
        ax.set_title(f"gaussian-split {p}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    axes[0][0].set_ylabel("test accuracy")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"plot: {path}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
