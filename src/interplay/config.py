"""Typed run configuration: dataclasses are the source of truth; YAML files and ``--set`` overrides map onto them.

A run config has four sections::

    data:   {name: pid-xor, n_train: 2000, mix: "redundant=0.9,synergistic=0.1", ...dataset parameters}
    model:  {encoder: mlp, encoder_hidden: [256, 256], fusion_hidden: [128, 128], ...}
    method: {name: synib, lam: 10, ...objective hyperparameters}
    train:  {epochs: 30, batch_size: 64, lr: 0.0003, seed: 0, device: cpu, ...}

Dataset parameters and method hyperparameters are not fixed fields: their schema is the signature
of the registered dataset builder / objective constructor, so a new method's options are settable
(``--set method.lam=10``) and validated without touching this file.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


@dataclass
class DataConfig:
    """Which dataset, how much of it, and its parameters (``params``: builder-specific, e.g. ``mix``)."""

    name: str = "pid-xor"
    root: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    val_fraction: float = 0.1
    seed: int | None = None  # None: the training seed
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """Model sizes. Encoders map each modality to ``encoder_hidden[-1]`` features; the fusion MLP maps
    their concatenation through ``fusion_hidden`` to the classifier head."""

    encoder: str = "auto"  # auto: by input rank (mlp, gru, cnn, frames); or any registered encoder
    encoders: dict[str, str] = field(default_factory=dict)  # per-modality override, e.g. {text: transformer}
    encoder_hidden: list[int] = field(default_factory=lambda: [256, 256])
    fusion: str = "concat"
    fusion_hidden: list[int] = field(default_factory=lambda: [128, 128])
    dropout: float = 0.0
    unimodal_heads: bool = True
    # token-level models (interplay.models.token): a transformer whose modalities enter as token spans of one
    # sequence. backbone: None (feature-level encoders + fusion), a built-in tiny random config (tiny-vlm,
    # tiny-text) or a local Hugging Face checkpoint directory (never downloaded)
    backbone: str | None = None
    token_mask: str = "noise"  # how the model withholds a modality: noise (EMA-matched) | embedding | drop
    pooling: str = "mean"  # sequence pooling for the classification head: mean | last
    variant_chunk: int | None = None  # batched variants (clean + masked) per backbone call; None: all at once
    lora_r: int = 0  # > 0: LoRA adapters of rank lora_r on lora_targets (peft), base weights frozen
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])


@dataclass
class MethodConfig:
    """The objective (registry name) and its hyperparameters."""

    name: str = "joint"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Optimisation and evaluation settings."""

    # supervised: the method's own objective; one_class: Deep SVDD on its fused representation, normal samples only
    # (engine/one_class.py; options method.svdd_*)
    mode: str = "supervised"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam | adamw | sgd
    momentum: float = 0.9  # sgd only
    grad_clip: float | None = None
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
    devices: int = 1  # > 1: data-parallel DDP, one process per device (gloo on CPU, NCCL on CUDA)
    strategy: str = "auto"  # auto | ddp (with devices > 1 both mean DDP)
    precision: str = "32"  # 32 | bf16 | 16 (mixed precision with autocast; 16 adds a gradient scaler, CUDA only)
    # the synergy subset on any data: train one unimodal model per modality on the same split (into
    # DIR/unimodal/<m>/) or read their predictions from unimodal_from/<m>/predictions.csv, and report the
    # unimodal-agreement groups of the test set
    unimodal_reference: bool = False
    unimodal_from: str | None = None
    # validation metric that picks the best checkpoint; "auto": accuracy (classification) or mae (regression);
    # loss and mae are minimised, everything else maximised
    select_metric: str = "auto"
    # learning-rate schedule, fresh for each stage and set per epoch (from the epoch's index within its stage):
    # none | cosine (to min_lr) | step (times gamma every step_size epochs) | onecycle (rise from lr/25 over the
    # first 30% of the epochs, then cosine to min_lr); the first warmup_epochs epochs of each stage ramp linearly
    # (epoch k of the warm-up: k/(warmup_epochs+1) x lr) before it. min_lr scales with a stage's lr_scale like lr.
    scheduler: str = "none"
    warmup_epochs: int = 0
    step_size: int = 10
    gamma: float = 0.1
    min_lr: float = 0.0
    # early stopping: a stage ends after this many epochs without a better validation score (select_metric)
    patience: int | None = None
    # gradient accumulation: one optimiser step per this many batches (the loss of each averaged over them)
    accumulate: int = 1
    # logger callbacks by registered name (interplay.engine.callbacks.LOGGERS), e.g. [tensorboard]; they only
    # observe the run (the run directory stays the source of truth)
    loggers: list[str] = field(default_factory=list)
    # where train.loggers: [mlflow] logs: an MLflow tracking URI (http://host:5000, databricks, file:/path/mlruns);
    # None: the environment's MLFLOW_TRACKING_URI, else a local file store RUN_DIR/mlruns
    mlflow_tracking_uri: str | None = None


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # ------------------------------------------------------------------ dict / YAML round trip
    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict with ``params`` flattened into their sections (the YAML layout)."""
        out = {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}
        for name in ("data", "method"):
            params = out[name].pop("params")
            out[name].update(params)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, source: str = "config") -> RunConfig:
        cfg = cls()
        apply_mapping(cfg, raw or {}, source)
        return cfg


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "method": MethodConfig, "train": TrainConfig}
_PARAM_SECTIONS = ("data", "method")


_DECIMAL = re.compile(r"^[-+]?[0-9][0-9_]*$")


class _DecimalLoader(yaml.SafeLoader):
    """YAML's safe loader with integers in decimal: ``010`` is 10 (YAML 1.1 would read 8, an octal number).
    Everything else (``0x10``, ``08``, floats, lists, ...) loads as with :func:`yaml.safe_load`."""


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if _DECIMAL.fullmatch(text):
        return int(text.replace("_", ""))
    return yaml.SafeLoader.construct_yaml_int(loader, node)  # type: ignore[arg-type]


_DecimalLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def yaml_load(text: str) -> Any:
    """Parse YAML text as :func:`yaml.safe_load` does, except that integers are decimal (``010`` is 10)."""
    return yaml.load(text, Loader=_DecimalLoader)  # noqa: S506  (a SafeLoader subclass)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a config file: a mapping of sections (see :class:`RunConfig`). An unreadable, non-UTF-8, invalid or
    empty file raises :class:`ConfigError` naming it."""
    path = Path(path)
    try:
        raw = yaml_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start}); expected a YAML config") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if raw is None:
        raise ConfigError(f"{path}: empty config file; expected a mapping with sections {', '.join(SECTIONS)}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    return raw


def apply_mapping(cfg: RunConfig, raw: Mapping[str, Any], source: str) -> None:
    """Set every ``section -> key -> value`` of ``raw`` on ``cfg`` (known fields are type-checked now,
    dataset/method parameters when the config is resolved against the registries)."""
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown section {section!r}; expected one of {', '.join(SECTIONS)}")
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: section {section!r} must be a mapping, got {type(values).__name__}")
        # a new dataset / method name resets the parameters that belonged to the old one
        if section in _PARAM_SECTIONS and "name" in values and values["name"] != getattr(cfg, section).name:
            getattr(cfg, section).params = {}
        for key, value in values.items():
            set_field(cfg, f"{section}.{key}", value)


def set_field(cfg: RunConfig, dotted: str, value: Any) -> None:
    """Set ``section.key`` to ``value``; unknown keys of fixed sections raise :class:`ConfigError`."""
    section, _, key = dotted.partition(".")
    if section not in SECTIONS or not key:
        raise ConfigError(f"config key {dotted!r}: expected SECTION.KEY with SECTION one of {', '.join(SECTIONS)}")
    obj = getattr(cfg, section)
    fields = {f.name: f for f in dataclasses.fields(obj) if f.name != "params"}
    if key in fields:
        hints = typing.get_type_hints(type(obj))
        setattr(obj, key, coerce(value, hints[key], dotted))
    elif section in _PARAM_SECTIONS:
        obj.params[key] = value
    else:
        raise ConfigError(f"unknown config key {dotted!r}; {section} fields are: {', '.join(sorted(fields))}")


def parse_override(text: str) -> tuple[str, Any]:
    """``"method.lam=10"`` -> ``("method.lam", 10)``; the value is parsed as a YAML scalar/list, with integers in
    decimal (``train.seed=010`` is 10, not YAML 1.1's octal 8)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. method.lam=10")
    try:
        value = yaml_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


# ---------------------------------------------------------------------------------------- schemas
def signature_schema(fn: Callable[..., Any], skip: tuple[str, ...] = ()) -> dict[str, tuple[Any, Any]]:
    """``name -> (type annotation, default)`` for the keyword parameters of ``fn`` (a function or class)."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    hints = typing.get_type_hints(target)
    schema: dict[str, tuple[Any, Any]] = {}
    for name, p in inspect.signature(target).parameters.items():
        if name in ("self", *skip) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        schema[name] = (hints.get(name, Any), default)
    return schema


def resolve_params(params: Mapping[str, Any], schema: Mapping[str, tuple[Any, Any]], section: str,
                   owner: str) -> dict[str, Any]:
    """Validate ``params`` against ``schema``; return every parameter with defaults filled in."""
    unknown = sorted(set(params) - set(schema))
    if unknown:
        valid = ", ".join(sorted(schema)) or "(none)"
        raise ConfigError(f"unknown config key {section}.{unknown[0]} for {owner}; valid keys: {valid}")
    return {name: coerce(params[name], ann, f"{section}.{name}") if name in params else default
            for name, (ann, default) in schema.items()}


def coerce(value: Any, annotation: Any, field_name: str) -> Any:
    """Convert ``value`` to ``annotation`` (int, float, bool, str, Optional/Union, list[...], dict[...],
    Literal) or raise :class:`ConfigError` naming ``field_name``."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        # try the most specific member first: exact type match wins (e.g. str for "a=1" in str | dict)
        for member in sorted((a for a in args if a is not type(None)), key=lambda a: a is not type(value)):
            try:
                return coerce(value, member, field_name)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if errors else ConfigError(f"{field_name}: invalid value {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{field_name}: expected one of {', '.join(map(repr, args))}, got {value!r}")
    if origin in (list, tuple) or annotation in (list, tuple):
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            value = [value]
        inner = args[0] if args else Any
        return [coerce(v, inner, field_name) for v in value]
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{field_name}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {coerce(k, kt, field_name): coerce(v, vt, field_name) for k, v in value.items()}
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{field_name}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"{field_name}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{field_name}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{field_name}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{field_name}: expected a number, got {value!r}") from None
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{field_name}: expected a string, got {value!r}")
    if annotation is type(None):
        if value is None:
            return None
        raise ConfigError(f"{field_name}: expected null, got {value!r}")
    return value
