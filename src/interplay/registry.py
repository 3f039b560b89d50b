"""One registry pattern for everything Interplay looks up by name: methods, datasets, dataset verifiers,
encoders, fusions and interaction estimators.

    METHODS = Registry("method", package="interplay.objectives", group="interplay.methods")

    @METHODS.register("joint")
    class Joint(Objective): ...

    METHODS.get("joint")        # the class; unknown names raise ConfigError listing valid ones

Discovery is the same for every registry and happens on first lookup:

1. every module of ``package`` is imported (so adding ``objectives/NAME.py`` with ``@METHODS.register("NAME")``
   is all it takes inside the package: no hand-kept import list);
2. every entry point of ``group`` is loaded (a user's installed package registers its own methods, datasets,
   estimators: see ``docs/plugins.md``); an entry point naming a module registers by importing it, one naming
   an object registers that object under the entry point's name;
3. the plugin modules named in ``$INTERPLAY_PLUGINS`` (comma-separated module names or ``.py`` paths; the
   command line's ``--plugin`` adds to it) are imported (:func:`interplay.plugins.load_env_plugins`).
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")

#: every registry created, by kind (for ``interplay plugins`` style listings and tests)
ALL: dict[str, Registry] = {}


class Registry(Generic[T]):
    """Maps names to registered objects. Registering a name twice warns and overwrites.

    Args:
        kind: what the entries are, for messages ("method", "dataset", ...).
        package: dotted package whose modules are imported on first lookup (``None``: nothing to discover).
        group: entry-point group loaded on first lookup (e.g. ``interplay.methods``).
        skip: module names of ``package`` not to import (e.g. the base module defining the registry).
    """

    def __init__(self, kind: str, package: str | None = None, group: str | None = None,
                 skip: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.package = package
        self.group = group
        self.skip = skip
        self._items: dict[str, T] = {}
        self._discovered = package is None and group is None
        ALL[kind] = self

    # ------------------------------------------------------------------ registration
    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                warnings.warn(f"{self.kind} {name!r} is registered again; the new entry replaces the old",
                              stacklevel=2)
            self._items[name] = obj
            try:
                obj.registry_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return decorator

    # ------------------------------------------------------------------ discovery
    def discover(self) -> None:
        """Import the package's modules, load the entry points and the ``$INTERPLAY_PLUGINS`` modules (once)."""
        if self._discovered:
            return
        self._discovered = True  # set first: the imports below register into this registry
        if self.package is not None:
            pkg = importlib.import_module(self.package)
            for mod in pkgutil.iter_modules(pkg.__path__):
                if mod.name not in self.skip and not mod.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{mod.name}")
        if self.group is not None:
            self._load_entry_points(self.group)
        from .plugins import load_env_plugins

        load_env_plugins()

    def _load_entry_points(self, group: str) -> None:
        import inspect
        from importlib.metadata import entry_points

        for ep in entry_points(group=group):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must name itself, whatever it raised
                raise ConfigError(f"plugin {ep.value!r} (entry point {ep.name!r} in group {group}): cannot be "
                                  f"loaded ({type(exc).__name__}: {exc})") from None
            if not inspect.ismodule(obj) and ep.name not in self._items:
                self.register(ep.name)(obj)

    # ------------------------------------------------------------------ lookup
    def get(self, name: str) -> T:
        self.discover()
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; expected one of: {', '.join(self.names())}") \
                from None

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        self.discover()
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.discover()
        return len(self._items)
