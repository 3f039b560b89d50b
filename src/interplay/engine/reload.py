"""Reload a trained run and reuse it: evaluate it on its own test split or on other data, predict new inputs.

    from interplay import load_run
    run = load_run("runs/synib")                 # model (eval mode), objective, resolved config, DataInfo, metrics
    logits = run.model(inputs)                   # inputs: {modality: (N, *shape)}
    preds = run.predict(inputs)                  # the method's own prediction: .pred, .probs, .logits

    evaluate_run("runs/synib", out="eval")       # the training metrics, recomputed on the run's test split
    evaluate_run("runs/synib", {"mix": "synergistic=1"}, out="eval-syn")   # ... or on other data

Only ``best.pt`` (the best-validation weights) is read, always with ``torch.load(..., weights_only=True)``:
a checkpoint is never unpickled into arbitrary objects.

Building the model needs the dataset's :class:`~interplay.data.DataInfo` (modalities, shapes, classes): a run
directory records it in ``data_info.json`` (:func:`write_data_info`); for older runs without it the dataset is
rebuilt from ``config.yaml``. ``objective.setup(model, data)`` then receives splits with no samples (everything a
prediction needs is in the checkpoint: SynIB's class prior, OMIB's and DMIL's stage flags are buffers), except for
the methods whose setup must see the training data (:data:`SETUP_NEEDS_TRAIN_DATA`, or an objective class with
``setup_needs_data = True``): for those the training data are rebuilt from the config. OMIB is one: its setup
estimates the information bound (``metrics.json``'s ``omib`` section) from the training inputs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import RunConfig, apply_mapping, load_yaml, set_field
from ..data import Batch, DataInfo, DataSplits, MultimodalDataset
from ..device import resolve_device
from ..errors import ConfigError, DataError
from ..io import atomic_write_csv, atomic_write_json, read_json, to_jsonable
from ..models import MultimodalModel, build_model
from ..objectives import Objective, to_prediction
from .data_info import DATA_INFO_FILE, data_info_from_dict, data_info_to_dict, read_data_info, write_data_info
from .evaluation import concat_batches, evaluate, prediction_rows, split_metrics
from .one_class import build_mode_objective
from .seeding import rng_state, seed_everything, set_rng_state
from .trainer import build_data, resolve_config

#: methods whose ``setup`` needs the training data (not only the :class:`DataInfo`); reloading rebuilds the data
#: for them. A plugin objective says so with the class attribute ``setup_needs_data = True``.
SETUP_NEEDS_TRAIN_DATA: frozenset[str] = frozenset({"omib"})
#: the run's own test metrics that ``evaluate_run`` on other data reports beside the new ones (``in_distribution``)
IN_DISTRIBUTION_KEYS = ("accuracy", "macro_f1", "accuracy_by_interaction", "mae", "corr", "acc7", "acc2", "f1",
                        "acc2_has0", "acc2_gt0", "auroc")


# ---------------------------------------------------------------------------------------- loading
@dataclass
class LoadedRun:
    """A trained run, ready to use: ``model`` and ``objective`` in eval mode with the best-validation weights,
    the resolved ``config``, the dataset's ``info``, ``metrics`` (``metrics.json``; ``None`` for a run that has
    not finished) and ``checkpoint`` (``best.pt``'s ``epoch``, ``stage`` and ``val``)."""

    model: MultimodalModel
    objective: Objective
    config: RunConfig
    info: DataInfo
    metrics: dict[str, Any] | None
    run_dir: Path
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    checkpoint: dict[str, Any] = field(default_factory=dict)

    def predict(self, inputs: Mapping[str, Any], batch_size: int = 256) -> Predictions:
        """The method's predictions for ``inputs`` (see :func:`predict`)."""
        return predict(self, inputs, batch_size=batch_size)


@contextmanager
def _preserved_rng() -> Iterator[None]:
    """Building models and data draws from the global generators: leave them as they were."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def _run_files(run_dir: str | Path) -> Path:
    run = Path(run_dir)
    if not run.exists():
        raise DataError(f"{run}: run directory not found")
    if not run.is_dir():
        raise DataError(f"{run}: not a directory (expected an Interplay run directory)")
    for name, why in (("config.yaml", "no config.yaml"), ("best.pt", "no best.pt: no epoch has finished")):
        if not (run / name).is_file():
            raise DataError(f"{run}: not a finished Interplay run ({why})")
    return run


def _read_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # unpickling refused, truncated file, not a torch file: one line naming it
        raise DataError(f"{path}: cannot be loaded as a weights-only checkpoint ({type(exc).__name__}); "
                        f"Interplay loads checkpoints with torch.load(weights_only=True) only") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), Mapping) \
            or not isinstance(state.get("objective"), Mapping):
        raise DataError(f"{path}: not an Interplay checkpoint (expected a dict with 'model' and 'objective' "
                        f"state dicts)")
    return state


def _empty_splits(info: DataInfo) -> DataSplits:
    """Splits with the dataset's modalities and shapes but no samples (for ``objective.setup``)."""
    dtype = torch.float32 if info.task == "regression" else torch.long

    def empty(name: str) -> MultimodalDataset:
        return MultimodalDataset({m: torch.zeros((0, *shape)) for m, shape in info.modalities.items()},
                                 torch.zeros(0, dtype=dtype), name=f"{info.name}/{name}")

    return DataSplits(empty("train"), empty("val"), empty("test"), info)


def setup_needs_data(objective: Objective, method: str) -> bool:
    """Whether ``objective.setup`` must see the training data (:data:`SETUP_NEEDS_TRAIN_DATA`, or the class
    attribute ``setup_needs_data``)."""
    flag = getattr(objective, "setup_needs_data", None)
    return bool(flag) if flag is not None else method in SETUP_NEEDS_TRAIN_DATA


def build_run_data(cfg: RunConfig) -> DataSplits:
    """The dataset ``cfg`` describes, built as training built it: the global generators seeded with
    ``cfg.train.seed`` first (a builder may draw from them) and restored afterwards."""
    with _preserved_rng():
        seed_everything(cfg.train.seed)
        return build_data(cfg)


def _load(run_dir: str | Path, device: str | torch.device = "cpu",
          info: DataInfo | None = None) -> tuple[LoadedRun, DataSplits | None]:
    """:func:`load_run`, also returning the run's dataset when it had to be built (else ``None``)."""
    run = _run_files(run_dir)
    dev = device if isinstance(device, torch.device) else resolve_device(device, "--device")
    cfg = resolve_config(RunConfig.from_dict(load_yaml(run / "config.yaml"), str(run / "config.yaml")))
    state = _read_checkpoint(run / "best.pt", dev)
    data: DataSplits | None = None
    if info is None:
        info = read_data_info(run)
    if info is None:  # a run from before data_info.json: the config rebuilds the dataset
        data = build_run_data(cfg)
        info = data.info
    with _preserved_rng():
        seed_everything(cfg.train.seed)
        model = build_model(cfg.model, info).to(dev)
        objective = build_mode_objective(cfg.train.mode, cfg.method)
        if data is None and setup_needs_data(objective, cfg.method.name):
            data = build_run_data(cfg)
        if data is not None:
            objective.setup(model, data)
        else:
            try:
                objective.setup(model, _empty_splits(info))
            except Exception:  # noqa: BLE001 - a setup that needs samples: give it the real data
                data = build_run_data(cfg)
                objective.setup(model, data)
    objective.to(dev)
    for part, module in (("model", model), ("objective", objective)):
        try:
            module.load_state_dict(state[part])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"{run / 'best.pt'}: the {part} weights do not fit the model config.yaml describes "
                            f"({first.rstrip(':.')})") from None
    objective.to(dev)  # buffers replaced by load_state_dict stay where the checkpoint put them
    model.eval()
    objective.eval()
    metrics_path = run / "metrics.json"
    metrics = read_json(metrics_path) if metrics_path.is_file() else None
    ckpt = {k: state.get(k) for k in ("epoch", "stage", "val")}
    return LoadedRun(model, objective, cfg, info, metrics, run, dev, ckpt), data


def load_run_and_data(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[LoadedRun, DataSplits]:
    """:func:`load_run` and the run's dataset, built once: the splits the objective's setup needed (e.g. OMIB's),
    else built now with :func:`build_run_data`."""
    run, data = _load(run_dir, device)
    return run, data if data is not None else build_run_data(run.config)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """Load the trained run in ``run_dir`` (its ``config.yaml`` and ``best.pt``; ``metrics.json`` when finished).

    Raises :class:`~interplay.errors.DataError` (one line) for a missing directory, a directory that is not a
    run, or a checkpoint that cannot be loaded with ``weights_only=True``.
    """
    return _load(run_dir, device)[0]


# ---------------------------------------------------------------------------------------- evaluation
def _check_compatible(run: LoadedRun, info: DataInfo) -> None:
    """The model can read ``info``'s data and its outputs mean the same classes: one line otherwise."""
    want, have = run.info, info
    where = f"the model of {run.run_dir}"
    if set(have.modalities) != set(want.modalities):
        raise DataError(f"dataset {have.name!r} has modalities {', '.join(sorted(have.modalities))}; {where} "
                        f"expects {', '.join(sorted(want.modalities))}")
    for m in sorted(want.modalities):
        if tuple(have.modalities[m]) != tuple(want.modalities[m]):
            raise DataError(f"dataset {have.name!r}: modality {m!r} has per-sample shape "
                            f"{tuple(have.modalities[m])}; {where} expects {tuple(want.modalities[m])}")
    if have.task != want.task:
        raise DataError(f"dataset {have.name!r} is {have.task}; {where} was trained for {want.task}")
    if have.num_classes != want.num_classes:
        raise DataError(f"dataset {have.name!r} has {have.num_classes} classes; {where} predicts "
                        f"{want.num_classes}")


def eval_config(cfg: RunConfig, data_name: str | None = None,
                data_overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """The run's config with another dataset (``data_name``: its parameters start from their defaults and the
    run's data root is dropped) and/or data fields (``data_overrides``: ``{"mix": ..., "n_test": ...}``, keys
    with or without the ``data.`` prefix), resolved and validated as ``train`` does."""
    new = copy.deepcopy(cfg)
    overrides = dict(data_overrides or {})
    for key in list(overrides):
        section, dot, rest = key.partition(".")
        if dot:
            if section != "data":
                raise ConfigError(f"--set {key}: evaluation takes data.* keys only (the model, method and "
                                  f"training settings are the run's)")
            overrides[rest] = overrides.pop(key)
    name = overrides.pop("name", None)
    if data_name is not None:
        name = data_name
    if name is not None and name != new.data.name:
        apply_mapping(new, {"data": {"name": name}}, "--data")
        new.data.root = None
    for key, value in overrides.items():
        set_field(new, f"data.{key}", value)
    return resolve_config(new)


def _check_out(out: Path, run_dir: Path) -> None:
    o, r = out.expanduser().resolve(), run_dir.resolve()
    if o == r or r in o.parents:
        raise ConfigError(f"--out {out}: inside the run directory {run_dir}; write evaluations elsewhere "
                          f"(the run's own metrics.json and predictions.csv stay as training wrote them)")
    if (o / "config.yaml").exists() or (o / "best.pt").exists():
        raise ConfigError(f"--out {out}: holds an Interplay run; use another directory")


def _reference_predictions(run: LoadedRun, data: DataSplits, batch_size: int) -> dict[str, Tensor] | None:
    """Predictions of the run's unimodal reference models (``train.unimodal_reference`` / ``unimodal_from``) on
    ``data.test``, each reloaded from its run directory; ``None`` when the run has none."""
    t = run.config.train
    if not (t.unimodal_from or t.unimodal_reference):
        return None
    preds = {}
    for m in run.model.modalities:
        ref_dir = Path(t.unimodal_from) / m if t.unimodal_from else run.run_dir / "unimodal" / m
        if not ((ref_dir / "config.yaml").is_file() and (ref_dir / "best.pt").is_file()):
            return None
        ref, _ = _load(ref_dir, run.device, info=run.info)
        preds[m] = evaluate(ref.objective, ref.model, data.test, batch_size, run.device).pred
    return preds


def evaluate_run(run_dir: str | Path, data_overrides: Mapping[str, Any] | None = None, data_name: str | None = None,
                 out: str | Path | None = None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Evaluate the trained run in ``run_dir`` on a test split and return the metrics.

    Without ``data_name`` / ``data_overrides``: the run's own test split, giving the ``test`` metrics training
    wrote to ``metrics.json``. Otherwise the run's data config with the other dataset and/or fields (see
    :func:`eval_config`), e.g. ``{"mix": "synergistic=1"}``; its modalities, shapes and classes must match the
    model's. The result: ``test`` (``split_metrics(detailed=True)`` plus the method's ``test_metrics``, e.g.
    ``accuracy_by_interaction``, DMIL's ``gate_agreement``), ``method``, ``data``, ``seed``, ``run_dir``,
    ``data_config`` (the resolved data section), ``samples``, ``best_epoch`` and ``best_stage``; on other data
    also ``in_distribution``: the run's own test metrics from ``metrics.json`` (accuracy, macro-F1,
    accuracy by interaction, ...; e.g. the clean test split beside a ``data.shift``). With ``out``,
    ``out/metrics.json`` and ``out/predictions.csv`` are written (``out`` may not be the run directory or inside it).
    """
    run_path = _run_files(run_dir)
    if out is not None:
        _check_out(Path(out), run_path)
    own = not data_overrides and data_name is None
    run, data = _load(run_path, device)
    cfg = eval_config(run.config, data_name, data_overrides)
    if not own or data is None:
        data = build_run_data(cfg)
    _check_compatible(run, data.info)
    if not own:
        run.objective.info = data.info  # the evaluated data's interaction names and task
    batch_size = max(cfg.train.batch_size, 256)
    test_out = evaluate(run.objective, run.model, data.test, batch_size, run.device)
    test_out.reference_pred = _reference_predictions(run, data, batch_size)
    test = split_metrics(test_out, data.info, run.objective, detailed=True)
    test.update(run.objective.test_metrics(test_out))
    metrics = {"test": test, "method": cfg.method.name, "data": cfg.data.name, "seed": cfg.train.seed,
               "run_dir": str(run_path), "data_config": cfg.to_dict()["data"], "samples": len(data.test),
               "best_epoch": run.checkpoint.get("epoch"), "best_stage": run.checkpoint.get("stage")}
    if not own and run.metrics is not None:  # beside it: the run's own test metrics (in distribution)
        ref = run.metrics.get("test") or {}
        metrics["in_distribution"] = {k: ref[k] for k in IN_DISTRIBUTION_KEYS if k in ref}
    if out is not None:
        out_dir = Path(out)
        header, rows = prediction_rows(test_out, data.info)
        atomic_write_csv(out_dir / "predictions.csv", header, rows)
        atomic_write_json(out_dir / "metrics.json", metrics)
    return json.loads(json.dumps(to_jsonable(metrics)))  # as metrics.json holds it (NaN -> null)


# ---------------------------------------------------------------------------------------- prediction
@dataclass
class Predictions:
    """Predictions for new inputs (CPU tensors): ``logits`` ``(N, C)`` (regression: ``(N, 1)``), the method's
    ``unimodal_logits`` ``{m: (N, C)}`` and per-sample ``extras`` where it has them."""

    logits: Tensor
    task: str = "classification"
    unimodal_logits: dict[str, Tensor] | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    @property
    def index(self) -> Tensor:
        return torch.arange(self.logits.shape[0])

    @property
    def pred(self) -> Tensor:
        """``(N,)`` predicted classes (regression: predicted values)."""
        return to_prediction(self.logits, self.task)

    @property
    def probs(self) -> Tensor | None:
        """``(N, C)`` class probabilities (softmax of the logits); ``None`` for regression."""
        return None if self.task == "regression" else torch.softmax(self.logits.float(), -1)

    def __len__(self) -> int:
        return int(self.logits.shape[0])

    def rows(self) -> tuple[list[str], list[list[Any]]]:
        """Header and rows of a predictions file: ``index,pred,prob_<class>...`` (regression: ``index,pred``),
        then ``pred_<m>`` per unimodal prediction and the method's columns."""
        header = ["index", "pred"]
        cols: list[list[Any]] = [self.index.tolist(), self.pred.tolist()]
        probs = self.probs
        if probs is not None:
            header += [f"prob_{c}" for c in range(probs.shape[1])]
            cols += [[round(v, 6) for v in probs[:, c].tolist()] for c in range(probs.shape[1])]
        for m, v in sorted((self.unimodal_logits or {}).items()):
            header.append(f"pred_{m}")
            cols.append(to_prediction(v, self.task).tolist())
        for name, v in self.extras.items():
            header.append(name)
            cols.append([round(x, 6) if isinstance(x, float) else x for x in v.tolist()])
        return header, [list(r) for r in zip(*cols)]


def load_inputs(path: str | Path) -> dict[str, Tensor]:
    """Read inputs keyed by modality name from ``.npz`` (``np.load(allow_pickle=False)``) or ``.pt``
    (``torch.load(weights_only=True)`` of a dict of tensors)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: inputs file not found")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as npz:
                raw: Any = {k: torch.from_numpy(np.ascontiguousarray(npz[k])) for k in npz.files}
        except Exception as exc:  # object arrays (pickles), not a zip, truncated: one line naming the file
            raise DataError(f"{p}: not a readable .npz of numeric arrays ({type(exc).__name__})") from None
    elif suffix in (".pt", ".pth"):
        try:
            raw = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(f"{p}: cannot be loaded with torch.load(weights_only=True) "
                            f"({type(exc).__name__})") from None
        if not isinstance(raw, Mapping) or not all(isinstance(k, str) and isinstance(v, Tensor)
                                                   for k, v in raw.items()):
            raise DataError(f"{p}: expected a dict of tensors keyed by modality name")
    else:
        raise DataError(f"{p}: expected a .npz or .pt file of inputs keyed by modality name")
    return dict(raw)


def check_inputs(inputs: Mapping[str, Any], info: DataInfo, source: str = "inputs") -> dict[str, Tensor]:
    """``inputs`` as tensors keyed by the model's modalities (float arrays as float32), checked: every modality
    and no other, per-sample shapes, equal sample counts, no NaN or inf. One-line :class:`DataError` otherwise."""
    if not isinstance(inputs, Mapping) or not inputs:
        raise DataError(f"{source}: expected inputs keyed by modality name ({', '.join(info.modalities)})")
    expected = list(info.modalities)
    unknown = sorted(set(map(str, inputs)) - set(expected))
    if unknown:
        raise DataError(f"{source}: unknown modality {unknown[0]!r}; the model expects {', '.join(expected)}")
    missing = [m for m in expected if m not in inputs]
    if missing:
        raise DataError(f"{source}: missing modality {missing[0]!r}; the model expects {', '.join(expected)}")
    out: dict[str, Tensor] = {}
    for m in expected:
        x = inputs[m]
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError):
            raise DataError(f"{source}: modality {m!r} is not numeric") from None
        shape = tuple(info.modalities[m])
        if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape:
            raise DataError(f"{source}: modality {m!r} has shape {tuple(x.shape)}; the model expects (N, "
                            f"{', '.join(map(str, shape))}) (N samples of shape {shape})")
        if x.is_floating_point():
            x = x.float()
            finite = torch.isfinite(x).flatten(1).all(1) if x.shape[0] else torch.ones(0, dtype=torch.bool)
            if not finite.all():
                raise DataError(f"{source}: modality {m!r} contains NaN or inf (first at sample "
                                f"{int((~finite).nonzero()[0, 0])})")
        elif x.dtype == torch.bool or x.is_complex():
            raise DataError(f"{source}: modality {m!r} has dtype {x.dtype}; expected numbers")
        out[m] = x
    counts = {m: int(x.shape[0]) for m, x in out.items()}
    if len(set(counts.values())) > 1:
        raise DataError(f"{source}: modalities have different numbers of samples "
                        f"({', '.join(f'{m}: {n}' for m, n in counts.items())})")
    if not next(iter(counts.values())):
        raise DataError(f"{source}: no samples")
    return out


@torch.no_grad()
def predict(run: str | Path | LoadedRun, inputs: Mapping[str, Any], batch_size: int = 256,
            device: str | torch.device = "cpu") -> Predictions:
    """The method's predictions (``objective.predict``, as in evaluation) for ``inputs``: modality name ->
    ``(N, *shape)`` tensors or arrays, in the same representation as the run's dataset (e.g. standardised).

    ``run``: a run directory (loaded onto ``device``) or a :class:`LoadedRun`."""
    loaded = run if isinstance(run, LoadedRun) else load_run(run, device)
    x = check_inputs(inputs, loaded.info)
    n = next(iter(x.values())).shape[0]
    task = loaded.info.task
    model, objective = loaded.model, loaded.objective
    modes = [(m, m.training) for m in (*model.modules(), *objective.modules())]
    model.eval()
    objective.eval()
    logits, uni, extras = [], [], []
    try:
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            idx = torch.arange(start, min(start + batch_size, n))
            batch = Batch({m: v[sl] for m, v in x.items()}, torch.zeros(len(idx)), idx).to(loaded.device)
            p = objective.predict(model, batch)
            logits.append(p.logits.float().cpu())
            uni.append({k: v.float().cpu() for k, v in p.unimodal_logits.items()} if p.unimodal_logits else None)
            extras.append({k: v.cpu() for k, v in p.extras.items()})
    finally:
        for module, mode in modes:
            module.training = mode
    return Predictions(torch.cat(logits), task, concat_batches(uni), concat_batches(extras) or {})


def write_predictions(path: str | Path, preds: Predictions) -> None:
    header, rows = preds.rows()
    atomic_write_csv(path, header, rows)


def predict_file(run_dir: str | Path, inputs_path: str | Path, out: str | Path,
                 device: str | torch.device = "cpu") -> Predictions:
    """``interplay predict``: read ``inputs_path`` (:func:`load_inputs`), predict, write the CSV ``out``."""
    run_path = _run_files(run_dir)
    o = Path(out).expanduser().resolve()
    if run_path.resolve() in o.parents or o == run_path.resolve():
        raise ConfigError(f"--out {out}: inside the run directory {run_path}; write predictions elsewhere")
    if o.is_dir():
        raise ConfigError(f"--out {out}: is a directory; expected a CSV file name")
    inputs = load_inputs(inputs_path)
    loaded = load_run(run_path, device)
    preds = predict(loaded, check_inputs(inputs, loaded.info, str(inputs_path)))
    write_predictions(out, preds)
    return preds


__all__ = ["DATA_INFO_FILE", "SETUP_NEEDS_TRAIN_DATA", "LoadedRun", "Predictions", "build_run_data",
           "check_inputs", "data_info_from_dict", "data_info_to_dict", "eval_config", "evaluate_run", "load_inputs",
           "load_run", "load_run_and_data", "predict", "predict_file", "read_data_info", "setup_needs_data",
           "write_data_info", "write_predictions"]
