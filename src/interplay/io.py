"""Atomic file writes and safe reads of torch files.

Writes go to a temporary file in the same directory, then a rename over the target: a reader (or a rerun after
Ctrl-C or kill) sees either the old file or the new one, never a torn one. ``durable=True`` also fsyncs before
the rename (survives power loss; costs milliseconds per write). Written files get the mode the process umask
gives (``0644`` under umask ``022``), as files opened with ``open(path, "w")`` do, so run directories can be
shared.

:func:`load_torch` reads a ``torch.save`` file with ``weights_only=True``: tensors and plain Python values only.
A file that asks the unpickler for anything else (a crafted pickle whose ``__reduce__`` calls ``os.system``) is
refused with :class:`UnsafeFileError` and nothing of it runs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import re
import secrets
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from .errors import DataError


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new file beside ``path`` opened for writing, created with mode ``0666`` so that the kernel applies the
    umask (``tempfile.mkstemp`` would make it ``0600`` whatever the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: could not create a temporary file for {path.name}")


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename); the file's mode follows the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert tensors / numpy scalars / tuples into JSON-friendly values; NaN becomes null."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return to_jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return to_jsonable(obj.item())
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(to_jsonable(r)) + "\n" for r in rows))


def atomic_write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    """``torch.save(obj)`` to ``path`` atomically. Keep ``obj`` to tensors and plain values (dict, list, tuple,
    str, int, float, bool, None) so that :func:`load_torch` can read it back."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


class UnsafeFileError(DataError):
    """A torch file asked the unpickler for objects beyond tensors and plain values (possibly code); it was not
    loaded."""


class CorruptFileError(DataError):
    """A torch file is empty, truncated or not a torch file at all."""


def load_torch(path: str | Path, map_location: str | torch.device | None = None, what: str = "file") -> Any:
    """Read a ``torch.save`` file with ``weights_only=True``: tensors and plain Python values only, never code.

    Args:
        path: the file.
        map_location: as for :func:`torch.load`.
        what: what the file is, for messages (e.g. ``"checkpoint"``, ``"cache entry"``).

    Raises:
        UnsafeFileError: the file references other objects (a crafted pickle, or a file written by other code);
            its message (one line) names the file and says it was not loaded.
        CorruptFileError: the file is empty, truncated or unreadable.
    """
    path = Path(path)
    with open(path, "rb") as fh:  # a missing or unreadable path raises OSError here, as open() does
        try:
            with warnings.catch_warnings():  # torch warns about foreign pickle protocols; our error says more
                warnings.simplefilter("ignore", UserWarning)
                return torch.load(fh, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as exc:
            found = re.search(r"GLOBAL ([\w.]+)", str(exc))
            detail = (f"references {found.group(1)}" if found else
                      "holds pickle content beyond tensors and plain values")
            raise UnsafeFileError(f"{path}: {what} not loaded: it {detail}, which could run code when unpickled "
                                  f"(only tensors and plain values are accepted)") from None
        except Exception as exc:  # noqa: BLE001  (torch raises EOFError, RuntimeError, OSError on torn files)
            first = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
            raise CorruptFileError(f"{path}: unreadable {what} ({type(exc).__name__}"
                                   f"{': ' + first if first else ''}; empty or truncated?)") from None


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
