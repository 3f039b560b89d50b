"""The full-covariance Gaussian mixture (``interplay.pid.clustering``): against scikit-learn's EM, on the elongated
clouds k-means cuts across, and as the ``gmm`` discretiser of the cluster PID on pid-xor's known structure."""

from __future__ import annotations

import numpy as np
import pytest

from interplay.data import pid_xor
from interplay.data.groundtruth import pid_xor_ground_truth
from interplay.errors import ConfigError
from interplay.pid.cluster import cluster_pid_dataset, kmeans
from interplay.pid.clustering import assign_components, gaussian_mixture


def _agreement(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Fraction of points on which two labelings agree under the best one-to-one matching of their labels."""
    from itertools import permutations

    return max(float(np.mean(np.asarray(perm)[a] == b)) for perm in permutations(range(k)))


def _parallel_clouds(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three long thin parallel clouds (sd 6 along x, 0.3 along y, 2 apart in y): k-means cuts them across."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n)
    x = np.stack([rng.normal(0, 6.0, n), 2.0 * truth + rng.normal(0, 0.3, n)], 1)
    return x, truth


def test_matches_scikit_learn_em() -> None:
    sk = pytest.importorskip("sklearn.mixture")
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 1.0], [0.0, 6.0, -2.0]])
    covs = [np.diag([1.0, 0.2, 0.5]), np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 0.3]]), 0.5 * np.eye(3)]
    truth = rng.integers(0, 3, 900)
    x = np.stack([rng.multivariate_normal(centres[t], covs[t]) for t in truth])
    ours = gaussian_mixture(x, 3, seed=0, reg=0.0, tol=1e-10, max_iter=500)
    ref = sk.GaussianMixture(3, covariance_type="full", reg_covar=0.0, tol=1e-10, max_iter=500, n_init=3,
                             random_state=0).fit(x)
    assert _agreement(ours.labels, ref.predict(x), 3) == 1.0
    assert ours.log_likelihood == pytest.approx(ref.score(x), abs=1e-6)
    assert ours.weights.sum() == pytest.approx(1.0)
    assert np.sort(ours.weights) == pytest.approx(np.sort(ref.weights_), abs=1e-6)


def test_follows_elongated_clouds_that_kmeans_cuts() -> None:
    x, truth = _parallel_clouds()
    mixture = gaussian_mixture(x, 3, seed=0)
    lloyd = kmeans(x, 3, seed=0)
    assert _agreement(mixture.labels, truth, 3) > 0.99
    assert _agreement(lloyd.labels, truth, 3) < 0.8


def test_assigning_new_points_uses_the_fitted_components() -> None:
    """``assign_components`` reproduces the fit's own labels on its points and labels fresh points of the same
    clouds like their cloud."""
    x, truth = _parallel_clouds(600, seed=0)
    fit = gaussian_mixture(x, 3, seed=0)
    assert np.array_equal(assign_components(fit, x), fit.labels)
    x_new, truth_new = _parallel_clouds(300, seed=1)
    mapping = {int(t): int(np.bincount(fit.labels[truth == t]).argmax()) for t in range(3)}
    assert np.mean(assign_components(fit, x_new) == np.array([mapping[int(t)] for t in truth_new])) > 0.99
    assert fit.covariances.shape == (3, 2, 2)
    with pytest.raises(ConfigError, match="features"):
        assign_components(fit, np.zeros((4, 3)))


def test_deterministic_for_a_seed_and_checks_its_arguments() -> None:
    x, _ = _parallel_clouds(200)
    a, b = gaussian_mixture(x, 3, seed=5), gaussian_mixture(x, 3, seed=5)
    assert np.array_equal(a.labels, b.labels) and a.log_likelihood == b.log_likelihood
    assert a.labels.min() >= 0 and a.labels.max() < 3 and a.means.shape == (3, 2)
    for kwargs, field in (({"k": 0}, "k must lie"), ({"k": 201}, "k must lie"), ({"k": 2, "n_init": 0}, "n_init"),
                          ({"k": 2, "reg": -1.0}, "reg")):
        with pytest.raises(ConfigError, match=field):
            gaussian_mixture(x, **kwargs)


def test_more_components_than_points_per_dimension_stay_finite() -> None:
    """The relative ridge keeps a component with fewer points than dimensions invertible."""
    x = np.random.default_rng(0).normal(size=(30, 20))
    fit = gaussian_mixture(x, 4, seed=0)
    assert np.isfinite(fit.log_likelihood) and set(np.unique(fit.labels)) <= set(range(4))


def test_gmm_discretiser_recovers_pid_xor_structure() -> None:
    """On pid-xor's redundant/synergistic mix the gmm discretisation recovers the generator's PID (R = S = 0.5 bits)
    within the bootstrap interval, where k-means loses about 0.1 bits of redundancy (docs/analysis.md)."""
    mix = "redundant=0.5,synergistic=0.5"
    splits = pid_xor(seed=0, mix=mix, n_train=1500, n_test=1500)
    truth = pid_xor_ground_truth(mix)
    gmm = cluster_pid_dataset(splits, k=4, clusterer="gmm", permutations=20, bootstrap=50, n_init=2)
    lloyd = cluster_pid_dataset(splits, k=4, clusterer="kmeans", permutations=20, bootstrap=50, n_init=2)
    assert gmm.settings["clusterer"] == "gmm" and "log_likelihood" in gmm.settings["gmm"]
    for atom in ("redundancy", "synergy"):
        assert gmm.ci_low[atom] <= getattr(truth, atom) <= gmm.ci_high[atom], (atom, gmm.corrected[atom])
    assert gmm.corrected["redundancy"] - lloyd.corrected["redundancy"] > 0.05
