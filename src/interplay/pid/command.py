"""The ``interplay pid`` subcommand.

    interplay pid --pmf FILE.npy [--normalize] [--out DIR]
    interplay pid --data NAME [--data-root PATH] [--mix k=v,...] [--set data.KEY=VALUE ...]
                  [--n-train N] [--n-test N] [--seed S] --estimator cluster
                  [--split all|train|val|test] [--pair A,B] [--k K] [--pca-dim D]
                  [--permutations P] [--bootstrap B] [--out DIR] [--quiet]
    interplay pid --data NAME ... --estimator lsmi [--pair A,B] [--epochs E] [--shift] [--units bits|nats]
                  [--out DIR] [--quiet]

``--pmf`` prints the exact BROJA PID of a pmf ``P[x1, x2, y]`` stored with ``numpy.save``. ``--data``
builds the dataset (same data options as ``interplay train``) and runs a dataset-level (``cluster``)
or per-sample (``lsmi``) estimator; on ``pid-xor`` the ground truth of the generator's latent
distribution is shown next to the estimate. ``--out DIR`` writes ``summary.json`` and a CSV
(``draws.csv`` for cluster: every null and bootstrap draw; ``per_sample.csv`` for lsmi), atomically.

Register with :func:`add_parser` and dispatch to :func:`run`; bad input raises
:class:`interplay.errors.InterplayError` subclasses (the CLI prints one line and exits 2).
The estimators, data builders and I/O helpers are imported by :func:`run`; importing this module still
imports the ``interplay.pid`` package (and with it torch).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``pid`` sub-parser on ``subparsers`` (the object ``add_subparsers()`` returned)."""
    p = subparsers.add_parser(
        "pid", help="partial information decomposition of a pmf file or of a dataset (cluster, lsmi)",
        description="Exact PID of a pmf (--pmf), dataset-level PID of features by clustering (--estimator cluster) "
                    "or per-sample interactions on held-out data (--estimator lsmi). Values in bits unless said.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pmf", metavar="FILE.npy", help="joint pmf P[x1, x2, y] saved with numpy.save")
    src.add_argument("--data", metavar="NAME", help="dataset name (see `interplay data list`)")
    p.add_argument("--normalize", action="store_true", help="--pmf: rescale a table of counts to sum 1")
    p.add_argument("--data-root", help="directory of a dataset's local copy")
    p.add_argument("--mix", help="pid-xor source mix, e.g. synergistic=1 (= --set data.mix=...)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="data.KEY=VALUE",
                   help="dataset parameter, e.g. data.dim=16 (only data.* keys apply)")
    p.add_argument("--n-train", type=int, help="training samples including validation")
    p.add_argument("--n-test", type=int, help="test samples")
    p.add_argument("--seed", type=int, default=0, help="data and estimator seed (default 0)")
    p.add_argument("--estimator", choices=["cluster", "lsmi"], help="with --data: which estimator")
    p.add_argument("--pair", help="the two modalities to analyse, e.g. x1,x3 (needed with more than two)")
    p.add_argument("--split", choices=["all", "train", "val", "test"],
                   help="cluster: which split(s) to discretise (default all); lsmi always evaluates on test")
    p.add_argument("--k", type=int, help="cluster: k-means clusters per modality (default: auto from N and |Y|)")
    p.add_argument("--pca-dim", type=int, help="cluster: project each modality on its top principal components first")
    p.add_argument("--permutations", type=int, default=100, help="cluster: draws of each permutation null (100)")
    p.add_argument("--bootstrap", type=int, default=100, help="cluster: bootstrap draws (100)")
    p.add_argument("--epochs", type=int, default=100, help="lsmi: max epochs of each classifier (100)")
    p.add_argument("--shift", action="store_true", help="lsmi: dataset-level shift so the means are non-negative")
    p.add_argument("--units", choices=["bits", "nats"], default="bits", help="lsmi: units (default bits)")
    p.add_argument("--out", help="directory for summary.json and the per-draw / per-sample CSV")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


# ---------------------------------------------------------------------------------------------- --pmf
def _load_pmf(path: str) -> Any:
    import numpy as np

    file = Path(path)
    if not file.exists():
        raise DataError(f"{path}: no such file")
    if file.is_dir():
        raise DataError(f"{path}: is a directory, expected a .npy file")
    try:
        with file.open("rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if magic[:2] == b"PK":
        raise DataError(f"{path}: is an .npz archive; save the pmf alone with numpy.save(FILE.npy, P)")
    if magic != b"\x93NUMPY":
        raise DataError(f"{path}: not a NumPy .npy file (no .npy header); save the pmf with numpy.save(FILE.npy, P)")
    try:
        arr = np.load(file, allow_pickle=False)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a NumPy .npy array ({reason})") from None
    return arr


def _run_pmf(args: argparse.Namespace) -> int:
    from ..bench.tables import format_table
    from .solver import PIDInputError, broja, validate_pmf

    arr = _load_pmf(args.pmf)
    try:
        P = validate_pmf(arr, normalize=args.normalize, name=args.pmf)
        result = broja(P)
    except PIDInputError as exc:
        msg = str(exc).replace("(pass normalize=True to rescale)", "(pass --normalize to rescale counts)")
        raise DataError(msg if msg.startswith(args.pmf) else f"{args.pmf}: {msg}") from None
    shape = "x".join(str(s) for s in arr.shape)
    rows = [[label, f"{getattr(result, key):.6f}"] for key, label in
            (("redundancy", "R (redundancy)"), ("unique1", "U1 (unique to x1)"), ("unique2", "U2 (unique to x2)"),
             ("synergy", "S (synergy)"), ("i_x1_y", "I(X1;Y)"), ("i_x2_y", "I(X2;Y)"), ("i_x1x2_y", "I(X1,X2;Y)"))]
    print(f"BROJA PID of {args.pmf} ({shape} pmf P[x1, x2, y]), bits")
    print(format_table(["quantity", "bits"], rows))
    status = "converged" if result.converged else "NOT converged"
    print(f"certificate: duality gap {result.gap:.2e} bits, marginal residual {result.residual:.1e}, "
          f"{result.iterations} iterations, {status}")
    if args.out:
        from ..io import atomic_write_json

        atomic_write_json(Path(args.out) / "summary.json",
                          {"source": {"pmf": str(args.pmf), "shape": list(arr.shape), "normalize": args.normalize},
                           "units": "bits", **result.as_dict()})
        print(f"wrote {Path(args.out) / 'summary.json'}")
    return 0


# ---------------------------------------------------------------------------------------------- --data
def _build(args: argparse.Namespace) -> Any:
    from ..config import RunConfig, apply_mapping, parse_override, set_field
    from ..engine.trainer import build_data, resolve_config

    cfg = RunConfig()
    apply_mapping(cfg, {"data": {"name": args.data}}, "--data")
    flags = {"root": args.data_root, "n_train": args.n_train, "n_test": args.n_test}
    for key, value in flags.items():
        if value is not None:
            apply_mapping(cfg, {"data": {key: value}}, f"--{key.replace('_', '-')}")
    cfg.train.seed = int(args.seed)
    if args.mix is not None:
        set_field(cfg, "data.mix", args.mix)
    for text in args.overrides:
        key, value = parse_override(text)
        if not key.startswith("data.") or key == "data.name":
            raise ConfigError(f"--set {text!r}: `interplay pid` takes dataset parameters only (data.KEY=VALUE); "
                              f"use --data to choose the dataset")
        set_field(cfg, key, value)
    for name in ("n_train", "n_test"):
        value = getattr(cfg.data, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')}: expected a positive integer, got {value}")
    cfg = resolve_config(cfg)
    return cfg, build_data(cfg)


def _pair(args: argparse.Namespace) -> list[str] | None:
    if args.pair is None:
        return None
    parts = [p.strip() for p in args.pair.split(",") if p.strip()]
    if len(parts) != 2:
        raise ConfigError(f"--pair: expected two modality names separated by a comma, got {args.pair!r}")
    return parts


def _truth(splits: Any, pair: list[str]) -> dict[str, float] | None:
    """Latent ground truth when the data are pid-xor; ``None`` otherwise."""
    if splits.info.name != "pid-xor":
        return None
    from ..data.synthetic import modality_names
    from .groundtruth import pid_xor_ground_truth

    names = modality_names(len(splits.info.modalities))
    gt = pid_xor_ground_truth(splits.info.extra["mix"], len(names), (names.index(pair[0]), names.index(pair[1])))
    return gt.as_dict()


def _check_counts(args: argparse.Namespace) -> None:
    for flag in ("permutations", "bootstrap", "epochs", "k", "pca_dim"):
        value = getattr(args, flag)
        minimum = 0 if flag in ("permutations", "bootstrap") else 1
        if value is not None and value < minimum:
            raise ConfigError(f"--{flag.replace('_', '-')}: expected an integer >= {minimum}, got {value}")


def _run_cluster(args: argparse.Namespace, splits: Any) -> int:
    from ..bench.tables import format_table
    from .cluster import cluster_pid_dataset

    which = args.split or "all"
    parts = [splits.train, splits.val, splits.test] if which == "all" else [getattr(splits, which)]
    parts = [p for p in parts if len(p) > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = cluster_pid_dataset(parts, modalities=_pair(args), k=args.k, num_classes=splits.info.num_classes,
                                     permutations=args.permutations, bootstrap=args.bootstrap, seed=args.seed,
                                     pca_dim=args.pca_dim, quiet=args.quiet)
    pair = result.settings["modalities"]
    truth = _truth(splits, pair)
    st = result.settings
    print(f"cluster PID of {args.data} ({which}, N={st['n']}), modalities {pair[0]}, {pair[1]}; bits")
    print(f"k-means k = {st['k1']} x {st['k2']} ({st['k_chosen']}, auto {st['k_auto']}), |Y| = {st['num_classes']}, "
          f"{st['samples_per_cell']:.1f} samples per cell, {st['occupied_cells']}/{st['cells']} cells occupied; "
          f"seed {st['seed']}; {st['permutations']} permutations, {st['bootstrap']} bootstraps"
          + (f"; PCA to {st['pca_dim']} dims" if st["pca_dim"] else ""))
    headers, rows = result.rows(truth)
    print(format_table(headers, rows))
    print(f"corrected = plug-in - mean of the label-shuffle null; interval: {st['interval']}; "
          f"synergy vs conditional-independence null (shuffle {pair[1]} within Y): "
          f"null mean {result.synergy_conditional_null_mean:.3f}, p = {result.p_synergy_conditional:.3f}")
    for msg in result.warnings:
        print(f"interplay: warning: {msg}", file=sys.stderr)
    if args.out:
        from ..io import atomic_write_csv, atomic_write_json

        out = Path(args.out)
        summary = result.summary()
        summary["data"] = _data_settings(args, splits, which)
        summary["truth_latent"] = truth
        atomic_write_json(out / "summary.json", summary)
        draw_rows = []
        for kind, draws in (("label_shuffle", result.null_draws), ("bootstrap", result.boot_draws)):
            n = len(next(iter(draws.values()))) if draws else 0
            for i in range(n):
                draw_rows.append([kind, i, *(float(draws[a][i]) for a in ("redundancy", "unique1", "unique2",
                                                                          "synergy"))])
        for i, s in enumerate(result.conditional_null_draws.tolist()):
            draw_rows.append(["conditional_shuffle", i, "", "", "", s])
        atomic_write_csv(out / "draws.csv", ["kind", "draw", "redundancy", "unique1", "unique2", "synergy"],
                         draw_rows)
        print(f"wrote {out / 'summary.json'} and {out / 'draws.csv'}")
    return 0


def _data_settings(args: argparse.Namespace, splits: Any, split: str) -> dict[str, Any]:
    return {"name": args.data, "split": split, "seed": args.seed, "n_train": args.n_train, "n_test": args.n_test,
            "mix": splits.info.extra.get("mix"), "overrides": list(args.overrides)}


def _run_lsmi(args: argparse.Namespace, splits: Any) -> int:
    from ..bench.tables import format_table
    from ..metrics import auroc
    from .lsmi import TERMS, lsmi_splits

    if args.split not in (None, "test"):
        raise ConfigError("--split: lsmi is fitted on train/val and evaluated on the held-out test split; "
                          "--split applies to --estimator cluster")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = lsmi_splits(splits, modalities=_pair(args), epochs=args.epochs, shift=args.shift, units=args.units,
                             seed=args.seed, quiet=args.quiet)
    u = result.units
    pair = result.settings["modalities"]
    st = result.settings
    print(f"lsmi per-sample PID of {args.data}: fitted on train ({st['n_train']}) + val ({st['n_val']}), "
          f"evaluated on test ({st['n_eval']}); modalities {pair[0]}, {pair[1]}; {u}")
    acc = result.accuracy
    print(f"classifier test accuracy: {pair[0]} {acc[pair[0]]:.3f}, {pair[1]} {acc[pair[1]]:.3f}, "
          f"joint {acc['joint']:.3f}"
          + (f"; shift {result.shift:.4f}" if args.shift else ""))
    names = splits.info.interactions
    inter = result.meta.get("interaction")
    groups = result.by_group(inter, names) if names is not None and inter is not None else {}
    headers = ["mean over", "n", *TERMS, "s median", "i1", "i2", "i12"]
    rows = [["all", str(len(result.target)), *(f"{result.means[k]:.3f}" for k in TERMS),
             f"{result.medians['s']:.3f}", *(f"{result.means[k]:.3f}" for k in ("i1", "i2", "i12"))]]
    for name, g in groups.items():
        mask = inter == names.index(name)
        rows.append([f"source {name}", str(g["n"]), *(f"{g[k]:.3f}" for k in TERMS), f"{g['s_median']:.3f}",
                     *(f"{float(getattr(result, k)[mask].mean()):.3f}" for k in ("i1", "i2", "i12"))])
    print(format_table(headers, rows))
    summary: dict[str, Any] = {"units": u, "means": result.means, "medians": result.medians, "shift": result.shift,
                               "accuracy": result.accuracy,
                               "by_source": groups, "settings": st, "warnings": list(result.warnings),
                               "data": _data_settings(args, splits, "test")}
    if names is not None and inter is not None and "synergistic" in names:
        positive = inter == names.index("synergistic")
        value = auroc(result.s, positive)
        summary["auroc_synergy"] = {"value": value, "positives": int(positive.sum()),
                                    "negatives": int((~positive).sum()),
                                    "definition": "AUROC of s for synergistic-source vs all other test samples"}
        print("AUROC of s, synergistic-source vs other test samples: "
              + ("undefined (one group is empty)" if value != value else f"{value:.3f}"))
    truth = _truth(splits, pair)
    if truth is not None:
        summary["truth_latent"] = truth
        print("latent ground truth (dataset level, bits): "
              + ", ".join(f"{k} {truth[k]:.3f}" for k in ("redundancy", "unique1", "unique2", "synergy")))
    for msg in result.warnings:
        print(f"interplay: warning: {msg}", file=sys.stderr)
    if args.out:
        from ..io import atomic_write_csv, atomic_write_json

        out = Path(args.out)
        cols = result.columns()
        header = ["index", "target", *(["interaction"] if inter is not None and names is not None else []), *cols]
        lists = {k: v.tolist() for k, v in cols.items()}
        inter_names = [names[c] for c in inter.tolist()] if inter is not None and names is not None else None
        rows_csv = []
        for n, (idx, tgt) in enumerate(zip(result.index.tolist(), result.target.tolist())):
            row: list[Any] = [idx, tgt]
            if inter_names is not None:
                row.append(inter_names[n])
            row += [lists[k][n] for k in cols]
            rows_csv.append(row)
        atomic_write_csv(out / "per_sample.csv", header, rows_csv)
        atomic_write_json(out / "summary.json", summary)
        print(f"wrote {out / 'per_sample.csv'} and {out / 'summary.json'}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``interplay pid`` for parsed ``args``; returns the exit status (0)."""
    _check_counts(args)
    if args.pmf is not None:
        given = [f"--{k.replace('_', '-')}" for k in ("estimator", "mix", "data_root", "k", "pair", "split")
                 if getattr(args, k) is not None]
        if given:
            raise ConfigError(f"{given[0]} applies to --data, not to --pmf")
        return _run_pmf(args)
    if args.estimator is None:
        raise ConfigError("--estimator: choose cluster (dataset-level PID) or lsmi (per-sample) with --data")
    _, splits = _build(args)
    if splits.info.task != "classification":
        raise DataError(f"{args.data}: the PID estimators need class labels; this dataset is a regression task")
    if args.estimator == "cluster":
        return _run_cluster(args, splits)
    return _run_lsmi(args, splits)
