"""The training engine: stages, epochs, validation, best-checkpoint selection, test, resumable run directories.

A run directory (``out_dir``) holds::

    config.yaml        resolved config (written once the config is validated and the data, model and method are
                       built; a rerun with another config is refused once training has written anything: a
                       directory whose run failed before its first epoch is reused)
    last.pt            model + objective + optimiser + RNG state + elapsed training time after the last finished
                       epoch
    best.pt            best-validation weights of the current stage
    log.jsonl          one line per finished epoch (stage, every loss term, validation metrics)
    metrics.json       written last: a run with metrics.json is complete
    predictions.csv    one row per test sample
    env.json           versions, git revision, seed, device
    data_info.json     the dataset's modalities, shapes and classes (for reloading without the data)

Interrupted runs resume from ``last.pt`` when the same command is run again. Checkpoints hold tensors and plain
values only and are read with ``torch.load(weights_only=True)``: a ``last.pt`` / ``best.pt`` that asks for
anything else (a crafted pickle) is refused with :class:`~interplay.errors.DataError` and never executed; an
empty or truncated one is reported in one warning line and the run restarts from scratch. A run that fails before
its first epoch is saved removes what it created (files and directories that did not exist before it).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from tqdm.auto import tqdm

from .._version import __version__
from ..config import RunConfig, TrainConfig, coerce, resolve_params, signature_schema
from ..data import COMMON_FIELDS, DATASETS, DataSplits, check_labels
from ..device import resolve_device
from ..errors import ConfigError, DataError
from ..io import (
    CorruptFileError,
    UnsafeFileError,
    atomic_torch_save,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    load_torch,
    read_json,
    to_jsonable,
)
from ..metrics import selection_metric, selection_score
from ..models import MultimodalModel, build_model
from ..objectives import Objective, Stage, TrainState
from .callbacks import Callback, build_loggers, check_loggers
from .data_info import DATA_INFO_FILE, write_data_info
from .distributed import all_reduce_tensor, is_distributed, rank_and_world, spawn_fit, wrap
from .evaluation import EvalOutput, calibrate, evaluate, is_correct, prediction_rows, split_metrics
from .one_class import build_mode_objective, check_mode, mode_method_params
from .seeding import epoch_generator, rng_state, seed_everything, set_rng_state

PRECISIONS: dict[str, torch.dtype | None] = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


#: seeds must fit torch's 64-bit unsigned seed
_SEED_LIMIT = 2**64

#: the one-line refusal of ``data.trust_pickle`` in a config (file, bench YAML or ``--set``)
TRUST_PICKLE_REFUSED = ("data.trust_pickle: pickle trust cannot come from a config (a shared config file or bench "
                        "YAML could make you run code from a data file); for a file you trust, pass --trust-pickle "
                        "to `interplay train` (or set INTERPLAY_TRUST_PICKLE=1 in the environment)")


def _check_number(name: str, value: float | None, positive: bool = False, below: float | None = None) -> None:
    """Raise :class:`ConfigError` unless ``value`` (``None`` passes) is finite, non-negative (positive with
    ``positive``) and smaller than ``below``."""
    if value is None:
        return
    bad = not math.isfinite(value) or value < 0 or (positive and value == 0) or (below is not None
                                                                                 and value >= below)
    if bad:
        kind = "a finite positive number" if positive else "a finite non-negative number"
        raise ConfigError(f"{name}: expected {kind}{f' below {below:g}' if below is not None else ''}, got {value}")


def _check_seed(name: str, seed: int | None) -> None:
    if seed is not None and not 0 <= seed < _SEED_LIMIT:
        raise ConfigError(f"{name}: expected an integer from 0 to 2**64-1, got {seed}")


def resolve_config(cfg: RunConfig) -> RunConfig:
    """A copy of ``cfg`` with dataset and method parameters validated and completed with their defaults.

    Every value is checked here, before anything is built or written (the bench resolves every cell before its
    grid starts): field ranges (finite learning rate, weight decay, momentum, gradient clip; non-negative seeds;
    positive sample counts), the method's hyperparameters, and the dataset parameters' values through the
    dataset's validator (``builder.validate``, see :func:`~interplay.data.dataset.validated_by`; e.g. pid-xor's
    mix). ``data.trust_pickle``
    is refused: pickle trust is a command-line flag, never a config value.
    """
    cfg = copy.deepcopy(cfg)
    builder = DATASETS.get(cfg.data.name)
    if "trust_pickle" in cfg.data.params:  # false (the default; in config.yaml of runs before the flag) is dropped
        if coerce(cfg.data.params.pop("trust_pickle"), bool, "data.trust_pickle"):
            raise ConfigError(TRUST_PICKLE_REFUSED)
    cfg.data.params = resolve_params(cfg.data.params, signature_schema(builder, skip=COMMON_FIELDS), "data",
                                     f"dataset {cfg.data.name!r}")
    d = cfg.data
    for name, n in (("data.n_train", d.n_train), ("data.n_test", d.n_test)):
        if n is not None and n < 1:
            raise ConfigError(f"{name}: expected a positive number of samples, got {n}")
    _check_number("data.val_fraction", d.val_fraction, below=1.0)
    _check_seed("data.seed", d.seed)
    _check_seed("train.seed", cfg.train.seed)
    _check_number("model.dropout", cfg.model.dropout, below=1.0)
    check_mode(cfg.train.mode)  # train.mode: the objective as configured, or wrapped (one_class: Deep SVDD)
    cfg.method.params = mode_method_params(cfg.train.mode, cfg.method.name, cfg.method.params)
    if cfg.train.mode == "one_class":
        if cfg.train.select_metric == "auto":  # one-class runs pick the epoch of the best validation AUROC
            cfg.train.select_metric = "auroc"
        if cfg.train.unimodal_reference or cfg.train.unimodal_from:
            raise ConfigError("train.unimodal_reference / train.unimodal_from: not available with "
                              "train.mode=one_class (the single-modality baseline is method.svdd_modality)")
    if cfg.train.epochs < 1:
        raise ConfigError(f"train.epochs: expected a positive integer, got {cfg.train.epochs}")
    if cfg.train.batch_size < 1:
        raise ConfigError(f"train.batch_size: expected a positive integer, got {cfg.train.batch_size}")
    _check_number("train.lr", cfg.train.lr, positive=True)
    _check_number("train.weight_decay", cfg.train.weight_decay)
    _check_number("train.momentum", cfg.train.momentum)
    _check_number("train.grad_clip", cfg.train.grad_clip)
    if cfg.train.precision not in PRECISIONS:
        raise ConfigError(f"train.precision: expected one of {', '.join(PRECISIONS)}, got {cfg.train.precision!r}")
    if cfg.train.devices < 1:
        raise ConfigError(f"train.devices: expected a positive integer, got {cfg.train.devices}")
    if cfg.train.strategy not in ("auto", "ddp"):
        raise ConfigError(f"train.strategy: expected auto or ddp, got {cfg.train.strategy!r}")
    if cfg.train.optimizer not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer: unknown optimizer {cfg.train.optimizer!r}; expected one of "
                          f"{', '.join(OPTIMIZERS)}")
    _check_schedule(cfg.train)
    check_loggers(cfg.train.loggers)
    validate = getattr(builder, "validate", None)  # see interplay.data.dataset.validated_by
    if validate is not None:
        validate(**_builder_kwargs(cfg))
    return cfg


SCHEDULERS = ("none", "cosine", "step", "onecycle")

#: train options added after run directories existed: a config.yaml without them ran with their defaults
_LATER_TRAIN_OPTIONS = ("scheduler", "warmup_epochs", "step_size", "gamma", "min_lr", "patience", "accumulate",
                        "mode")
#: train options that only choose who observes a run: a resume may change them
_OBSERVER_TRAIN_OPTIONS = ("loggers", "mlflow_tracking_uri")


def _check_schedule(t: TrainConfig) -> None:
    """Validate the schedule, early-stopping and accumulation options (one-line :class:`ConfigError`)."""
    if t.scheduler not in SCHEDULERS:
        raise ConfigError(f"train.scheduler: expected one of {', '.join(SCHEDULERS)}, got {t.scheduler!r}")
    if t.warmup_epochs < 0:
        raise ConfigError(f"train.warmup_epochs: expected a non-negative integer, got {t.warmup_epochs}")
    if t.step_size < 1:
        raise ConfigError(f"train.step_size: expected a positive integer, got {t.step_size}")
    _check_number("train.gamma", t.gamma, positive=True)
    _check_number("train.min_lr", t.min_lr)
    if t.min_lr > t.lr:
        raise ConfigError(f"train.min_lr: expected at most train.lr ({t.lr:g}), got {t.min_lr:g}")
    if t.patience is not None and t.patience < 1:
        raise ConfigError(f"train.patience: expected a positive integer (or null: no early stopping), got "
                          f"{t.patience}")
    if t.accumulate < 1:
        raise ConfigError(f"train.accumulate: expected a positive integer, got {t.accumulate}")


def lr_factor(t: TrainConfig, stage_epoch: int, stage_epochs: int) -> float:
    """The multiplier of a stage's learning rate in its epoch ``stage_epoch`` (0-based) of ``stage_epochs``: a
    function of the epoch alone, so a resumed run continues its schedule exactly."""
    if stage_epoch < t.warmup_epochs:
        return (stage_epoch + 1) / (t.warmup_epochs + 1)
    e, n = stage_epoch - t.warmup_epochs, max(stage_epochs - t.warmup_epochs, 1)
    floor = t.min_lr / t.lr
    if t.scheduler == "cosine":
        return floor + (1 - floor) * (1 + math.cos(math.pi * e / n)) / 2
    if t.scheduler == "step":
        return float(t.gamma ** (e // t.step_size))
    if t.scheduler == "onecycle":
        rise = max(math.ceil(0.3 * n), 1)
        if e < rise:
            return 1 / 25 + (1 - 1 / 25) * e / rise
        return floor + (1 - floor) * (1 + math.cos(math.pi * (e - rise) / max(n - rise, 1))) / 2
    return 1.0


def _builder_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """The keyword arguments of the dataset builder (and validator) of a resolved config."""
    d = cfg.data
    return {"seed": cfg.train.seed if d.seed is None else d.seed, "n_train": d.n_train, "n_test": d.n_test,
            "val_fraction": d.val_fraction, "root": d.root, **d.params}


def build_data(cfg: RunConfig) -> DataSplits:
    """Build the dataset splits the (resolved) config describes and check that none is empty and that the labels
    are in range."""
    splits = DATASETS.get(cfg.data.name)(**_builder_kwargs(cfg))
    for split in (splits.train, splits.val, splits.test):
        if len(split) == 0:
            raise DataError(f"{split.name}: no samples (data.n_train={cfg.data.n_train}, "
                            f"data.n_test={cfg.data.n_test}, data.val_fraction={cfg.data.val_fraction}); every "
                            f"split needs at least one sample")
    if splits.info.task == "classification":
        for split in (splits.train, splits.val, splits.test):
            check_labels(split.target, splits.info.num_classes, split.name)
    return splits


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": lambda params, t, lr: torch.optim.Adam(params, lr=lr, weight_decay=t.weight_decay),
    "adamw": lambda params, t, lr: torch.optim.AdamW(params, lr=lr, weight_decay=t.weight_decay),
    "sgd": lambda params, t, lr: torch.optim.SGD(params, lr=lr, momentum=t.momentum, weight_decay=t.weight_decay),
}


def environment(cfg: RunConfig, device: torch.device) -> dict[str, Any]:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    return {"interplay": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "platform": platform.platform(), "git_revision": rev,
            "seed": cfg.train.seed, "device": str(device),
            "cuda": torch.version.cuda if device.type == "cuda" else None}


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            d = _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} in the directory, {b!r} now"


class Trainer:
    """Train one objective on one dataset as a config describes; optionally persist to a run directory.

    Args:
        cfg: the run config (resolved here).
        out_dir: run directory; ``None`` keeps everything in memory.
        quiet: no progress bar.
        callbacks: :class:`~interplay.engine.callbacks.Callback` objects called (on rank 0) at the start of the fit,
            after each epoch with its log.jsonl row and at the end with metrics.json's content, after the loggers
            ``train.loggers`` names. A run spawned from this process (``train.devices > 1`` without a process
            group) calls them here once its ranks have finished, with the rows that log.jsonl gained.
    """

    def __init__(self, cfg: RunConfig, out_dir: str | Path | None = None, quiet: bool = False,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.cfg = resolve_config(cfg)
        self.loggers = build_loggers(self.cfg.train.loggers)
        self.user_callbacks = list(callbacks)
        self.out = Path(out_dir) if out_dir is not None else None
        self.quiet = quiet
        self.rank, self.world = rank_and_world()
        self.device = resolve_device(self.cfg.train.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.log: list[dict[str, Any]] = []
        self._best_state: dict[str, Any] | None = None  # in-memory best checkpoint (no out_dir, or DDP)

    @property
    def callbacks(self) -> list[Callback]:
        """The loggers ``train.loggers`` names, then the callbacks passed to the constructor."""
        return [*self.loggers, *self.user_callbacks]

    def _call(self, hook: str, arg: dict[str, Any], callbacks: Sequence[Callback] | None = None) -> None:
        """Call ``hook`` of every callback (rank 0 only) with ``arg`` as its JSON file holds it."""
        if not self.is_main:
            return
        arg = json.loads(json.dumps(to_jsonable(arg)))
        for cb in self.callbacks if callbacks is None else callbacks:
            getattr(cb, hook)(self, arg)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory (rank 0 of a run with an ``out_dir``)."""
        return self.out is not None and self.is_main

    def _written_dir(self) -> Path | None:
        """The run directory if this process writes it (see :attr:`writes`), else ``None``."""
        return self.out if self.writes else None

    # ------------------------------------------------------------------ run directory
    #: files that only training writes: their presence means the directory holds (part of) a run
    _RUN_ARTEFACTS = ("last.pt", "best.pt", "log.jsonl", "metrics.json", "predictions.csv")

    def _check_dir(self) -> dict[str, Any] | None:
        """Check the run directory (writing nothing); return finished metrics if the run is already complete."""
        if self.out is None:
            return None
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"{self.out}: exists and is not a directory; use another --out directory")
        cfg_path = self.out / "config.yaml"
        new = self.cfg.to_dict()
        try:
            if cfg_path.exists():
                try:
                    old = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
                except (yaml.YAMLError, UnicodeDecodeError):
                    raise ConfigError(f"{cfg_path}: unreadable config in the run directory") from None
                if isinstance(old, dict) and isinstance(old.get("train"), dict):
                    # train options newer than the run directory, at their defaults, are the run's own settings
                    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
                    for key in _LATER_TRAIN_OPTIONS:
                        if key not in old["train"] and new["train"][key] == defaults[key]:
                            old["train"][key] = defaults[key]
                    # loggers only observe a run: an invocation may choose others, and another MLflow tracking URI
                    # (config.yaml records the last)
                    for key in _OBSERVER_TRAIN_OPTIONS:
                        old["train"][key] = new["train"][key]
                diff = _first_difference(old, new)
                if diff and any((self.out / name).exists() for name in self._RUN_ARTEFACTS):
                    raise ConfigError(f"{self.out}: holds a run with a different config ({diff}); "
                                      f"use another --out directory")
                if (self.out / "metrics.json").exists():
                    return read_json(self.out / "metrics.json")
            elif self.out.exists() and any(self.out.iterdir()):
                raise ConfigError(f"{self.out}: directory is not empty and holds no Interplay run (no "
                                  f"config.yaml); use another --out directory")
        except OSError as exc:
            raise ConfigError(f"{exc.filename or self.out}: cannot read the run directory ({exc.strerror})") from None
        return None

    def _create_dir(self) -> list[Path]:
        """Create the run directory and write ``config.yaml``; return what did not exist before (files, then
        directories, deepest first) so that :meth:`_remove_created` can undo exactly this invocation's writes."""
        assert self.out is not None
        created = [d for d in (self.out, *self.out.parents) if not d.exists()]
        created += [self.out / name for name in ("config.yaml", "env.json", DATA_INFO_FILE)
                    if not (self.out / name).exists()]
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.yaml", self.cfg.to_yaml())
        except OSError as exc:
            self._remove_created(created)
            raise ConfigError(f"{exc.filename or self.out}: cannot create the run directory ({exc.strerror}); "
                              f"use another --out directory") from None
        return created

    def _remove_created(self, created: list[Path]) -> None:
        """After a failure: unless the directory holds (part of) a run, remove the files and directories this
        invocation created. Files that existed before it are left alone, and so is anything written by others."""
        if self.out is None or any((self.out / name).exists() for name in self._RUN_ARTEFACTS):
            return
        for path in sorted((p for p in created if p.parent == self.out), key=str):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        for path in created:
            if path.parent != self.out:
                try:
                    path.rmdir()  # only if empty: never removes what someone else put there
                except OSError:
                    break

    # ------------------------------------------------------------------ main entry
    def fit(self) -> dict[str, Any]:
        """Train, select on validation, test once; return ``metrics.json``'s content."""
        if self.cfg.train.devices > 1 and not is_distributed():
            return self._fit_spawned()
        done = self._check_dir() if self.is_main else None
        if done is not None:
            return done
        if self.world > 1:
            dist.barrier()  # rank 0 has checked the directory
        cfg = self.cfg
        seed_everything(cfg.train.seed)
        # data, model and method are built before the directory is written: a failure here leaves nothing behind
        self.data = data = build_data(cfg)
        for split in (data.train, data.val, data.test):
            split.to(self.device)
        self.model = model = build_model(cfg.model, data.info).to(self.device)
        self.objective = objective = build_mode_objective(cfg.train.mode, cfg.method)
        objective.setup(model, data)
        objective.to(self.device)
        stages = objective.stages(cfg.train.epochs)
        created = self._create_dir() if self.writes else []
        try:
            if (out := self._written_dir()) is not None:
                atomic_write_json(out / "env.json", environment(cfg, self.device))
                write_data_info(out, data.info)
            return self._run(stages)
        except BaseException:
            if self.writes:
                self._remove_created(created)
            raise

    def _run(self, stages: list[Stage]) -> dict[str, Any]:
        """Train the stages (resuming from ``last.pt`` if there is one), then test."""
        cfg, data, t = self.cfg, self.data, self.cfg.train
        total = sum(s.epochs for s in stages)
        resume = self._load_last()
        start_stage, start_epoch = (resume["stage_index"], resume["epoch"]) if resume else (0, 0)
        self._time_before = float(resume.get("train_time_s", 0.0)) if resume else 0.0
        self._call("on_fit_start", self.cfg.to_dict())
        # disable=None: a bar only when stderr is a terminal (redirected logs get no carriage-return frames)
        bar = tqdm(total=total, initial=start_epoch, disable=True if self.quiet or not self.is_main else None,
                   desc=cfg.method.name, unit="epoch", dynamic_ncols=True, leave=False)
        epoch = start_epoch
        self._t0 = time.perf_counter()
        for si, stage in enumerate(stages):
            stage_first = sum(s.epochs for s in stages[:si])
            if si < start_stage or epoch >= stage_first + stage.epochs:
                continue
            optimizer = self._start_stage(stage, si, resumed=resume if si == start_stage else None)
            best = resume["best_score"] if resume and si == start_stage else None
            resume = None
            stage_end = stage_first + stage.epochs
            # epochs of this stage without a better score so far (from the log: a resumed run goes on exactly)
            since_best = 0
            for past in reversed(self.log):
                if past["stage"] != stage.name or past["best"]:
                    break
                since_best += 1
            while epoch < stage_end:
                state = TrainState(epoch=epoch, stage=stage.name, stage_epoch=epoch - stage_first,
                                   stage_epochs=stage.epochs, step=self._steps, num_epochs=total)
                if t.scheduler != "none" or t.warmup_epochs:
                    factor = lr_factor(t, epoch - stage_first, stage.epochs)
                    for group in optimizer.param_groups:
                        group["lr"] = t.lr * stage.lr_scale * factor
                row = self._train_epoch(optimizer, state)
                val_out = self._evaluate("val")
                val = split_metrics(val_out, data.info, self.objective)
                val.update(self.objective.test_metrics(val_out))  # method metrics (e.g. DMIL's gate) per epoch too
                row["val"] = val
                score = self._score(val)
                improved = best is None or score > best
                if improved:
                    best = score
                    self._save_best(epoch, stage.name, val)
                row["best"] = improved
                since_best = 0 if improved else since_best + 1
                stop = t.patience is not None and since_best >= t.patience and epoch + 1 < stage_end
                if t.patience is not None:
                    row["stopped"] = stop
                self.log.append(row)
                bar.update(stage_end - epoch if stop else 1)
                epoch = stage_end if stop else epoch + 1
                self._save_last(optimizer, si, epoch, best)
                self._call("on_epoch_end", row)
                bar.set_postfix(stage=stage.name, loss=f"{row['train']['loss']:.3f}",
                                val_acc=f"{val['accuracy']:.3f}", refresh=False)
        bar.close()
        metrics = self._finish(self._elapsed())
        self._call("on_fit_end", metrics)
        return metrics

    _time_before = 0.0  # training time of the earlier invocations of a resumed run (from last.pt)
    _t0 = 0.0

    def _elapsed(self) -> float:
        """Training time so far, summed over every invocation of this run (resumes included)."""
        return self._time_before + time.perf_counter() - self._t0

    def _fit_spawned(self) -> dict[str, Any]:
        """``train.devices > 1`` without a process group: spawn one process per device (DDP)."""
        t = self.cfg.train
        cuda = t.device.startswith("cuda") or (t.device == "auto" and torch.cuda.is_available())
        if self.out is None:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                return self._spawn_with_callbacks(Path(tmp) / "run", cuda)
        done = self._check_dir()  # rank 0 creates the directory once it has built the data
        if done is not None:
            return done
        return self._spawn_with_callbacks(self.out, cuda)

    def _spawn_with_callbacks(self, out: Path, cuda: bool) -> dict[str, Any]:
        """Spawn the ranks into ``out`` (their rank 0 calls the loggers); call the constructor's callbacks here,
        with the log.jsonl rows of the epochs the ranks trained, once they have finished."""
        def rows() -> list[dict[str, Any]]:
            path = out / "log.jsonl"
            return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []

        before = max((row["epoch"] for row in rows()), default=0)
        self._call("on_fit_start", self.cfg.to_dict(), self.user_callbacks)
        spawn_fit(_fit_rank, self.cfg.to_dict(), out, self.cfg.train.devices, self.quiet, cuda)
        for row in rows():
            if row["epoch"] > before:
                self._call("on_epoch_end", row, self.user_callbacks)
        metrics: dict[str, Any] = read_json(out / "metrics.json")
        self._call("on_fit_end", metrics, self.user_callbacks)
        return metrics

    # ------------------------------------------------------------------ stages
    def _named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        return ([(f"model.{n}", p) for n, p in self.model.named_parameters()]
                + [(f"objective.{n}", p) for n, p in self.objective.named_parameters()])

    def _start_stage(self, stage: Stage, index: int, resumed: dict[str, Any] | None) -> torch.optim.Optimizer:
        if index > 0 and stage.reload_best and resumed is None:
            self._load_best()
        params = []
        for name, p in self._named_parameters():
            p.requires_grad_(stage.trainable is None or stage.trainable(name))
            if p.requires_grad:
                params.append(p)
        if not params:
            raise ConfigError(f"stage {stage.name!r} of method {self.cfg.method.name!r} has no trainable parameters")
        self._frozen = [m for m in (*self.model.modules(), *self.objective.modules())
                        if any(True for _ in m.parameters()) and not any(p.requires_grad for p in m.parameters())]
        t = self.cfg.train
        optimizer = OPTIMIZERS[t.optimizer](params, t, t.lr * stage.lr_scale)
        if resumed is not None:
            try:
                optimizer.load_state_dict(resumed["optimizer"])
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise DataError(f"{self.out / 'last.pt' if self.out else 'last.pt'}: its optimiser state does not fit "
                                f"this run ({exc}); remove it to train this run from scratch") from None
        self._step_fn = wrap(self.model, self.objective, self.device)  # DDP needs re-wrapping when freezing changes
        return optimizer

    def _set_train_mode(self) -> None:
        self.model.train()
        self.objective.train()
        for m in self._frozen:  # frozen modules (and their BatchNorm statistics) stay in eval mode
            m.eval()

    # ------------------------------------------------------------------ epochs
    _steps = 0

    #: single process: how often (in steps) a non-finite loss is looked for during an epoch (one host sync each
    #: time; the epoch's end always checks). Under DDP only the epoch's end checks, on the reduced flag, so that
    #: every rank stops together.
    NONFINITE_CHECK_EVERY = 64

    def _train_epoch(self, optimizer: torch.optim.Optimizer, state: TrainState) -> dict[str, Any]:
        """One epoch. Loss, loss terms (weighted by batch size) and correct counts are accumulated on the device
        (float64, detached) and read once at the end of the epoch (one all-reduce under DDP): no step waits for
        the device, except the non-finite-loss look every :attr:`NONFINITE_CHECK_EVERY` steps."""
        cfg, objective, model = self.cfg, self.objective, self.model
        objective.on_train_epoch_start(model, self.data.train, state)
        self._set_train_mode()
        t0 = time.perf_counter()
        params = [p for g in optimizer.param_groups for p in g["params"]]
        gen = epoch_generator(cfg.train.seed, state.epoch)
        precision = PRECISIONS[cfg.train.precision]
        autocast = precision is not None and (self.device.type == "cuda" or precision is torch.bfloat16)
        scaler = torch.amp.GradScaler(self.device.type, enabled=precision is torch.float16 and autocast)
        objective.reduce_epoch_sums = all_reduce_tensor if self.world > 1 else None
        zero = torch.zeros((), dtype=torch.float64, device=self.device)
        n_seen = 0
        loss_sum = zero.clone()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        part_sums: dict[str, torch.Tensor] = {}
        first_bad = zero.clone()  # follows the loss until it is non-finite, then keeps that value
        batches = list(self.data.train.index_batches(cfg.train.batch_size, shuffle=True, generator=gen))
        accumulate = cfg.train.accumulate
        state.num_batches = len(batches)
        for i, idx in enumerate(batches):
            # every rank sees the same global order and takes its slice of each global batch
            batch = self.data.train.batch(idx.tensor_split(self.world)[self.rank] if self.world > 1 else idx)
            state.batch_index = i
            b = len(batch)
            # the objective's phases (default one): forward, backward, on_after_backward and a step each
            phases = objective.phases(state)
            if len(phases) > 1 and accumulate > 1:
                raise ConfigError(f"train.accumulate: method {cfg.method.name!r} takes one optimiser step per phase "
                                  f"({', '.join(phases)}) of each batch; gradient accumulation needs "
                                  f"train.accumulate=1")
            for phase in phases:
                state.phase = phase
                with torch.autocast(self.device.type, dtype=precision, enabled=autocast):
                    out = self._step_fn(batch, state)
                loss = out.loss.detach().double()
                first_bad = torch.where(torch.isfinite(first_bad), loss, first_bad)
                if self.world == 1 and (i + 1) % self.NONFINITE_CHECK_EVERY == 0:
                    self._check_finite(first_bad, state)
                # gradient accumulation: groups of `accumulate` batches (the epoch's last may be smaller), the
                # loss of each averaged over its group, one optimiser step (and on_after_backward, clipping) per
                # group
                first_of_group = i - i % accumulate
                group = min(accumulate, len(batches) - first_of_group)
                if i == first_of_group:
                    optimizer.zero_grad(set_to_none=True)
                def scale(value: torch.Tensor, g: int = group) -> torch.Tensor:
                    return scaler.scale(value / g if g > 1 else value)

                objective.backward(model, out, state, scale)
                if i == first_of_group + group - 1:
                    scaler.unscale_(optimizer)
                    objective.on_after_backward(model, state)
                    if cfg.train.grad_clip:
                        torch.nn.utils.clip_grad_norm_(params, cfg.train.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    self._steps += 1
                    state.step = self._steps
                # the batch counts once: its loss is the mean over phases, its correct count the last phase's
                loss_sum += loss * (b / len(phases))
                for k, v in out.parts.items():
                    part_sums[k] = part_sums.get(k, zero) + v.detach().double() * b
            n_seen += b
            correct += is_correct(out.logits.detach().float(), batch.target, self.data.info.task).sum()
        keys = list(part_sums)
        packed = torch.stack([first_bad, torch.tensor(float(n_seen), dtype=torch.float64, device=self.device),
                              loss_sum, correct.double(), *(part_sums[k] for k in keys)])
        if self.world > 1:
            packed = all_reduce_tensor(packed)
        self._check_finite(packed[0], state)
        _, n, loss_total, correct_total, *parts = packed.tolist()
        n = max(n, 1.0)
        train = {"loss": loss_total / n, **{k: v / n for k, v in zip(keys, parts)}, "accuracy": correct_total / n}
        return {"epoch": state.epoch + 1, "stage": state.stage, "stage_epoch": state.stage_epoch + 1,
                "lr": optimizer.param_groups[0]["lr"], "time_s": round(time.perf_counter() - t0, 4),
                "train": train, "objective": objective.pop_epoch_logs()}

    def _check_finite(self, value: torch.Tensor, state: TrainState) -> None:
        """Raise the one-line :class:`FloatingPointError` if ``value`` (the first non-finite loss) is not finite."""
        if not bool(torch.isfinite(value)):
            raise FloatingPointError(f"loss became {float(value)} at epoch {state.epoch + 1} "
                                     f"(method {self.cfg.method.name}); lower train.lr or check the inputs")

    def _evaluate(self, split: str) -> EvalOutput:
        out = evaluate(self.objective, self.model, getattr(self.data, split), max(self.cfg.train.batch_size, 256),
                       self.device)
        if split == "val":  # an objective with a decision threshold (one-class) chooses it on validation
            calibrate(self.objective, out)
        return out

    def _score(self, val: dict[str, Any]) -> float:
        key = selection_metric(self.cfg.train.select_metric, self.data.info.task == "regression")
        if key not in val:
            raise ConfigError(f"train.select_metric: {key!r} is not a validation metric; expected one of "
                              f"{', '.join(sorted(k for k, v in val.items() if isinstance(v, float)))}")
        return selection_score(key, val[key])

    # ------------------------------------------------------------------ checkpoints
    def _weights(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "objective": self.objective.state_dict()}

    def _save_best(self, epoch: int, stage: str, val: dict[str, Any]) -> None:
        state = {**self._weights(), "epoch": epoch + 1, "stage": stage, "val": val}
        if self.out is None or self.world > 1:
            self._best_state = copy.deepcopy(state)
        if (out := self._written_dir()) is not None:
            atomic_torch_save(out / "best.pt", state)

    def _load_best(self) -> dict[str, Any]:
        state = self._best_state
        if state is None:  # resumed in this process: read the file
            assert self.out is not None
            state = self._read_checkpoint(self.out / "best.pt", self._BEST_KEYS)
        self._apply_weights(self.out / "best.pt" if self.out is not None else Path("best.pt"), state)
        return state

    _BEST_KEYS = ("model", "objective", "epoch", "stage")
    _LAST_KEYS = ("model", "objective", "optimizer", "stage_index", "epoch", "best_score", "steps", "rng", "log")

    def _read_checkpoint(self, path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
        """A checkpoint of this run directory, read with ``weights_only=True`` (tensors and plain values only).

        Raises :class:`DataError` (one line naming the file, which was not loaded) if the file references other
        objects, and :class:`~interplay.io.CorruptFileError` if it is empty, truncated or lacks ``keys``."""
        try:
            state = load_torch(path, map_location=self.device, what="checkpoint")
        except UnsafeFileError as exc:
            raise DataError(f"{exc}; remove it (or use another --out directory) to train this run from "
                            f"scratch") from None
        missing = [k for k in keys if k not in state] if isinstance(state, dict) else list(keys)
        if missing:
            raise CorruptFileError(f"{path}: not a checkpoint of an Interplay run (no {missing[0]!r})")
        return state

    def _apply_weights(self, path: Path, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.objective.load_state_dict(state["objective"])
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise DataError(f"{path}: the checkpoint does not fit this run's model ({first}); remove the run "
                            f"directory's last.pt and best.pt to train from scratch") from None

    def _save_last(self, optimizer: torch.optim.Optimizer, stage_index: int, epoch: int, best: float | None) -> None:
        if self.world > 1:
            dist.barrier()
        out = self._written_dir()
        if out is None:
            return
        atomic_torch_save(out / "last.pt", {
            **self._weights(), "optimizer": optimizer.state_dict(), "stage_index": stage_index, "epoch": epoch,
            "best_score": best, "steps": self._steps, "rng": rng_state(), "log": self.log,
            "train_time_s": self._elapsed()})
        atomic_write_jsonl(out / "log.jsonl", self.log)

    def _load_last(self) -> dict[str, Any] | None:
        """Resume from ``last.pt`` (and check ``best.pt``, which the rest of the run needs). An empty, truncated
        or missing checkpoint is reported in one warning line and the run restarts from scratch (nothing has been
        applied yet, so the restart equals a fresh run); one that references objects beyond tensors and plain
        values raises :class:`DataError` without being loaded."""
        if self.out is None or not (self.out / "last.pt").exists():
            return None
        try:
            state = self._read_checkpoint(self.out / "last.pt", self._LAST_KEYS)
            if not (self.out / "best.pt").exists():
                raise CorruptFileError(f"{self.out / 'best.pt'}: missing beside last.pt")
            self._read_checkpoint(self.out / "best.pt", self._BEST_KEYS)
        except CorruptFileError as exc:
            if self.is_main:
                print(f"interplay: warning: {exc}; restarting the run from scratch", file=sys.stderr)
            return None
        self._apply_weights(self.out / "last.pt", state)
        try:
            if not isinstance(state["log"], list) or not isinstance(state["steps"], int):
                raise TypeError("log or steps of the wrong type")
            set_rng_state(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise DataError(f"{self.out / 'last.pt'}: not a checkpoint of this Interplay ({exc}); remove it to "
                            f"train this run from scratch") from None
        self.log = state["log"]
        self._steps = state["steps"]
        if not self.quiet and self.is_main:
            tqdm.write(f"resuming {self.out} after epoch {state['epoch']}")
        return state

    # ------------------------------------------------------------------ final evaluation
    def _reference_predictions(self, test_out: EvalOutput) -> dict[str, torch.Tensor] | None:
        """Test predictions ``{m: (N,)}`` of separately trained unimodal models on the same split (read from
        ``train.unimodal_from/<m>/predictions.csv``, or trained now with ``train.unimodal_reference``), for the
        unimodal-agreement groups."""
        t = self.cfg.train
        if not (t.unimodal_from or t.unimodal_reference):
            return None
        preds = {}
        for m in self.model.modalities:
            if t.unimodal_from:
                path = Path(t.unimodal_from) / m / "predictions.csv"
                if not path.exists():
                    raise ConfigError(f"train.unimodal_from: {path} not found (expected one run per modality, "
                                      f"e.g. DIR/unimodal/<modality>/ of a run with train.unimodal_reference=true)")
                preds[m] = self._read_predictions(path, test_out.target)
                continue
            sub = copy.deepcopy(self.cfg)
            sub.method.name, sub.method.params = "unimodal", {"modality": m}
            sub.train.unimodal_reference, sub.train.devices = False, 1
            sub_dir = self.out / "unimodal" / m if self.out is not None else None
            trainer = Trainer(sub, sub_dir, quiet=True)
            trainer.fit()
            preds[m] = (self._read_predictions(sub_dir / "predictions.csv", test_out.target) if sub_dir is not None
                        else trainer.test_output.pred)
        return preds

    def _read_predictions(self, path: Path, target: torch.Tensor) -> torch.Tensor:
        """The ``pred`` column of a run's predictions.csv, checked to be on the same test samples."""
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
        theirs = torch.tensor([float(r["target"]) for r in rows])
        if len(rows) != len(target) or not torch.allclose(theirs, target.float().cpu()):
            raise ConfigError(f"{path}: its test samples differ from this run's (use the same data config and seed)")
        pred = torch.tensor([float(r["pred"]) for r in rows])
        return pred if self.data.info.task == "regression" else pred.long()

    def _finish(self, train_time: float) -> dict[str, Any]:
        best = self._load_best()
        info = self.data.info
        val_out = self._evaluate("val")
        val = split_metrics(val_out, info, self.objective, detailed=True)
        val.update(self.objective.test_metrics(val_out))
        test_out = self._evaluate("test")
        test_out.reference_pred = self._reference_predictions(test_out) if self.is_main else None
        test = split_metrics(test_out, info, self.objective, detailed=True)
        test.update({k: v for k, v in self.objective.test_metrics(test_out).items()})
        metrics = {"val": val, "test": test, "best_epoch": best["epoch"], "best_stage": best["stage"],
                   "epochs": len(self.log), "train_time_s": round(train_time, 3), "method": self.cfg.method.name,
                   "data": self.cfg.data.name, "seed": self.cfg.train.seed}
        if self.cfg.train.patience is not None:  # {stage: the epoch after which it stopped early}
            metrics["early_stopped"] = {row["stage"]: row["epoch"] for row in self.log if row.get("stopped")}
        metrics.update(self.objective.run_metrics())
        self.test_output = test_out
        if (out := self._written_dir()) is not None:
            header, rows = prediction_rows(test_out, info)
            atomic_write_csv(out / "predictions.csv", header, rows)
            atomic_write_jsonl(out / "log.jsonl", self.log)
            atomic_write_json(out / "metrics.json", metrics)
        return metrics


def _fit_rank(config: dict[str, Any], out_dir: str, quiet: bool) -> None:
    """One rank of a spawned DDP run (see :func:`~interplay.engine.distributed.spawn_fit`)."""
    Trainer(RunConfig.from_dict(config), out_dir, quiet=quiet).fit()


def train(cfg: RunConfig, out_dir: str | Path | None = None, quiet: bool = True) -> dict[str, Any]:
    """Train as ``cfg`` describes and return the metrics (see :class:`Trainer`)."""
    return Trainer(cfg, out_dir, quiet=quiet).fit()


def trained(cfg: RunConfig, quiet: bool = True) -> tuple[Trainer, dict[str, Any]]:
    """Train in memory and return the trainer (model, objective, data, test output) with the metrics."""
    trainer = Trainer(cfg, None, quiet=quiet)
    metrics = trainer.fit()
    return trainer, metrics


__all__ = ["Trainer", "build_data", "resolve_config", "train", "trained", "MultimodalModel", "Objective"]
