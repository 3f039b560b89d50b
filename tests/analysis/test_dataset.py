"""Dataset-level interaction analysis: pairwise PID against pid-xor's ground truth, MI identities, units, the
recommendation rule, settings validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interplay.analysis import AnalysisSettings, analyze, analyze_dataset
from interplay.analysis.dataset import cell_information, cluster_settings, recommendation, synergy_present
from interplay.config import RunConfig, set_field
from interplay.data.groundtruth import pid_xor_ground_truth
from interplay.engine.trainer import build_data, resolve_config
from interplay.errors import ConfigError
from interplay.pid import broja
from interplay.pid.cluster import empirical_pmf

#: how far (bits) the corrected atoms may lie from the latent truth at these small sizes (N = 900-1500, 30 draws):
#: measured with the default gmm discretiser, R +0.017 / S -0.038 at N = 1500, R -0.057 on the redundant mix,
#: R -0.026 for the 3-modality pairs (k-means missed by 0.06-0.20). At the acceptance size (N = 6000) the interval
#: covers the truth: tests/analysis/test_cli_analyze.py
TOLERANCE = 0.08
SMALL = {"bootstrap": 30, "permutations": 30, "quiet": True}


def _splits(mix: str, modalities: int = 2, n_train: int = 900, n_test: int = 600, seed: int = 0):
    cfg = RunConfig()
    set_field(cfg, "data.name", "pid-xor")
    set_field(cfg, "data.mix", mix)
    set_field(cfg, "data.modalities", modalities)
    set_field(cfg, "data.n_train", n_train)
    set_field(cfg, "data.n_test", n_test)
    cfg.train.seed = seed
    return build_data(resolve_config(cfg))


@pytest.fixture(scope="module")
def mixed() -> dict:
    return analyze_dataset(_splits("redundant=0.5,synergistic=0.5"), AnalysisSettings(**SMALL))


def test_redundant_synergistic_mix_matches_ground_truth(mixed: dict) -> None:
    (pair,) = mixed["pairs"]
    assert pair["pair"] == ["x1", "x2"]
    gt = pid_xor_ground_truth("redundant=0.5,synergistic=0.5")
    truth = pair["truth"]
    assert truth["redundancy"] == pytest.approx(gt.redundancy) == pytest.approx(0.5)
    assert truth["synergy"] == pytest.approx(gt.synergy) == pytest.approx(0.5)
    assert truth["unique"] == pytest.approx({"x1": 0.0, "x2": 0.0}, abs=1e-6)
    for atom in ("redundancy", "synergy"):
        q = pair[atom]
        lo, hi = q["interval"]
        assert lo < q["value"] < hi
        assert abs(truth[atom] - q["value"]) <= TOLERANCE, (atom, q, truth[atom])
        assert lo > 0.2  # clearly present
    for m in ("x1", "x2"):  # unique ~ 0: far below R and S
        assert abs(pair["unique"][m]["value"]) < 0.02
    # S is significant: interval above 0 and the conditional-independence null rejected
    assert pair["p_synergy_conditional"] <= 0.05
    present, _ = synergy_present(pair, 0.05)
    assert present is True


def test_information_identities(mixed: dict) -> None:
    """I(X_a;Y) = R + U_a and I(X_a,X_b;Y) = R + U_a + U_b + S hold for the corrected values (the label-shuffle
    correction subtracts the same identity draw by draw); with two modalities I(all;Y) is the pair's total."""
    (pair,) = mixed["pairs"]
    mi = mixed["mi"]
    r, s = pair["redundancy"]["value"], pair["synergy"]["value"]
    u = {m: q["value"] for m, q in pair["unique"].items()}
    for m in ("x1", "x2"):
        assert mi[m]["value"] == pytest.approx(r + u[m], abs=1e-5)
        assert mi[m]["truth"] == pytest.approx(0.5)
    assert pair["total"]["value"] == pytest.approx(r + u["x1"] + u["x2"] + s, abs=1e-5)
    assert mi["all"]["value"] == pytest.approx(pair["total"]["value"])
    assert mi["all"]["truth"] == pytest.approx(1.0)
    assert mixed["n"] == 1500 and mixed["split"] == "all"


def test_recommendation_cites_the_synergy(mixed: dict) -> None:
    rec = mixed["recommendation"]
    s = mixed["pairs"][0]["synergy"]["value"]
    total = mixed["pairs"][0]["total"]["value"]
    assert rec["evidence"]["synergistic_pairs"] == ["x1,x2"]
    assert rec["evidence"]["pairs"]["x1,x2"]["synergy_share"] == pytest.approx(s / total)
    text = " ".join(rec["text"])
    assert f"synergy {s:.2f} bits" in text and f"I(x1,x2;Y) = {total:.2f} bits" in text
    assert f"({100 * s / total:.0f} %" in text
    assert "synib" in text and "docs/results/baselines.md" in text


def test_purely_redundant_mix_has_no_synergy() -> None:
    sec = analyze_dataset(_splits("redundant=1"), AnalysisSettings(**SMALL))
    (pair,) = sec["pairs"]
    assert pair["truth"]["redundancy"] == pytest.approx(1.0) and pair["truth"]["synergy"] == pytest.approx(0.0)
    assert abs(pair["synergy"]["value"]) < 0.05
    assert abs(1.0 - pair["redundancy"]["value"]) <= TOLERANCE
    assert synergy_present(pair, 0.05)[0] is False
    text = " ".join(sec["recommendation"]["text"])
    assert sec["recommendation"]["evidence"]["synergistic_pairs"] == []
    assert "no significant synergy" in text and "joint model is the natural baseline" in text
    assert "synib" not in text and "under-use" not in text


def test_three_modalities_give_three_pairs_and_the_higher_order_information() -> None:
    sec = analyze_dataset(_splits("redundant=0.5,synergistic=0.5", modalities=3, n_train=600, n_test=300),
                          AnalysisSettings(**SMALL))
    assert [p["pair"] for p in sec["pairs"]] == [["x1", "x2"], ["x1", "x3"], ["x2", "x3"]]
    for pair in sec["pairs"]:  # a pair sees the redundant source only: the XOR of three bits is invisible
        assert pair["truth"]["redundancy"] == pytest.approx(0.5) and pair["truth"]["synergy"] == pytest.approx(0.0)
        assert abs(pair["synergy"]["value"]) < 0.06
        assert synergy_present(pair, 0.05)[0] is False
        assert abs(0.5 - pair["redundancy"]["value"]) <= TOLERANCE
    mi = sec["mi"]
    assert set(mi) == {"x1", "x2", "x3", "all"}
    assert mi["all"]["truth"] == pytest.approx(1.0)
    best = max(p["total"]["value"] for p in sec["pairs"])
    assert mi["all"]["value"] > best + 0.2  # all three together carry the synergistic bit no pair shows
    ho = sec["recommendation"]["evidence"]["higher_order"]
    assert ho["beyond_best_pair"] is True
    assert "x1,x2,x3" in sec["recommendation"]["evidence"]["synergistic_pairs"]


def test_nats_are_bits_times_ln2() -> None:
    splits = _splits("redundant=0.5,synergistic=0.5", n_train=500, n_test=300)
    bits = analyze_dataset(splits, AnalysisSettings(units="bits", bootstrap=10, permutations=10, quiet=True))
    nats = analyze_dataset(splits, AnalysisSettings(units="nats", bootstrap=10, permutations=10, quiet=True))
    ln2 = math.log(2.0)

    def check(b: dict, n: dict) -> None:
        assert n["value"] == pytest.approx(b["value"] * ln2, rel=1e-9, abs=1e-12)
        assert n["interval"] == pytest.approx([v * ln2 for v in b["interval"]], rel=1e-9, abs=1e-12)

    for pb, pn in zip(bits["pairs"], nats["pairs"]):
        for atom in ("redundancy", "synergy", "total"):
            check(pb[atom], pn[atom])
        for m in pb["unique"]:
            check(pb["unique"][m], pn["unique"][m])
        assert pn["truth"]["synergy"] == pytest.approx(pb["truth"]["synergy"] * ln2)
        assert pn["truth"]["total"] == pytest.approx(ln2)
    for m in bits["mi"]:
        check(bits["mi"][m], nats["mi"][m])
    assert any("nats" in t for t in nats["recommendation"]["text"])


def _naive_mi_nats(a: list, b: list) -> float:
    """Plug-in I(A; B) in nats by counting in dictionaries (an independent loop implementation)."""
    n = len(a)
    joint: dict = {}
    pa: dict = {}
    pb: dict = {}
    for x, y in zip(a, b):
        joint[(x, y)] = joint.get((x, y), 0) + 1
        pa[x] = pa.get(x, 0) + 1
        pb[y] = pb.get(y, 0) + 1
    return sum(c / n * math.log(c * n / (pa[x] * pb[y])) for (x, y), c in joint.items())


def test_cell_information_against_references() -> None:
    """Plug-in I(C1, C2; Y) equals the BROJA solver's I(X1,X2;Y) of the same pmf and a naive counting loop over
    the product label; the label-shuffle mean is subtracted; units scale by ln 2."""
    rng = np.random.default_rng(3)
    n = 2000
    c1, c2 = rng.integers(0, 4, n), rng.integers(0, 3, n)
    y = np.where(rng.random(n) < 0.7, (c1 + c2) % 2, rng.integers(0, 2, n))
    plain = cell_information([c1, c2], y, 2, permutations=0, bootstrap=0, seed=0)
    assert plain["interval"] is None and plain["null_mean"] == 0.0
    assert plain["value"] == pytest.approx(broja(empirical_pmf(c1, c2, y, (4, 3, 2))).i_x1x2_y, abs=1e-9)
    assert plain["value"] * math.log(2) == pytest.approx(_naive_mi_nats(list(zip(c1, c2)), list(y)), abs=1e-9)
    assert plain["cells"] == 24
    corr = cell_information([c1, c2], y, 2, permutations=50, bootstrap=50, seed=0)
    assert 0 < corr["null_mean"] < 0.02  # about (cells - 1) / (2 N ln 2) = 0.006 bits for 12 x 2 cells
    assert corr["value"] == pytest.approx(corr["plugin"] - corr["null_mean"])
    lo, hi = corr["interval"]
    assert lo < corr["value"] < hi
    nats = cell_information([c1, c2], y, 2, permutations=50, bootstrap=50, seed=0, units="nats")
    assert nats["value"] == pytest.approx(corr["value"] * math.log(2))
    # independent labels: the corrected value is ~0 and the interval covers 0
    ind = cell_information([c1, c2], rng.integers(0, 2, n), 2, permutations=100, bootstrap=100, seed=1)
    assert abs(ind["value"]) < 0.01 and ind["interval"][0] < 0 < ind["interval"][1]


def _entry(s: tuple[float, float, float], p_cond: float | None, total: tuple[float, float, float]) -> dict:
    def q(v: tuple[float, float, float]) -> dict:
        return {"value": v[0], "interval": [v[1], v[2]]}

    zero = {"value": 0.0, "interval": [-0.01, 0.01]}
    return {"pair": ["a", "b"], "synergy": q(s), "redundancy": dict(zero), "unique": {"a": dict(zero), "b": dict(zero)},
            "total": q(total), "information": {"a": dict(zero), "b": dict(zero)},
            "p_value": {"synergy": 0.01, "unique1": 0.5, "unique2": 0.5}, "p_synergy_conditional": p_cond}


def test_recommendation_rule() -> None:
    """Present synergy needs the interval above 0 and the conditional null rejected; nothing else decides."""
    assert synergy_present(_entry((0.3, 0.2, 0.4), 0.01, (0.6, 0.5, 0.7)), 0.05)[0] is True
    assert synergy_present(_entry((0.3, 0.2, 0.4), 0.50, (0.6, 0.5, 0.7)), 0.05)[0] is False
    assert synergy_present(_entry((0.01, -0.01, 0.03), 0.01, (0.6, 0.5, 0.7)), 0.05)[0] is False
    assert synergy_present(_entry((0.01, 0.001, 0.03), None, (0.6, 0.5, 0.7)), 0.05)[0] is True  # no null drawn
    small = recommendation({"pairs": [_entry((0.01, 0.001, 0.03), 0.01, (0.6, 0.5, 0.7))], "mi": {}}, "bits", 0.95)
    assert small["evidence"]["synergistic_pairs"] == ["a,b"]  # no invented cut-off on the size: the share is cited
    assert "(2 %" in " ".join(small["text"])
    none = recommendation({"pairs": [_entry((0.0, -0.01, 0.01), 1.0, (0.0, -0.01, 0.01))], "mi": {}}, "bits", 0.95)
    assert "no detectable label information" in none["text"][0]


def test_settings_validation_and_estimator_fields() -> None:
    with pytest.raises(ConfigError, match="units"):
        cluster_settings(AnalysisSettings(units="shannons"))
    with pytest.raises(ConfigError, match="bootstrap"):
        cluster_settings(AnalysisSettings(bootstrap=-1))
    with pytest.raises(ConfigError, match="estimator.modalities"):
        cluster_settings(AnalysisSettings(estimator={"modalities": "x1,x2"}))
    with pytest.raises(ConfigError, match="estimator.nope"):
        cluster_settings(AnalysisSettings(estimator={"nope": 1}))
    with pytest.raises(ConfigError, match="clusterer"):
        cluster_settings(AnalysisSettings(clusterer="spectral"))
    with pytest.raises(ConfigError, match="correction"):
        cluster_settings(AnalysisSettings(correction="jackknife"))
    assert cluster_settings(AnalysisSettings()).correction == "bootstrap"
    assert cluster_settings(AnalysisSettings(bootstrap=0)).correction == "shuffle"  # no draws to estimate it from
    cs = cluster_settings(AnalysisSettings(clusters=5, estimator={"row_normalize": "true", "pca_dim": 2}))
    assert cs.k == 5 and cs.row_normalize is True and cs.pca_dim == 2
    import interplay

    assert interplay.analyze is analyze  # the lazy top-level export
    with pytest.raises(ConfigError, match="either a run directory"):
        analyze(data="pid-xor", target="runs/x")
    with pytest.raises(ConfigError, match="got neither"):
        analyze()


def test_split_choice_and_no_truth_under_a_test_mix_shift() -> None:
    """--split test pools the test split only; with a test-only mix shift the pooled data have no single latent
    pmf (truth null), while the training split keeps the generator's mix and its truth."""
    tiny = AnalysisSettings(bootstrap=5, permutations=5, quiet=True, split="test")
    cfg = RunConfig()
    for key, value in (("data.name", "pid-xor"), ("data.mix", "redundant=1"), ("data.n_train", 400),
                       ("data.n_test", 300), ("data.shift", "mix=synergistic=1")):
        set_field(cfg, key, value)
    shifted = build_data(resolve_config(cfg))
    test = analyze_dataset(shifted, tiny)
    assert test["n"] == 300 and test["split"] == "test"
    assert test["pairs"][0]["truth"] is None and "truth" not in test["mi"]["all"]
    assert test["pairs"][0]["synergy"]["value"] > 0.3  # the shifted test split is synergistic
    train = analyze_dataset(shifted, AnalysisSettings(bootstrap=5, permutations=5, quiet=True, split="train"))
    assert train["n"] == 360 and train["pairs"][0]["truth"]["redundancy"] == pytest.approx(1.0)
