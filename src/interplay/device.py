"""Device names as :class:`torch.device` (ground floor: used by the engine, backbones and estimators alike)."""

from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(name: str, field: str = "train.device") -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` as a device; a :class:`ConfigError` naming ``field`` otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{field}: {name!r} requested but no CUDA device is available (use cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{field}: unknown device {name!r}; expected cpu, cuda, cuda:N or auto") from None
