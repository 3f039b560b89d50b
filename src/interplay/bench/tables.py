"""Plain-text and Markdown tables of run results (mean +- std over seeds)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean and sample standard deviation of the non-missing values, and how many there were."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not xs:
        return float("nan"), float("nan"), 0
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return mean, std, len(xs)


def fmt_mean_std(values: Sequence[float | None], digits: int = 3) -> str:
    mean, std, n = mean_std(values)
    if n == 0:
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    """Left-align ``rows`` under ``headers``; ``markdown`` gives a GitHub-flavoured table."""
    cells = [list(map(str, headers)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        body = " | ".join(c.ljust(w) for c, w in zip(r, widths))
        return f"| {body} |" if markdown else body

    sep = ("|" + "|".join("-" * (w + 2) for w in widths) + "|") if markdown else "  ".join("-" * w for w in widths)
    if not markdown:
        return "\n".join([line(r).replace(" | ", "  ").rstrip() if r is not None else sep
                          for r in [cells[0], None, *cells[1:]]])
    return "\n".join([line(cells[0]), sep, *[line(r) for r in cells[1:]]])


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys: ``{"test": {"accuracy": 1}}`` -> ``{"test.accuracy": 1}``."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}
