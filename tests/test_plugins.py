"""Plugins end to end: the documented examples (docs/examples/*.py) through ``--plugin`` and
``$INTERPLAY_PLUGINS``, an installed package's entry points, a broken plugin, and spawned bench workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from interplay import plugins, registry
from interplay.data import DATASETS
from interplay.objectives import METHODS

from .conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
MY_METHOD = EXAMPLES / "my_method.py"
MY_DATASET = EXAMPLES / "my_dataset.py"
MY_ESTIMATOR = EXAMPLES / "my_estimator.py"
TINY = ["--n-train", "200", "--n-test", "100", "--epochs", "2", "--quiet", "--set", "model.encoder_hidden=[16]",
        "--set", "model.fusion_hidden=[16]"]


def _is_plugin_object(obj) -> bool:
    fn = getattr(obj, "estimate", obj)  # an estimator record holds its function
    return getattr(fn, "__module__", "").startswith("interplay_plugin_")


@pytest.fixture(autouse=True)
def isolated_plugins(monkeypatch):
    """Every test starts without plugins and leaves none behind: ``$INTERPLAY_PLUGINS`` restored, plugin entries
    removed from the registries, plugin modules forgotten."""
    monkeypatch.setenv(plugins.ENV, "")  # restored (unset) afterwards, also after use_plugins changed it
    METHODS.discover()
    DATASETS.discover()
    loaded = dict(plugins._loaded)
    modules = set(sys.modules)
    yield
    for reg in registry.ALL.values():
        for name in [n for n, obj in reg._items.items() if _is_plugin_object(obj)]:
            del reg._items[name]
    plugins._loaded.clear()
    plugins._loaded.update(loaded)
    for name in set(sys.modules) - modules:
        if name.startswith("interplay_plugin_"):
            del sys.modules[name]


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


# ------------------------------------------------------------------------------------------ (a) --plugin
def test_plugin_method_trains_and_is_listed(tmp_path, capsys):
    code, out, err = run_cli(["--plugin", MY_METHOD, "methods"], capsys)
    assert code == 0, err
    line = next(row for row in out.splitlines() if row.startswith("my_joint"))
    assert "example plugin" in line and "penalty=0.01" in line

    code, out, err = run_cli(["--plugin", MY_METHOD, "train", "--data", "pid-xor", "--method", "my_joint",
                              "--set", "method.penalty=0.1", *TINY, "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    metrics = _metrics(tmp_path / "run")
    assert metrics["method"] == "my_joint" and 0.0 <= metrics["test"]["accuracy"] <= 1.0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"task", "logit_size"} <= set(log[0]["train"])
    assert "penalty: 0.1" in (tmp_path / "run" / "config.yaml").read_text()
    # exported for worker processes, as an absolute path
    assert os.environ[plugins.ENV] == str(MY_METHOD.resolve())

    # the trained plugin run reloads and evaluates to its own test metrics
    code, _, err = run_cli(["--plugin", MY_METHOD, "evaluate", tmp_path / "run", "--out", tmp_path / "E"], capsys)
    assert code == 0, err
    assert _metrics(tmp_path / "E")["test"] == metrics["test"]


def test_plugin_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(plugins.ENV, str(MY_METHOD))
    monkeypatch.setattr(METHODS, "_discovered", False)  # as in a fresh process: the next lookup discovers
    code, _, err = run_cli(["train", "--data", "pid-xor", "--method", "my_joint", *TINY, "--out", tmp_path / "run"],
                           capsys)
    assert code == 0, err
    assert _metrics(tmp_path / "run")["method"] == "my_joint"


def test_plugin_dataset_is_listed_and_trains(tmp_path, capsys):
    code, out, err = run_cli(["--plugin", MY_DATASET, "data", "list"], capsys)
    assert code == 0, err
    block = out[out.index("my-xor"):]
    assert "sign(a[0]) XOR sign(b[0])" in block and "dim=8, noise=0.5" in block

    code, out, err = run_cli(["--plugin", MY_DATASET, "train", "--data", "my-xor", "--method", "joint",
                              "--set", "data.dim=4", *TINY, "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    metrics = _metrics(tmp_path / "run")
    assert metrics["data"] == "my-xor" and "accuracy_by_interaction" not in metrics["test"]
    rows = (tmp_path / "run" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 101


def test_plugin_estimator(tmp_path):
    from interplay.data import pid_xor
    from interplay.pid.estimator import ESTIMATORS

    plugins.use_plugins([str(MY_ESTIMATOR)])
    est = ESTIMATORS.get("my_label_correlation")
    assert est.level == "dataset" and est.description.startswith("Per modality")
    splits = pid_xor(seed=0, n_train=400, n_test=400, val_fraction=0.1, root=None, mix="unique1=1")
    out = est(splits)
    assert set(out) == {"x1", "x2"} and out["x1"] > 0.5 > out["x2"]  # only x1 carries the label
    assert est(splits, split="train")["x1"] > 0.5


# ------------------------------------------------------------------------------------------ (b) entry points
def _installed_package(root: Path) -> None:
    """``mypkg`` with a ``*.dist-info`` beside it, as pip would install it (importlib.metadata finds it on
    ``sys.path``): a method as an object entry point, a dataset as a module entry point."""
    pkg = root / "mypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from interplay.objectives import Objective, ObjectiveOutput


        class PkgJoint(Objective):
            """Registered by its entry point's name (no decorator)."""

            description = "joint fusion from an installed package"

            def __init__(self, scale: float = 1.0) -> None:
                super().__init__()
                self.scale = scale

            def forward(self, model, batch, state):
                logits = model(batch.inputs)
                loss = self.scale * self.task_loss(logits, batch.target)
                return ObjectiveOutput(loss, logits, {"task": loss.detach()})
        '''))
    (pkg / "data.py").write_text(textwrap.dedent('''
        from interplay.data import DATASETS, pid_xor


        @DATASETS.register("pkg-xor")
        def pkg_xor(*, seed, n_train, n_test, val_fraction, root, dim: int = 8):
            """pid-xor with 8 features per modality, from an installed package."""
            return pid_xor(seed=seed, n_train=n_train, n_test=n_test, val_fraction=val_fraction, root=root, dim=dim)
        '''))
    info = root / "mypkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[interplay.methods]\npkg_joint = mypkg:PkgJoint\n\n"
                                           "[interplay.datasets]\nmypkg = mypkg.data\n")


def test_installed_package_entry_points(tmp_path):
    _installed_package(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    env.pop(plugins.ENV, None)
    proc = subprocess.run([sys.executable, "-m", "interplay.cli", "train", "--method", "pkg_joint",
                           "--set", "method.scale=2", "--data", "pkg-xor", *TINY, "--out", str(tmp_path / "run")],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = _metrics(tmp_path / "run")
    assert metrics["method"] == "pkg_joint" and metrics["data"] == "pkg-xor"
    assert "pkg_joint on pkg-xor" in proc.stdout


# ------------------------------------------------------------------------------------------ (c) broken plugins
@pytest.mark.parametrize("how", ["file", "module", "environment"])
def test_broken_plugin_is_one_line(how, tmp_path, capsys, monkeypatch):
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    if how == "file":
        args, name = ["--plugin", broken, "methods"], "broken_plugin.py"
    elif how == "module":
        args, name = ["--plugin", "no_such_interplay_plugin", "methods"], "no_such_interplay_plugin"
    else:
        monkeypatch.setenv(plugins.ENV, str(broken))
        monkeypatch.setattr(METHODS, "_discovered", False)
        args, name = ["methods"], "broken_plugin.py"
    code, out, err = run_cli(args, capsys)
    assert code == 2 and out == ""
    assert err.startswith("interplay: error: plugin ") and err.count("\n") == 1 and name in err, err
    if how != "module":
        assert "RuntimeError: boom at import" in err


# ------------------------------------------------------------------------------------------ (d) bench workers
def test_bench_workers_see_the_plugin(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text(textwrap.dedent("""
        name: plugin-grid
        seeds: 1
        model: {encoder_hidden: [16], fusion_hidden: [16]}
        train: {epochs: 1}
        datasets:
          - {name: pid-xor, params: {n_train: 200, n_test: 100}}
        methods:
          - {name: my_joint, search: {penalty: [0.0, 0.5]}}
        """))
    code, out, err = run_cli(["--plugin", MY_METHOD, "bench", grid, "--out", tmp_path / "bench", "--jobs", "2",
                              "--quiet"], capsys)
    assert code == 0, err
    runs = sorted((tmp_path / "bench").rglob("metrics.json"))
    assert len(runs) == 2 and {_metrics(r.parent)["method"] for r in runs} == {"my_joint"}
    assert "2 runs (2 now" in out


# ------------------------------------------------------------------------------------------ the documentation
def test_docs_show_the_example_files_verbatim():
    """Every ```python block of docs/plugins.md that starts with ``# docs/examples/NAME.py`` is that file."""
    import re

    text = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```python\n# (docs/examples/[\w.]+)\n(.*?)```", text, flags=re.S)
    assert {name for name, _ in blocks} == {"docs/examples/my_method.py", "docs/examples/my_dataset.py",
                                           "docs/examples/my_estimator.py"}
    for name, code in blocks:
        assert code == (ROOT / name).read_text(), f"docs/plugins.md shows an outdated {name}"
    assert '[project.entry-points."interplay.methods"]' in text
