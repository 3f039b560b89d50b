import torch

from interplay.data.cache import cache_key, cached


def test_cached_computes_once_and_keys_on_version(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"x": torch.arange(3)}

    a = cached("toy", {"n": 3}, "1", build, tmp_path)
    b = cached("toy", {"n": 3}, "1", build, tmp_path)
    assert torch.equal(a["x"], b["x"]) and len(calls) == 1
    cached("toy", {"n": 3}, "2", build, tmp_path)
    cached("toy", {"n": 4}, "1", build, tmp_path)
    assert len(calls) == 3
    assert cache_key("toy", {"a": 1, "b": 2}, "1") == cache_key("toy", {"b": 2, "a": 1}, "1")


def test_corrupt_entry_is_rebuilt(tmp_path):
    cached("toy", {}, "1", lambda: 1, tmp_path)
    (entry,) = (tmp_path / "toy").glob("*.pt")
    entry.write_bytes(b"garbage")
    assert cached("toy", {}, "1", lambda: 2, tmp_path) == 2


class _Payload:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_crafted_entry_is_never_executed_and_is_recomputed(tmp_path, capsys):
    cached("toy", {}, "1", lambda: {"x": torch.arange(3)}, tmp_path)
    (entry,) = (tmp_path / "toy").glob("*.pt")
    marker = tmp_path / "MARKER"
    torch.save({"x": _Payload(marker)}, entry)  # what an attacker with write access to the cache could leave
    value = cached("toy", {}, "1", lambda: {"x": torch.arange(4)}, tmp_path)
    assert torch.equal(value["x"], torch.arange(4)) and not marker.exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"interplay: warning: {entry}: cache entry not loaded: it "
                                                   f"references posix.system")
    assert "recomputing" in err
    assert torch.equal(cached("toy", {}, "1", lambda: None, tmp_path)["x"], torch.arange(4))  # the new entry
    assert not marker.exists()


def test_cache_entries_hold_plain_values_and_round_trip(tmp_path):
    value = {"a": torch.ones(2, dtype=torch.float16), "n": 3, "names": ["x", "y"], "t": (1, None)}
    cached("toy", {}, "1", lambda: value, tmp_path)
    again = cached("toy", {}, "1", lambda: None, tmp_path)
    assert torch.equal(again["a"], value["a"]) and again["n"] == 3 and again["names"] == ["x", "y"]
    assert again["t"] == (1, None)
