"""Benchmark grids: a YAML file of datasets x methods (with small search spaces) x seeds, expanded into runs.

    name: synib_xor
    description: SynIB's synthetic claim   # one line, shown by `interplay bench --list`
    seeds: 3                      # --seeds overrides
    model: {encoder_hidden: [256, 256], fusion_hidden: [128, 128]}     # shared by every run
    train: {epochs: 30}                                                # equal budgets
    datasets:
      - {name: pid-xor, label: red.9-syn.1, params: {mix: "redundant=0.9,synergistic=0.1"}}
    methods:
      - {name: joint}
      - {name: synib, params: {mask: whole}, search: {lam: [1, 10]}}   # lam chosen on validation

Every point of a method's ``search`` grid is its own run; for each (dataset, method, seed) the point with the
best validation metric is *selected* (never the test metric), and tables use the selected runs only.

:func:`plan` validates the whole grid before anything runs: every run's config is resolved against the
registries (unknown datasets, methods, parameters and bad values fail with one line), and no two runs may share
a run directory.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig, load_yaml
from ..engine import resolve_config
from ..errors import ConfigError

_SLUG = re.compile(r"[^A-Za-z0-9._=+-]+")


def slug(text: str) -> str:
    """``text`` reduced to characters that are safe in a directory name."""
    return _SLUG.sub("_", text).strip("_") or "default"


@dataclass
class DatasetEntry:
    """One dataset of the grid: registry name, table label, builder parameters."""

    name: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodEntry:
    """One method of the grid: registry name, table label, fixed parameters and the searched ones."""

    name: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)
    search: dict[str, list[Any]] = field(default_factory=dict)

    def grid(self) -> list[dict[str, Any]]:
        """Every hyperparameter combination of the search space (one empty dict without a search)."""
        keys = sorted(self.search)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.search[k] for k in keys))]


@dataclass
class BenchSpec:
    """A validated benchmark file."""

    name: str
    seeds: int
    datasets: list[DatasetEntry]
    methods: list[MethodEntry]
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The spec as a benchmark file (``load_spec`` reads it back unchanged)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        return {**out, "seeds": self.seeds, "model": self.model, "train": self.train,
                "datasets": [vars(d) for d in self.datasets], "methods": [vars(m) for m in self.methods]}


@dataclass
class RunSpec:
    """One training run of the grid."""

    dataset: DatasetEntry
    method: MethodEntry
    hp: dict[str, Any]
    seed: int
    config: RunConfig

    @property
    def hp_key(self) -> str:
        """The searched hyperparameters as a directory name (``default`` without a search)."""
        return slug("_".join(f"{k}={v}" for k, v in sorted(self.hp.items()))) if self.hp else "default"

    @property
    def rel_dir(self) -> Path:
        """The run directory inside the bench directory."""
        return Path("runs") / slug(self.dataset.label) / slug(self.method.label) / self.hp_key / f"seed{self.seed}"

    @property
    def group(self) -> tuple[str, str, int]:
        """Runs of one group compete in hyperparameter selection."""
        return self.dataset.label, self.method.label, self.seed


def _entries(raw: Any, key: str, source: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{source}: '{key}' must be a non-empty list")
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or "name" not in item:
            raise ConfigError(f"{source}: {key}[{i}] must be a mapping with a 'name'")
        unknown = set(item) - {"name", "label", "params", "search"}
        if unknown or (key == "datasets" and "search" in item):
            raise ConfigError(f"{source}: {key}[{i}] has unknown field(s) {', '.join(sorted(unknown or {'search'}))}")
        if not isinstance(item["name"], str) or not item["name"]:
            raise ConfigError(f"{source}: {key}[{i}].name must be a non-empty string, got {item['name']!r}")
        if item.get("label") is not None and (not isinstance(item["label"], str) or not item["label"]):
            raise ConfigError(f"{source}: {key}[{i}].label must be a non-empty string, got {item['label']!r}")
        if item.get("params") is not None and not isinstance(item["params"], dict):
            raise ConfigError(f"{source}: {key}[{i}].params must be a mapping, got {item['params']!r}")
        out.append(item)
    return out


def _label(name: str, params: dict[str, Any], used: set[str]) -> str:
    label = name if name not in used else f"{name}[{','.join(f'{k}={v}' for k, v in sorted(params.items()))}]"
    while label in used:
        label += "'"
    used.add(label)
    return label


def load_spec(path: str | Path, seeds: int | None = None) -> BenchSpec:
    """Read and validate a benchmark YAML file (``seeds`` overrides the file's)."""
    raw = load_yaml(path)
    src = str(path)
    unknown = set(raw) - {"name", "description", "seeds", "datasets", "methods", "model", "train"}
    if unknown:
        raise ConfigError(f"{src}: unknown top-level key(s) {', '.join(sorted(unknown))}; expected name, "
                          f"description, seeds, datasets, methods, model, train")
    for key in ("name", "description"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ConfigError(f"{src}: '{key}' must be a string, got {raw[key]!r}")
    used_d: set[str] = set()
    datasets = []
    for d in _entries(raw.get("datasets"), "datasets", src):
        params = dict(d.get("params") or {})
        if d.get("label") in used_d:
            raise ConfigError(f"{src}: two datasets are labelled {d['label']!r}; labels must be unique")
        datasets.append(DatasetEntry(d["name"], d.get("label") or _label(d["name"], params, used_d), params))
        used_d.add(datasets[-1].label)
    used_m: set[str] = set()
    methods = []
    for m in _entries(raw.get("methods"), "methods", src):
        params = dict(m.get("params") or {})
        search = m.get("search") or {}
        if not isinstance(search, dict) or any(not isinstance(v, list) or not v for v in search.values()):
            raise ConfigError(f"{src}: search of method {m['name']!r} must map names to non-empty lists")
        if m.get("label") in used_m:
            raise ConfigError(f"{src}: two methods are labelled {m['label']!r}; labels must be unique")
        methods.append(MethodEntry(m["name"], m.get("label") or _label(m["name"], params, used_m), params,
                                   dict(search)))
        used_m.add(methods[-1].label)
    n_seeds = seeds if seeds is not None else raw.get("seeds", 3)
    if not isinstance(n_seeds, int) or isinstance(n_seeds, bool) or n_seeds < 1:
        raise ConfigError(f"{src}: seeds must be a positive integer, got {n_seeds!r}")
    for section in ("model", "train"):
        if raw.get(section) is not None and not isinstance(raw[section], dict):
            raise ConfigError(f"{src}: '{section}' must be a mapping")
    return BenchSpec(name=str(raw.get("name") or Path(path).stem), seeds=n_seeds, datasets=datasets,
                     methods=methods, model=dict(raw.get("model") or {}), train=dict(raw.get("train") or {}),
                     description=" ".join(str(raw.get("description") or "").split()))


def plan(spec: BenchSpec) -> list[RunSpec]:
    """Expand the grid into runs, each with a resolved (validated) config and its own run directory."""
    runs: list[RunSpec] = []
    dirs: dict[Path, RunSpec] = {}
    for d in spec.datasets:
        for m in spec.methods:
            for hp in m.grid():
                for seed in range(spec.seeds):
                    raw = {"data": {"name": d.name, **d.params}, "model": spec.model,
                           "method": {"name": m.name, **m.params, **hp}, "train": {**spec.train, "seed": seed}}
                    try:
                        cfg = resolve_config(RunConfig.from_dict(raw, source=f"{spec.name}: {d.label}/{m.label}"))
                    except ConfigError as exc:
                        raise ConfigError(f"bench {spec.name!r}, dataset {d.label!r}, method {m.label!r}: {exc}") \
                            from None
                    run = RunSpec(d, m, hp, seed, cfg)
                    other = dirs.setdefault(run.rel_dir, run)
                    if other is not run:
                        raise ConfigError(f"bench {spec.name!r}: {other.dataset.label!r}/{other.method.label!r} and "
                                          f"{d.label!r}/{m.label!r} map to the same run directory {run.rel_dir}; "
                                          f"give them distinct labels")
                    runs.append(run)
    return runs
