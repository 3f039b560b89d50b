"""The ``interplay`` command line.

    interplay [--plugin MODULE ...] COMMAND ...
    interplay train    --data NAME [--mix k=v,...] --method NAME [--epochs N] [--seed S] [--set key=value ...] --out DIR
    interplay evaluate DIR [--data NAME] [--set data.KEY=VALUE ...] --out E
    interplay predict  DIR --inputs FILE.npz|FILE.pt --out preds.csv
    interplay bench    FILE.yaml|PRESET --out DIR [--seeds N] [--jobs J] [--executor local|ray [--address A]]
                       [--rerun-changed] [--print-commands] | --list
    interplay report   DIR
    interplay pid      --pmf FILE.npy | --data NAME [--mix ...] --estimator NAME [--set estimator.KEY=VALUE] [--out DIR]
    interplay analyze  --data NAME [--mix ...] [--set data.KEY=VALUE ...] [--units bits|nats] --out A
    interplay analyze  RUN_DIR --out A
    interplay methods
    interplay data     list | verify --data NAME --data-root PATH

Bad input exits with status 2 and one line on stderr; Ctrl-C exits 130 leaving a resumable directory; a closed
output pipe (``interplay data list | head``) ends the command quietly with status 0.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any

from .errors import ConfigError, InterplayError

#: two examples per subcommand, shown at the end of its --help
EXAMPLES: dict[str, tuple[str, str]] = {
    "train": ("interplay train --data pid-xor --mix redundant=0.9,synergistic=0.1 --method synib --out runs/synib",
              "interplay train --data gaussian-split --set data.preset=sim1 --method omib --set method.beta=0.01 "
              "--epochs 50 --seed 1 --out runs/omib"),
    "evaluate": ("interplay evaluate runs/synib --out runs/synib-eval",
                 "interplay evaluate runs/synib --data pid-xor --set data.mix=synergistic=1 --out runs/synib-syn"),
    "predict": ("interplay predict runs/synib --inputs new_samples.npz --out preds.csv",
                "interplay predict runs/synib --inputs new_samples.pt --out preds.csv --device cuda"),
    "pid": ("interplay pid --pmf table.npy",
            "interplay pid --data pid-xor --mix redundant=0.5,synergistic=0.5 --estimator cluster --out runs/pid"),
    "analyze": ("interplay analyze --data pid-xor --set data.mix=redundant=0.5,synergistic=0.5 --out analysis/rs",
                "interplay analyze runs/synib --units nats --out analysis/synib"),
    "methods": ("interplay methods", "interplay --plugin my_method.py methods"),
    "data": ("interplay data list", "interplay data verify --data mosi --data-root ~/data/mosi"),
    "bench": ("interplay bench demo --out runs/demo --jobs 2",
              "interplay bench demo --out runs/demo --executor ray --jobs 4"),
    "report": ("interplay report runs/demo",
               "interplay bench synib_xor --out runs/synib_xor --seeds 3 --jobs 2 && interplay report runs/synib_xor"),
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks and appends ``(default: X)`` to options whose default is a real value
    (not ``None``, ``False`` or an empty list: those mean "unset" or "off")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (action.option_strings and "%(default)" not in text and "default" not in text
                and default not in (None, False, [], argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


def _add_examples(sub: argparse._SubParsersAction) -> None:
    """Give every subcommand the shared formatter and its two examples."""
    for name, parser in sub.choices.items():
        parser.formatter_class = HelpFormatter
        if name in EXAMPLES:
            parser.epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name])


def _train_parser(sub: argparse._SubParsersAction) -> None:
    from .config import RunConfig

    d = RunConfig()  # the defaults, shown in --help (flags left out keep them)
    p = sub.add_parser("train", help="train one method on one dataset into a run directory",
                       description="Train one method on one dataset. Precedence: defaults < --config < flags < --set.")
    p.add_argument("--data", help=f"dataset name (see `interplay data list`; default: {d.data.name})")
    p.add_argument("--data-root", help="directory of a dataset's local copy")
    p.add_argument("--mix", help="pid-xor source mix, e.g. redundant=0.9,synergistic=0.1 (= --set data.mix=...)")
    p.add_argument("--method", help=f"method name (see `interplay methods`; default: {d.method.name})")
    p.add_argument("--epochs", type=int, help=f"epochs (default: {d.train.epochs}; split across a method's stages)")
    p.add_argument("--seed", type=int,
                   help=f"seed of the data split, initialisation and order (default: {d.train.seed})")
    p.add_argument("--n-train", type=int, help="training samples including validation (default: the dataset's)")
    p.add_argument("--n-test", type=int, help="test samples (default: the dataset's)")
    p.add_argument("--batch-size", type=int, help=f"batch size (default: {d.train.batch_size})")
    p.add_argument("--lr", type=float, help=f"learning rate (default: {d.train.lr:g})")
    p.add_argument("--device", help=f"cpu, cuda, cuda:N or auto (default: {d.train.device})")
    p.add_argument("--devices", type=int, help="data-parallel processes (DDP; gloo on CPU, NCCL on CUDA)")
    p.add_argument("--strategy", choices=["auto", "ddp"], help="multi-device strategy (ddp)")
    p.add_argument("--config", help="YAML file with data/model/method/train sections")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. method.lam=10, data.preset=sim1, model.fusion_hidden=[64]")
    p.add_argument("--out", required=True, help="run directory (rerun the same command to resume)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--trust-pickle", action="store_true",
                   help="let data loaders unpickle arbitrary objects (MultiBench affect pickles you trust; a pickle "
                        "can run code). Only this flag grants it, never a config file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interplay", description="Learning and measuring multimodal interactions.",
                                     formatter_class=HelpFormatter,
                                     epilog="examples:\n  interplay bench demo --out runs/demo --jobs 2\n"
                                            "  interplay train --data pid-xor --method synib --out runs/synib\n"
                                            "`interplay COMMAND --help` shows each command's options and examples")
    parser.add_argument("--version", action="version", version=f"interplay {_version()}")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import a plugin first (module name or .py path; repeatable): it may register "
                             "methods, datasets, encoders, fusions, estimators (docs/plugins.md)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _train_parser(sub)
    _evaluate_parser(sub)
    _predict_parser(sub)
    from . import cli_pid

    cli_pid.add_parser(sub)
    from . import cli_analyze

    cli_analyze.add_parser(sub)
    sub.add_parser("methods", help="list the registered methods")
    data = sub.add_parser("data", help="datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    data_sub.add_parser("list", help="list the registered datasets and their parameters")
    verify = data_sub.add_parser("verify", help="check a dataset's local copy (layout, shapes, splits, checksums)")
    verify.add_argument("--data", required=True, help="dataset name")
    verify.add_argument("--data-root", help="directory of the local copy")
    bench = sub.add_parser("bench", help="run a grid of datasets x methods x seeds (resumable, parallel)",
                           description="Run a benchmark grid into --out, on this machine or on Ray (--executor ray), "
                                       "or print it as `interplay train` commands (--print-commands) for a scheduler "
                                       "such as SLURM. Rerun the same command to resume; Ctrl-C stops within "
                                       "seconds (twice: at once). `--list` lists the presets. See docs/bench.md and "
                                       "docs/cluster.md.")
    bench.add_argument("file", nargs="?", help="benchmark YAML file or shipped preset name (see --list)")
    bench.add_argument("--list", action="store_true", help="list the shipped presets and exit")
    bench.add_argument("--out", help="bench directory (rerun the same command to resume)")
    bench.add_argument("--seeds", type=int, help="number of seeds (overrides the file)")
    bench.add_argument("--jobs", type=int,
                       help="cells at once (default 1): worker processes (local), CPUs of the local Ray instance "
                            "(ray), or the most cells in flight on a Ray cluster (ray with --address, where the "
                            "default is all its CPUs)")
    bench.add_argument("--executor", default="local", metavar="local|ray",
                       help="where cells run: local (this machine) or ray (Ray tasks, on a local Ray instance or "
                            "the cluster at --address; needs interplay[ray]; docs/cluster.md)")
    bench.add_argument("--address", metavar="ADDR",
                       help="with --executor ray: connect to this Ray cluster (auto, HOST:PORT or "
                            "ray://HOST:10001) instead of starting a local instance; its nodes must share --out's "
                            "filesystem at the same path")
    bench.add_argument("--print-commands", action="store_true",
                       help="print one `interplay train` command per unfinished cell (its exact config, its run "
                            "directory under --out) and exit, e.g. for a SLURM array job; rerun the bench "
                            "afterwards to collect results.csv (docs/cluster.md)")
    bench.add_argument("--rerun-changed", action="store_true",
                       help="move cells run with other settings to OUT/stale/ and train them again")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    report = sub.add_parser("report", help="Markdown report with tables and plots of a bench directory")
    report.add_argument("dir", help="bench directory written by `interplay bench`")
    _add_examples(sub)
    return parser


def _version() -> str:
    from ._version import __version__

    return __version__


def config_from_args(args: argparse.Namespace) -> Any:
    """The run config: defaults, then ``--config``, then explicit flags, then ``--set`` overrides."""
    from .config import RunConfig, apply_mapping, load_yaml, parse_override, set_field

    cfg = RunConfig()
    if args.config:
        apply_mapping(cfg, load_yaml(args.config), args.config)
    flags = {"data.name": args.data, "data.root": args.data_root, "method.name": args.method,
             "train.epochs": args.epochs, "train.seed": args.seed, "data.n_train": args.n_train,
             "data.n_test": args.n_test, "train.batch_size": args.batch_size, "train.lr": args.lr,
             "train.device": args.device, "train.devices": args.devices, "train.strategy": args.strategy}
    for key, value in flags.items():
        if value is not None:
            section, field = key.split(".")
            apply_mapping(cfg, {section: {field: value}}, f"--{field}")
    if args.mix is not None:
        set_field(cfg, "data.mix", args.mix)
    for text in args.overrides:
        key, value = parse_override(text)
        if key in ("data.name", "method.name"):
            apply_mapping(cfg, {key.split(".")[0]: {"name": value}}, "--set")
        else:
            set_field(cfg, key, value)
    return cfg


def _print_run(metrics: dict[str, Any], out: str) -> None:
    from .bench.tables import format_table

    test, val = metrics["test"], metrics["val"]
    if "mae" in test:  # regression: the MOSI metrics
        rows = [["val MAE", f"{val['mae']:.4f}"], ["test MAE", f"{test['mae']:.4f}"],
                ["test Corr", f"{test['corr']:.4f}"], ["test Acc7", f"{test['acc7']:.4f}"],
                ["test Acc2 (non-zero)", f"{test['acc2']:.4f}"],
                ["test F1 (non-zero)", f"{test['f1']:.4f}"], ["test Acc2 (has zero)", f"{test['acc2_has0']:.4f}"],
                ["test Acc2 (> 0, MultiBench)", f"{test.get('acc2_gt0', float('nan')):.4f}"]]
    elif "auprc" in test:  # one-class anomaly detection: threshold chosen on validation
        rows = [["val AUROC", f"{val['auroc']:.4f}"], ["test AUROC", f"{test['auroc']:.4f}"],
                ["test AUPRC", f"{test['auprc']:.4f}"], ["test F1 (validation threshold)", f"{test['f1']:.4f}"]]
        for name, auc in (test.get("auroc_by_type") or {}).items():
            rows.append([f"test AUROC {name} anomalies", "-" if auc is None else f"{auc:.4f}"])
    else:
        rows = [["val accuracy", f"{val['accuracy']:.4f}"], ["test accuracy", f"{test['accuracy']:.4f}"],
                ["test macro-F1", f"{test['macro_f1']:.4f}"]]
    for name, acc in (test.get("accuracy_by_interaction") or {}).items():
        rows.append([f"test {name}", "-" if acc is None else f"{acc:.4f}"])
    for name, g in (test.get("agreement_groups") or {}).items():
        rows.append([f"test {name} (n={g['n']})", "-" if g["accuracy"] is None else f"{g['accuracy']:.4f}"])
    print(f"{metrics['method']} on {metrics['data']} (seed {metrics['seed']}), best epoch {metrics['best_epoch']}"
          f" of {metrics['epochs']}; run directory {out}")
    print(format_table(["metric", "value"], rows))


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from .data.affect import TRUST_PICKLE_ENV
    from .engine import Trainer

    cfg = config_from_args(args)
    # --trust-pickle reaches the loaders through the environment (inherited by DDP ranks), never through the
    # config: it is not part of config.yaml or of the run's fingerprint
    before = os.environ.get(TRUST_PICKLE_ENV)
    if args.trust_pickle:
        os.environ[TRUST_PICKLE_ENV] = "1"
    try:
        metrics = Trainer(cfg, args.out, quiet=args.quiet).fit()
    finally:
        if args.trust_pickle:
            if before is None:
                os.environ.pop(TRUST_PICKLE_ENV, None)
            else:
                os.environ[TRUST_PICKLE_ENV] = before
    _print_run(metrics, args.out)
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from .bench.tables import format_table
    from .config import signature_schema
    from .objectives import METHODS

    rows = []
    for name, cls in METHODS.items():
        params = ", ".join(f"{k}={v[1]!r}" for k, v in signature_schema(cls).items())
        rows.append([name, cls.description, params or "-"])
    print(format_table(["method", "description", "hyperparameters (method.NAME, defaults)"], rows))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .config import signature_schema
    from .data import COMMON_FIELDS, DATASETS

    if args.data_command == "verify":
        return _verify(args.data, args.data_root)
    for name, fn in DATASETS.items():
        doc = " ".join((inspect.getdoc(fn) or "").split("\n\n")[0].split())
        params = ", ".join(f"{k}={v[1]!r}" for k, v in signature_schema(fn, skip=COMMON_FIELDS).items())
        print(f"{name}\n  {doc}\n  parameters (--set data.NAME=VALUE): {params or '-'}\n")
    return 0


def _verify(name: str, root: str | None) -> int:
    from .data import DATASETS, VERIFIERS, Check

    builder = DATASETS.get(name)
    if name in VERIFIERS:
        checks = VERIFIERS.get(name)(root)
    else:  # no dedicated checks: building the dataset is the check
        splits = builder(seed=0, n_train=None, n_test=None, val_fraction=0.1, root=root)
        checks = [Check(True, f"{split}: {len(getattr(splits, split))} samples, modalities "
                              f"{dict(splits.info.modalities)}") for split in ("train", "val", "test")]
    for c in checks:
        print(f"{'ok  ' if c.ok else 'FAIL'} {c.message}")
    failed = [c for c in checks if not c.ok]
    if failed:
        print(f"interplay: error: {name} at {root}: {len(failed)} check(s) failed; first: {failed[0].message}",
              file=sys.stderr)
        return 2
    print(f"{name}: all {len(checks)} checks passed")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``interplay bench``: run or resume a grid (a file or a shipped preset); ``--list`` lists the presets."""
    if args.list:
        from .bench.presets import list_presets

        presets = list_presets()
        width = max((len(name) for name, _ in presets), default=0)
        for name, description in presets:
            print(f"{name:<{width}}  {description}")
        return 0
    if not args.file:
        raise ConfigError("bench: expected a benchmark YAML file or a preset name (`interplay bench --list` "
                          "lists the presets)")
    if not args.out:
        raise ConfigError("bench: --out DIR is required (the bench directory; rerun the same command to resume)")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs: expected a positive integer, got {args.jobs}")
    if args.print_commands:
        return _print_bench_commands(args)
    from .bench.report import summary_tables
    from .bench.runner import BenchInterrupted, run_bench

    try:
        result = run_bench(args.file, args.out, seeds=args.seeds, jobs=args.jobs, quiet=args.quiet,
                           rerun_changed=args.rerun_changed, notify=lambda line: print(line, file=sys.stderr),
                           executor=args.executor, address=args.address)
    except BenchInterrupted as exc:
        _ignore_further_interrupts()
        print(f"interplay: interrupted: {exc.message}", file=sys.stderr)
        return 128 + int(exc.signum)
    s = result.summary
    if result.rows:
        print(summary_tables(args.out))
    already = s["runs"] - s["ran_now"] - s["failed"] - s["finished_elsewhere"]
    elsewhere = f", {s['finished_elsewhere']} by another bench" if s["finished_elsewhere"] else ""
    failed = f", {s['failed']} failed" if s["failed"] else ""
    print(f"{s['runs']} runs ({s['ran_now']} now, {already} already finished{elsewhere}{failed}); "
          f"grid wall {s['grid_wall_s']:.1f} s, summed run time {s['sum_run_wall_s']:.1f} s, "
          f"parallel efficiency {s['parallel_efficiency']} with {s['jobs']} job(s)"
          f"{' on ray' if s.get('executor') == 'ray' else ''}; results: {args.out}/results.csv; "
          f"`interplay report {args.out}` for plots")
    for run_dir, msg in result.failed:
        print(f"interplay: error: run {run_dir} failed: {msg.splitlines()[-1]}", file=sys.stderr)
    return 1 if result.failed else 0


def _print_bench_commands(args: argparse.Namespace) -> int:
    """``interplay bench FILE --out DIR --print-commands``: one ``interplay train`` line per unfinished cell on
    stdout (nothing else there), a summary line on stderr."""
    import contextlib
    import io

    from .bench.commands import print_commands
    from .bench.executors import make_executor
    from .bench.runner import attempt_cell

    make_executor(args.executor, attempt_cell, args.jobs, args.address)  # bad --executor / --address: one line
    parser = build_parser()

    def to_config(argv: list[str]) -> Any:
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                parsed = parser.parse_args(argv)
            except SystemExit:
                return None
        return config_from_args(parsed)

    print_commands(args.file, args.out, to_config, seeds=args.seeds, rerun_changed=args.rerun_changed,
                   plugins=args.plugin, notify=None if args.quiet else (lambda line: print(line, file=sys.stderr)))
    return 0


def cmd_pid(args: argparse.Namespace) -> int:
    from . import cli_pid

    return cli_pid.run(args)


def cmd_analyze(args: argparse.Namespace) -> int:
    from . import cli_analyze

    return cli_analyze.run(args)


def cmd_report(args: argparse.Namespace) -> int:
    from .bench.report import make_report

    print(make_report(args.dir))
    return 0


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="recompute a trained run's test metrics, on its own data or on other data",
                       description="Load a run's best.pt and evaluate it on its own test split (no data options: the "
                                   "training test metrics) or on another dataset / other data parameters (the "
                                   "run's data config with --data, --data-root and --set data.KEY=VALUE applied). "
                                   "Writes OUT/metrics.json and OUT/predictions.csv; the run directory is not "
                                   "touched.")
    p.add_argument("run", metavar="DIR", help="run directory written by `interplay train`")
    p.add_argument("--data", help="another dataset (default: the run's; its parameters start from their defaults)")
    p.add_argument("--data-root", help="directory of the dataset's local copy")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="data.KEY=VALUE",
                   help="override a data field, e.g. data.mix=synergistic=1, data.n_test=1000, data.seed=7")
    p.add_argument("--out", required=True, help="directory for metrics.json and predictions.csv (not the run's)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")


def _print_evaluation(metrics: dict[str, Any], out: str) -> None:
    from .bench.tables import format_table

    test = metrics["test"]
    ref = metrics.get("in_distribution")  # evaluated on other data: the run's own test metrics beside

    def num(v: Any) -> str:
        return "-" if v is None else f"{v:.4f}"

    def row(label: str, value: Any, ref_value: Any = None) -> list[str]:
        return [label, num(value)] + ([num(ref_value)] if ref is not None else [])

    own = ref or {}
    if "mae" in test:
        rows = [row(f"test {k}", test.get(k), own.get(k))
                for k in ("mae", "corr", "acc7", "acc2", "f1", "acc2_has0", "acc2_gt0")]
    else:
        rows = [row("test accuracy", test["accuracy"], own.get("accuracy")),
                row("test macro-F1", test["macro_f1"], own.get("macro_f1"))]
    for name, acc in (test.get("accuracy_by_interaction") or {}).items():
        rows.append(row(f"test {name}", acc, (own.get("accuracy_by_interaction") or {}).get(name)))
    for name, g in (test.get("agreement_groups") or {}).items():
        rows.append(row(f"test {name} (n={g['n']})", g["accuracy"]))
    print(f"{metrics['method']} run {metrics['run_dir']} (best epoch {metrics['best_epoch']}) on {metrics['data']}: "
          f"{metrics['samples']} test samples; results in {out}")
    print(format_table(["metric", "value"] + (["in distribution"] if ref is not None else []), rows))


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .config import parse_override
    from .engine.reload import evaluate_run

    overrides: dict[str, Any] = {} if args.data_root is None else {"root": args.data_root}
    for text in args.overrides:
        key, value = parse_override(text)
        if not key.startswith("data."):
            raise ConfigError(f"--set {text}: evaluate takes data.KEY=VALUE only (the model, method and training "
                              f"settings are the run's)")
        overrides[key.removeprefix("data.")] = value
    metrics = evaluate_run(args.run, overrides or None, args.data, args.out, args.device)
    _print_evaluation(metrics, args.out)
    return 0


def _predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict new inputs with a trained run",
                       description="Per-sample predictions of a run's model (the method's own prediction rule) for "
                                   "new inputs keyed by modality name, in the representation of the run's dataset. "
                                   "Writes a CSV: index,pred,prob_<class>... (regression: index,pred).")
    p.add_argument("run", metavar="DIR", help="run directory written by `interplay train`")
    p.add_argument("--inputs", required=True, metavar="FILE",
                   help=".npz (one array per modality, read with allow_pickle=False) or .pt (a dict of tensors, "
                        "read with weights_only=True); each (N, *shape)")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="predictions CSV (outside the run directory)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")


def cmd_predict(args: argparse.Namespace) -> int:
    from .engine.reload import predict_file

    preds = predict_file(args.run, args.inputs, args.out, args.device)
    if preds.task == "regression":
        summary = f"mean prediction {float(preds.pred.float().mean()):.4f}"
    else:
        counts = preds.pred.bincount(minlength=preds.logits.shape[1]).tolist()
        summary = "predicted class counts " + ", ".join(f"{c}: {n}" for c, n in enumerate(counts))
    print(f"{len(preds)} predictions written to {args.out} ({summary})")
    return 0


def _load_plugins(args: argparse.Namespace) -> None:
    """Import the ``--plugin`` modules now (they register methods, datasets, ...) and export them in
    ``$INTERPLAY_PLUGINS`` so that worker processes (bench jobs, DDP ranks) load them too."""
    if getattr(args, "plugin", None):
        from .plugins import use_plugins

        use_plugins(args.plugin)


COMMANDS = {"train": cmd_train, "methods": cmd_methods, "data": cmd_data, "bench": cmd_bench,
            "report": cmd_report, "pid": cmd_pid, "analyze": cmd_analyze, "evaluate": cmd_evaluate,
            "predict": cmd_predict}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:  # `interplay data list | head`: the reader has all it wanted
        _discard_stdout()
        return 0


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (e.g. captured output): nothing to flush into a pipe
        pass


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _load_plugins(args)
        return COMMANDS[args.command](args)
    except BrokenPipeError:
        raise
    except InterplayError as exc:
        print(f"interplay: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written: one line naming it
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"interplay: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except FloatingPointError as exc:
        print(f"interplay: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _ignore_further_interrupts()
        print("interplay: interrupted; finished epochs are saved; rerun the same command to resume",
              file=sys.stderr)
        return 130


def _ignore_further_interrupts() -> None:
    """The command is ending because of Ctrl-C: a second Ctrl-C (or a SIGINT to the process group) arriving while
    the interpreter shuts down must not print a traceback from an exit handler."""
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to protect
        pass


if __name__ == "__main__":
    sys.exit(main())
