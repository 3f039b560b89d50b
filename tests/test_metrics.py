import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from interplay.errors import DataError
from interplay.metrics import accuracy, accuracy_by_group, agreement_groups, auroc, macro_f1


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=60))))
def test_macro_f1_matches_sklearn(case):
    k, pairs = case
    pred = torch.tensor([p for p, _ in pairs])
    target = torch.tensor([t for _, t in pairs])
    ref = f1_score(target.numpy(), pred.numpy(), average="macro", zero_division=0)
    assert abs(macro_f1(pred, target, k) - ref) < 1e-9


def test_accuracy_and_groups():
    correct = torch.tensor([1, 0, 1, 1, 0, 1], dtype=torch.bool)
    groups = torch.tensor([0, 0, 1, 1, 1, 3])
    assert accuracy(torch.tensor([1, 2]), torch.tensor([1, 3])) == 0.5
    out = accuracy_by_group(correct, groups, ["a", "b", "c", "d"])
    assert out == {"a": 0.5, "b": pytest.approx(2 / 3), "c": None, "d": 1.0}


def test_agreement_groups_two_modalities():
    correct = torch.tensor([1, 1, 0, 1, 0], dtype=torch.bool)
    uni = {"x1": torch.tensor([0, 1, 0, 1, 0]).bool(), "x2": torch.tensor([0, 0, 1, 1, 0]).bool()}
    g = agreement_groups(correct, uni)
    assert list(g) == ["none_right", "only_x1", "only_x2", "all_right"]
    assert g["none_right"] == {"n": 2, "fraction": 0.4, "accuracy": 0.5}
    assert g["only_x2"]["accuracy"] == 0.0 and g["all_right"]["accuracy"] == 1.0
    assert sum(v["n"] for v in g.values()) == 5


def test_agreement_groups_partition_with_three_modalities():
    rng = np.random.default_rng(0)
    uni = {m: torch.as_tensor(rng.random(50) < 0.5) for m in ("a", "b", "c")}
    g = agreement_groups(torch.ones(50, dtype=torch.bool), uni)
    assert "some_right" in g and sum(v["n"] for v in g.values()) == 50


def test_regression_metrics_against_references():
    from scipy.stats import pearsonr
    from sklearn.metrics import f1_score

    from interplay.metrics import regression_metrics

    rng = np.random.default_rng(0)
    target = np.round(rng.uniform(-3, 3, 300) * 3) / 3
    target[:20] = 0.0
    pred = target + rng.normal(0, 1, 300)
    m = regression_metrics(torch.tensor(pred), torch.tensor(target))
    assert m["mae"] == pytest.approx(np.abs(pred - target).mean())
    assert m["corr"] == pytest.approx(pearsonr(pred, target)[0])
    assert m["acc7"] == pytest.approx((np.round(np.clip(pred, -3, 3)) == np.round(np.clip(target, -3, 3))).mean())
    nz = target != 0
    assert m["acc2"] == pytest.approx(((pred[nz] > 0) == (target[nz] > 0)).mean()) == m["accuracy"]
    assert m["f1"] == pytest.approx(f1_score(target[nz] > 0, pred[nz] > 0, average="weighted"))
    assert m["acc2_has0"] == pytest.approx(((pred >= 0) == (target >= 0)).mean())
    assert m["f1_has0"] == pytest.approx(f1_score(target >= 0, pred >= 0, average="weighted"))


def test_auroc_against_sklearn():
    from sklearn.metrics import roc_auc_score

    from interplay.metrics import auroc

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)  # ties included
    assert auroc(torch.tensor(s), torch.tensor(y)) == pytest.approx(roc_auc_score(y, s))
    assert auroc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == 0.75
    assert math.isnan(auroc(torch.tensor([0.2]), torch.tensor([1])))


def test_auroc_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(5):
        scores = rng.integers(0, 6, 300).astype(float)  # many ties
        labels = rng.random(300) < 0.3
        assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    scores = rng.normal(size=500)
    labels = rng.random(500) < scores.clip(0, 1)
    assert auroc(torch.tensor(scores), torch.tensor(labels)) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auroc_edge_cases() -> None:
    assert auroc([0.1, 0.2, 0.9], [0, 0, 1]) == 1.0
    assert auroc([0.9, 0.2, 0.1], [1, 0, 0]) == 1.0
    assert auroc([0.9, 0.2, 0.1], [0, 1, 1]) == 0.0
    assert auroc([1.0, 1.0], [0, 1]) == 0.5
    assert math.isnan(auroc([1.0, 2.0], [1, 1]))
    with pytest.raises(DataError):
        auroc([1.0, 2.0], [1])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=60))
def test_average_ranks_equal_scipy_rankdata(values):
    from scipy.stats import rankdata

    from interplay.metrics import average_ranks

    x = np.asarray(values, dtype=float)
    np.testing.assert_array_equal(average_ranks(x), rankdata(x))


# ------------------------------------------------------------------ anomaly metrics: AUPRC and best F1
from sklearn.metrics import average_precision_score, precision_recall_curve  # noqa: E402

from interplay.metrics import auprc, best_f1, f1_at  # noqa: E402


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=2, max_size=50), st.booleans())
def test_auprc_and_best_f1_match_sklearn(pairs, continuous):
    rng = np.random.default_rng(len(pairs))
    scores = np.array([s + (rng.normal() if continuous else 0.0) for s, _ in pairs])  # ties when discrete
    labels = np.array([int(y) for _, y in pairs])
    if labels.sum() == 0:
        assert math.isnan(auprc(scores, labels)) and math.isnan(best_f1(scores, labels)[0])
        return
    assert auprc(scores, labels) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    p, r, _ = precision_recall_curve(labels, scores)
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0.0)
    best, threshold = best_f1(scores, labels)
    assert best == pytest.approx(f1.max(), abs=1e-12)
    assert f1_at(scores, labels, threshold) == pytest.approx(f1_score(labels, scores >= threshold), abs=1e-12)
    assert f1_at(torch.tensor(scores), torch.tensor(labels), threshold) == pytest.approx(best, abs=1e-12)


def test_auprc_and_f1_exact_values():
    scores, labels = [0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]
    assert auprc(scores, labels) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert best_f1(scores, labels) == pytest.approx((0.8, 0.7))
    assert f1_at(scores, labels, 2.0) == 0.0  # nothing called positive
    with pytest.raises(DataError, match="differ in length"):
        auprc([0.1, 0.2], [1])


def test_fit_temperature_recovers_the_scale_of_overconfident_logits() -> None:
    """Labels drawn from softmax(z); the logits 3 z are over-confident by T = 3, which the search finds (the NLL
    at the found T is the minimum over a naive grid too); no samples: T = 1."""
    from interplay.metrics import fit_temperature

    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(z, -1), 1, generator=g).squeeze(1)
    t = fit_temperature(3 * z, y)
    assert abs(t - 3.0) < 0.1
    grid = torch.linspace(1.0, 5.0, 401, dtype=torch.float64)
    nll = [float(torch.nn.functional.cross_entropy(3 * z / s, y)) for s in grid]
    assert float(torch.nn.functional.cross_entropy(3 * z / t, y)) <= min(nll) + 1e-9
    assert fit_temperature(z[:0], y[:0]) == 1.0
