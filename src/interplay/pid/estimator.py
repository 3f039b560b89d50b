"""The registry of PID / interaction estimators, what an estimator receives, and its typed settings.

An estimator is a function ``estimate(data, settings) -> result`` registered with the dataclass that holds its
options::

    @dataclass(frozen=True)
    class TinySettings:                              # the options of ``tiny``, with their defaults
        modalities: tuple[str, str] | None = None    # the pair to analyse
        scale: float = 1.0

    @register_estimator("tiny", TinySettings, level="dataset", description="a toy estimator")
    def tiny(data: LabelledSplits, settings: TinySettings) -> dict[str, float]:
        ...

    ESTIMATORS.get("tiny")          # the Estimator record; unknown names raise ConfigError listing valid ones
    make_settings(TinySettings, {"scale": "2"}, owner="estimator tiny")  # validated, typed: TinySettings(scale=2.0)

The settings dataclass is the source of truth for an estimator's options: their names, types, defaults and
(in its docstring) meaning. ``interplay pid --estimator NAME --set estimator.KEY=VALUE`` validates overrides
against it (:func:`make_settings`). Discovery follows :mod:`interplay.registry`: every module of
``interplay.pid`` is imported on first lookup (the built-in ``cluster`` and ``lsmi``), then the entry points
of the group ``interplay.estimators`` and the modules in ``$INTERPLAY_PLUGINS``. See
``docs/pid-estimators.md`` ("Adding an estimator").

``data`` is whatever the caller hands over; the command line hands over the dataset's splits
(:class:`LabelledSplits`: ``train``, ``val``, ``test`` and ``info.num_classes``), each split a
:class:`LabelledData` (``inputs``, ``target``, ``meta``, ``name``). ``interplay.data``'s
``MultimodalDataset`` and ``DataSplits`` satisfy these protocols; ``interplay.pid`` itself never imports the
data package.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, cast, runtime_checkable

from torch import Tensor

from ..config import resolve_params
from ..errors import ConfigError, DataError
from ..registry import Registry

__all__ = [
    "ESTIMATORS",
    "Estimator",
    "LabelledData",
    "LabelledSplits",
    "make_settings",
    "pick_pair",
    "register_estimator",
    "settings_schema",
]


# ---------------------------------------------------------------------------------------------- data
@runtime_checkable
class LabelledData(Protocol):
    """Aligned per-modality inputs with labels: what a dataset split offers an estimator.

    ``inputs``: modality -> ``(N, ...)`` tensor; ``target``: ``(N,)`` labels; ``meta``: per-sample tensors
    (e.g. ``interaction``); ``name``: used in messages; ``modalities``: the input names in order;
    ``subset(idx, name)``: the samples at ``idx``.
    """

    inputs: Mapping[str, Tensor]
    target: Tensor
    meta: Mapping[str, Tensor]
    name: str

    @property
    def modalities(self) -> Sequence[str]: ...

    def __len__(self) -> int: ...

    def subset(self, idx: Any, name: str | None = None) -> LabelledData: ...


class SplitsInfo(Protocol):
    """What an estimator reads from a dataset's description: the number of classes."""

    num_classes: int


@runtime_checkable
class LabelledSplits(Protocol):
    """A dataset's train / validation / test splits and its description (``info.num_classes``)."""

    train: LabelledData
    val: LabelledData
    test: LabelledData
    info: SplitsInfo


def pick_pair(modalities: Sequence[str], pair: Sequence[str] | None, where: str) -> tuple[str, str]:
    """The two modalities a pairwise estimator analyses: ``pair``, checked against ``modalities``, or the only two.

    Raises:
        DataError: no ``pair`` with other than two modalities, or a name not among ``modalities``.
        ConfigError: ``pair`` is not two different names.
    """
    if pair is None:
        if len(modalities) != 2:
            raise DataError(f"{where}: has {len(modalities)} modalities {list(modalities)}; the PID estimators take "
                            f"two: name the pair to analyse (e.g. modalities=({modalities[0]!r}, {modalities[1]!r}), "
                            f"CLI --pair {modalities[0]},{modalities[1]})")
        return modalities[0], modalities[1]
    pair = list(pair)
    if len(pair) != 2 or pair[0] == pair[1]:
        raise ConfigError(f"{where}: a pair of two different modalities is needed, got {pair}")
    missing = [m for m in pair if m not in modalities]
    if missing:
        raise DataError(f"{where}: no modality {missing[0]!r}; available: {', '.join(modalities)}")
    return pair[0], pair[1]


# ---------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Estimator:
    """A registered estimator.

    Attributes:
        name: the registry name (``interplay pid --estimator NAME``).
        settings: the dataclass of its options; ``settings()`` gives the defaults.
        estimate: ``estimate(data, settings) -> result``.
        level: ``"dataset"`` (one value per atom) or ``"sample"`` (one value per sample).
        description: one line for listings and help.
    """

    name: str
    settings: type[Any]
    estimate: Callable[[Any, Any], Any]
    level: Literal["dataset", "sample"] = "dataset"
    description: str = ""

    def __call__(self, data: Any, settings: Any = None, **overrides: Any) -> Any:
        """``estimate(data, settings)``; ``settings`` defaults to the defaults, ``overrides`` replace fields."""
        base = self.settings() if settings is None else settings
        return self.estimate(data, dataclasses.replace(base, **overrides) if overrides else base)


#: every PID / interaction estimator by name (built-ins, entry points of ``interplay.estimators``, plugins)
ESTIMATORS: Registry[Estimator] = Registry("estimator", package="interplay.pid", group="interplay.estimators",
                                           skip=("reference",))

F = TypeVar("F", bound=Callable[..., Any])


def register_estimator(name: str, settings: type[Any], *, level: Literal["dataset", "sample"] = "dataset",
                       description: str = "") -> Callable[[F], F]:
    """Decorator registering ``estimate(data, settings)`` under ``name`` with its settings dataclass; returns the
    function unchanged. ``description`` defaults to the first line of the function's docstring."""
    if not dataclasses.is_dataclass(settings) or not isinstance(settings, type):
        raise TypeError(f"estimator {name!r}: settings must be a dataclass type, got {settings!r}")

    def decorator(fn: F) -> F:
        doc = description or ((fn.__doc__ or "").strip().splitlines() or [""])[0]
        ESTIMATORS.register(name)(Estimator(name=name, settings=settings, estimate=fn, level=level, description=doc))
        return fn

    return decorator


# ---------------------------------------------------------------------------------------------- settings
def settings_schema(cls: type[Any]) -> dict[str, tuple[Any, Any]]:
    """``field -> (type annotation, default)`` of a settings dataclass (``None`` for a field without default)."""
    hints = typing.get_type_hints(cls)
    schema: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        schema[f.name] = (hints.get(f.name, Any), default)
    return schema


def _tuples(value: Any, annotation: Any) -> Any:
    """Lists that :func:`interplay.config.coerce` produced for ``tuple[...]`` fields, back as tuples."""
    origin = typing.get_origin(annotation)
    if isinstance(value, list) and (origin is tuple or annotation is tuple or (
            origin is not None and any(typing.get_origin(a) is tuple or a is tuple
                                       for a in typing.get_args(annotation)))):
        return tuple(value)
    return value


SettingsT = TypeVar("SettingsT")


def settings_with(cls: type[SettingsT], settings: SettingsT | None, overrides: Mapping[str, Any],
                  where: str) -> SettingsT:
    """``settings`` (default: ``cls()``) with the keyword ``overrides`` of a keyword-argument wrapper such as
    ``cluster_pid(..., k=8)``; an unknown keyword is a ``TypeError``, as for any Python function named ``where``."""
    base = cls() if settings is None else settings
    if not overrides:
        return base
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cast(Any, cls))})
    if unknown:
        raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r}; the options are the fields "
                        f"of {cls.__name__}")
    return cast(SettingsT, dataclasses.replace(cast(Any, base), **overrides))


def store_tuples(settings: Any, names: Sequence[str]) -> None:
    """In a frozen settings dataclass's ``__post_init__``: store the fields ``names`` given as lists (e.g. from
    the command line or YAML) as tuples, so that settings stay hashable and compare equal."""
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, list):
            object.__setattr__(settings, name, tuple(value))


def make_settings(cls: type[Any], params: Mapping[str, Any], *, base: Any = None, section: str = "estimator",
                  owner: str | None = None) -> Any:
    """A ``cls`` instance from ``params`` (field -> value; strings from the command line are converted), on top
    of ``base`` (default: ``cls()``'s defaults).

    Raises:
        ConfigError: one line for an unknown key (listing the valid ones) or a value of the wrong type, naming
            it as ``{section}.{key}``.
    """
    schema = settings_schema(cls)
    if base is not None:
        schema = {k: (ann, getattr(base, k)) for k, (ann, _) in schema.items()}
    resolved = resolve_params(params, schema, section, owner or f"{section} settings {cls.__name__}")
    values = {k: _tuples(v, schema[k][0]) if k in params else v for k, v in resolved.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{section}: invalid settings for {owner or cls.__name__} ({exc})") from None
