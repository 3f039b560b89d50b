"""PID-repository parity: units (bits / nats) everywhere, its synthetic pickles, and its clustering protocol.

The PID repository (github.com/pliang279/PID, Liang et al., NeurIPS 2023) clusters each split with
``normalize`` (rows to unit norm) -> ``PCA(n_components=2)`` -> ``KMeans(n_clusters=20)``, counts the joint
pmf of the cluster labels and the label, solves the BROJA program with CVXPY and reports nats. The naive
re-implementation below follows those steps with scikit-learn and CVXPY (our own code, written from the
description) and is compared with Interplay's ``cluster`` estimator on the same clustered data.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from interplay.data import pmfs
from interplay.data.pid_pickle import pid_synthetic, read_pid_pickle
from interplay.errors import DataError
from interplay.estimators import EstimatorSettings, information_report
from interplay.pid import broja, broja_batch
from interplay.pid.cluster import ClusterSettings, _prepare, cluster_pid, estimate_cluster


def run_cli(args, capsys):
    """``interplay ARGS`` in-process: ``(exit code, stdout, stderr)``."""
    from interplay.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err

LN2 = math.log(2.0)
#: the repository's protocol as Interplay settings (docs/pid-estimators.md, "PID repository protocol")
PROTOCOL = dict(standardize=False, row_normalize=True, pca_dim=2, k=20, permutations=0, bootstrap=0, units="nats")


# --------------------------------------------------------------------------------------------- fixture
def pid_repo_dict(n: int = 1200, classes: int = 4, seed: int = 0, valid: str = "valid") -> dict:
    """A dict in the exact layout of ``DATA_<setting>.pickle`` (``synthetic/generate_data.py``): splits train /
    valid (or valid1, valid2) / test, each ``{"0": (N, 64) float64, "1": (N, 64) float64, "label": (N, 1) int64}``.
    The labels depend on a latent block seen by both modalities and on one seen by modality 0 only, projected by
    uniform random 32-column matrices as in the generator."""
    rng = np.random.default_rng(seed)
    z = {k: rng.normal(size=(n, 5)) * math.sqrt(1.5) for k in ("0", "1", "01")}
    proj = {k: rng.uniform(0, 1, size=(5, 32)) for k in z}
    m0 = np.concatenate([z["0"] @ proj["0"], z["01"] @ proj["01"]], 1)
    m1 = np.concatenate([z["1"] @ proj["1"], z["01"] @ proj["01"]], 1)
    score = z["01"].mean(1) + z["0"].mean(1)
    order = np.argsort(score)
    labels = np.empty(n, dtype=np.int64)
    labels[order] = np.arange(n) * classes // n
    perm = rng.permutation(n)
    cut = [int(0.7 * n), int(0.85 * n)]
    parts = np.split(perm, cut)
    names = ["train", valid, "test"] if valid == "valid" else ["train", "valid1", "test"]
    data = {}
    for name, idx in zip(names, parts):
        data[name] = {"0": m0[idx], "1": m1[idx], "label": labels[idx].reshape(-1, 1)}
    if valid != "valid":
        data["valid2"] = data["test"]
    return data


@pytest.fixture(scope="module")
def pickle_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pidrepo")
    with open(root / "DATA_mixture.pickle", "wb") as fh:
        pickle.dump(pid_repo_dict(), fh)  # as generate_data.py's save_data does (default protocol)
    return root


# --------------------------------------------------------------------------------------------- the naive protocol
def joint_distribution(x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Counts of the observed (x1, x2, y) values, each alphabet = the values that occur, divided by N (a loop)."""
    a1, a2, ay = ({v: i for i, v in enumerate(sorted(set(a.tolist())))} for a in (x1, x2, y))
    P = np.zeros((len(a1), len(a2), len(ay)))
    for u, v, w in zip(x1.tolist(), x2.tolist(), y.tolist()):
        P[a1[u], a2[v], ay[w]] += 1
    return P / P.sum()


def naive_q(P: np.ndarray) -> np.ndarray:
    """The repository's CVX program: per y a matrix Q_y >= 0 with the (x1, y) and (x2, y) marginals of P,
    minimising sum_y rel_entr(Q_y, Q(x1, x2) / |Y|); returns Q[x1, x2, y]."""
    import cvxpy as cp

    k1, k2, ny = P.shape
    Q = [cp.Variable((k1, k2), nonneg=True) for _ in range(ny)]
    total = sum(Q)
    cons = []
    for y in range(ny):
        cons += [cp.sum(Q[y], axis=1) == P[:, :, y].sum(1), cp.sum(Q[y], axis=0) == P[:, :, y].sum(0)]
    obj = sum(cp.sum(cp.rel_entr(Q[y], total / ny)) for y in range(ny))
    cp.Problem(cp.Minimize(obj), cons).solve(solver=cp.CLARABEL)
    return np.clip(np.stack([q.value for q in Q], axis=2), 0, None)


def mi_nats(P: np.ndarray, a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """I(A; B) in nats of the marginal of P on axes a + b, by a loop over cells."""
    keep = tuple(sorted(a + b))
    M = P.sum(axis=tuple(i for i in range(P.ndim) if i not in keep))
    pa = P.sum(axis=tuple(i for i in range(P.ndim) if i not in a))
    pb = P.sum(axis=tuple(i for i in range(P.ndim) if i not in b))
    total = 0.0
    for idx in np.ndindex(M.shape):
        if M[idx] > 0:
            ia = tuple(idx[keep.index(i)] for i in a)
            ib = tuple(idx[keep.index(i)] for i in b)
            total += M[idx] * math.log(M[idx] / (pa[ia] * pb[ib]))
    return total


def naive_protocol_pid(c1: np.ndarray, c2: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """R = I_Q(X1;Y) - I_Q(X1;Y|X2), U1 = I_Q(X1;Y|X2), U2 = I_Q(X2;Y|X1), S = I_P(X1,X2;Y) - I_Q(X1,X2;Y) (nats)."""
    P = joint_distribution(c1, c2, y)
    Q = naive_q(P)
    Q = Q / Q.sum()
    i12_q = mi_nats(Q, (0, 1), (2,))
    u1 = i12_q - mi_nats(Q, (1,), (2,))
    u2 = i12_q - mi_nats(Q, (0,), (2,))
    return {"redundancy": mi_nats(Q, (0,), (2,)) - u1, "unique1": u1, "unique2": u2,
            "synergy": mi_nats(P, (0, 1), (2,)) - i12_q}


def sklearn_protocol_labels(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import normalize

    z = PCA(n_components=2).fit_transform(normalize(np.nan_to_num(x)))
    return KMeans(n_clusters=k, random_state=seed, n_init=10).fit(z).labels_


# --------------------------------------------------------------------------------------------- units
def test_broja_units_nats_are_bits_times_ln2():
    for name in ("and", "w", "rdnunqxor"):
        P = pmfs.CANONICAL[name]()
        bits, nats = broja(P), broja(P, units="nats")
        assert nats.units == "nats" and bits.units == "bits"
        for key in ("redundancy", "unique1", "unique2", "synergy", "i_x1_y", "i_x2_y", "i_x1x2_y", "gap"):
            assert getattr(nats, key) == pytest.approx(getattr(bits, key) * LN2, abs=1e-15)
        assert nats.to_units("bits").synergy == pytest.approx(bits.synergy, abs=1e-15)
    batch = broja_batch(np.stack([pmfs.xor(), pmfs.rdn()]), units="nats")
    assert batch.units == "nats" and batch[0].units == "nats"
    assert np.allclose(batch.synergy, [LN2, 0.0]) and np.allclose(batch.redundancy, [0.0, LN2])
    with pytest.raises(ValueError, match="units"):
        broja(pmfs.xor(), units="bans")


def test_cluster_units():
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 2, n)
    x1, x2 = rng.normal(size=(n, 3)) + y[:, None], rng.normal(size=(n, 3)) + y[:, None]
    common = dict(k=4, permutations=12, bootstrap=12, seed=3)
    bits = cluster_pid(x1, x2, y, **common)
    nats = cluster_pid(x1, x2, y, **common, units="nats")
    assert nats.units == "nats" and nats.summary()["units"] == "nats" and bits.summary()["units"] == "bits"
    for a in ("redundancy", "unique1", "unique2", "synergy"):
        assert getattr(nats.plugin, a) == pytest.approx(getattr(bits.plugin, a) * LN2, abs=1e-12)
        for d in ("corrected", "null_mean", "null_std", "ci_low", "ci_high", "boot_std"):
            assert getattr(nats, d)[a] == pytest.approx(getattr(bits, d)[a] * LN2, abs=1e-12)
        assert nats.p_value[a] == bits.p_value[a]
        assert np.allclose(nats.null_draws[a], bits.null_draws[a] * LN2)
    assert nats.synergy_conditional_null_mean == pytest.approx(bits.synergy_conditional_null_mean * LN2)
    assert nats.p_synergy_conditional == bits.p_synergy_conditional


def test_information_report_units():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(500, 2))
    views = {"a": a, "b": a + rng.normal(size=(500, 2))}
    nats = information_report(views)
    bits = information_report(views, EstimatorSettings(units="bits"))
    assert bits.I == pytest.approx(nats.I / LN2) and bits.H["a"] == pytest.approx(nats.H["a"] / LN2)
    assert bits.settings["units"] == "bits"


def test_cli_pmf_units(tmp_path, capsys):
    path = tmp_path / "and.npy"
    np.save(path, pmfs.and_())
    code, out, err = run_cli(["pid", "--pmf", path, "--units", "nats", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert "nats" in out and "0.346574" in out  # S(AND) = 0.5 bits = ln(2) / 2 nats
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["units"] == "nats" and summary["synergy"] == pytest.approx(LN2 / 2)


def test_cli_cluster_units_and_truth(tmp_path, capsys):
    base = ["pid", "--data", "pid-xor", "--mix", "synergistic=1", "--n-train", "300", "--n-test", "300",
            "--estimator", "cluster", "--k", "4", "--permutations", "5", "--bootstrap", "0", "--quiet"]
    code, _, err = run_cli([*base, "--out", tmp_path / "b"], capsys)
    assert code == 0, err
    code, out, err = run_cli([*base, "--units", "nats", "--out", tmp_path / "n"], capsys)
    assert code == 0, err
    assert "; nats" in out
    b, n = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("b", "n"))
    assert n["units"] == "nats"
    assert n["atoms"]["synergy"]["plugin"] == pytest.approx(b["atoms"]["synergy"]["plugin"] * LN2)
    assert n["truth_latent"]["synergy"] == pytest.approx(LN2)


# --------------------------------------------------------------------------------------------- the pickle reader
def test_read_pid_pickle_exact_layout(pickle_dir):
    splits = read_pid_pickle(pickle_dir / "DATA_mixture.pickle")
    assert list(splits) == ["train", "valid", "test"]
    inputs, labels = splits["train"]
    assert sorted(inputs) == ["0", "1"] and inputs["0"].shape == (840, 64) and labels.shape == (840,)
    s = pid_synthetic(root=str(pickle_dir), setting="mixture")
    assert s.info.modalities == {"m0": (64,), "m1": (64,)} and s.info.num_classes == 4
    assert (len(s.train), len(s.val), len(s.test)) == (840, 180, 180)
    raw = pid_repo_dict()
    assert np.allclose(s.test.inputs["m1"].numpy(), raw["test"]["1"], atol=1e-5)  # float32 copy, not standardised
    assert s.test.target.tolist() == raw["test"]["label"].ravel().tolist()


def test_read_pid_pickle_valid1_valid2(tmp_path):
    with open(tmp_path / "DATA_synergy.pickle", "wb") as fh:
        pickle.dump(pid_repo_dict(n=200, valid="valid1"), fh)
    s = pid_synthetic(root=str(tmp_path), setting="synergy", n_train=50, seed=1)
    assert len(s.train) == 50 and s.info.extra["splits"]["val"] == "valid1"
    assert s.info.extra["other_splits"] == ["valid2"]
    assert len(pid_synthetic(root=str(tmp_path / "DATA_synergy.pickle"), val_split="valid2").val) == 30


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("corrupt, message", [
    (lambda d: d.pop("test"), "expected splits train, valid"),
    (lambda d: d["train"].pop("label"), "'label' missing"),
    (lambda d: d["valid"].pop("1"), "at least two modality arrays"),
    (lambda d: d["test"].__setitem__("0", d["test"]["0"][:5]), "has 5 samples"),
    (lambda d: d["test"].__setitem__("1", d["test"]["1"][:, :10]), "feature sizes"),
])
def test_malformed_pickles_one_line(tmp_path, corrupt, message):
    data = pid_repo_dict(n=200)
    corrupt(data)
    path = tmp_path / "DATA_x.pickle"
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError, match=message) as info:
        read_pid_pickle(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_code_in_a_pid_pickle_never_runs(tmp_path):
    marker = tmp_path / "ran"
    data = pid_repo_dict(n=200)
    data["train"]["extra"] = _Payload(marker)
    path = tmp_path / "DATA_evil.pickle"
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError, match="safe loader refuses"):
        read_pid_pickle(path)
    assert not marker.exists()
    with pytest.raises(DataError, match="file not found"):
        read_pid_pickle(tmp_path / "missing.pickle")


# --------------------------------------------------------------------------------------------- the protocol
def test_preprocessing_matches_sklearn():
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import normalize

    x = pid_repo_dict(n=300)["train"]["0"]
    ours = _prepare(x, standardize=False, pca_dim=2, row_normalize=True)
    ref = PCA(n_components=2).fit_transform(normalize(x))
    signs = np.sign((ours * ref).sum(0))  # principal axes are defined up to sign
    assert np.allclose(ours * signs, ref, atol=1e-10)


@pytest.mark.filterwarnings("ignore:K1\\*K2:UserWarning")
def test_protocol_pid_equals_naive_reimplementation_on_the_same_clusters(pickle_dir):
    """Interplay's cluster estimator with the protocol's settings, on the repository-format test split: its PID
    (nats) equals the naive protocol (counts loop, CVXPY, the repository's atom formulas) on Interplay's own
    cluster labels; and on scikit-learn's cluster labels (the protocol's k-means) fed as exact clusters."""
    splits = pid_synthetic(root=str(pickle_dir), setting="mixture")
    res = estimate_cluster(splits, ClusterSettings(split="test", **PROTOCOL))
    assert res.units == "nats" and res.settings["k1"] == 20 and res.settings["row_normalize"]
    y = splits.test.target.numpy()
    ref = naive_protocol_pid(res.labels1, res.labels2, y)
    for a, v in ref.items():
        assert getattr(res.plugin, a) == pytest.approx(v, abs=2e-5), a
        assert res.corrected[a] == getattr(res.plugin, a)  # no permutations: no correction, as in the protocol
    # the protocol's own k-means (scikit-learn), clusters handed over as one-hot points that k-means recovers exactly
    x = pid_repo_dict()["test"]
    c1, c2 = sklearn_protocol_labels(x["0"], 20), sklearn_protocol_labels(x["1"], 20)
    onehot = np.eye(20)
    same = cluster_pid(onehot[c1], onehot[c2], y, k=20, standardize=False, permutations=0, bootstrap=0,
                       units="nats")
    assert len({(a, b) for a, b in zip(c1, same.labels1)}) == 20  # the same partition
    ref = naive_protocol_pid(c1, c2, y)
    for a, v in ref.items():
        assert getattr(same.plugin, a) == pytest.approx(v, abs=2e-5), a


@pytest.mark.filterwarnings("ignore:K1\\*K2:UserWarning")
def test_documented_recipe_through_the_cli(pickle_dir, tmp_path, capsys):
    """The command of docs/pid-estimators.md ("PID repository protocol") gives the Python API's numbers."""
    code, out, err = run_cli(["pid", "--data", "pid-synthetic", "--data-root", pickle_dir / "DATA_mixture.pickle",
                              "--estimator", "cluster", "--split", "test", "--k", "20", "--pca-dim", "2",
                              "--permutations", "0", "--bootstrap", "0", "--units", "nats",
                              "--set", "estimator.standardize=false", "--set", "estimator.row_normalize=true",
                              "--quiet", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert "rows scaled to unit norm" in out and "PCA to 2 dims" in out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    splits = pid_synthetic(root=str(pickle_dir), setting="mixture")
    res = estimate_cluster(splits, ClusterSettings(split="test", **PROTOCOL))
    assert summary["units"] == "nats"
    for a in ("redundancy", "unique1", "unique2", "synergy"):
        assert summary["atoms"][a]["plugin"] == pytest.approx(getattr(res.plugin, a), abs=1e-12)
