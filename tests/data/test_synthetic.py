import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from interplay.data import DATASETS, MultimodalDataset, gaussian_split, parse_mix, pid_xor
from interplay.data.synthetic import pid_xor_sources
from interplay.errors import ConfigError, DataError

SOURCES = pid_xor_sources(2)


def test_pid_xor_shapes_splits_and_sources():
    s = pid_xor(seed=0, n_train=500, n_test=300, mix="unique1=1,unique2=1,redundant=1,synergistic=1")
    assert (len(s.train), len(s.val), len(s.test)) == (450, 50, 300)
    assert s.info.modalities == {"x1": (32,), "x2": (32,)} and s.info.num_classes == 2
    assert s.info.interactions == SOURCES
    counts = torch.bincount(s.test.meta["interaction"], minlength=4).float() / 300
    assert torch.all((counts > 0.15) & (counts < 0.35))
    assert s.info.block_map["x1"] == {"unique": list(range(0, 6)), "redundant": list(range(6, 12)),
                                      "synergy": list(range(12, 18))}
    # standardised with training statistics
    assert torch.allclose(s.train.inputs["x1"].mean(0), torch.zeros(32), atol=1e-5)
    assert torch.allclose(s.train.inputs["x1"].std(0), torch.ones(32), atol=1e-4)


def test_pid_xor_is_seeded():
    a, b, c = (pid_xor(seed=k, n_train=100, n_test=100) for k in (3, 3, 4))
    assert torch.equal(a.test.inputs["x2"], b.test.inputs["x2"])
    assert not torch.equal(a.test.inputs["x2"], c.test.inputs["x2"])


def _sign_of_block(s, m, block):
    idx = s.info.block_map[m][block]
    return s.test.inputs[m][:, idx]


def test_source_blocks_carry_the_label_as_specified():
    """Unique/redundant blocks determine y via a linear read-out; the synergy blocks only jointly (XOR)."""
    s = pid_xor(seed=1, n_train=200, n_test=4000, mix="unique1=1,redundant=1,synergistic=1")
    y = s.test.target.numpy()
    src = s.test.meta["interaction"].numpy()

    def best_linear_acc(x, y):  # least-squares read-out, accuracy on the same samples
        xx = np.c_[x, np.ones(len(x))]
        w = np.linalg.lstsq(xx, 2.0 * y - 1, rcond=None)[0]
        return ((xx @ w > 0) == y).mean()

    u = src == SOURCES.index("unique1")
    assert best_linear_acc(_sign_of_block(s, "x1", "unique").numpy()[u], y[u]) > 0.97
    assert best_linear_acc(_sign_of_block(s, "x2", "unique").numpy()[u], y[u]) < 0.6
    r = src == SOURCES.index("redundant")
    for m in ("x1", "x2"):
        assert best_linear_acc(_sign_of_block(s, m, "redundant").numpy()[r], y[r]) > 0.97
    syn = src == SOURCES.index("synergistic")
    b1 = _sign_of_block(s, "x1", "synergy").numpy()[syn]
    b2 = _sign_of_block(s, "x2", "synergy").numpy()[syn]
    for x in (b1, b2):
        assert best_linear_acc(x, y[syn]) < 0.6  # either modality alone: chance
    # the latent bits are recoverable from each block; their XOR is the label
    bit1 = best_bit(b1)
    bit2 = best_bit(b2)
    agree = ((bit1 ^ bit2) == y[syn]).mean()
    assert max(agree, 1 - agree) > 0.9


def best_bit(x):
    """Sign of the first principal component: the latent bit up to a global flip."""
    x = x - x.mean(0)
    v = np.linalg.svd(x, full_matrices=False)[2][0]
    return (x @ v > 0).astype(int)


def test_three_modalities():
    s = pid_xor(seed=0, n_train=100, n_test=50, modalities=3, mix="unique3=1,synergistic=1")
    assert sorted(s.info.modalities) == ["x1", "x2", "x3"]
    assert s.info.interactions == ("unique1", "unique2", "unique3", "redundant", "synergistic")


@pytest.mark.parametrize("mix, message", [
    ("redundant=-1,synergistic=1", "non-negative"),
    ("redundant=0,synergistic=0", "at least one weight must be positive"),
    ("redundnt=1", "unknown source"),
    ("redundant", "NAME=WEIGHT"),
    ("redundant=abc", "must be a number"),
])
def test_bad_mix(mix, message):
    with pytest.raises(ConfigError, match=message):
        parse_mix(mix, SOURCES)


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.sampled_from(SOURCES), st.floats(0, 10), min_size=1))
def test_parse_mix_normalises(weights):
    if sum(weights.values()) <= 0:
        with pytest.raises(ConfigError):
            parse_mix(weights, SOURCES)
        return
    mix = parse_mix(weights, SOURCES)
    assert abs(sum(mix.values()) - 1) < 1e-9 and all(v > 0 for v in mix.values())


@pytest.mark.parametrize("preset", ["sim1", "sim2", "sim3"])
def test_gaussian_split_presets(preset):
    s = gaussian_split(seed=0, n_train=300, n_test=200, preset=preset)
    assert s.info.modalities == {"x1": (32,), "x2": (32,)}
    assert 0.4 < float(s.train.target.float().mean()) < 0.6
    assert abs(s.info.extra["bayes_accuracy"] - (1 - np.arctan(0.3) / np.pi)) < 1e-12


def test_gaussian_split_moves_information_between_views():
    """Least-squares accuracy from each view alone follows the presets."""
    def view_acc(preset, view):
        s = gaussian_split(seed=0, n_train=3000, n_test=3000, preset=preset)
        x, y = s.train.inputs[view].numpy(), s.train.target.numpy()
        w = np.linalg.lstsq(np.c_[x, np.ones(len(x))], 2.0 * y - 1, rcond=None)[0]
        xt, yt = s.test.inputs[view].numpy(), s.test.target.numpy()
        return ((np.c_[xt, np.ones(len(xt))] @ w > 0) == yt).mean()

    assert view_acc("sim1", "x1") > view_acc("sim1", "x2") + 0.05
    assert view_acc("sim2", "x2") > view_acc("sim2", "x1") + 0.05


def test_gaussian_split_bad_preset():
    with pytest.raises(ConfigError, match="data.preset: unknown preset 'sim9'"):
        gaussian_split(preset="sim9")


def test_nan_inputs_rejected():
    x = torch.zeros(4, 3)
    x[2, 1] = float("nan")
    with pytest.raises(DataError, match="modality 'a' contains NaN or inf \\(first at sample 2\\)"):
        MultimodalDataset({"a": x, "b": torch.zeros(4, 3)}, torch.zeros(4, dtype=torch.long), name="toy")


def test_registry_has_the_synthetic_sets():
    assert {"pid-xor", "gaussian-split", "mfeat"} <= set(DATASETS.names())
