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
