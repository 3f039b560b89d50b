"""``analyze_run``: the model section of ``interplay analyze RUN`` on tiny trained pid-xor runs (fixed seeds): the
numbers (macro agreement of the per-sample methods against the generator's sources, model PID), the CSV rows and
their bookkeeping, where unimodal predictions come from, and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from interplay.analysis.run import analyze_run, temperature
from interplay.analysis.settings import AnalysisSettings
from interplay.config import RunConfig
from interplay.engine import build_data, evaluate, load_run, train
from interplay.errors import ConfigError, DataError
from interplay.pid.cluster import cluster_pid

MIX = "redundant=0.33,unique1=0.165,unique2=0.165,synergistic=0.34"
ALL = ("agreement", "confidence", "lsmi", "cluster")


def _train(out, method="synib", epochs=10, n_train=800, n_test=400, **data):
    raw = {"data": {"name": "pid-xor", "n_train": n_train, "n_test": n_test, "mix": MIX, **data},
           "method": {"name": method}, "train": {"epochs": epochs, "seed": 0},
           "model": {"encoder_hidden": [32], "fusion_hidden": [16]}}
    train(RunConfig.from_dict(raw), out)
    run = load_run(out)
    return run, build_data(run.config)


@pytest.fixture(scope="module")
def synib(tmp_path_factory):
    """A tiny SynIB run on pid-xor (seed 0, 800 training samples, 10 epochs) and its analysis by every method."""
    run, splits = _train(tmp_path_factory.mktemp("analyze") / "synib")
    return run, splits, analyze_run(run, splits, AnalysisSettings(bootstrap=20, per_sample=ALL))


def test_per_sample_types_agree_with_ground_truth(synib):
    """Measured on this run (seed 0): lsmi 0.747, confidence 0.672, agreement 0.526 macro agreement. The
    thresholds leave about 0.07 of margin; the order confidence > agreement is the chance-hit effect."""
    _, _, analysis = synib
    methods = analysis.section["per_sample"]["methods"]
    assert methods["lsmi"]["macro_agreement"] > 0.67
    assert methods["confidence"]["macro_agreement"] > 0.6
    assert methods["confidence"]["macro_agreement"] > methods["agreement"]["macro_agreement"] + 0.08
    assert methods["agreement"]["info"]["unimodal_source"] == "fitted"
    for entry in methods.values():
        assert set(entry["auroc"]) == {"redundant", "unique:x1", "unique:x2", "synergistic"}
        assert 0.0 <= entry["type_accuracy"] <= 1.0
    assert methods["lsmi"]["auroc"]["redundant"] > 0.85


def test_csv_rows_and_bookkeeping(synib):
    run, splits, analysis = synib
    header, rows = analysis.per_sample_header, analysis.per_sample_rows
    assert header[:9] == ["index", "label", "prediction", "correct", "true_type", "agreement_type",
                          "confidence_type", "lsmi_type", "cluster_type"]
    assert {"lsmi_redundancy", "lsmi_unique_x1", "lsmi_unique_x2", "lsmi_synergy", "confidence_synergy"} <= set(header)
    assert len(rows) == len(splits.test) == 400 and all(len(r) == len(header) for r in rows)
    col = {h: [r[i] for r in rows] for i, h in enumerate(header)}
    assert col["label"] == splits.test.target.tolist()
    names = ["unique:x1", "unique:x2", "redundant", "synergistic"]
    assert col["true_type"] == [names[k] for k in splits.test.meta["interaction"].tolist()]
    section = analysis.section
    assert section["test_accuracy"] == pytest.approx(sum(col["correct"]) / 400)
    assert section["test_accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])
    assert section["per_sample"]["types"] == ["redundant", "unique:x1", "unique:x2", "synergistic", "undetermined"]
    for method, entry in section["per_sample"]["methods"].items():
        labels = col[f"{method}_type"]
        assert entry["counts"] == {t: labels.count(t) for t in section["per_sample"]["types"]}
        for t, acc in entry["accuracy_by_type"].items():
            hits = [c for c, lab in zip(col["correct"], labels) if lab == t]
            assert acc == (pytest.approx(sum(hits) / len(hits)) if hits else None)
        conf = entry["confusion"]
        for i, e in enumerate(conf["estimated"]):
            for j, t in enumerate(conf["true"]):
                assert conf["matrix"][i][j] == sum(1 for a, b in zip(labels, col["true_type"]) if a == e and b == t)
        assert entry["type_accuracy"] == pytest.approx(sum(a == b for a, b in zip(labels, col["true_type"])) / 400)


def test_model_pid_of_the_prediction(synib):
    """The pair entry is the cluster PID of (x1, x2; the model's predicted class), not of the label, with the dataset
    section's estimator settings (gmm discretiser, bootstrap bias correction)."""
    _, splits, analysis = synib
    (pair,) = analysis.section["pairs"]
    assert pair["pair"] == ["x1", "x2"] and pair["truth"] is None
    atoms = [pair["redundancy"], pair["unique"]["x1"], pair["unique"]["x2"], pair["synergy"]]
    assert pair["total"]["value"] == pytest.approx(sum(a["value"] for a in atoms))
    for q in (*atoms, pair["total"]):
        lo, hi = q["interval"]
        assert lo <= q["value"] <= hi
    pred = torch.tensor([r[2] for r in analysis.per_sample_rows])
    x1, x2, y = splits.test.inputs["x1"], splits.test.inputs["x2"], splits.test.target
    options = {"num_classes": 2, "bootstrap": 20, "seed": 0, "permutations": 100, "quiet": True, "clusterer": "gmm",
               "correction": "bootstrap"}
    direct = cluster_pid(x1, x2, pred, **options)
    assert pair["synergy"]["value"] == pytest.approx(direct.corrected["synergy"])
    assert pair["redundancy"]["interval"] == pytest.approx([direct.ci_low["redundancy"], direct.ci_high["redundancy"]])
    assert pair["total"]["value"] > 0.1
    assert abs(cluster_pid(x1, x2, y, **options).corrected["synergy"] - pair["synergy"]["value"]) > 1e-6


def test_unimodal_heads_are_used_when_the_method_trains_them(tmp_path):
    run, splits = _train(tmp_path / "ml", method="multi_loss", epochs=2, n_train=300, n_test=200)
    analysis = analyze_run(run, splits, AnalysisSettings(bootstrap=0, per_sample=("agreement", "confidence")))
    methods = analysis.section["per_sample"]["methods"]
    assert analysis.section["per_sample"]["unimodal_source"] == "heads"
    assert set(methods) == {"agreement", "confidence"}
    assert methods["confidence"]["info"]["temperature"]["model"] > 0
    assert analysis.section["pairs"][0]["total"]["interval"] is None
    # units: confidence scores are bits by default, nats on request (same types)
    nats = analyze_run(run, splits, AnalysisSettings(bootstrap=0, per_sample=("confidence",), units="nats"))
    h_b, h_n = analysis.per_sample_header, nats.per_sample_header
    for name in ("confidence_redundancy", "confidence_synergy"):
        bits_col = torch.tensor([r[h_b.index(name)] for r in analysis.per_sample_rows], dtype=torch.float64)
        nats_col = torch.tensor([r[h_n.index(name)] for r in nats.per_sample_rows], dtype=torch.float64)
        assert torch.allclose(nats_col, bits_col * math.log(2), atol=2e-6)
    assert [r[h_n.index("confidence_type")] for r in nats.per_sample_rows] == \
        [r[h_b.index("confidence_type")] for r in analysis.per_sample_rows]


def test_unimodal_reference_runs_are_preferred(tmp_path):
    """A run trained with train.unimodal_reference: its reloaded unimodal runs give the unimodal predictions,
    and their hits are what the agreement rule reads (checked against each reference run's own evaluation)."""
    raw = {"data": {"name": "pid-xor", "n_train": 300, "n_test": 200, "mix": MIX}, "method": {"name": "joint"},
           "train": {"epochs": 2, "seed": 0, "unimodal_reference": True},
           "model": {"encoder_hidden": [16], "fusion_hidden": [8]}}
    train(RunConfig.from_dict(raw), tmp_path / "ref")
    run = load_run(tmp_path / "ref")
    splits = build_data(run.config)
    analysis = analyze_run(run, splits, AnalysisSettings(bootstrap=0, per_sample=("agreement",)))
    assert analysis.section["per_sample"]["unimodal_source"] == "reference"
    y = splits.test.target
    right = {}
    for m in ("x1", "x2"):
        ref = load_run(tmp_path / "ref" / "unimodal" / m)
        right[m] = (evaluate(ref.objective, ref.model, splits.test, 256).pred == y).tolist()
    labels = [r[analysis.per_sample_header.index("agreement_type")] for r in analysis.per_sample_rows]
    for lab, a, b in zip(labels, right["x1"], right["x2"]):
        if a and b:
            assert lab == "redundant"
        elif a or b:
            assert lab == ("unique:x1" if a else "unique:x2")
        else:
            assert lab in ("synergistic", "undetermined")


def test_three_modalities_every_pair_and_pairwise_methods_skipped(tmp_path):
    run, splits = _train(tmp_path / "m3", method="joint", epochs=1, n_train=300, n_test=200, modalities=3,
                         mix="redundant=0.5,synergistic=0.5")
    analysis = analyze_run(run, splits, AnalysisSettings(bootstrap=0, per_sample=("agreement", "confidence", "lsmi")))
    section = analysis.section
    assert section["per_sample"]["unimodal_source"] == "fitted"
    assert sum(section["per_sample"]["methods"]["confidence"]["counts"].values()) == 200
    assert [p["pair"] for p in section["pairs"]] == [["x1", "x2"], ["x1", "x3"], ["x2", "x3"]]
    assert "skipped" in section["per_sample"]["methods"]["lsmi"]
    assert section["per_sample"]["types"] == ["redundant", "unique:x1", "unique:x2", "unique:x3", "synergistic",
                                              "undetermined"]
    assert "lsmi_type" not in analysis.per_sample_header and len(analysis.per_sample_rows) == 200


def test_bad_input_is_one_line(synib, tmp_path):
    run, splits, _ = synib
    with pytest.raises(ConfigError, match="unknown per-sample type method 'gate'"):
        analyze_run(run, splits, AnalysisSettings(per_sample=("gate",)))
    raw = {"data": {"name": "gaussian-split", "n_train": 200, "n_test": 100, "task": "regression"},
           "method": {"name": "joint"}, "train": {"epochs": 1, "seed": 0},
           "model": {"encoder_hidden": [8], "fusion_hidden": [8]}}
    train(RunConfig.from_dict(raw), tmp_path / "reg")
    reg = load_run(tmp_path / "reg")
    with pytest.raises(DataError, match="needs a classification run"):
        analyze_run(reg, build_data(reg.config), AnalysisSettings())


def test_temperature_recovers_a_known_scale():
    """Labels drawn from softmax(z) with logits given as 4 z: the fitted temperature is about 4."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 3, generator=gen)
    y = torch.multinomial(torch.softmax(z, -1), 1, generator=gen)[:, 0]
    assert temperature(4 * z, y) == pytest.approx(4.0, rel=0.05)
