"""The package's import graph, drawn from the source with ``ast`` (every import counts: module level, inside
functions and under ``TYPE_CHECKING``): no loops, no import from a lower floor to a higher one, and ``pid`` a
leaf library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "interplay"

#: lowest first; a module may import from its own floor (within its package) or any floor below
FLOORS: list[tuple[str, ...]] = [
    ("_version", "errors", "plugins", "registry", "io", "device", "config", "metrics", "layers"),
    ("pid", "estimators", "backbones"),
    ("data",),
    ("models",),
    ("objectives",),
    ("engine", "lightning"),  # lightning: InterplayModule, above the engine it mirrors (optional extra)
    ("bench", "analysis"),  # analysis: `interplay analyze` (datasets and trained runs)
    ("cli", "cli_pid", "cli_analyze"),
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = ("interplay", *p.relative_to(ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from . import x`` counts as importing ``x``)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for alias in node.names:
                    for candidate in (f"{module}.{alias.name}", module):
                        if candidate in mods:
                            targets.add(candidate)
                            break
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name in mods)
        targets.discard(name)
        graph[name] = targets
    return graph


def floor(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself: a facade above everything
        return len(FLOORS)
    top = parts[1]
    for i, names in enumerate(FLOORS):
        if top in names:
            return i
    raise AssertionError(f"{module}: not on any floor; add src/interplay/{top} to FLOORS in {__file__}")


GRAPH = import_graph()


def test_every_module_has_a_floor():
    for module in GRAPH:
        floor(module)


def test_no_import_loops():
    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        stack = [start]
        while stack:
            for nxt in GRAPH[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    in_loops = sorted(m for m in GRAPH if m in reachable(m))
    assert not in_loops, f"modules inside an import loop: {in_loops}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_go_down(module):
    upward = sorted(t for t in GRAPH[module] if floor(t) > floor(module))
    assert not upward, f"{module} (floor {floor(module)}) imports from a higher floor: {upward}"


def test_nothing_imports_the_package_facade():
    """``interplay/__init__`` may re-export anything; modules inside import what they need from its home."""
    assert not sorted(m for m, targets in GRAPH.items() if "interplay" in targets)


def test_pid_is_a_leaf_library():
    forbidden = ("interplay.engine", "interplay.bench", "interplay.data", "interplay.objectives", "interplay.cli",
                 "interplay.models")
    for module, targets in GRAPH.items():
        if module.startswith("interplay.pid"):
            bad = sorted(t for t in targets if t.startswith(forbidden))
            assert not bad, f"{module} imports {bad}"
