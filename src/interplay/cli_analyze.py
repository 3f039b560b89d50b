"""The ``interplay analyze`` subcommand.

    interplay analyze --data NAME [--data-root PATH] [--mix k=v,...] [--set data.KEY=VALUE ...]
                      [--n-train N] [--n-test N] [--units bits|nats] [--split all|train|val|test] [--clusters K]
                      [--clusterer gmm|kmeans] [--correction bootstrap|shuffle] [--bootstrap B] [--permutations P]
                      [--confidence C] [--seed S]
                      [--set estimator.KEY=VALUE ...] --out DIR [--quiet]
    interplay analyze RUN_DIR [the analysis options above, no data options] [--device D] --out DIR [--quiet]

Dataset mode measures the PID of every pair of modalities with the label (the ``cluster`` estimator of
``interplay pid``, bias-corrected, with bootstrap intervals), the mutual information of each modality and of all of
them with the label, and states a recommendation citing the numbers. Run mode does the same on the run's own data
(rebuilt from its config) and adds the model: the PID of the model's predictions and the per-sample interaction
types of its test samples. Writes ``analysis.json``, ``per_sample.csv`` (run mode), PNG plots and a self-contained
``report.html`` into ``--out`` and prints a short summary; progress goes to stderr (``--quiet``: none).

The options mirror ``interplay pid``'s: ``--clusters`` (alias ``--k``), ``--bootstrap``, ``--permutations``,
``--split``, ``--units``, ``--seed`` (the data seed in dataset mode, as for ``interplay pid``, and the seed of the
clustering and resampling), ``--set estimator.KEY=VALUE`` (any other field of the cluster estimator's settings,
e.g. ``estimator.row_normalize=true``). Two defaults differ from ``interplay pid``'s, for the measured reasons in
docs/analysis.md ("Which discretiser"): ``--clusterer gmm`` (not ``kmeans``) and ``--correction bootstrap`` (not
``shuffle``). Bad input raises :class:`interplay.errors.InterplayError` subclasses (one line, exit 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``analyze`` sub-parser on ``subparsers``."""
    p = subparsers.add_parser(
        "analyze", help="which interactions a dataset holds and a trained model uses (PID, per-sample types, report)",
        description="Dataset mode (--data NAME): bias-corrected pairwise PID of every modality pair with the label "
                    "(cluster estimator, bootstrap intervals), mutual information of each modality and of all of "
                    "them with the label, a recommendation citing the numbers. Run mode (RUN_DIR): the same on the "
                    "run's data plus the model's PID and per-sample interaction types of its test samples. Writes "
                    "analysis.json, per_sample.csv (run mode), PNG plots and a self-contained report.html. See "
                    "docs/analysis.md.")
    p.add_argument("run", nargs="?", metavar="RUN_DIR", help="run directory written by `interplay train` (run mode)")
    p.add_argument("--data", metavar="NAME", help="dataset name (dataset mode; see `interplay data list`)")
    p.add_argument("--data-root", help="directory of a dataset's local copy")
    p.add_argument("--mix", help="pid-xor source mix, e.g. redundant=0.5,synergistic=0.5 (= --set data.mix=...)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="dataset parameter (data.KEY=VALUE, dataset mode) or cluster-estimator setting "
                        "(estimator.KEY=VALUE, e.g. estimator.row_normalize=true)")
    p.add_argument("--n-train", type=int, help="training samples including validation (dataset mode)")
    p.add_argument("--n-test", type=int, help="test samples (dataset mode)")
    p.add_argument("--units", choices=["bits", "nats"], default="bits", help="units of every information value")
    p.add_argument("--split", choices=["all", "train", "val", "test"], default="all",
                   help="which split(s) the dataset PID pools")
    p.add_argument("--clusters", "--k", dest="clusters", type=int,
                   help="clusters per modality (default: auto from N and |Y|, as `interplay pid`)")
    p.add_argument("--clusterer", choices=["gmm", "kmeans"], default="gmm",
                   help="discretiser of each modality: full-covariance Gaussian mixture (default) or k-means")
    p.add_argument("--correction", choices=["bootstrap", "shuffle"], default="bootstrap",
                   help="bias subtracted from the plug-in PID: bootstrap estimate (default) or label-shuffle null mean")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap draws of the intervals (0: none)")
    p.add_argument("--permutations", type=int, default=100,
                   help="label-shuffle draws of the bias correction (0: plug-in values)")
    p.add_argument("--confidence", type=float, default=0.95, help="level of the bootstrap intervals")
    p.add_argument("--seed", type=int, default=0, help="data seed (dataset mode) and analysis seed")
    p.add_argument("--per-sample", default="agreement,confidence,lsmi", metavar="M,M,...",
                   help="run mode: per-sample type methods, some of agreement, confidence, lsmi, cluster "
                        "(docs/analysis.md compares them)")
    p.add_argument("--device", default="cpu", help="run mode: cpu (default), cuda, cuda:N or auto")
    p.add_argument("--out", required=True, help="directory for analysis.json, the plots and report.html")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    return p


def _overrides(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--set`` (and ``--mix``, ``--n-train``, ``--n-test``, ``--data-root``) into data overrides
    ``{data.KEY: value}`` and estimator settings ``{KEY: value}``."""
    from .config import parse_override

    data: dict[str, Any] = {}
    estimator: dict[str, Any] = {}
    for flag, key in (("data_root", "data.root"), ("n_train", "data.n_train"), ("n_test", "data.n_test"),
                      ("mix", "data.mix")):
        value = getattr(args, flag)
        if value is not None:
            data[key] = value
    for text in args.overrides:
        key, value = parse_override(text)
        if key.startswith("estimator.") and key != "estimator.":
            estimator[key[len("estimator."):]] = value
        elif key.startswith("data.") and key != "data.name":
            data[key] = value
        else:
            raise ConfigError(f"--set {text!r}: `interplay analyze` takes dataset parameters (data.KEY=VALUE) and "
                              f"estimator settings (estimator.KEY=VALUE) only; use --data to choose the dataset")
    return data, estimator


def _print_summary(analysis: dict[str, Any], out: str) -> None:
    from .bench.tables import format_table

    units = analysis["units"]
    ds = analysis.get("dataset") or {}
    model = analysis.get("model") or {}
    model_pairs = {tuple(e["pair"]): e for e in model.get("pairs") or []}

    def q(v: Any) -> str:
        if not v:
            return "-"
        iv = v.get("interval")
        return f"{v['value']:.3f}" + ("" if not iv else f" [{iv[0]:.3f}, {iv[1]:.3f}]")

    data = analysis.get("data") or {}
    print(f"interaction analysis of {data.get('name')} ({analysis['kind']} mode; split {ds.get('split')}, "
          f"N = {ds.get('n')}); {units}")
    headers = ["pair", "R", "U first", "U second", "S", "I(pair;Y)", "truth R/U/U/S"]
    rows = []
    for e in ds.get("pairs") or []:
        a, b = e["pair"]
        t = e.get("truth")
        truth = "-" if not t else "/".join(f"{x:.2f}" for x in (t["redundancy"], t["unique"][a], t["unique"][b],
                                                                 t["synergy"]))
        rows.append([f"{a},{b}", q(e["redundancy"]), q(e["unique"][a]), q(e["unique"][b]), q(e["synergy"]),
                     q(e["total"]), truth])
        m = model_pairs.get((a, b))
        if m is not None:
            rows.append([f"  model {a},{b}", q(m.get("redundancy")), q((m.get("unique") or {}).get(a)),
                         q((m.get("unique") or {}).get(b)), q(m.get("synergy")), q(m.get("total")), "-"])
    print(format_table(headers, rows))
    mi = ds.get("mi") or {}
    if mi:
        print("I(X;Y): " + ", ".join(f"{m} {q(v)}" for m, v in mi.items()))
    for line in (ds.get("recommendation") or {}).get("text") or []:
        print(f"- {line}")
    if model:
        print(f"model: {model.get('method')} (seed {model.get('seed')}), test accuracy "
              f"{model.get('test_accuracy', float('nan')):.4f}")
        methods = ((model.get("per_sample") or {}).get("methods") or {})
        for name, m in methods.items():
            extra = "" if m.get("type_accuracy") is None else f"; type accuracy {m['type_accuracy']:.3f}"
            print(f"  {name}: " + ", ".join(f"{t} {n}" for t, n in (m.get("counts") or {}).items()) + extra)
    print(f"wrote {Path(out) / 'analysis.json'}, {Path(out) / 'report.html'}"
          + (f", {Path(out) / 'per_sample.csv'}" if model else ""))


def run(args: argparse.Namespace) -> int:
    """Run ``interplay analyze`` for parsed ``args``; returns the exit status (0)."""
    from .analysis import AnalysisSettings, analyze
    from .plugins import load_env_plugins

    if (args.run is None) == (args.data is None):
        raise ConfigError("give either RUN_DIR (a trained run) or --data NAME (a dataset), "
                          + ("not both" if args.run is not None else "got neither"))
    data_overrides, estimator = _overrides(args)
    if args.run is not None and data_overrides:
        first = next(iter(data_overrides))
        raise ConfigError(f"{first}: a run is analysed on its own data (its config.yaml); dataset options apply to "
                          f"--data (use `interplay evaluate` for a run on other data)")
    load_env_plugins()
    settings = AnalysisSettings(units=args.units, split=args.split, clusters=args.clusters, clusterer=args.clusterer,
                                correction=args.correction, bootstrap=args.bootstrap,
                                confidence=args.confidence, seed=args.seed, permutations=args.permutations,
                                estimator=estimator, quiet=args.quiet,
                                per_sample=tuple(m.strip() for m in args.per_sample.split(",") if m.strip()))
    settings.check()
    analysis = analyze(args.run, data=args.data, overrides=data_overrides or None, out=args.out, settings=settings,
                       device=args.device)
    _print_summary(analysis, args.out)
    sys.stdout.flush()
    return 0
