"""``interplay report DIR``: Markdown tables (mean ± std over seeds of the validation-selected runs) and PNG plots.

Plots (matplotlib, the ``report`` extra): accuracy by interaction type per method, accuracy against each
searched hyperparameter (validation and test; the synergistic accuracy where sources are known), and
validation curves per epoch. Without matplotlib the report is written without pictures and says so.

Only cells whose ledger fingerprint matches the grid in ``bench.yaml`` are shown; a table cell built from fewer
seeds than the grid has says so (``0.912 ± 0.010 (n=2/3)``), and a line under each table names the failed and
unfinished cells.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import InterplayError
from ..io import atomic_write_text
from .grid import BenchSpec, RunSpec, load_spec, plan
from .ledger import CellState
from .runner import collect, grid_states
from .tables import fmt_mean_std, format_table, mean_std

INTERACTIONS = ("unique1", "unique2", "redundant", "synergistic")
GROUPS_PREFIX = "test.agreement_groups."


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except ImportError:
        return None


def _load(out: Path) -> tuple[BenchSpec, list[RunSpec], list[dict[str, Any]]]:
    if not (out / "bench.yaml").exists():
        raise InterplayError(f"{out}: not a bench directory (no bench.yaml); run `interplay bench FILE --out {out}`")
    spec = load_spec(out / "bench.yaml")
    runs = plan(spec)
    rows = collect(out, runs)
    if not rows:
        raise InterplayError(f"{out}: no finished runs of the grid in {out / 'bench.yaml'} yet")
    return spec, runs, rows


def _by_dataset(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[row["dataset"]].append(row)
    return out


def _missing(runs: list[RunSpec], states: list[CellState], dataset: str) -> list[str]:
    """One line naming the cells of ``dataset`` that are not in its table (failed, unfinished, stale)."""
    failed, unfinished, stale = [], 0, 0
    for r, s in zip(runs, states):
        if r.dataset.label != dataset or s.status == "finished":
            continue
        if s.status == "failed":
            name = f"{r.method.label}{'' if not r.hp else ' ' + r.hp_key} seed {r.seed}"
            failed.append(f"{name} ({(s.error or 'no message')[:100]})")
        elif s.status == "stale":
            stale += 1
        else:
            unfinished += 1
    parts = []
    if failed:
        parts.append(f"**failed**: {'; '.join(failed)}")
    if unfinished:
        parts.append(f"{unfinished} not finished")
    if stale:
        parts.append(f"{stale} run with other settings (not shown; `interplay bench ... --rerun-changed`)")
    return [f"Cells not in the table: {'; '.join(parts)}."] if parts else []


def summary_tables(out: str | Path) -> str:
    """The per-dataset tables of the report (selected runs, mean ± std over seeds) as Markdown text."""
    spec, runs, rows = _load(Path(out))
    states = grid_states(Path(out), runs)
    parts = []
    by = _by_dataset(rows)
    for d in spec.datasets:
        drows = by.get(d.label, [])
        parts += [f"{d.label} ({d.name} {json.dumps(d.params, sort_keys=True)})",
                  *_table([r for r in drows if r["selected"]], [m.label for m in spec.methods], spec.seeds),
                  *_missing(runs, states, d.label), ""]
    return "\n".join(parts)


def make_report(out: str | Path) -> Path:
    """Write ``out/report.md`` and ``out/plots/*.png`` from a bench directory; return the report's path."""
    out = Path(out)
    try:
        return _make_report(out)
    except PermissionError as exc:
        raise InterplayError(f"{exc.filename or out}: permission denied; cannot write the report there") from None


def _make_report(out: Path) -> Path:
    spec, runs, rows = _load(out)
    states = grid_states(out, runs)
    plots = out / "plots"
    plots.mkdir(exist_ok=True)  # before matplotlib: a read-only directory fails here, in one line
    plt = _plt()
    summary = json.loads((out / "bench.json").read_text()) if (out / "bench.json").exists() else {}
    epochs = spec.train.get("epochs", "default")
    lines = [f"# Benchmark report: {spec.name}", "",
             f"{len(rows)} of {len(runs)} runs finished; {spec.seeds} seeds; {epochs} epochs for every run "
             f"(equal budgets); hyperparameters chosen per seed on **validation**, tables show the selected runs "
             f"(mean ± std over seeds)."]
    if summary.get("grid_wall_s"):
        on = f" on {summary['executor']}" if summary.get("executor", "local") != "local" else ""
        lines.append(f"Last invocation: {summary['ran_now']} runs with {summary['jobs']} worker(s){on} in "
                     f"{summary['grid_wall_s']:.0f} s wall; summed run time {summary['sum_run_wall_s']:.0f} s "
                     f"(speed-up {summary['speedup']}, parallel efficiency {summary['parallel_efficiency']}).")
    if plt is None:
        lines.append("\n_matplotlib is not installed (`pip install interplay[report]`): no plots._")
    by = _by_dataset(rows)
    for di, entry in enumerate(spec.datasets):
        dataset, drows = entry.label, by.get(entry.label, [])
        sel = [r for r in drows if r["selected"]]
        lines += ["", f"## {dataset}", "", f"`{entry.name}` {json.dumps(entry.params, sort_keys=True)}", ""]
        lines += _table(sel, [m.label for m in spec.methods], spec.seeds)
        missing = _missing(runs, states, dataset)
        if missing:
            lines += ["", *missing]
        if plt is not None and sel:
            stem = f"d{di}"
            if any(f"test.accuracy_by_interaction.{k}" in r for r in sel for k in INTERACTIONS):
                name = _plot_interactions(plt, sel, plots / f"{stem}_interactions.png", dataset)
                lines += ["", f"![accuracy by interaction type]({name})"]
            for method in dict.fromkeys(r["method"] for r in drows):
                mrows = [r for r in drows if r["method"] == method]
                for hp in sorted({k[3:] for r in mrows for k in r if k.startswith("hp.")}):
                    if len({str(r.get(f"hp.{hp}")) for r in mrows}) > 1:
                        name = _plot_hp(plt, mrows, hp, plots / f"{stem}_{_safe(method)}_{_safe(hp)}.png", dataset)
                        lines += ["", f"![{method}: accuracy vs {hp}]({name})"]
            name = _plot_curves(plt, out, sel, plots / f"{stem}_curves.png", dataset)
            lines += ["", f"![validation curves]({name})"]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _table(sel: list[dict[str, Any]], methods: list[str], seeds: int) -> list[str]:
    """Markdown table of the selected rows: one line per method of the grid, mean ± std over seeds; a cell
    with fewer than ``seeds`` seeds says how many it has (``(n=2/3)``)."""
    regression = any("test.mae" in r for r in sel)
    main = ["test.mae", "test.acc2", "test.acc7", "test.corr"] if regression else ["test.accuracy", "test.macro_f1"]
    inter = [k for k in INTERACTIONS if any(_num(r.get(f"test.accuracy_by_interaction.{k}")) is not None
                                             for r in sel)]
    groups = sorted({k[len(GROUPS_PREFIX):-len(".accuracy")] for r in sel for k in r
                     if k.startswith(GROUPS_PREFIX) and k.endswith(".accuracy")})
    if len(groups) > 4:  # many modalities: keep the synergy subset and the all-right group
        groups = [g for g in groups if g in ("none_right", "all_right")]
    headers = ["method", "chosen (per seed)", "val " + main[0].split(".")[1], *[m.split(".")[1] for m in main],
               *inter, *[f"{g} (uni. groups)" for g in groups], "train s"]
    body = []
    for method in methods:
        mr = sorted((r for r in sel if r["method"] == method), key=lambda r: r["seed"])
        chosen = ", ".join(sorted({r["searched"] for r in mr})) if any(r["searched"] != "{}" for r in mr) else "-"
        n = f" (n={len(mr)}/{seeds})" if len(mr) < seeds else ""

        def cell(key: str, digits: int = 3, mr: list[dict[str, Any]] = mr, n: str = n) -> str:
            return fmt_mean_std([_num(r.get(key)) for r in mr], digits) + n

        body.append([method, chosen, cell("val." + main[0].split(".")[1]), *[cell(m) for m in main],
                     *[cell(f"test.accuracy_by_interaction.{k}") for k in inter],
                     *[cell(f"{GROUPS_PREFIX}{g}.accuracy") for g in groups], cell("train_time_s", 1)])
    return format_table(headers, body, markdown=True).splitlines()


def _save(plt, fig, path: Path) -> str:
    """Write ``fig`` to ``path`` and close it; return its link relative to the report."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plots/{path.name}"


def _plot_interactions(plt, sel: list[dict[str, Any]], path: Path, title: str) -> str:
    methods = list(dict.fromkeys(r["method"] for r in sel))
    kinds = [k for k in INTERACTIONS if any(_num(r.get(f"test.accuracy_by_interaction.{k}")) is not None
                                            for r in sel)] + ["overall"]
    fig, ax = plt.subplots(figsize=(max(7, 0.5 * len(methods) * len(kinds) + 2), 4))
    width = 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        key = "test.accuracy" if kind == "overall" else f"test.accuracy_by_interaction.{kind}"
        stats = [mean_std([_num(r.get(key)) for r in sel if r["method"] == m]) for m in methods]
        ax.bar([j + i * width for j in range(len(methods))], [s[0] for s in stats], width,
               yerr=[s[1] for s in stats], capsize=3, label=kind)
    ax.set_xticks([j + width * (len(kinds) - 1) / 2 for j in range(len(methods))], methods, rotation=20)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.set_title(f"{title}: accuracy by interaction type")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(plt, fig, path)


def _plot_hp(plt, mrows: list[dict[str, Any]], hp: str, path: Path, title: str) -> str:
    values = sorted({r.get(f"hp.{hp}") for r in mrows}, key=lambda v: (isinstance(v, str), v))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    xs = values if numeric else list(range(len(values)))
    fig, ax = plt.subplots(figsize=(6, 4))
    keys = [("val.accuracy", "validation"), ("test.accuracy", "test")]
    if any(_num(r.get("test.accuracy_by_interaction.synergistic")) is not None for r in mrows):
        keys.append(("test.accuracy_by_interaction.synergistic", "test, synergistic samples"))
    if any("test.mae" in r for r in mrows):
        keys = [("val.mae", "validation MAE"), ("test.mae", "test MAE")]
    for key, label in keys:
        stats = [mean_std([_num(r.get(key)) for r in mrows if r.get(f"hp.{hp}") == v]) for v in values]
        ax.errorbar(xs, [s[0] for s in stats], yerr=[s[1] for s in stats], marker="o", capsize=3, label=label)
    nums = [float(v) for v in values if v is not None] if numeric else []
    if nums and min(nums) > 0 and max(nums) / min(nums) >= 20:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(xs, [str(v) for v in values])
    ax.set_xlabel(hp)
    ax.set_ylabel("accuracy (mean ± std over seeds)" if "mae" not in keys[0][0] else "MAE")
    ax.set_title(f"{title}: {mrows[0]['method']} vs {hp}")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def _plot_curves(plt, out: Path, sel: list[dict[str, Any]], path: Path, title: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 4))
    key = "mae" if any("test.mae" in r for r in sel) else "accuracy"
    for method in dict.fromkeys(r["method"] for r in sel):
        curves = []
        for r in sel:
            if r["method"] != method:
                continue
            log = out / r["run_dir"] / "log.jsonl"
            if log.exists():
                curves.append([json.loads(line)["val"][key] for line in log.read_text().splitlines()])
        if curves:
            n = min(len(c) for c in curves)
            stats = [mean_std([c[i] for c in curves]) for i in range(n)]
            mean = [s[0] for s in stats]
            ax.plot(range(1, n + 1), mean, label=method)
            ax.fill_between(range(1, n + 1), [m - s[1] for m, s in zip(mean, stats)],
                            [m + s[1] for m, s in zip(mean, stats)], alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {key} (mean ± std over seeds)")
    ax.set_title(f"{title}: training curves")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)
