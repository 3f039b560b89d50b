"""Per-sample interaction types: every estimator on canonical constructions with known answers, the metrics
against independent implementations (naive loops, scikit-learn's AUROC)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from interplay.analysis.types import (
    TypeEstimate,
    agreement_types,
    check_methods,
    cluster_types,
    confidence_types,
    confusion_matrix,
    lsmi_types,
    true_type_names,
    type_metrics,
    type_names,
)
from interplay.errors import ConfigError, DataError

T = torch.tensor
MODS = ["x1", "x2"]


def test_type_names_and_truth_vocabulary():
    assert type_names(MODS) == ["redundant", "unique:x1", "unique:x2", "synergistic", "undetermined"]
    assert true_type_names(("unique1", "unique2", "redundant", "synergistic"), MODS) == \
        ["unique:x1", "unique:x2", "redundant", "synergistic"]
    assert true_type_names(("unique2", "normal"), ["a", "b"]) == ["unique:b", "normal"]
    sorted_names = sorted(f"x{i}" for i in range(1, 11))  # x1, x10, x2, ...
    assert true_type_names(("unique2", "unique10"), sorted_names) == ["unique:x2", "unique:x10"]


def test_agreement_rule_on_every_case():
    # samples: both right | only x1 | only x2 | none right, model right | none right, model wrong
    uni = {"x1": T([1, 1, 0, 0, 0]), "x2": T([1, 0, 1, 0, 0])}
    est = agreement_types(uni, T([1, 1, 1, 1, 0]))
    assert est.labels == ["redundant", "unique:x1", "unique:x2", "synergistic", "undetermined"]
    assert est.counts() == {"redundant": 1, "unique:x1": 1, "unique:x2": 1, "synergistic": 1, "undetermined": 1}
    assert est.scores["synergistic"].tolist() == [0, 0, 0, 1, 0]


def test_agreement_three_modalities_partial_is_undetermined():
    uni = {"a": T([1, 1, 0]), "b": T([1, 1, 0]), "c": T([1, 0, 0])}
    est = agreement_types(uni, T([1, 1, 1]))
    assert est.labels == ["redundant", "undetermined", "synergistic"]


def test_confidence_three_modalities_each_versus_all_others():
    """a, b, c: all certain -> redundant; only c -> unique:c; a and b but not c (partial redundancy, no type of
    its own) -> undetermined, as the agreement rule says; none, model certain -> synergistic."""
    one, half = 1.0, 0.5
    uni = {"a": T([one, half, one, half]), "b": T([one, half, one, half]), "c": T([one, one, half, half])}
    est = confidence_types(uni, T([one, one, one, one]), 0.5)
    assert est.types == ["redundant", "unique:a", "unique:b", "unique:c", "synergistic", "undetermined"]
    assert est.labels == ["redundant", "unique:c", "undetermined", "synergistic"]
    hard = agreement_types({m: v == one for m, v in uni.items()}, T([1, 1, 1, 1]))
    assert hard.labels == est.labels


def test_agreement_chance_hits_on_binary_labels():
    """The rule's known failure, exactly: uninformative unimodal models right at random (p = 1/2 each) call a
    quarter of synergistic samples redundant and only a quarter synergistic."""
    gen = torch.Generator().manual_seed(0)
    n = 40000
    uni = {m: torch.rand(n, generator=gen) < 0.5 for m in MODS}
    counts = agreement_types(uni, torch.ones(n, dtype=torch.bool)).counts()
    assert counts["redundant"] / n == pytest.approx(0.25, abs=0.01)
    assert counts["synergistic"] / n == pytest.approx(0.25, abs=0.01)


def test_confidence_exact_values_and_types():
    # calibrated probabilities of the true label, prior 1/2 (so 1 bit is certainty)
    p1 = T([1.0, 1.0, 0.5, 0.5, 0.5, 0.25])
    p2 = T([1.0, 0.5, 1.0, 0.5, 0.5, 0.5])
    p = T([1.0, 1.0, 1.0, 1.0, 0.5, 0.5])
    est = confidence_types({"x1": p1, "x2": p2}, p, 0.5)
    assert est.labels == ["redundant", "unique:x1", "unique:x2", "synergistic", "undetermined", "undetermined"]
    assert est.scores["redundant"].tolist() == pytest.approx([1, 0, 0, 0, 0, 0])
    assert est.scores["unique:x1"].tolist() == pytest.approx([0, 1, 0, 0, 0, 0])
    assert est.scores["synergistic"].tolist() == pytest.approx([0, 0, 0, 1, 0, 0])
    # p = 3/4 under prior 1/2: log2(3/2) bits each
    est = confidence_types({"x1": T([0.75]), "x2": T([0.75])}, T([0.75]), 0.5)
    assert est.scores["redundant"].item() == pytest.approx(math.log2(1.5))
    assert est.labels == ["redundant"]
    assert set(est.columns) == {"confidence_redundancy", "confidence_unique_x1", "confidence_unique_x2",
                                "confidence_synergy"}


def test_confidence_ignores_chance_hits_that_agreement_counts():
    """A synergistic sample whose uninformative unimodal models are right by chance at p = 1/2 (argmax ties
    resolved towards the label): agreement says redundant, confidence says synergistic."""
    est = confidence_types({"x1": T([0.5]), "x2": T([0.5])}, T([0.99]), 0.5)
    assert est.labels == ["synergistic"]
    assert agreement_types({"x1": T([1]), "x2": T([1])}, T([1])).labels == ["redundant"]


@given(st.lists(st.tuples(st.floats(0.01, 1), st.floats(0.01, 1), st.floats(0.01, 1)), min_size=1, max_size=20))
@settings(max_examples=50, deadline=None)
def test_confidence_two_modality_identities(rows):
    p1, p2, p = (torch.tensor(c, dtype=torch.float64) for c in zip(*rows))
    est = confidence_types({"x1": p1, "x2": p2}, p, 0.5)
    i1 = torch.log2(p1 / 0.5).clamp_min(0)
    i = torch.log2(p / 0.5)
    s = est.scores
    assert torch.allclose(s["redundant"] + s["unique:x1"], i1)
    assert torch.allclose(s["redundant"] + s["unique:x1"] + s["unique:x2"] + s["synergistic"], i)


def test_lsmi_types_largest_component_and_negatives():
    r, u1, u2, s = T([0.9, -0.2, 0.0, 0.1, -0.1]), T([0.0, 0.8, 0.1, 0.2, -0.3]), T([0.1, -0.5, 0.7, 0.0, -0.2]), \
        T([0.0, 0.1, 0.2, 0.6, -0.05])
    est = lsmi_types(r, u1, u2, s, MODS)
    assert est.labels == ["redundant", "unique:x1", "unique:x2", "synergistic", "undetermined"]
    assert est.columns["lsmi_unique_x2"].tolist() == pytest.approx(u2.tolist())
    with pytest.raises(DataError, match="pair"):
        lsmi_types(r, u1, u2, s, ["a", "b", "c"])


def _blobs(codes: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Well separated 2-D points for binary codes (cluster i at (10 i, 0)), tiny noise."""
    return torch.as_tensor(np.stack([10.0 * codes, np.zeros(len(codes))], 1) + rng.normal(0, 0.01, (len(codes), 2)))


@pytest.mark.parametrize("clusterer", ["kmeans", "gmm"])
@pytest.mark.parametrize("kind,expected", [("xor", "synergistic"), ("copy1", "unique:x1"),
                                           ("copy2", "unique:x2"), ("same", "redundant")])
def test_cluster_types_on_canonical_pmfs(kind, expected, clusterer):
    """Binary codes with exact k = 2 clusters: XOR is pure synergy (1 bit), y = x1 with x2 independent pure
    unique, x1 = x2 = y pure redundancy; every test sample gets that type (pointwise terms of the exact BROJA PID
    of the empirical training pmf, about 1 bit each)."""
    rng = np.random.default_rng(0)

    def draw(n: int) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
        if kind == "same":
            b = a
        y = {"xor": a ^ b, "copy1": a, "copy2": b, "same": a}[kind]
        return {"x1": _blobs(a, rng), "x2": _blobs(b, rng)}, y

    (xtr, ytr), (xte, yte) = draw(800), draw(200)
    est = cluster_types(xtr, ytr, xte, yte, 2, k=2, clusterer=clusterer)
    assert set(est.labels) == {expected} and est.info["clusterer"] == clusterer
    with pytest.raises(ConfigError, match="clusterer must be kmeans or gmm"):
        cluster_types(xtr, ytr, xte, yte, 2, k=2, clusterer="spectral")
    key = {"synergistic": "cluster_synergy", "redundant": "cluster_redundancy"}.get(
        expected, f"cluster_unique_{expected[7:]}")
    values = est.columns[key].numpy()  # pointwise terms of the empirical pmf: about 1 bit, mean within sampling
    assert values.min() > 0.8 and values.mean() == pytest.approx(1.0, abs=0.05)
    assert est.info["pmf_pid_bits"][{"synergistic": "synergy", "redundant": "redundancy", "unique:x1": "unique1",
                                     "unique:x2": "unique2"}[expected]] == pytest.approx(1.0, abs=0.01)


def test_confusion_matrix_matches_a_naive_loop():
    rng = np.random.default_rng(1)
    est_types, true_types = type_names(MODS), ["redundant", "unique:x1", "unique:x2", "synergistic"]
    est = list(rng.choice(est_types, 300))
    true = list(rng.choice(true_types, 300))
    naive = [[0] * len(true_types) for _ in est_types]
    for e, t in zip(est, true):
        naive[est_types.index(e)][true_types.index(t)] += 1
    assert confusion_matrix(est, true, est_types, true_types) == naive
    with pytest.raises(DataError, match="not among"):
        confusion_matrix(["nonsense"], ["redundant"], est_types, true_types)


def test_type_metrics_by_hand_and_auroc_against_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    n = 400
    true = list(rng.choice(["redundant", "unique:x1", "unique:x2", "synergistic"], n))
    scores = {t: torch.as_tensor(rng.normal(size=n) + 1.5 * (np.asarray(true) == t)) for t in type_names(MODS)[:4]}
    stacked = torch.stack([scores[t] for t in type_names(MODS)[:4]])
    est = TypeEstimate("test", type_names(MODS), stacked.argmax(0), scores)
    m = type_metrics(est, true)
    labels = est.labels
    assert m["type_accuracy"] == pytest.approx(np.mean([a == b for a, b in zip(labels, true)]))
    recalls = {t: np.mean([a == t for a, b in zip(labels, true) if b == t]) for t in set(true)}
    assert m["recall"] == pytest.approx(recalls)
    assert m["macro_agreement"] == pytest.approx(np.mean(list(recalls.values())))
    for t in set(true):
        assert m["auroc"][t] == pytest.approx(roc_auc_score(np.asarray(true) == t, scores[t].numpy()))
    assert sum(map(sum, m["confusion"]["matrix"])) == n
    assert m["confusion"]["true"] == ["redundant", "unique:x1", "unique:x2", "synergistic"]


def test_unknown_method_is_one_line():
    assert check_methods(("agreement", "lsmi", "agreement")) == ["agreement", "lsmi"]
    with pytest.raises(ConfigError, match="per_sample: unknown per-sample type method 'gate'"):
        check_methods(("gate",))
