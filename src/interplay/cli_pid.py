"""The ``interplay pid`` subcommand.

    interplay pid --pmf FILE.npy [--normalize] [--units bits|nats] [--out DIR]
    interplay pid --data NAME [--data-root PATH] [--mix k=v,...] [--set data.KEY=VALUE ...]
                  [--n-train N] [--n-test N] [--seed S] --estimator cluster
                  [--split all|train|val|test] [--pair A,B] [--k K] [--pca-dim D]
                  [--permutations P] [--bootstrap B] [--units bits|nats] [--set estimator.KEY=VALUE ...]
                  [--out DIR] [--quiet]
    interplay pid --data NAME ... --estimator lsmi [--pair A,B] [--epochs E] [--shift] [--units bits|nats]
                  [--set estimator.KEY=VALUE ...] [--out DIR] [--quiet]
    interplay pid --data NAME ... --estimator NAME [--set estimator.KEY=VALUE ...] [--out DIR]

``--pmf`` prints the exact BROJA PID of a pmf ``P[x1, x2, y]`` stored with ``numpy.save``. ``--units nats`` reports
nats (the PID repository's unit) instead of bits in every mode (for a plugin estimator: when it has a ``units``
setting). ``--data``
builds the dataset (same data options as ``interplay train``) and runs a registered estimator
(:data:`interplay.pid.estimator.ESTIMATORS`: the dataset-level ``cluster``, the per-sample ``lsmi``, and any
estimator a plugin registers); on ``pid-xor`` the ground truth of the generator's latent distribution is shown
next to the estimate. The estimator's options are the fields of its settings dataclass: the flags ``--pair``,
``--split``, ``--k``, ``--pca-dim``, ``--permutations``, ``--bootstrap``, ``--epochs``, ``--shift`` and
``--units`` set the fields of those names (``--pair``: ``modalities``), ``--seed`` and ``--quiet`` set ``seed``
and ``quiet`` where the estimator has them, and ``--set estimator.KEY=VALUE`` sets any field (validated: one
line naming the key for an unknown key or a bad value). ``--out DIR`` writes ``summary.json`` and a CSV
(``draws.csv`` for cluster: every null and bootstrap draw; ``per_sample.csv`` for lsmi), atomically; other
estimators write ``summary.json``.

Register with :func:`add_parser` and dispatch to :func:`run`; bad input raises
:class:`interplay.errors.InterplayError` subclasses (the CLI prints one line and exits 2).
The estimators, data builders and I/O helpers are imported by :func:`run`, which also checks ``--estimator``
against the registry (after ``--plugin`` modules are loaded, so a plugin's estimator is accepted); building the
parser imports nothing heavy.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError

__all__ = ["add_parser", "run"]

#: flags that set an estimator's settings field (flag dest -> field name)
FLAG_FIELDS: dict[str, str] = {"pair": "modalities", "split": "split", "k": "k", "pca_dim": "pca_dim",
                               "permutations": "permutations", "bootstrap": "bootstrap", "epochs": "epochs",
                               "shift": "shift", "units": "units"}
#: flags that set a settings field of the same name when the estimator has one
GENERIC_FIELDS: tuple[str, ...] = ("seed", "quiet")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``pid`` sub-parser on ``subparsers`` (the object ``add_subparsers()`` returned)."""
    p = subparsers.add_parser(
        "pid", help="partial information decomposition of a pmf file or of a dataset (cluster, lsmi)",
        description="Exact PID of a pmf (--pmf), dataset-level PID of features by clustering (--estimator cluster) "
                    "or per-sample interactions on held-out data (--estimator lsmi). Values in bits, or nats with "
                    "--units nats.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pmf", metavar="FILE.npy", help="joint pmf P[x1, x2, y] saved with numpy.save")
    src.add_argument("--data", metavar="NAME", help="dataset name (see `interplay data list`)")
    p.add_argument("--normalize", action="store_true", help="--pmf: rescale a table of counts to sum 1")
    p.add_argument("--data-root", help="directory of a dataset's local copy")
    p.add_argument("--mix", help="pid-xor source mix, e.g. synergistic=1 (= --set data.mix=...)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="dataset parameter (data.KEY=VALUE, e.g. data.dim=16) or estimator setting "
                        "(estimator.KEY=VALUE, e.g. estimator.n_init=8)")
    p.add_argument("--n-train", type=int, help="training samples including validation")
    p.add_argument("--n-test", type=int, help="test samples")
    p.add_argument("--seed", type=int, default=0, help="data and estimator seed (default 0)")
    p.add_argument("--estimator", metavar="NAME",
                   help="with --data: a registered estimator: cluster (dataset level), lsmi (per sample) or one a "
                        "plugin registers (--plugin, docs/pid-estimators.md); checked against the registry")
    p.add_argument("--pair", help="the two modalities to analyse, e.g. x1,x3 (needed with more than two)")
    p.add_argument("--split", choices=["all", "train", "val", "test"],
                   help="cluster: which split(s) to discretise (default all); lsmi always evaluates on test")
    p.add_argument("--k", type=int, help="cluster: k-means clusters per modality (default: auto from N and |Y|)")
    p.add_argument("--pca-dim", type=int, help="cluster: project each modality on its top principal components first")
    p.add_argument("--permutations", type=int, help="cluster: draws of each permutation null (100)")
    p.add_argument("--bootstrap", type=int, help="cluster: bootstrap draws (100)")
    p.add_argument("--epochs", type=int, help="lsmi: max epochs of each classifier (100)")
    p.add_argument("--shift", action="store_true", default=None,
                   help="lsmi: dataset-level shift so the means are non-negative")
    p.add_argument("--units", choices=["bits", "nats"],
                   help="units of every information value: bits (default) or nats (the PID repository's unit)")
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
    from .bench.tables import format_table
    from .pid import PIDInputError, broja, validate_pmf

    arr = _load_pmf(args.pmf)
    units = args.units or "bits"
    try:
        P = validate_pmf(arr, normalize=args.normalize, name=args.pmf)
        result = broja(P, units=units)
    except PIDInputError as exc:
        msg = str(exc).replace("(pass normalize=True to rescale)", "(pass --normalize to rescale counts)")
        raise DataError(msg if msg.startswith(args.pmf) else f"{args.pmf}: {msg}") from None
    shape = "x".join(str(s) for s in arr.shape)
    rows = [[label, f"{getattr(result, key):.6f}"] for key, label in
            (("redundancy", "R (redundancy)"), ("unique1", "U1 (unique to x1)"), ("unique2", "U2 (unique to x2)"),
             ("synergy", "S (synergy)"), ("i_x1_y", "I(X1;Y)"), ("i_x2_y", "I(X2;Y)"), ("i_x1x2_y", "I(X1,X2;Y)"))]
    print(f"BROJA PID of {args.pmf} ({shape} pmf P[x1, x2, y]), {units}")
    print(format_table(["quantity", units], rows))
    status = "converged" if result.converged else "NOT converged"
    print(f"certificate: duality gap {result.gap:.2e} {units}, marginal residual {result.residual:.1e}, "
          f"{result.iterations} iterations, {status}")
    if args.out:
        from .io import atomic_write_json

        atomic_write_json(Path(args.out) / "summary.json",
                          {"source": {"pmf": str(args.pmf), "shape": list(arr.shape), "normalize": args.normalize},
                           "units": units, **result.as_dict()})
        print(f"wrote {Path(args.out) / 'summary.json'}")
    return 0


# ---------------------------------------------------------------------------------------------- --data
def _split_overrides(args: argparse.Namespace) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """``--set`` into dataset overrides ``[(data.KEY, value)]`` and estimator settings ``{KEY: value}``."""
    from .config import parse_override

    data: list[tuple[str, Any]] = []
    estimator: dict[str, Any] = {}
    for text in args.overrides:
        key, value = parse_override(text)
        if key.startswith("estimator.") and key != "estimator.":
            estimator[key[len("estimator."):]] = value
        elif key.startswith("data.") and key != "data.name":
            data.append((key, value))
        else:
            raise ConfigError(f"--set {text!r}: `interplay pid` takes dataset parameters (data.KEY=VALUE) and "
                              f"estimator settings (estimator.KEY=VALUE) only; use --data to choose the dataset and "
                              f"--estimator to choose the estimator")
    return data, estimator


def _build(args: argparse.Namespace, overrides: list[tuple[str, Any]]) -> Any:
    from .config import RunConfig, apply_mapping, set_field
    from .engine.trainer import build_data, resolve_config

    cfg = RunConfig()
    apply_mapping(cfg, {"data": {"name": args.data}}, "--data")
    flags = {"root": args.data_root, "n_train": args.n_train, "n_test": args.n_test}
    for key, value in flags.items():
        if value is not None:
            apply_mapping(cfg, {"data": {key: value}}, f"--{key.replace('_', '-')}")
    cfg.train.seed = int(args.seed)
    if args.mix is not None:
        set_field(cfg, "data.mix", args.mix)
    for key, value in overrides:
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


def _truth(splits: Any, pair: list[str], units: str = "bits") -> dict[str, float] | None:
    """Latent ground truth (in ``units``) when the data are pid-xor; ``None`` otherwise."""
    if splits.info.name != "pid-xor":
        return None
    from .data.groundtruth import pid_xor_ground_truth
    from .data.synthetic import modality_names

    names = modality_names(len(splits.info.modalities))
    gt = pid_xor_ground_truth(splits.info.extra["mix"], len(names), (names.index(pair[0]), names.index(pair[1])))
    return gt.to_units(units).as_dict()


def _check_counts(args: argparse.Namespace) -> None:
    for flag in ("permutations", "bootstrap", "epochs", "k", "pca_dim"):
        value = getattr(args, flag)
        minimum = 0 if flag in ("permutations", "bootstrap") else 1
        if value is not None and value < minimum:
            raise ConfigError(f"--{flag.replace('_', '-')}: expected an integer >= {minimum}, got {value}")


def _settings(args: argparse.Namespace, estimator: Any, overrides: Mapping[str, Any]) -> Any:
    """The estimator's settings: its defaults, then the flags (``--seed``, ``--quiet``, ``--pair``, ``--k``, ...),
    then ``--set estimator.KEY=VALUE``; validated against its settings dataclass."""
    from .pid.estimator import make_settings, settings_schema

    fields = settings_schema(estimator.settings)
    params: dict[str, Any] = {name: getattr(args, name) for name in GENERIC_FIELDS if name in fields}
    for flag, name in FLAG_FIELDS.items():
        value = _pair(args) if flag == "pair" else getattr(args, flag)
        if value is None:
            continue
        if name not in fields:
            if flag == "split" and estimator.name == "lsmi":
                raise ConfigError("--split: lsmi is fitted on train/val and evaluated on the held-out test split; "
                                  "--split applies to --estimator cluster")
            raise ConfigError(f"--{flag.replace('_', '-')}: estimator {estimator.name} has no setting {name!r} "
                              f"(its settings: {', '.join(fields)})")
        params[name] = value
    params.update(overrides)
    return make_settings(estimator.settings, params, section="estimator", owner=f"estimator {estimator.name}")


def _run_cluster(args: argparse.Namespace, splits: Any, estimator: Any, settings: Any) -> int:
    from .bench.tables import format_table

    which = settings.split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = estimator.estimate(splits, settings)
    pair = result.settings["modalities"]
    truth = _truth(splits, pair, result.units)
    st = result.settings
    print(f"cluster PID of {args.data} ({which}, N={st['n']}), modalities {pair[0]}, {pair[1]}; {result.units}")
    discretiser = "Gaussian mixture" if st.get("clusterer") == "gmm" else "k-means"
    print(f"{discretiser} k = {st['k1']} x {st['k2']} ({st['k_chosen']}, auto {st['k_auto']}), "
          f"|Y| = {st['num_classes']}, {st['samples_per_cell']:.1f} samples per cell, "
          f"{st['occupied_cells']}/{st['cells']} cells occupied; "
          f"seed {st['seed']}; {st['permutations']} permutations, {st['bootstrap']} bootstraps"
          + ("; rows scaled to unit norm" if st.get("row_normalize") else "")
          + ("" if st.get("standardize", True) else "; not standardised")
          + (f"; PCA to {st['pca_dim']} dims" if st["pca_dim"] else ""))
    headers, rows = result.rows(truth)
    print(format_table(headers, rows))
    print(f"corrected = {st['bias_correction']}; interval: {st['interval']}; "
          f"synergy vs conditional-independence null (shuffle {pair[1]} within Y): "
          f"null mean {result.synergy_conditional_null_mean:.3f}, p = {result.p_synergy_conditional:.3f}")
    for msg in result.warnings:
        print(f"interplay: warning: {msg}", file=sys.stderr)
    if args.out:
        from .io import atomic_write_csv, atomic_write_json

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


def _data_settings(args: argparse.Namespace, splits: Any, split: str | None) -> dict[str, Any]:
    return {"name": args.data, "split": split, "seed": args.seed, "n_train": args.n_train, "n_test": args.n_test,
            "mix": splits.info.extra.get("mix"),
            "overrides": [o for o in args.overrides if not o.strip().startswith("estimator.")]}


def _run_lsmi(args: argparse.Namespace, splits: Any, estimator: Any, settings: Any) -> int:
    from .bench.tables import format_table
    from .metrics import auroc
    from .pid.lsmi import TERMS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = estimator.estimate(splits, settings)
    u = result.units
    pair = result.settings["modalities"]
    st = result.settings
    print(f"lsmi per-sample PID of {args.data}: fitted on train ({st['n_train']}) + val ({st['n_val']}), "
          f"evaluated on test ({st['n_eval']}); modalities {pair[0]}, {pair[1]}; {u}")
    acc = result.accuracy
    print(f"classifier test accuracy: {pair[0]} {acc[pair[0]]:.3f}, {pair[1]} {acc[pair[1]]:.3f}, "
          f"joint {acc['joint']:.3f}"
          + (f"; shift {result.shift:.4f}" if settings.shift else ""))
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
    truth = _truth(splits, pair, u)
    if truth is not None:
        summary["truth_latent"] = truth
        print(f"latent ground truth (dataset level, {u}): "
              + ", ".join(f"{k} {truth[k]:.3f}" for k in ("redundancy", "unique1", "unique2", "synergy")))
    for msg in result.warnings:
        print(f"interplay: warning: {msg}", file=sys.stderr)
    if args.out:
        from .io import atomic_write_csv, atomic_write_json

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


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of ``value`` (mappings, sequences, dataclasses, tensors and arrays unpacked)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars, tensors
        return _plain(value.tolist())
    return value


def _result_summary(result: Any) -> dict[str, Any]:
    """What a registered estimator returned, as a dict: its ``summary()`` or ``as_dict()`` when it has one, else
    the mapping or dataclass itself (a bare value becomes ``{"value": ...}``)."""
    for method in ("summary", "as_dict"):
        if callable(getattr(result, method, None)):
            return _plain(getattr(result, method)())
    plain = _plain(result)
    return plain if isinstance(plain, dict) else {"value": plain}


def _run_other(args: argparse.Namespace, splits: Any, estimator: Any, settings: Any) -> int:
    """Any registered estimator without a dedicated report: its scalar results as a table, ``summary.json``."""
    from .bench.tables import format_table

    result = estimator.estimate(splits, settings)
    summary = _result_summary(result)
    print(f"{estimator.name} ({estimator.level} level) on {args.data}"
          + (f": {estimator.description}" if estimator.description else ""))

    def scalars(prefix: str, value: Any) -> list[list[str]]:
        if isinstance(value, dict):
            return [row for k, v in value.items() for row in scalars(f"{prefix}{k}.", v)]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return []
        text = "nan" if isinstance(value, float) and math.isnan(value) else (
            f"{value:.6f}" if isinstance(value, float) else str(value))
        return [[prefix[:-1], text]]

    rows = scalars("", summary)
    if rows:
        print(format_table(["quantity", "value"], rows))
    for msg in getattr(result, "warnings", None) or []:
        print(f"interplay: warning: {msg}", file=sys.stderr)
    if args.out:
        from .io import atomic_write_json

        out = Path(args.out)
        data = _data_settings(args, splits, getattr(settings, "split", None))
        atomic_write_json(out / "summary.json", {"estimator": estimator.name, "level": estimator.level,
                                                 "settings": _plain(settings), "result": summary, "data": data})
        print(f"wrote {out / 'summary.json'}")
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
    from .pid.estimator import ESTIMATORS
    from .plugins import load_env_plugins

    load_env_plugins()
    if args.estimator is None:
        choices = ", ".join(f"{name} ({est.level}-level)" for name, est in ESTIMATORS.items())
        raise ConfigError(f"--estimator: choose one of {choices} with --data")
    estimator = ESTIMATORS.get(args.estimator)
    data_overrides, estimator_overrides = _split_overrides(args)
    settings = _settings(args, estimator, estimator_overrides)
    _, splits = _build(args, data_overrides)
    if splits.info.task != "classification":
        raise DataError(f"{args.data}: the PID estimators need class labels; this dataset is a regression task")
    from .pid.cluster import estimate_cluster
    from .pid.lsmi import estimate_lsmi

    # the built-in estimators have dedicated reports; any other registered estimator gets the generic one
    reports = {estimate_cluster: _run_cluster, estimate_lsmi: _run_lsmi}
    return reports.get(estimator.estimate, _run_other)(args, splits, estimator, settings)
