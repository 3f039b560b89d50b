"""The dataset-level ``cluster`` PID estimator: k-means, pmf, bias correction, nulls, intervals, behaviour."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from interplay.config import ModelConfig
from interplay.data import pid_xor
from interplay.errors import ConfigError, DataError
from interplay.models import build_model
from interplay.pid import broja, broja_batch
from interplay.pid.cluster import (
    _mi12_bits,
    auto_k,
    cluster_pid,
    cluster_pid_dataset,
    embeddings_from,
    empirical_pmf,
    kmeans,
)

ATOMS = ("redundancy", "unique1", "unique2", "synergy")


def blobs(n: int = 600, k: int = 4, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 8, size=(k, d))
    labels = rng.integers(0, k, n)
    return centers[labels] + rng.normal(size=(n, d)), labels


def test_kmeans_recovers_blobs_and_matches_sklearn_inertia() -> None:
    from sklearn.cluster import KMeans

    x, labels = blobs()
    res = kmeans(x, 4, seed=0)
    # every found cluster is pure
    for c in range(4):
        assert len(np.unique(labels[res.labels == c])) == 1
    ref = KMeans(4, n_init=4, random_state=0).fit(x)
    assert res.inertia == pytest.approx(ref.inertia_, rel=1e-6)
    again = kmeans(x, 4, seed=0)
    np.testing.assert_array_equal(res.labels, again.labels)


def test_kmeans_handles_duplicates_and_bad_k() -> None:
    x = np.repeat(np.arange(3.0)[:, None], 5, 0)  # 3 distinct points, 15 rows
    res = kmeans(x, 3, seed=1)
    assert len(np.unique(res.labels)) == 3 and res.inertia == pytest.approx(0.0)
    with pytest.raises(ConfigError):
        kmeans(x, 0)
    with pytest.raises(ConfigError):
        kmeans(x, 16)


def test_auto_k_keeps_cells_populated() -> None:
    assert auto_k(2000, 2) == 10
    assert auto_k(6000, 2) == 17
    assert auto_k(100_000, 2) == 20  # capped
    assert auto_k(30, 10) == 2  # floor
    for n, c in ((500, 2), (3000, 2), (5000, 5)):
        k = auto_k(n, c)
        assert k * k * c <= n / 10 or k == 2


def test_empirical_pmf_counts() -> None:
    c1, c2, y = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), np.array([0, 1, 1, 1])
    P = empirical_pmf(c1, c2, y, (2, 2, 2))
    assert P.sum() == pytest.approx(1.0)
    assert P[1, 1, 1] == pytest.approx(0.5) and P[0, 0, 0] == pytest.approx(0.25)
    Pw = empirical_pmf(c1, c2, y, (2, 2, 2), weights=np.array([2.0, 0, 1, 1]))
    assert Pw[0, 0, 0] == pytest.approx(0.5)


def test_independent_data_bias_is_reported_and_corrected() -> None:
    """The spec's example: X1, X2, Y independent, K = 20, |Y| = 2, N = 3000 -> plug-in S about 0.1 bits."""
    rng = np.random.default_rng(0)
    n = 3000
    x1, x2, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), rng.integers(0, 2, n)
    with pytest.warns(UserWarning, match="cells"):
        res = cluster_pid(x1, x2, y, k=20, permutations=10, bootstrap=5, seed=0)
    assert 0.06 < res.plugin.synergy < 0.15
    assert res.null_mean["synergy"] == pytest.approx(res.plugin.synergy, abs=0.03)
    for a in ATOMS:
        assert abs(res.corrected[a]) < 0.03, (a, res.corrected)
    assert res.p_value["synergy"] > 0.01 and res.p_synergy_conditional > 0.01
    assert res.warnings and "k <= 12" in res.warnings[0]
    s = res.settings
    assert (s["k1"], s["k2"], s["n"], s["num_classes"], s["permutations"], s["bootstrap"]) == (20, 20, n, 2, 10, 5)
    assert s["k_chosen"] == "user" and s["kmeans_seeds"] == [0, 1]


def test_conditional_shuffle_keeps_delta_p_so_only_synergy_changes() -> None:
    """Shuffling c2 within each class keeps both pair tables: R, U1, U2 and I* are unchanged (checked with the
    solver), which is what lets the conditional null skip the solve."""
    rng = np.random.default_rng(3)
    n, k = 800, 4
    c1, c2, y = rng.integers(0, k, n), rng.integers(0, k, n), rng.integers(0, 2, n)
    y = np.where(rng.random(n) < 0.5, (c1 + c2) % 2, y)  # some synergy
    base = broja(empirical_pmf(c1, c2, y, (k, k, 2)))
    pmfs = []
    for _ in range(3):
        c2s = c2.copy()
        for cls in (0, 1):
            idx = np.flatnonzero(y == cls)
            c2s[idx] = c2[rng.permutation(idx)]
        pmfs.append(empirical_pmf(c1, c2s, y, (k, k, 2)))
    solved = broja_batch(np.stack(pmfs))
    i_star = base.i_x1x2_y - base.synergy
    np.testing.assert_allclose(solved.redundancy, base.redundancy, atol=1e-7)
    np.testing.assert_allclose(solved.unique1, base.unique1, atol=1e-7)
    np.testing.assert_allclose(solved.unique2, base.unique2, atol=1e-7)
    np.testing.assert_allclose(solved.synergy, np.maximum(_mi12_bits(np.stack(pmfs)) - i_star, 0), atol=1e-7)


@pytest.mark.parametrize("mix,dominant", [("synergistic=1", "synergy"), ("redundant=1", "redundancy"),
                                          ("unique1=1", "unique1"), ("unique2=1", "unique2")])
def test_pid_xor_pure_mixes_are_measured_mostly_right(mix: str, dominant: str) -> None:
    """Default settings (raw standardised features, auto k = 10, N = 2000). Measured dominant share of the
    information (seeds 0-2): S 0.96, R 0.86-0.87 (U1 0.10-0.12), U1 0.97, U2 0.99-1.00."""
    splits = pid_xor(seed=0, n_train=1000, n_test=1000, mix=mix)
    res = cluster_pid_dataset([splits.train, splits.val, splits.test], permutations=20, bootstrap=20, seed=0)
    c = res.corrected
    total = sum(max(v, 0.0) for v in c.values())
    assert max(c, key=c.get) == dominant
    assert c[dominant] >= 0.6 and c[dominant] >= 0.75 * total, c
    assert res.ci_low[dominant] <= c[dominant] <= res.ci_high[dominant]
    assert res.ci_low[dominant] > 0.3
    assert res.p_value[dominant] <= 1 / 21 + 1e-12  # above every null draw
    assert res.settings["modalities"] == ["x1", "x2"] and res.settings["n"] == 2000


def test_synergy_conditional_null_separates_xor_from_redundancy() -> None:
    syn = pid_xor(seed=1, n_train=600, n_test=600, mix="synergistic=1")
    red = pid_xor(seed=1, n_train=600, n_test=600, mix="redundant=1")
    r_syn = cluster_pid_dataset(syn.test, permutations=20, bootstrap=0, seed=1)
    r_red = cluster_pid_dataset(red.test, permutations=20, bootstrap=0, seed=1)
    assert r_syn.p_synergy_conditional <= 1 / 21 + 1e-12
    assert r_red.p_synergy_conditional > 0.2


def test_summary_and_rows_are_complete() -> None:
    splits = pid_xor(seed=0, n_train=300, n_test=300, mix="redundant=1")
    res = cluster_pid_dataset(splits.test, k=3, permutations=5, bootstrap=5)
    summary = res.summary()
    assert set(summary["atoms"]) == set(ATOMS) and summary["units"] == "bits"
    assert summary["settings"]["k1"] == 3 and summary["settings"]["splits"] == ["pid-xor/test"]
    headers, rows = res.rows(truth={"redundancy": 1.0})
    assert headers[-1] == "truth (latent)" and len(rows) == 7
    assert len(res.null_draws["synergy"]) == 5 and len(res.boot_draws["synergy"]) == 5
    assert res.labels1.shape == (300,)


def test_no_nulls_and_no_bootstrap() -> None:
    x, labels = blobs(200, 3, 2)
    res = cluster_pid(x, x[:, ::-1], labels % 2, k=3, permutations=0, bootstrap=0)
    assert res.null_mean == {} and res.ci_low == {}
    assert res.corrected["redundancy"] == pytest.approx(res.plugin.redundancy)


def test_more_than_two_modalities_needs_a_pair() -> None:
    splits = pid_xor(seed=0, n_train=200, n_test=200, mix="unique3=1", modalities=3)
    with pytest.raises(DataError, match="name the pair"):
        cluster_pid_dataset(splits.test, permutations=0, bootstrap=0)
    res = cluster_pid_dataset(splits.test, modalities=("x1", "x3"), k=3, permutations=0, bootstrap=0)
    assert res.settings["modalities"] == ["x1", "x3"] and res.plugin.unique2 > 0.3
    with pytest.raises(DataError, match="no modality"):
        cluster_pid_dataset(splits.test, modalities=("x1", "x9"))


@pytest.mark.parametrize("bad,match", [
    (dict(y=np.zeros(5, dtype=int)), "same number"),
    (dict(x1=np.full((10, 2), np.nan)), "NaN"),
    (dict(y=np.linspace(0, 1, 10)), "integer class labels"),
    (dict(y=-np.ones(10, dtype=int)), ">= 0"),
])
def test_bad_inputs(bad, match) -> None:
    args = dict(x1=np.ones((10, 2)), x2=np.ones((10, 2)), y=np.zeros(10, dtype=int))
    args.update(bad)
    with pytest.raises(DataError, match=match):
        cluster_pid(args["x1"], args["x2"], args["y"], k=2, permutations=0, bootstrap=0)


def test_bad_settings() -> None:
    x = np.random.default_rng(0).normal(size=(20, 2))
    y = np.arange(20) % 2
    with pytest.raises(ConfigError):
        cluster_pid(x, x, y, k=0)
    with pytest.raises(ConfigError):
        cluster_pid(x, x, y, k=2, permutations=-1)
    with pytest.raises(ConfigError):
        cluster_pid(x, x, y, k=2, ci_level=1.5)


def test_embeddings_from_model_encoders() -> None:
    splits = pid_xor(seed=0, n_train=100, n_test=64, mix="redundant=1")
    model = build_model(ModelConfig(encoder_hidden=[16, 8], fusion_hidden=[8]), splits.info)
    model.train()
    emb = embeddings_from(model, splits.test, batch_size=20)
    assert set(emb) == {"x1", "x2"} and emb["x1"].shape == (64, 8)
    assert not any(e.requires_grad for e in emb.values())  # computed without autograd
    assert model.training  # mode restored
    with torch.no_grad():
        model.eval()
        direct = model.encode(splits.test.inputs)
    torch.testing.assert_close(emb["x2"], direct["x2"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cluster_pid_dataset(splits.test, embeddings=emb, k=3, permutations=0, bootstrap=0)
    assert res.settings["input"] == "embeddings" and res.settings["dims"] == [8, 8]
    with pytest.raises(ConfigError, match="encode"):
        embeddings_from(torch.nn.Linear(2, 2), splits.test)


def test_bootstrap_correction_follows_the_tables_own_bias() -> None:
    """``correction="bootstrap"`` subtracts Efron's estimate ``mean(boot) - plug-in``: about the shuffle mean on an
    information-free table, far below it on a nearly deterministic one (where the shuffle over-corrects)."""
    rng = np.random.default_rng(0)
    n = 3000
    x1, x2, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), rng.integers(0, 2, n)
    with pytest.warns(UserWarning, match="cells"):
        res = cluster_pid(x1, x2, y, k=20, permutations=20, bootstrap=40, seed=0, correction="bootstrap")
    for a in ATOMS:
        assert res.bias[a] == pytest.approx(res.boot_draws[a].mean() - getattr(res.plugin, a))
        assert res.corrected[a] == pytest.approx(getattr(res.plugin, a) - res.bias[a])
    assert res.bias["synergy"] > 0.5 * res.null_mean["synergy"] > 0.03  # independent: most of the plug-in bias
    assert res.settings["correction"] == "bootstrap"
    # parity of two 10-valued cells: the label is a function of the cells (1 bit of synergy), the plug-in is nearly
    # unbiased, while the shuffle mean is the bias of 200 information-free cells
    c1, c2 = rng.integers(0, 10, n), rng.integers(0, 10, n)
    parity = cluster_pid(c1[:, None] + 0.01 * rng.normal(size=(n, 1)), c2[:, None] + 0.01 * rng.normal(size=(n, 1)),
                         (c1 + c2) % 2, k=10, permutations=20, bootstrap=40, seed=0, correction="bootstrap")
    assert parity.null_mean["synergy"] > 0.015 and abs(parity.bias["synergy"]) < 0.005
    assert parity.corrected["synergy"] == pytest.approx(1.0, abs=0.01)
    assert parity.plugin.synergy - parity.null_mean["synergy"] < 0.99  # what the shuffle correction would report
    with pytest.raises(ConfigError, match="needs bootstrap draws"):
        cluster_pid(x1, x2, y, k=2, bootstrap=0, correction="bootstrap")
    with pytest.raises(ConfigError, match="correction"):
        cluster_pid(x1, x2, y, k=2, correction="jackknife")
