"""OMIB, honestly: the beta bound under every estimator, a fixed-budget beta sweep and a factor probe (gaussian-split).

Three parts (``--parts bounds,sweep``):

* ``bounds``: ``H_1``, ``H_2``, ``I_12`` and ``M_u = 1 / (3 (H_1 + H_2 - I_12))`` on gaussian-split's training
  inputs for a few input dimensions / view-noise levels (same task factors) under the ``gaussian``, ``knn`` and
  ``mine`` estimators (``interplay.estimators``).
* ``sweep``: OMIB on ``sim1`` at a few betas and seeds, each run judged twice: at the best-validation checkpoint
  (what ``interplay train`` reports) and at the last epoch of the fixed budget (``last.pt``; the engine has no
  "report the last epoch" option, so the script loads ``last.pt`` itself with ``interplay.io.load_torch``).
* the **factor probe** of every sweep run: ridge-regression probes from the fused representation
  ``xi = CAN(mu_1, mu_2)`` to each ground-truth factor group of the test split (task factors ``a0, a1, a2``;
  superfluous ``b0, b1, b2``), fitted on one half of the test split and scored (R^2) on the other. The factors are
  not part of the dataset's output; :func:`gaussian_split_factors` redraws them from the generator's seed (the
  generator draws them first, so the same seed gives the same factors; a test checks the views they imply).

    OMP_NUM_THREADS=1 python benchmarks/omib_sweep.py --out runs/omib_sweep --plot-dir docs/methods

Prints Markdown tables (also ``OUT/omib_sweep.md`` and ``OUT/omib_sweep.json``); rerunning skips finished runs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interplay.config import RunConfig
from interplay.data import DATASETS
from interplay.engine import train
from interplay.engine.reload import load_run
from interplay.estimators import EstimatorSettings, information_report
from interplay.io import load_torch
from interplay.objectives.omib import beta_bounds

FACTORS = ("a0", "a1", "a2", "b0", "b1", "b2")  # the generator's draw order
GROUPS = {"task": ("a0", "a1", "a2"), "superfluous": ("b0", "b1", "b2")}


# ---------------------------------------------------------------------------------------- factors and probe
def gaussian_split_factors(seed: int, n_train: int, n_test: int, factor_dim: int = 4) -> dict[str, np.ndarray]:
    """The ground-truth factors of gaussian-split's **test** split (``(n_test, factor_dim)`` each), redrawn as
    ``interplay.data.synthetic.gaussian_split`` draws them: ``rng = default_rng(seed)``, then ``a0, a1, a2, b0,
    b1, b2`` over all ``n_train + n_test`` samples; the test split is the last ``n_test`` rows in order."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    draws = {name: rng.normal(size=(n, factor_dim)) for name in FACTORS}
    return {name: d[n_train:] for name, d in draws.items()}


def gaussian_split_score(factors: dict[str, np.ndarray], preset: str = "sim1", dim: int = 32,
                         mixing_seed: int = 4321) -> np.ndarray:
    """The label's noiseless score ``s = c0 w0.a0 + c1 w1.a1 + c2 w2.a2`` ``(n, 1)`` of the given factors, with the
    unit directions ``w`` drawn as the generator draws them (after the two mixing matrices, from ``mixing_seed``)
    and the preset's weights ``c``: the only task-relevant function of the factors (each ``a_i`` has
    ``factor_dim - 1`` directions the label ignores), i.e. what a minimal sufficient representation keeps."""
    from interplay.data.synthetic import GAUSSIAN_PRESETS

    k = factors["a0"].shape[1]
    mix_rng = np.random.default_rng(mixing_seed)
    for _ in range(2):
        mix_rng.normal(0.0, 1.0 / math.sqrt(4 * k), size=(dim, 4 * k))
    w = [v / np.linalg.norm(v) for v in mix_rng.normal(size=(3, k))]
    c = GAUSSIAN_PRESETS[preset]
    return (c[0] * factors["a0"] @ w[0] + c[1] * factors["a1"] @ w[1] + c[2] * factors["a2"] @ w[2])[:, None]


def ridge_probe_r2(x_fit: np.ndarray, t_fit: np.ndarray, x_eval: np.ndarray, t_eval: np.ndarray,
                   ridge: float = 1e-3) -> np.ndarray:
    """Linear probe: ridge regression with intercept from features ``x`` ``(n, d)`` to targets ``t`` ``(n, k)``,
    fitted on ``(x_fit, t_fit)``; returns the held-out ``R^2 = 1 - SSE / SST`` of each target column ``(k,)``
    on ``(x_eval, t_eval)``. Features are standardised with the fit half's statistics; the penalty is
    ``ridge * n_fit`` on the standardised weights (the intercept is not penalised)."""
    mean, std = x_fit.mean(0), x_fit.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    a, b = (x_fit - mean) / std, (x_eval - mean) / std
    t_mean = t_fit.mean(0)
    w = np.linalg.solve(a.T @ a + ridge * len(a) * np.eye(a.shape[1]), a.T @ (t_fit - t_mean))
    pred = b @ w + t_mean
    sse = ((t_eval - pred) ** 2).sum(0)
    sst = ((t_eval - t_eval.mean(0)) ** 2).sum(0)
    return 1.0 - sse / sst


def factor_probe(features: np.ndarray, factors: dict[str, np.ndarray], ridge: float = 1e-3) -> dict[str, float]:
    """Mean held-out R^2 per factor (over its columns; any extra key such as ``score`` too) and per group (mean of
    the group's factors): fitted on the first half of the rows, scored on the second half."""
    half = len(features) // 2
    out: dict[str, float] = {}
    for name, f in factors.items():
        out[name] = float(ridge_probe_r2(features[:half], f[:half], features[half:], f[half:], ridge).mean())
    for group, names in GROUPS.items():
        out[group] = float(np.mean([out[n] for n in names]))
    return out


# ---------------------------------------------------------------------------------------- part 1: bounds
def bounds_table(settings: list[tuple[int, float]], estimators: list[str], seed: int, n_train: int,
                 mine_steps: int) -> list[dict[str, Any]]:
    rows = []
    for dim, noise in settings:
        data = DATASETS.get("gaussian-split")(seed=seed, n_train=n_train, n_test=16, val_fraction=0.1, root=None,
                                              preset="sim1", dim=dim, view_noise=noise)
        for est in estimators:
            t0 = time.perf_counter()
            # mine: estimate on a held-out 20% of the samples (the default); mine_insample: on the training
            # samples of the critic, as an estimate made once before training by the paper
            backend = "mine" if est == "mine_insample" else est
            settings = EstimatorSettings(backend=backend, seed=seed, mine_steps=mine_steps,  # type: ignore[arg-type]
                                         mine_eval_fraction=0.0 if est == "mine_insample" else 0.2)
            rep = information_report(data.train.inputs, settings)
            m_l, m_u = beta_bounds(rep)
            rows.append({"dim": dim, "view_noise": noise, "estimator": est, "H_x1": rep.H["x1"], "H_x2": rep.H["x2"],
                         "I": rep.I, "H_joint": rep.H_joint, "M_l": m_l, "M_u": m_u, "valid": rep.valid,
                         "log_N": rep.extra.get("mine_log_batch_size"), "seconds": time.perf_counter() - t0})
            print(f"bounds dim {dim} noise {noise} {est}: H {rep.H['x1']:.2f} {rep.H['x2']:.2f} I {rep.I:.2f} "
                  f"M_u {m_u:.4g} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    return rows


def bounds_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| dim | view_noise | estimator | H_1 | H_2 | I_12 | H_12 | M_u |",
             "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['dim']} | {r['view_noise']} | {r['estimator']} | {r['H_x1']:.2f} | {r['H_x2']:.2f} | "
                     f"{r['I']:.2f} | {r['H_joint']:.2f} | {r['M_u']:.3g} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- part 2: sweep + probe
def run_config(beta: float, seed: int, epochs: int, n_train: int, n_test: int) -> RunConfig:
    return RunConfig.from_dict({"data": {"name": "gaussian-split", "preset": "sim1", "n_train": n_train,
                                         "n_test": n_test},
                                "method": {"name": "omib", "beta": beta}, "train": {"epochs": epochs, "seed": seed}})


def evaluate_weights(run_dir: Path, which: str, test_inputs: dict[str, torch.Tensor], target: np.ndarray,
                     factors: dict[str, np.ndarray]) -> dict[str, Any]:
    """Test accuracy and factor probe of the run's ``best`` (best-validation) or ``last`` (last epoch) weights."""
    run = load_run(run_dir)
    if which == "last":
        state = load_torch(run_dir / "last.pt", what="checkpoint")
        run.model.load_state_dict(state["model"])
        run.objective.load_state_dict(state["objective"])
        epoch = int(state["epoch"])
    else:
        epoch = int(run.checkpoint["epoch"])
    with torch.no_grad():
        pred = run.predict(test_inputs).pred.numpy()
        xi = run.objective.fused_representation(run.model, test_inputs).numpy()  # type: ignore[operator]
    return {"epoch": epoch, "accuracy": float((pred == target).mean()), "probe": factor_probe(xi, factors)}


def sweep(betas: dict[str, float], seeds: list[int], epochs: int, n_train: int, n_test: int,
          out: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    for label, beta in betas.items():
        rows = []
        for seed in seeds:
            run_dir = out / "sweep" / f"beta{beta:.3g}" / f"seed{seed}"
            metrics = train(run_config(beta, seed, epochs, n_train, n_test), run_dir, quiet=True)
            data = DATASETS.get("gaussian-split")(seed=seed, n_train=n_train, n_test=n_test, val_fraction=0.1,
                                                  root=None, preset="sim1")
            factors = gaussian_split_factors(seed, n_train, n_test)
            factors["score"] = gaussian_split_score(factors)
            inputs, target = data.test.inputs, data.test.target.numpy()
            best = evaluate_weights(run_dir, "best", inputs, target, factors)
            last = evaluate_weights(run_dir, "last", inputs, target, factors)
            log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
            main = [r for r in log if r.get("stage") == "main"]
            rows.append({"seed": seed, "beta": beta, "best": best, "last": last,
                         "best_epoch": metrics["best_epoch"], "best_stage": metrics["best_stage"],
                         "first_main_epoch": len(log) - len(main) + 1,
                         "reported_test_accuracy": metrics["test"]["accuracy"],
                         "kl_last": {k: v for k, v in main[-1]["train"].items() if k.startswith("kl_")},
                         "val_accuracy_main": [r["val"].get("accuracy") for r in main]})
            print(f"[{time.perf_counter() - t0:6.0f}s] beta {beta:.3g} seed {seed}: best epoch {best['epoch']} "
                  f"acc {best['accuracy']:.4f} | last acc {last['accuracy']:.4f} task R2 "
                  f"{last['probe']['task']:.3f} superfluous R2 {last['probe']['superfluous']:.3f}",
                  file=sys.stderr, flush=True)
        results[label] = rows
    return results


def input_probe(seeds: list[int], n_train: int, n_test: int) -> dict[str, float]:
    """The same probe from the raw test inputs ``[x1, x2]`` (what a representation could keep at most, linearly)."""
    vals = []
    for seed in seeds:
        data = DATASETS.get("gaussian-split")(seed=seed, n_train=n_train, n_test=n_test, val_fraction=0.1,
                                              root=None, preset="sim1")
        x = torch.cat([data.test.inputs["x1"], data.test.inputs["x2"]], 1).numpy()
        factors = gaussian_split_factors(seed, n_train, n_test)
        factors["score"] = gaussian_split_score(factors)
        vals.append(factor_probe(x, factors))
    return {k: statistics.fmean(v[k] for v in vals) for k in vals[0]}


def ms(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def sweep_markdown(results: dict[str, Any], raw: dict[str, float]) -> str:
    lines = ["| beta | best epoch (first main) | test acc, best-val | test acc, last epoch | "
             "score R², best-val | score R², last | "
             "task R², best-val | task R², last | superfluous R², best-val | superfluous R², last | "
             "KL x1 + KL x2 (last, nats) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, rows in results.items():
        epochs = ", ".join(str(r["best"]["epoch"]) for r in rows)
        first = rows[0]["first_main_epoch"]
        kl = [sum(v for k, v in r["kl_last"].items() if k != "kl_weighted") for r in rows]
        lines.append(f"| {label} | {epochs} ({first}) | {ms([r['best']['accuracy'] for r in rows])} | "
                     f"{ms([r['last']['accuracy'] for r in rows])} | "
                     f"{ms([r['best']['probe']['score'] for r in rows])} | "
                     f"{ms([r['last']['probe']['score'] for r in rows])} | "
                     f"{ms([r['best']['probe']['task'] for r in rows])} | "
                     f"{ms([r['last']['probe']['task'] for r in rows])} | "
                     f"{ms([r['best']['probe']['superfluous'] for r in rows])} | "
                     f"{ms([r['last']['probe']['superfluous'] for r in rows])} | {ms(kl)} |")
    lines.append(f"| raw inputs [x1, x2] | - | - | - | {raw['score']:.3f} | {raw['score']:.3f} | "
                 f"{raw['task']:.3f} | {raw['task']:.3f} | "
                 f"{raw['superfluous']:.3f} | {raw['superfluous']:.3f} | - |")
    lines.append("")
    lines.append("Per factor, last epoch (R²): " + "; ".join(
        f"{label}: " + ", ".join(f"{f} {statistics.fmean(r['last']['probe'][f] for r in rows):.2f}"
                                 for f in (*FACTORS, "score"))
        for label, rows in results.items()))
    return "\n".join(lines)


def plot(results: dict[str, Any], raw: dict[str, float], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return
    labels = list(results)
    xs = np.arange(len(labels))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for which, style in (("best", "--"), ("last", "-")):
        acc = [statistics.fmean(r[which]["accuracy"] for r in results[k]) for k in labels]
        name = "best-validation" if which == "best" else "last epoch"
        axes[0].plot(xs, acc, style, marker="o", label=name)
        for group, color in (("score", "black"), ("task", "tab:blue"), ("superfluous", "tab:red")):
            r2 = [statistics.fmean(r[which]["probe"][group] for r in results[k]) for k in labels]
            axes[1].plot(xs, r2, style, marker="o", color=color, label=f"{group}, {which}")
    for group, color in (("score", "black"), ("task", "tab:blue"), ("superfluous", "tab:red")):
        axes[1].axhline(raw[group], color=color, lw=0.7, ls=":", label=f"{group}, raw inputs")
    for ax, title in zip(axes, ("test accuracy", "probe R² from xi (held-out)")):
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, rotation=20, fontsize=7)
        ax.set_title(f"gaussian-split sim1: {title}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    axes[0].set_xlabel("beta")
    axes[1].set_xlabel("beta")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"plot: {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/omib_sweep")
    p.add_argument("--parts", default="bounds,sweep", help="comma-separated: bounds, sweep")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--n-train", type=int, default=2000, help="training samples incl. validation")
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--settings", default="8:0.5,32:0.5,128:0.5,32:0.1,128:0.1", help="DIM:VIEW_NOISE,... (bounds)")
    p.add_argument("--estimators", default="gaussian,knn,mine,mine_insample")
    p.add_argument("--mine-steps", type=int, default=500)
    p.add_argument("--betas", default=None, help="LABEL=BETA,... (default: 0, gaussian M_u, mine M_u, 10x, 100x "
                                                 "mine M_u, from seed 0's bounds)")
    p.add_argument("--plot-dir", default=None, help="directory of the PNGs (default OUT)")
    args = p.parse_args(argv)
    out = Path(args.out)
    parts = {s.strip() for s in args.parts.split(",") if s.strip()}
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    report: dict[str, Any] = {"args": vars(args)}
    md: list[str] = []
    t0 = time.perf_counter()
    if "bounds" in parts:
        settings = [(int(d), float(v)) for d, v in (s.split(":") for s in args.settings.split(",") if s.strip())]
        rows = bounds_table(settings, [e.strip() for e in args.estimators.split(",")], seeds[0], args.n_train,
                            args.mine_steps)
        report["bounds"] = rows
        md += [f"## M_u per estimator (gaussian-split sim1, seed {seeds[0]}, training split)", "",
               bounds_markdown(rows), ""]
    if "sweep" in parts:
        if args.betas:
            betas = {k.strip(): float(v) for k, v in (s.split("=") for s in args.betas.split(",") if s.strip())}
        else:
            data = DATASETS.get("gaussian-split")(seed=seeds[0], n_train=args.n_train, n_test=16, val_fraction=0.1,
                                                  root=None, preset="sim1")
            mu_g = beta_bounds(information_report(data.train.inputs, EstimatorSettings()))[1]
            mu_m = beta_bounds(information_report(data.train.inputs, EstimatorSettings(backend="mine",
                                                                                        mine_steps=args.mine_steps)))[1]
            betas = {"0": 0.0, f"M_u gaussian ({mu_g:.3g})": float(f"{mu_g:.3g}"),
                     f"M_u mine ({mu_m:.3g})": float(f"{mu_m:.3g}"), f"10 M_u mine ({10 * mu_m:.3g})":
                     float(f"{10 * mu_m:.3g}"), f"100 M_u mine ({100 * mu_m:.3g})": float(f"{100 * mu_m:.3g}")}
        results = sweep(betas, seeds, args.epochs, args.n_train, args.n_test, out)
        raw = input_probe(seeds, args.n_train, args.n_test)
        report["sweep"] = results
        report["raw_input_probe"] = raw
        md += [f"## beta sweep, sim1, seeds {args.seeds}, {args.epochs} epochs: best-validation vs last epoch", "",
               sweep_markdown(results, raw), ""]
        plot(results, raw, Path(args.plot_dir or out) / "omib_sweep.png")
    md.append(f"total time {time.perf_counter() - t0:.0f} s")
    text = "\n".join(md)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "omib_sweep.md").write_text(text + "\n")
    (out / "omib_sweep.json").write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
