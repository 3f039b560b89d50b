"""``interplay analyze``: which interactions a dataset holds and which a trained model uses.

    from interplay import analyze
    from interplay.analysis import AnalysisSettings
    a = analyze(data="pid-xor", overrides={"data.mix": "redundant=0.5,synergistic=0.5"}, out="analysis/rs")
    a["dataset"]["pairs"][0]["synergy"]          # {"value": 0.45, "interval": [0.44, 0.46]} (bits)
    a["dataset"]["recommendation"]["text"]       # sentences citing the measured numbers
    analyze("runs/synib", out="analysis/synib", settings=AnalysisSettings(units="nats"))   # run mode

Dataset mode (``data=NAME``) builds the dataset as ``interplay train`` would and measures the pairwise PID of every
modality pair (:func:`analyze_dataset`). Run mode (``target=RUN_DIR``) loads the run
(:func:`interplay.engine.reload.load_run`), rebuilds its data splits exactly as training did (same config, same
seed) and adds the ``model`` section (:func:`interplay.analysis.run.analyze_run`: PID of the model's predictions,
per-sample interaction types, accuracy by type). With ``out``: ``analysis.json``, ``per_sample.csv`` (run mode),
PNG plots and ``report.html`` (:func:`write_report`), every file written atomically. The JSON schema is in
docs/analysis.md.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DataError
from .dataset import analyze_dataset, cluster_settings
from .report import write_report
from .settings import AnalysisSettings

if TYPE_CHECKING:
    from ..config import RunConfig
    from ..data import DataSplits

__all__ = ["AnalysisSettings", "analyze", "analyze_dataset", "write_report"]


def _settings_dict(settings: AnalysisSettings) -> dict[str, Any]:
    out = dataclasses.asdict(settings)
    out["per_sample"] = list(settings.per_sample)
    return out


def _data_section(cfg: RunConfig, splits: DataSplits) -> dict[str, Any]:
    info = splits.info
    return {"name": info.name, "config": cfg.to_dict()["data"], "modalities": list(info.modalities),
            "num_classes": info.num_classes,
            "samples": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}}


def _check_out(out: Path, run_dir: Path | None = None) -> None:
    """``out`` must be a directory (or not exist yet) and, in run mode, not the run directory or inside it."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; expected a directory for analysis.json and the report")
    for parent in out.expanduser().resolve().parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"--out {out}: {parent} is a file; expected a directory")
    if run_dir is not None:
        o, r = out.expanduser().resolve(), run_dir.expanduser().resolve()
        if o == r or r in o.parents:
            raise ConfigError(f"--out {out}: inside the run directory {run_dir}; write the analysis elsewhere")


def _dataset_config(data: str, overrides: Mapping[str, Any] | None, seed: int) -> RunConfig:
    from ..config import RunConfig, apply_mapping, set_field
    from ..engine.trainer import resolve_config

    cfg = RunConfig()
    apply_mapping(cfg, {"data": {"name": data}}, "--data")
    cfg.train.seed = int(seed)
    for key, value in (overrides or {}).items():
        full = key if key.startswith("data.") else f"data.{key}"
        if "." in key and not key.startswith("data."):
            raise ConfigError(f"--set {key}: interplay analyze takes dataset parameters (data.KEY=VALUE) and "
                              f"estimator settings (estimator.KEY=VALUE) only")
        if full == "data.name":
            raise ConfigError("--set data.name: choose the dataset with --data")
        set_field(cfg, full, value)
    for name in ("n_train", "n_test"):
        value = getattr(cfg.data, name)
        if value is not None and value < 1:
            raise ConfigError(f"data.{name}: expected a positive integer, got {value}")
    return resolve_config(cfg)


def analyze(target: str | Path | None = None, *, data: str | None = None, overrides: Mapping[str, Any] | None = None,
            out: str | Path | None = None, settings: AnalysisSettings | None = None, device: str = "cpu",
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Analyse a dataset (``data=NAME``, ``overrides`` such as ``{"data.mix": "synergistic=1"}``) or a trained run
    (``target=RUN_DIR``) and return the analysis (the ``analysis.json`` dict; schema in docs/analysis.md).

    Args:
        target: a run directory written by ``interplay train`` (run mode).
        data: a registered dataset name (dataset mode); its data seed is ``settings.seed``.
        overrides: dataset mode only: data fields (``data.KEY`` or ``KEY``: ``mix``, ``n_train``, ``modalities``,
            ...).
        out: directory for ``analysis.json``, ``per_sample.csv`` (run mode), the PNGs and ``report.html``.
        settings: :class:`AnalysisSettings` (default: its defaults).
        device: run mode: where the model runs.
        progress: called with a message before each long step (default: stderr unless ``settings.quiet``).

    Raises:
        ConfigError / DataError: one line: both or neither of ``target`` and ``data``, an unknown dataset, a
            missing run directory, ``out`` that is a file, bad settings.
    """
    from .._version import __version__
    from ..io import atomic_write_csv, atomic_write_json, to_jsonable

    settings = settings or AnalysisSettings()
    cluster_settings(settings)  # every setting checked before anything is built or loaded
    if (target is None) == (data is None):
        raise ConfigError("give either a run directory (interplay analyze RUN_DIR) or a dataset (--data NAME), "
                          + ("not both" if target is not None else "got neither"))
    say = progress if progress is not None else (
        (lambda _m: None) if settings.quiet else
        (lambda m: print(f"interplay analyze: {m}", file=sys.stderr, flush=True)))
    out_dir = Path(out) if out is not None else None
    result: dict[str, Any] = {"interplay_version": __version__, "kind": "dataset" if data is not None else "run",
                              "units": settings.units, "settings": _settings_dict(settings)}
    run_analysis = None
    if data is not None:
        if out_dir is not None:
            _check_out(out_dir)
        cfg = _dataset_config(data, overrides, settings.seed)
        say(f"building {data}")
        from ..engine.reload import build_run_data

        splits = build_run_data(cfg)
        result["data"] = _data_section(cfg, splits)
        result["dataset"] = analyze_dataset(splits, settings, progress=say)
    else:
        if overrides:
            raise ConfigError("--set data.*: a run is analysed on its own data (the run's config); use "
                              "`interplay evaluate` for other data")
        from ..engine.reload import load_run_and_data

        run_dir = Path(str(target))
        if not run_dir.exists():
            raise DataError(f"{run_dir}: run directory not found")
        if out_dir is not None:
            _check_out(out_dir, run_dir)
        say(f"loading the run in {run_dir} and rebuilding its data")
        run, splits = load_run_and_data(run_dir, device)
        result["data"] = _data_section(run.config, splits)
        result["dataset"] = analyze_dataset(splits, settings, progress=say)
        from .run import analyze_run

        say(f"model analysis of {run.config.method.name}: PID of its predictions, per-sample types "
            f"({', '.join(settings.per_sample)})")
        run_analysis = analyze_run(run, splits, settings)
        result["model"] = run_analysis.section
    result = json.loads(json.dumps(to_jsonable(result)))
    if out_dir is not None:
        if run_analysis is not None:
            atomic_write_csv(out_dir / "per_sample.csv", run_analysis.per_sample_header,
                             run_analysis.per_sample_rows)
        atomic_write_json(out_dir / "analysis.json", result)
        say(f"plots and report.html in {out_dir}")
        write_report(out_dir, result)
    return result
