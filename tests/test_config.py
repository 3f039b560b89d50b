from typing import Literal

import pytest
import yaml

from interplay.config import RunConfig, apply_mapping, coerce, load_yaml, parse_override, set_field
from interplay.engine import resolve_config
from interplay.errors import ConfigError


def test_coerce_basic_types():
    assert coerce("3", int, "f") == 3 and coerce(3, float, "f") == 3.0 and isinstance(coerce(3, float, "f"), float)
    assert coerce("true", bool, "f") is True
    assert coerce("64,32", list[int], "f") == [64, 32]
    assert coerce(None, int | None, "f") is None
    assert coerce("a=1", str | dict[str, float], "f") == "a=1"
    assert coerce({"a": 1}, str | dict[str, float], "f") == {"a": 1.0}
    assert coerce("prob", Literal["prob", "logit"], "f") == "prob"


@pytest.mark.parametrize("value, ann", [("x", int), (1.5, int), ("x", float), ("maybe", bool), (True, int),
                                        ("z", Literal["a", "b"])])
def test_coerce_rejects_with_field_name(value, ann):
    with pytest.raises(ConfigError, match="method.lam"):
        coerce(value, ann, "method.lam")


def test_overrides_and_resolution():
    cfg = RunConfig()
    for text in ["method.name=ogm_ge", "method.alpha=0.3", "train.epochs=7", "model.fusion_hidden=[16]",
                 "data.mix=redundant=1"]:
        key, value = parse_override(text)
        if key == "method.name":
            apply_mapping(cfg, {"method": {"name": value}}, "--set")
        else:
            set_field(cfg, key, value)
    res = resolve_config(cfg)
    assert res.method.params == {"alpha": 0.3, "start_epoch": 0, "end_epoch": None, "ge": True}
    assert res.train.epochs == 7 and res.model.fusion_hidden == [16]
    assert res.data.params["mix"] == "redundant=1" and res.data.params["dim"] == 32


def test_unknown_keys_are_refused_with_valid_names():
    with pytest.raises(ConfigError, match=r"unknown config key .train.epoch.;.*epochs"):
        set_field(RunConfig(), "train.epoch", 3)
    cfg = RunConfig()
    set_field(cfg, "method.lamda", 3)
    with pytest.raises(ConfigError, match=r"unknown config key method.lamda for method 'joint'"):
        resolve_config(cfg)
    cfg = RunConfig()
    set_field(cfg, "data.mixx", "a=1")
    with pytest.raises(ConfigError, match=r"data.mixx for dataset 'pid-xor'; valid keys: .*mix"):
        resolve_config(cfg)
    with pytest.raises(ConfigError, match="unknown section 'trian'"):
        RunConfig.from_dict({"trian": {}})


def test_yaml_round_trip(tmp_path):
    cfg = resolve_config(RunConfig.from_dict({"method": {"name": "conf_penalty", "beta": 0.2},
                                              "data": {"name": "gaussian-split", "preset": "sim3"}}))
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    again = resolve_config(RunConfig.from_dict(load_yaml(path)))
    assert again == cfg and yaml.safe_load(cfg.to_yaml())["method"] == {"name": "conf_penalty", "beta": 0.2}


def test_changing_method_resets_its_params():
    cfg = RunConfig.from_dict({"method": {"name": "conf_penalty", "beta": 0.2}})
    apply_mapping(cfg, {"method": {"name": "joint"}}, "x")
    assert cfg.method.params == {}


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_yaml(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml(tmp_path / "missing.yaml")


@pytest.mark.parametrize("text, value", [
    ("train.seed=010", 10), ("train.seed=-010", -10), ("train.seed=0", 0), ("train.seed=1_000", 1000),
    ("model.fusion_hidden=[010, 64]", [10, 64]),  # integers are decimal (YAML 1.1 would read octal 8)
    ("train.lr=0.001", 0.001), ("train.lr=1e-3", "1e-3"), ("data.x=0x10", 16), ("data.x=08", "08"),
    ("data.x=true", True), ("data.mix=redundant=1", "redundant=1"), ("data.x=", None), ("data.x=~", None),
])
def test_override_values_are_yaml_with_decimal_integers(text, value):
    assert parse_override(text) == (text.partition("=")[0], value)


def test_config_file_integers_are_decimal(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {seed: 010, epochs: 2}\n")
    assert RunConfig.from_dict(load_yaml(path)).train.seed == 10


def test_empty_and_non_utf8_config_files_are_refused(tmp_path):
    path = tmp_path / "c.yaml"
    for content in (b"", b"\n# nothing\n"):
        path.write_bytes(content)
        with pytest.raises(ConfigError, match="c.yaml: empty config file"):
            load_yaml(path)
    path.write_bytes(b"data: {name: \xff}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: not a UTF-8 text file \(byte 0xff at offset 13\)"):
        load_yaml(path)


def test_resolved_config_round_trips_through_the_decimal_loader(tmp_path):
    cfg = resolve_config(RunConfig.from_dict({"train": {"seed": 10}, "data": {"mix": "redundant=1"}}))
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert resolve_config(RunConfig.from_dict(load_yaml(path))) == cfg
