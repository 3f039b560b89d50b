import pytest

from interplay.bench.grid import load_spec, plan
from interplay.bench.presets import PRESET_DIR, list_presets, resolve_preset
from interplay.errors import ConfigError

SPEC = """
name: t
seeds: 2
model: {encoder_hidden: [8], fusion_hidden: [8]}
train: {epochs: 1}
datasets:
  - {name: pid-xor, params: {mix: "redundant=1", n_train: 40, n_test: 20}}
  - {name: pid-xor, params: {mix: "synergistic=1", n_train: 40, n_test: 20}}
methods:
  - joint
  - {name: conf_penalty, search: {beta: [0.1, 1.0]}}
"""


def test_expansion_labels_and_dirs(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text(SPEC)
    spec = load_spec(path)
    runs = plan(spec)
    assert len(runs) == 2 * (1 + 2) * 2
    labels = [d.label for d in spec.datasets]
    assert labels[0] == "pid-xor" and labels[1].startswith("pid-xor[") and len(set(labels)) == 2
    dirs = {str(r.rel_dir) for r in runs}
    assert len(dirs) == len(runs)
    cp = [r for r in runs if r.method.name == "conf_penalty"]
    assert {r.config.method.params["beta"] for r in cp} == {0.1, 1.0}
    assert all(r.config.train.epochs == 1 and r.config.model.encoder_hidden == [8] for r in runs)
    assert {r.config.train.seed for r in runs} == {0, 1}
    assert len(plan(load_spec(path, seeds=3))) == 18


@pytest.mark.parametrize("text, message", [
    (SPEC.replace("conf_penalty", "nope"), "unknown method 'nope'"),
    (SPEC.replace("beta: [0.1, 1.0]", "betta: [1]"), "unknown config key method.betta"),
    (SPEC.replace("beta: [0.1, 1.0]", "beta: 1"), "must map names to non-empty lists"),
    (SPEC + "extra: 1\n", "unknown top-level key"),
    (SPEC.replace("seeds: 2", "seeds: 0"), "seeds must be a positive integer"),
    ("methods: [joint]\n", "'datasets' must be a non-empty list"),
    (SPEC.replace("seeds: 2", "seeds: true"), "seeds must be a positive integer"),
    (SPEC.replace("  - joint\n", "  - {name: joint, params: 3}\n"), r"methods\[0\].params must be a mapping"),
    (SPEC.replace("  - joint\n", "  - {name: joint, label: x}\n  - {name: ensemble, label: x}\n"),
     "two methods are labelled 'x'"),
    (SPEC.replace("  - joint\n", "  - {name: joint, label: a/b}\n  - {name: ensemble, label: a_b}\n"),
     "map to the same run directory"),
    (SPEC.replace("name: t\n", "name: t\ndescription: [1]\n"), "'description' must be a string"),
    (SPEC.replace("mix: \"synergistic=1\"", "mix: \"synergistic=1\", n_trian: 3"), "n_trian"),
    (SPEC.replace("train: {epochs: 1}", "train: {epochs: ten}"), "train.epochs"),
])
def test_bad_specs(tmp_path, text, message):
    path = tmp_path / "b.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        plan(load_spec(path))


@pytest.mark.parametrize("path", sorted(PRESET_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_presets_are_valid(path):
    """Every preset expands into runs whose configs resolve against the registries (no training)."""
    assert plan(load_spec(path))


def test_description_round_trips(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text(SPEC.replace("name: t\n", "name: t\ndescription: a  small\n  grid\n"))
    spec = load_spec(path)
    assert spec.description == "a small grid"
    again = tmp_path / "again.yaml"
    import yaml

    again.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    assert load_spec(again).to_dict() == spec.to_dict()


def test_presets_listed_and_resolved(tmp_path, monkeypatch):
    presets = dict(list_presets())
    assert {"demo", "synib_xor", "interactions", "mfeat", "omib_beta"} <= set(presets)
    assert all(d and "\n" not in d for d in presets.values()), "every preset has a one-line description"
    assert resolve_preset("demo") == PRESET_DIR / "demo.yaml"
    assert resolve_preset("demo.yaml") == PRESET_DIR / "demo.yaml"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").write_text(SPEC)  # an existing path wins over a preset name
    assert resolve_preset("demo") == tmp_path / "demo" or resolve_preset("demo").resolve() == tmp_path / "demo"
    with pytest.raises(ConfigError, match=r"nope: no such benchmark file or preset; presets: (\w+, )*demo, "):
        resolve_preset("nope")
    with pytest.raises(ConfigError, match="no such benchmark file"):
        resolve_preset("sub/demo")
