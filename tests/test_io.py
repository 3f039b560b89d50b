"""interplay.io: atomic writes get the umask's mode; torch files are read with weights_only=True."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from interplay.io import (
    CorruptFileError,
    UnsafeFileError,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    load_torch,
)


class _Payload:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        atomic_write_text(tmp_path / "b.txt", "x")
        atomic_write_json(tmp_path / "metrics.json", {"a": 1})
        atomic_write_csv(tmp_path / "predictions.csv", ["a"], [[1]])
        atomic_torch_save(tmp_path / "last.pt", {"w": torch.ones(2)})
        atomic_write_text(tmp_path / "b.txt", "again")  # replacing a file: the new one gets the umask's mode too
    finally:
        os.umask(old)
    for name in ("a.bin", "b.txt", "metrics.json", "predictions.csv", "last.pt"):
        assert _mode(tmp_path / name) == expected, name
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_failed_write_leaves_no_temporary_file(tmp_path):
    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_torch_save(tmp_path / "x.pt", Boom())
    atomic_write_text(tmp_path / "ok.txt", "x")
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "ok.txt", "not bytes")  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.txt"] and (tmp_path / "ok.txt").read_text() == "x"


def test_load_torch_round_trips_tensors_and_plain_values(tmp_path):
    obj = {"w": torch.arange(3), "n": 2, "f": 0.5, "s": "a", "none": None, "l": [1, (2, 3)], "b": True}
    atomic_torch_save(tmp_path / "x.pt", obj)
    back = load_torch(tmp_path / "x.pt")
    assert torch.equal(back.pop("w"), obj.pop("w")) and back == obj


def test_crafted_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "MARKER"
    torch.save({"model": _Payload(marker)}, tmp_path / "x.pt")
    with pytest.raises(UnsafeFileError, match=r"x.pt: checkpoint not loaded: it references posix.system") as info:
        load_torch(tmp_path / "x.pt", what="checkpoint")
    assert "\n" not in str(info.value) and not marker.exists()
    import pickle

    (tmp_path / "raw.pt").write_bytes(pickle.dumps(_Payload(marker)))  # a bare pickle, not a torch zip file
    with pytest.raises(UnsafeFileError, match="raw.pt: file not loaded"):
        load_torch(tmp_path / "raw.pt")
    assert not marker.exists()


@pytest.mark.parametrize("cut", [0, 10, 0.5])
def test_empty_or_truncated_file_is_corrupt(tmp_path, cut):
    atomic_torch_save(tmp_path / "x.pt", {"w": torch.ones(100)})
    blob = (tmp_path / "x.pt").read_bytes()
    (tmp_path / "x.pt").write_bytes(blob[: int(cut * len(blob)) if isinstance(cut, float) else cut])
    with pytest.raises(CorruptFileError, match=r"x.pt: unreadable checkpoint \(") as info:
        load_torch(tmp_path / "x.pt", what="checkpoint")
    assert "\n" not in str(info.value)
