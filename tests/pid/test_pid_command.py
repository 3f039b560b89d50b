"""``interplay pid``: --pmf, --data with the cluster and lsmi estimators, --out files, one-line errors."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from interplay.cli_pid import add_parser, run
from interplay.errors import ConfigError, DataError, InterplayError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="interplay")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    return parser.parse_args(["pid", *argv])


def xor() -> np.ndarray:
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 1] = P[1, 1, 0] = 0.25
    return P


def test_pmf_prints_the_decomposition_and_writes_summary(tmp_path: Path, capsys) -> None:
    f = tmp_path / "xor.npy"
    np.save(f, xor())
    assert run(parse("--pmf", str(f), "--out", str(tmp_path / "out"))) == 0
    out = capsys.readouterr().out
    assert "S (synergy)" in out and "1.000000" in out and "duality gap" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["synergy"] == pytest.approx(1.0) and summary["units"] == "bits"


def test_pmf_counts_need_normalize(tmp_path: Path, capsys) -> None:
    f = tmp_path / "counts.npy"
    np.save(f, xor() * 40)
    with pytest.raises(DataError, match="--normalize"):
        run(parse("--pmf", str(f)))
    assert run(parse("--pmf", str(f), "--normalize")) == 0
    assert "1.000000" in capsys.readouterr().out


@pytest.mark.parametrize("content,match", [
    (None, "no such file"),
    (b"hello", "not a NumPy .npy file"),
    (-xor(), "negative"),
    (np.ones((2, 2)) / 4, "expected 3 axes"),
    (np.full((2, 2, 2), np.nan), "NaN"),
    ("npz", ".npz archive"),
    ("dir", "is a directory"),
])
def test_bad_pmf_files_give_one_line_naming_the_file(tmp_path: Path, content, match) -> None:
    f = tmp_path / "p.npy"
    if isinstance(content, np.ndarray):
        np.save(f, content)
    elif isinstance(content, bytes):
        f.write_bytes(content)
    elif content == "npz":
        f = tmp_path / "p.npz"
        np.savez(f, P=xor())
    elif content == "dir":
        f.mkdir()
    with pytest.raises(DataError, match=match) as info:
        run(parse("--pmf", str(f)))
    message = str(info.value)
    assert message.startswith(str(f)) and "\n" not in message


def test_option_misuse() -> None:
    with pytest.raises(ConfigError, match="--estimator applies to --data"):
        run(parse("--pmf", "x.npy", "--estimator", "cluster"))
    with pytest.raises(ConfigError, match="--estimator"):
        run(parse("--data", "pid-xor"))
    with pytest.raises(ConfigError, match="data.KEY"):
        run(parse("--data", "pid-xor", "--estimator", "cluster", "--set", "method.lam=1"))
    with pytest.raises(ConfigError, match="unknown dataset"):
        run(parse("--data", "nope", "--estimator", "cluster"))
    with pytest.raises(ConfigError, match="--k"):
        run(parse("--data", "pid-xor", "--estimator", "cluster", "--k", "0"))
    with pytest.raises(ConfigError, match="held-out"):
        run(parse("--data", "pid-xor", "--estimator", "lsmi", "--split", "train", "--n-train", "50",
                  "--n-test", "50"))
    with pytest.raises(SystemExit) as exc:
        parse()  # one of --pmf / --data is required
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        parse("--pmf", "a.npy", "--data", "pid-xor")


def test_cluster_prints_table_with_truth_and_writes_files(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = run(parse("--data", "pid-xor", "--mix", "synergistic=1", "--n-train", "300", "--n-test", "300",
                     "--estimator", "cluster", "--k", "3", "--permutations", "5", "--bootstrap", "4",
                     "--out", str(out), "--quiet"))
    assert code == 0
    captured = capsys.readouterr()
    assert "truth (latent)" in captured.out and "S (synergy)" in captured.out and "k = 3 x 3" in captured.out
    assert "cluster PID (null" not in captured.err  # --quiet: no progress bar
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["k1"] == 3 and summary["settings"]["n"] == 600
    assert summary["settings"]["permutations"] == 5 and summary["settings"]["bootstrap"] == 4
    assert summary["truth_latent"]["synergy"] == pytest.approx(1.0)
    assert summary["data"]["mix"] == {"synergistic": 1.0}
    with open(out / "draws.csv") as fh:
        rows = list(csv.DictReader(fh))
    kinds = [r["kind"] for r in rows]
    assert kinds.count("label_shuffle") == 5 and kinds.count("bootstrap") == 4
    assert kinds.count("conditional_shuffle") == 5
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temporary files


def test_cluster_needs_a_pair_with_three_modalities(tmp_path: Path, capsys) -> None:
    base = ["--data", "pid-xor", "--set", "data.modalities=3", "--mix", "unique3=1", "--n-train", "200",
            "--n-test", "200", "--estimator", "cluster", "--k", "3", "--permutations", "2", "--bootstrap", "0",
            "--split", "test", "--quiet"]
    with pytest.raises(DataError, match="--pair"):
        run(parse(*base))
    assert run(parse(*base, "--pair", "x1,x3")) == 0
    assert "modalities x1, x3" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--pair"):
        run(parse(*base, "--pair", "x1"))


def test_lsmi_writes_per_sample_csv_and_summary(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lsmi"
    code = run(parse("--data", "pid-xor", "--mix", "redundant=.5,synergistic=.5", "--n-train", "300", "--n-test",
                     "120", "--estimator", "lsmi", "--epochs", "3", "--seed", "1", "--out", str(out), "--quiet"))
    assert code == 0
    text = capsys.readouterr().out
    assert "AUROC of s" in text and "source synergistic" in text
    with open(out / "per_sample.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 120
    assert list(rows[0]) == ["index", "target", "interaction", "r", "u1", "u2", "s", "i1", "i2", "i12", "h1", "h2"]
    assert {r["interaction"] for r in rows} <= {"redundant", "synergistic"}
    row = rows[0]
    assert float(row["r"]) + float(row["u1"]) == pytest.approx(float(row["i1"]))
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["auroc_synergy"]["value"] <= 1.0
    assert summary["settings"]["n_eval"] == 120 and summary["units"] == "bits"
    assert set(summary["by_source"]) == {"redundant", "synergistic"}


def test_errors_are_interplay_errors() -> None:
    # the CLI's main() prints InterplayError messages as one line and exits 2
    assert issubclass(DataError, InterplayError) and issubclass(ConfigError, InterplayError)
