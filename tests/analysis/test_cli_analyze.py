"""``interplay analyze`` on the command line: dataset mode, run mode end to end on a trained synib run, one-line
errors, --help examples."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from interplay.cli import EXAMPLES, build_parser
from tests.conftest import run_cli

SMALL = ["--bootstrap", "20", "--permutations", "20", "--quiet"]
MIX = "redundant=0.5,synergistic=0.5"


def test_dataset_mode_writes_the_analysis_and_prints_its_numbers(tmp_path: Path, capsys) -> None:
    out = tmp_path / "a"
    code, stdout, stderr = run_cli(["analyze", "--data", "pid-xor", "--set", f"data.mix={MIX}", "--n-train", "500",
                                    "--n-test", "300", "--units", "nats", *SMALL, "--out", out], capsys)
    assert code == 0, stderr
    a = json.loads((out / "analysis.json").read_text())
    assert a["kind"] == "dataset" and a["units"] == "nats" and "model" not in a
    assert a["data"]["name"] == "pid-xor" and a["data"]["samples"] == {"train": 450, "val": 50, "test": 300}
    assert a["data"]["config"]["mix"] == MIX
    assert a["settings"]["bootstrap"] == 20 and a["settings"]["units"] == "nats"
    (pair,) = a["dataset"]["pairs"]
    ln2 = math.log(2)
    assert pair["truth"]["synergy"] == pytest.approx(0.5 * ln2) and pair["truth"]["total"] == pytest.approx(ln2)
    assert 0.5 * ln2 - pair["synergy"]["value"] <= 0.25 * ln2 and pair["synergy"]["interval"][0] > 0
    # the printed summary carries the same numbers
    s = pair["synergy"]
    assert f"{s['value']:.3f} [{s['interval'][0]:.3f}, {s['interval'][1]:.3f}]" in stdout
    assert "x1,x2" in stdout and "synib" in stdout
    assert stderr == ""  # --quiet
    for name in ("report.html", "pid_x1_x2.png", "mi.png"):
        assert (out / name).is_file()


def test_acceptance_command_covers_the_generators_structure(tmp_path: Path, capsys) -> None:
    """Issue 16's command, with its defaults (N = 6000, gmm discretiser, bootstrap bias correction, 200 draws): the
    95 % interval of R and S covers the generator's 0.5 bits each, and those of U1, U2 cover 0."""
    out = tmp_path / "a"
    code, _, stderr = run_cli(["analyze", "--data", "pid-xor", "--set", f"data.mix={MIX}", "--quiet", "--out", out],
                              capsys)
    assert code == 0, stderr
    dataset = json.loads((out / "analysis.json").read_text())["dataset"]
    assert dataset["n"] == 6000 and dataset["settings"]["clusterer"] == "gmm"
    assert dataset["settings"]["correction"] == "bootstrap"
    (pair,) = dataset["pairs"]
    for q, truth in ((pair["redundancy"], pair["truth"]["redundancy"]), (pair["synergy"], pair["truth"]["synergy"]),
                     *((pair["unique"][m], pair["truth"]["unique"][m]) for m in ("x1", "x2"))):
        lo, hi = q["interval"]
        assert lo <= truth <= hi and hi - lo < 0.03, (q, truth)
    assert pair["truth"]["redundancy"] == pytest.approx(0.5) and pair["truth"]["synergy"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def synib_run(tmp_path_factory) -> Path:
    """A tiny synib run on the redundant/synergistic pid-xor mix, trained through the command line."""
    from interplay.cli import main

    out = tmp_path_factory.mktemp("analyze") / "synib"
    code = main(["train", "--data", "pid-xor", "--mix", MIX, "--method", "synib", "--n-train", "300", "--n-test",
                 "200", "--epochs", "2", "--quiet", "--set", "model.encoder_hidden=[32]", "--set",
                 "model.fusion_hidden=[32]", "--out", str(out)])
    assert code == 0
    return out


def test_run_mode_end_to_end(synib_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "a"
    code, stdout, stderr = run_cli(["analyze", synib_run, *SMALL, "--out", out], capsys)
    assert code == 0, stderr
    a = json.loads((out / "analysis.json").read_text())
    metrics = json.loads((synib_run / "metrics.json").read_text())
    assert a["kind"] == "run" and a["data"]["samples"]["test"] == 200
    model = a["model"]
    assert model["method"] == "synib"
    assert model["test_accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
    # the dataset section is computed on the run's own data (500 samples: 270 + 30 + 200)
    assert a["dataset"]["n"] == 500 and a["dataset"]["pairs"][0]["truth"]["synergy"] == pytest.approx(0.5)
    assert [p["pair"] for p in model["pairs"]] == [["x1", "x2"]]
    with (out / "per_sample.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 200
    assert list(rows[0])[:5] == ["index", "label", "prediction", "correct", "true_type"]
    assert {r["true_type"] for r in rows} == {"redundant", "synergistic"}
    accuracy = sum(int(r["correct"]) for r in rows) / len(rows)
    assert accuracy == pytest.approx(model["test_accuracy"], abs=1e-6)
    methods = model["per_sample"]["methods"]
    assert "agreement" in methods
    for name, m in methods.items():
        conf = m["confusion"]
        assert conf is not None, name
        assert sum(map(sum, conf["matrix"])) == 200
        true_counts = {t: sum(row[j] for row in conf["matrix"]) for j, t in enumerate(conf["true"])}
        assert true_counts == {t: sum(r["true_type"] == t for r in rows) for t in conf["true"]}
        assert [sum(row) for row in conf["matrix"]] == [m["counts"].get(t, 0) for t in conf["estimated"]]
        assert sum(r[f"{name}_type"] == r["true_type"] for r in rows) / 200 == pytest.approx(m["type_accuracy"])
    page = (out / "report.html").read_text()
    assert 'data-name="confusion_agreement.png"' in page and "per_sample_types.png" in page
    assert "http://" not in page and "https://" not in page
    assert "model: synib" in stdout and "agreement:" in stdout


def test_run_mode_output_inside_the_run_is_refused(synib_run: Path, capsys) -> None:
    code, _, err = run_cli(["analyze", synib_run, "--out", synib_run / "analysis"], capsys)
    assert code == 2 and "inside the run directory" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--out", "{tmp}/a"], "got neither"),
    (["runs/x", "--data", "pid-xor", "--out", "{tmp}/a"], "not both"),
    (["--data", "no-such-data", "--out", "{tmp}/a"], "no-such-data"),
    (["{tmp}/missing-run", "--out", "{tmp}/a"], "run directory not found"),
    (["--data", "pid-xor", "--out", "{tmp}/file.txt"], "is a file"),
    (["--data", "pid-xor", "--set", "model.dropout=0.1", "--out", "{tmp}/a"], "data.KEY=VALUE"),
    (["--data", "pid-xor", "--set", "estimator.nope=1", "--out", "{tmp}/a"], "estimator.nope"),
    (["--data", "pid-xor", "--set", "estimator.modalities=x1,x2", "--out", "{tmp}/a"], "every pair"),
    (["--data", "pid-xor", "--clusters", "1", "--out", "{tmp}/a"], "clusters"),
    (["--data", "pid-xor", "--set", "estimator.clusterer=kmeans", "--out", "{tmp}/a"], "--clusterer"),
    (["--data", "pid-xor", "--bootstrap", "-1", "--out", "{tmp}/a"], "bootstrap"),
    (["--data", "pid-xor", "--confidence", "1.5", "--out", "{tmp}/a"], "confidence"),
    (["--data", "pid-xor", "--n-train", "0", "--out", "{tmp}/a"], "n_train"),
    (["{tmp}", "--mix", "synergistic=1", "--out", "{tmp}/a"], "own data"),
    (["--data", "pid-xor", "--per-sample", "agreement,nope", "--out", "{tmp}/a"], "per_sample: unknown"),
])
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "file.txt").write_text("x")
    code, stdout, err = run_cli(["analyze", *(a.replace("{tmp}", str(tmp_path)) for a in args)], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interplay: error:") and message in lines[0], err
    assert not (tmp_path / "a" / "analysis.json").exists()


def test_help_shows_the_examples() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    text = commands["analyze"].format_help()
    assert "examples:" in text
    for line in EXAMPLES["analyze"]:
        assert line in text
    for flag in ("--units", "--clusters", "--bootstrap", "--permutations", "--split", "--seed", "--set"):
        assert flag in text
