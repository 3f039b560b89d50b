import pytest

from interplay.errors import ConfigError
from interplay.registry import Registry


def test_register_get_and_list():
    reg: Registry[int] = Registry("thing")
    reg.register("b")(2)
    reg.register("a")(1)
    assert reg.get("a") == 1 and reg.names() == ["a", "b"] and "b" in reg and len(reg) == 2


def test_unknown_name_lists_valid_names():
    reg: Registry[int] = Registry("method")
    reg.register("joint")(1)
    with pytest.raises(ConfigError, match="unknown method 'nope'; expected one of: joint"):
        reg.get("nope")


def test_overwrite_warns():
    reg: Registry[int] = Registry("thing")
    reg.register("a")(1)
    with pytest.warns(UserWarning, match="registered again"):
        reg.register("a")(2)
    assert reg.get("a") == 2
