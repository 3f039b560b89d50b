"""On-disk cache of preprocessed features: computed once, keyed by the inputs and a preprocessing version.

    arrays = cached("cremad", {"root": str(root), "split": "train", "n_fft": 512}, version="2", build=compute)

The key hashes the dataset name, the preprocessing ``version`` and ``params`` (bump the version whenever the
preprocessing code changes); entries are written atomically, so an interrupted run never leaves a torn file.
The cache lives in ``$INTERPLAY_CACHE`` (default ``~/.cache/interplay``).

Entries hold tensors and plain values and are read with ``torch.load(weights_only=True)``: an entry that asks
the unpickler for anything else (a crafted pickle) is never executed; like an unreadable entry, it is reported
in one warning line on stderr and recomputed (the new entry replaces it).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..io import CorruptFileError, UnsafeFileError, atomic_torch_save, load_torch


def files_fingerprint(paths: Iterable[Path]) -> str:
    """A hash of the paths' names, sizes and modification times (``missing`` for absent files): a cache key part
    that changes whenever a file is replaced, without reading file contents."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = p.stat()
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()[:24]


def cache_dir() -> Path:
    return Path(os.environ.get("INTERPLAY_CACHE", Path.home() / ".cache" / "interplay"))


def cache_key(name: str, params: dict[str, Any], version: str) -> str:
    blob = json.dumps({"name": name, "params": params, "version": version}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached(name: str, params: dict[str, Any], version: str, build: Callable[[], Any],
           directory: str | Path | None = None) -> Any:
    """Load ``build()``'s result from the cache, or compute it and store it.

    ``build()`` must return tensors and plain values (dicts, lists, tuples, str, int, float, bool, None): entries
    are read back with ``weights_only=True``. An unreadable entry, or one referencing other objects, is reported
    in one warning line and recomputed; nothing in it is executed.
    """
    base = Path(directory) if directory is not None else cache_dir()
    path = base / name / f"{cache_key(name, params, version)}.pt"
    if path.exists():
        try:
            return load_torch(path, what="cache entry")
        except (UnsafeFileError, CorruptFileError) as exc:
            print(f"interplay: warning: {exc}; recomputing it", file=sys.stderr)
            path.unlink(missing_ok=True)
    value = build()
    atomic_torch_save(path, value)
    return value
