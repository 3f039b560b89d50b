"""The estimator registry: built-ins with typed settings, ``--set estimator.KEY=VALUE`` validated against them,
and a user's estimator registered by a plugin run through ``interplay pid``."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from interplay.cli import main
from interplay.data import pid_xor
from interplay.errors import ConfigError
from interplay.pid import ESTIMATORS, Estimator, make_settings
from interplay.pid.cluster import ClusterSettings, cluster_pid, cluster_pid_dataset, estimate_cluster
from interplay.pid.estimator import LabelledData, LabelledSplits, settings_schema
from interplay.pid.lsmi import LSMISettings, estimate_lsmi, lsmi_splits

PLUGIN = Path(__file__).with_name("estimator_plugin.py")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_builtins_are_registered_with_their_settings() -> None:
    assert {"cluster", "lsmi"} <= set(ESTIMATORS.names())
    cluster, lsmi = ESTIMATORS.get("cluster"), ESTIMATORS.get("lsmi")
    assert isinstance(cluster, Estimator) and cluster.settings is ClusterSettings and cluster.level == "dataset"
    assert cluster.estimate is estimate_cluster
    assert lsmi.settings is LSMISettings and lsmi.estimate is estimate_lsmi and lsmi.level == "sample"
    assert ClusterSettings().permutations == 100 and ClusterSettings().bootstrap == 100
    assert LSMISettings().hidden == (128, 128) and LSMISettings().units == "bits"
    with pytest.raises(ConfigError, match="unknown estimator 'nope'; expected one of: .*cluster"):
        ESTIMATORS.get("nope")


def test_splits_satisfy_the_protocols() -> None:
    splits = pid_xor(seed=0, n_train=40, n_test=20)
    assert isinstance(splits, LabelledSplits) and isinstance(splits.test, LabelledData)
    assert not isinstance(splits.test, LabelledSplits)


def test_make_settings_converts_and_validates() -> None:
    s = make_settings(LSMISettings, {"hidden": "16,8", "epochs": "3", "units": "nats", "modalities": "x1,x2"})
    assert s.hidden == (16, 8) and s.epochs == 3 and s.units == "nats" and s.modalities == ("x1", "x2")
    assert s.lr == LSMISettings().lr
    with pytest.raises(ConfigError, match=r"unknown config key estimator.nope .*valid keys: .*epochs"):
        make_settings(LSMISettings, {"nope": 1})
    with pytest.raises(ConfigError, match=r"estimator.units: expected one of 'bits', 'nats', got 'dits'"):
        make_settings(LSMISettings, {"units": "dits"})
    with pytest.raises(ConfigError, match=r"estimator.k: "):
        make_settings(ClusterSettings, {"k": "many"})
    assert make_settings(ClusterSettings, {"k": [3, 4]}).k == (3, 4)
    assert set(settings_schema(ClusterSettings)) == {f.name for f in dataclasses.fields(ClusterSettings)}


def test_keyword_wrappers_and_settings_give_the_same_numbers() -> None:
    splits = pid_xor(seed=0, n_train=200, n_test=200, mix="synergistic=1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a = cluster_pid_dataset(splits.test, k=3, permutations=3, bootstrap=2, seed=1)
        b = estimate_cluster(splits.test, ClusterSettings(k=3, permutations=3, bootstrap=2, seed=1))
        c = ESTIMATORS.get("cluster")(splits, split="test", k=3, permutations=3, bootstrap=2, seed=1)
        x = splits.test.inputs
        d = cluster_pid(x["x1"], x["x2"], splits.test.target, ClusterSettings(k=3, permutations=3, bootstrap=2),
                        seed=1)
    for other in (b, c, d):
        assert other.corrected == a.corrected and other.ci_low == a.ci_low
        np.testing.assert_array_equal(other.labels1, a.labels1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'kk'"):
        cluster_pid_dataset(splits.test, kk=3)
    r1 = lsmi_splits(splits, epochs=2, hidden=(8,), components=2, density_dim=2)
    r2 = estimate_lsmi(splits, LSMISettings(epochs=2, hidden=(8,), components=2, density_dim=2))
    assert r1.means == r2.means


def test_cli_set_estimator_settings(tmp_path: Path, capsys) -> None:
    base = ["pid", "--data", "pid-xor", "--n-train", "150", "--n-test", "150", "--estimator", "cluster", "--k", "3",
            "--permutations", "2", "--bootstrap", "0", "--quiet"]
    code, _, _ = cli(capsys, *base, "--set", "estimator.n_init=2", "--set", "estimator.ci_level=0.9",
                     "--out", tmp_path / "run")
    assert code == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["settings"]["kmeans"]["n_init"] == 2 and summary["settings"]["ci_level"] == 0.9
    assert summary["data"]["overrides"] == []  # estimator settings are not dataset overrides
    code, _, err = cli(capsys, *base, "--set", "estimator.nope=1")
    assert code == 2 and err.count("\n") == 1 and "unknown config key estimator.nope for estimator cluster" in err
    code, _, err = cli(capsys, *base, "--set", "estimator.n_init=many")
    assert code == 2 and "estimator.n_init: expected an integer, got 'many'" in err
    code, _, err = cli(capsys, *base[:-7], "--estimator", "lsmi", "--k", "3")
    assert code == 2 and "--k: estimator lsmi has no setting 'k'" in err
    code, _, err = cli(capsys, *base[:-7], "--estimator", "nope")
    assert code == 2 and "unknown estimator 'nope'; expected one of: " in err and "cluster" in err


def test_a_plugin_estimator_runs_through_the_cli(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("INTERPLAY_PLUGINS", str(PLUGIN))
    out = tmp_path / "gap"
    code, text, err = cli(capsys, "pid", "--data", "pid-xor", "--n-train", "100", "--n-test", "60", "--seed", "4",
                          "--estimator", "mean-gap", "--set", "estimator.scale=2", "--out", out)
    assert code == 0, err
    assert "mean-gap (dataset level) on pid-xor" in text and "gap" in text
    assert "mean-gap" in ESTIMATORS and ESTIMATORS.get("mean-gap").description.startswith("Scaled gap")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["estimator"] == "mean-gap" and summary["settings"] == {"modalities": None, "scale": 2.0, "seed": 4}
    assert summary["result"]["n"] == 60 and summary["result"]["gap"] >= 0
    code, _, err = cli(capsys, "pid", "--data", "pid-xor", "--estimator", "mean-gap", "--k", "3")
    assert code == 2 and "--k: estimator mean-gap has no setting 'k'" in err
