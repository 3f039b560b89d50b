"""Benchmark presets shipped with the package (``src/interplay/configs/bench/*.yaml``).

``interplay bench NAME`` takes a preset name (``demo``, ``synib_xor``, ...) as well as a path to a YAML file;
``interplay bench --list`` lists the presets with their one-line ``description``.
"""

from __future__ import annotations

from pathlib import Path

from ..config import load_yaml
from ..errors import ConfigError

#: where the presets live inside the installed package
PRESET_DIR = Path(__file__).resolve().parents[1] / "configs" / "bench"


def preset_paths() -> dict[str, Path]:
    """Preset name -> its YAML file, sorted by name."""
    return {p.stem: p for p in sorted(PRESET_DIR.glob("*.yaml"))}


def list_presets() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every shipped preset, sorted by name."""
    out = []
    for name, path in preset_paths().items():
        description = load_yaml(path).get("description") or ""
        out.append((name, " ".join(str(description).split())))
    return out


def resolve_preset(name_or_path: str | Path) -> Path:
    """The benchmark file ``name_or_path`` names: an existing path wins, else a shipped preset of that name
    (``demo`` or ``demo.yaml``); otherwise :class:`~interplay.errors.ConfigError` listing the presets."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.exists():
        raise ConfigError(f"{path}: is a directory, not a benchmark YAML file")
    presets = preset_paths()
    key = path.name[: -len(".yaml")] if path.name.endswith(".yaml") else path.name
    if path.parent == Path(".") and key in presets:
        return presets[key]
    raise ConfigError(f"{name_or_path}: no such benchmark file or preset; presets: {', '.join(presets) or 'none'} "
                      f"(`interplay bench --list`)")
