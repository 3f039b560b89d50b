from pathlib import Path

import pytest

from interplay.bench.grid import load_spec, plan
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
])
def test_bad_specs(tmp_path, text, message):
    path = tmp_path / "b.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        plan(load_spec(path))


@pytest.mark.parametrize("path", sorted(Path(__file__).resolve().parents[2].glob("configs/bench/*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_presets_are_valid(path):
    """Every preset expands into runs whose configs resolve against the registries (no training)."""
    assert plan(load_spec(path))
