"""User-facing errors.

Anything that is the user's fault (bad config key, unknown method, malformed data) raises
:class:`InterplayError`; the CLI prints its message as one line on stderr and exits non-zero.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class InterplayError(Exception):
    """An error caused by user input. Its message is one line naming the field or file at fault."""


class ConfigError(InterplayError, ValueError):
    """A configuration field has an unknown name or an invalid value."""


class DataError(InterplayError, ValueError):
    """Input data are malformed (missing modality, NaN/inf, labels out of range, bad files)."""


def one_line(exc: BaseException) -> str:
    """``"Type: message"`` of an exception squeezed onto one line (the cause quoted inside a one-line error)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def report_errors(fn: Callable[[], int]) -> int:
    """Call ``fn`` and return its exit status; an :class:`InterplayError` becomes ``error: <message>`` (one line
    on stderr) and status 2. The ``main`` of a script built on Interplay (the benchmarks under ``benchmarks/``)::

        def main(argv=None) -> int:
            args = parser.parse_args(argv)
            return report_errors(lambda: run(args))
    """
    try:
        return fn()
    except InterplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
