"""A run directory's ``data_info.json``: the dataset's :class:`~interplay.data.DataInfo` (modalities, per-sample
shapes, classes, interaction names, block map), written at training time so that a run can be reloaded
(:mod:`interplay.engine.reload`) without its data. Imports nothing of the engine, so the trainer can use it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..data import DataInfo
from ..errors import DataError
from ..io import atomic_write_json, read_json, to_jsonable

DATA_INFO_FILE = "data_info.json"


def data_info_to_dict(info: DataInfo) -> dict[str, Any]:
    """A JSON-safe dict of ``info`` (tuples become lists, tensors lists, anything else in ``extra`` its string)."""
    raw = {"name": info.name, "modalities": {m: list(s) for m, s in info.modalities.items()},
           "num_classes": info.num_classes, "task": info.task,
           "interactions": None if info.interactions is None else list(info.interactions),
           "block_map": info.block_map, "class_names": info.class_names, "extra": info.extra}
    return json.loads(json.dumps(to_jsonable(raw), default=str))


def data_info_from_dict(d: Mapping[str, Any]) -> DataInfo:
    """The :class:`DataInfo` of :func:`data_info_to_dict`'s output (shapes and interactions as tuples)."""
    try:
        return DataInfo(
            name=str(d["name"]),
            modalities={str(m): tuple(int(v) for v in s) for m, s in d["modalities"].items()},
            num_classes=int(d["num_classes"]), task=str(d.get("task", "classification")),
            interactions=None if d.get("interactions") is None else tuple(d["interactions"]),
            block_map=d.get("block_map"), class_names=d.get("class_names"), extra=dict(d.get("extra") or {}))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"data info: malformed ({type(exc).__name__}: {exc})") from None


def write_data_info(run_dir: str | Path, info: DataInfo) -> None:
    """Write ``run_dir/data_info.json`` (atomically): what :func:`load_run` needs to build the model without the
    data."""
    atomic_write_json(Path(run_dir) / DATA_INFO_FILE, data_info_to_dict(info))


def read_data_info(run_dir: str | Path) -> DataInfo | None:
    """``run_dir/data_info.json`` as a :class:`DataInfo`; ``None`` when the run has none (older runs)."""
    path = Path(run_dir) / DATA_INFO_FILE
    if not path.exists():
        return None
    try:
        raw = read_json(path)
    except (OSError, ValueError):
        raise DataError(f"{path}: unreadable (not JSON)") from None
    if not isinstance(raw, Mapping):
        raise DataError(f"{path}: malformed (expected a JSON object)")
    try:
        return data_info_from_dict(raw)
    except DataError as exc:
        raise DataError(f"{path}: {str(exc).removeprefix('data info: ')}") from None


__all__ = ["DATA_INFO_FILE", "data_info_from_dict", "data_info_to_dict", "read_data_info", "write_data_info"]
