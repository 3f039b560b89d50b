"""On-disk cache of preprocessed features: computed once, keyed by the inputs and a preprocessing version.

    arrays = cached("cremad", {"root": str(root), "split": "train", "n_fft": 512}, version="2", build=compute)

The key hashes the dataset name, the preprocessing ``version`` and ``params`` (bump the version whenever the
preprocessing code changes); entries are written atomically, so an interrupted run never leaves a torn file.
The cache lives in ``$INTERPLAY_CACHE`` (default ``~/.cache/interplay``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from ..io import atomic_torch_save


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
    """Load ``build()``'s result from the cache, or compute it and store it (``torch.save``-able objects)."""
    base = Path(directory) if directory is not None else cache_dir()
    path = base / name / f"{cache_key(name, params, version)}.pt"
    if path.exists():
        try:
            return torch.load(path, weights_only=False)
        except Exception:  # a corrupt entry is recomputed
            path.unlink(missing_ok=True)
    value = build()
    atomic_torch_save(path, value)
    return value
