"""Ground-truth PID of pid-xor's latent distribution, and the cluster estimator checked end to end against it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from interplay.data import pid_xor
from interplay.data.groundtruth import LATENT_STATES, mix_weighted_pid, pid_xor_ground_truth, pid_xor_latent_pmf
from interplay.errors import ConfigError
from interplay.pid.cluster import cluster_pid_dataset

ATOMS = ("redundancy", "unique1", "unique2", "synergy")
PURE = {
    "synergistic=1": "synergy",
    "redundant=1": "redundancy",
    "unique1=1": "unique1",
    "unique2=1": "unique2",
}


def atoms(result) -> dict[str, float]:
    return {a: getattr(result, a) for a in ATOMS}


@pytest.mark.parametrize("mix,dominant", PURE.items())
def test_pure_mixes_are_the_canonical_vectors(mix: str, dominant: str) -> None:
    got = atoms(pid_xor_ground_truth(mix))
    for a in ATOMS:
        assert got[a] == pytest.approx(1.0 if a == dominant else 0.0, abs=1e-8)


def test_latent_pmf_shape_marginals_and_synergy_bits() -> None:
    P = pid_xor_latent_pmf("unique1=.25,unique2=.25,redundant=.25,synergistic=.25")
    assert P.shape == (len(LATENT_STATES), len(LATENT_STATES), 2)
    assert P.sum() == pytest.approx(1.0) and (P >= 0).all()
    np.testing.assert_allclose(P.sum((0, 1)), [0.5, 0.5])
    # synergy cells obey b2 = y xor b1
    s_minus, s_plus = LATENT_STATES.index("synergy:-"), LATENT_STATES.index("synergy:+")
    assert P[s_minus, s_minus, 0] == pytest.approx(0.25 / 4) and P[s_minus, s_minus, 1] == 0
    assert P[s_minus, s_plus, 1] == pytest.approx(0.25 / 4) and P[s_minus, s_plus, 0] == 0
    # x2 is silent exactly for the unique1 source
    assert P[:, LATENT_STATES.index("none"), :].sum() == pytest.approx(0.25)


def test_two_source_mixture_is_additive_but_four_sources_are_not() -> None:
    for mix in ("redundant=0.9,synergistic=0.1", "unique1=.5,redundant=.3,synergistic=.2"):
        got = atoms(pid_xor_ground_truth(mix))
        want = mix_weighted_pid(mix)
        for a in ATOMS:
            assert got[a] == pytest.approx(want[a], abs=1e-7), (mix, a)
    # BROJA couples unique1 and unique2 latents: the equal four-way mix is half redundant, half synergistic
    got = atoms(pid_xor_ground_truth("unique1=.25,unique2=.25,redundant=.25,synergistic=.25"))
    np.testing.assert_allclose([got[a] for a in ATOMS], [0.5, 0.0, 0.0, 0.5], atol=1e-7)


def test_more_modalities_pairwise() -> None:
    # with three modalities any pair's view of the synergistic source is independent of y
    r = pid_xor_ground_truth("synergistic=1", modalities=3, pair=(0, 2))
    assert r.i_x1x2_y == pytest.approx(0.0, abs=1e-12)
    r = pid_xor_ground_truth("unique3=1", modalities=3, pair=(1, 2))
    assert r.unique2 == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("kwargs", [{"pair": (0, 0)}, {"pair": (0, 2)}, {"modalities": 1}])
def test_bad_pairs(kwargs) -> None:
    with pytest.raises(ConfigError):
        pid_xor_latent_pmf("redundant=1", **kwargs)


def test_unknown_source() -> None:
    with pytest.raises(ConfigError, match="unknown source"):
        pid_xor_ground_truth("unique3=1")


@pytest.mark.parametrize("mix,dominant", PURE.items())
def test_cluster_estimator_end_to_end_against_latent_truth(mix: str, dominant: str) -> None:
    """Stated tolerance (N = 2000, k = 10 auto, default settings, 20 label shuffles, fixed seed): the dominant
    atom is the truth's and every bias-corrected atom is within 0.25 bits of the latent truth. Measured (seeds
    0-2): S 0.86-0.89 (truth 1), R 0.86 with U1 0.10-0.12 (truth 1 / 0), U1 0.85-0.89, U2 0.99-1.00."""
    splits = pid_xor(seed=0, n_train=1000, n_test=1000, mix=mix)
    truth = atoms(pid_xor_ground_truth(splits.info.extra["mix"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto k must not warn
        est = cluster_pid_dataset([splits.train, splits.val, splits.test], permutations=20, bootstrap=0, seed=0)
    corrected = est.corrected
    assert max(corrected, key=corrected.get) == dominant
    for a in ATOMS:
        assert abs(corrected[a] - truth[a]) <= 0.25, (a, corrected, truth)
    # the estimate approaches the latent truth from below
    assert est.plugin.i_x1x2_y <= 1.0 + 1e-9
