"""Plugins: code outside the package that registers methods, datasets, encoders or estimators.

Three ways in, all ending in the same registries (:mod:`interplay.registry`):

* an installed package declaring entry points in the groups ``interplay.methods``, ``interplay.datasets``,
  ``interplay.encoders``, ``interplay.fusions`` or ``interplay.estimators``;
* ``--plugin MODULE`` on the command line (repeatable; a module name on ``sys.path`` or a path to a ``.py``
  file), which also exports the modules in ``$INTERPLAY_PLUGINS`` so that spawned workers load them too;
* ``INTERPLAY_PLUGINS=mod1,mod2`` in the environment.

A plugin that fails to import gives one :class:`~interplay.errors.ConfigError` line naming it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from .errors import ConfigError

ENV = "INTERPLAY_PLUGINS"
_loaded: dict[str, ModuleType] = {}


def load_plugin(spec: str) -> ModuleType:
    """Import plugin ``spec`` (a module name, or a path ending in ``.py``) once; :class:`ConfigError` if it fails."""
    spec = spec.strip()
    if spec in _loaded:
        return _loaded[spec]
    try:
        if spec.endswith(".py") or os.sep in spec:
            path = Path(spec).expanduser().resolve()
            if not path.is_file():
                raise ConfigError(f"plugin {spec!r}: file not found")
            name = f"interplay_plugin_{path.stem}"
            loader_spec = importlib.util.spec_from_file_location(name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ConfigError(f"plugin {spec!r}: not a Python file")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
    except ConfigError:
        raise
    except Exception as exc:  # whatever the plugin raised, one line naming it
        raise ConfigError(f"plugin {spec!r}: cannot be imported ({type(exc).__name__}: {exc})") from None
    _loaded[spec] = module
    return module


def env_plugins() -> list[str]:
    """The plugin specs in ``$INTERPLAY_PLUGINS`` (comma-separated; empty entries ignored)."""
    return [s.strip() for s in os.environ.get(ENV, "").split(",") if s.strip()]


def load_env_plugins() -> None:
    for spec in env_plugins():
        load_plugin(spec)


def use_plugins(specs: Iterable[str]) -> None:
    """Load ``specs`` now and add them to ``$INTERPLAY_PLUGINS`` (absolute paths for files) so that worker
    processes started later load them as well."""
    specs = [str(Path(s).expanduser().resolve()) if s.endswith(".py") else s for s in specs]
    current = env_plugins()
    os.environ[ENV] = ",".join(current + [s for s in specs if s not in current])
    for spec in specs:
        load_plugin(spec)
