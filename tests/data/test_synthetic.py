import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from interplay.data import DATASETS, MultimodalDataset, gaussian_split, parse_mix, pid_xor
from interplay.data.synthetic import check_pid_xor, pid_xor_sources
from interplay.errors import ConfigError, DataError

SOURCES = pid_xor_sources(2)


def test_pid_xor_shapes_splits_and_sources():
    s = pid_xor(seed=0, n_train=500, n_test=300, mix="unique1=.25,unique2=.25,redundant=.25,synergistic=.25")
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
    s = pid_xor(seed=1, n_train=200, n_test=4000, mix="unique1=.333,redundant=.333,synergistic=.333")
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
    s = pid_xor(seed=0, n_train=100, n_test=50, modalities=3, mix="unique3=0.5,synergistic=0.5")
    assert sorted(s.info.modalities) == ["x1", "x2", "x3"]
    assert s.info.interactions == ("unique1", "unique2", "unique3", "redundant", "synergistic")


@pytest.mark.parametrize("mix, message", [
    ("redundant=-1,synergistic=1", "non-negative"),
    ("redundant=0,synergistic=0", "at least one weight must be positive"),
    ("redundnt=1", "unknown source"),
    ("redundant", "NAME=WEIGHT"),
    ("redundant=abc", "must be a number"),
    ("redundant=inf", "finite"),
    ("redundant=0.9,synergistic=0.2", r"weights must sum to 1, got redundant=0.9, synergistic=0.2 summing to 1.1"),
    ("redundant=1,synergistic=1", "summing to 2"),
    ("redundant=0.33,synergistic=0.33,unique1=0.33", "summing to 0.99"),
])
def test_bad_mix(mix, message):
    with pytest.raises(ConfigError, match=message):
        parse_mix(mix, SOURCES)


def test_mix_must_sum_to_one_and_is_not_rescaled_silently():
    assert parse_mix("redundant=0.9,synergistic=0.1", SOURCES) == {"redundant": 0.9, "synergistic": 0.1}
    thirds = parse_mix("unique1=.333,redundant=.333,synergistic=.333", SOURCES)  # within the 0.001 tolerance
    assert thirds == pytest.approx({"unique1": 1 / 3, "redundant": 1 / 3, "synergistic": 1 / 3})
    with pytest.raises(ConfigError, match="summing to 2"):
        pid_xor(seed=0, n_train=20, n_test=10, mix="redundant=1,synergistic=1")


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.sampled_from(SOURCES), st.floats(0, 10), min_size=1))
def test_parse_mix_accepts_exactly_the_mixes_summing_to_one(weights):
    total = sum(weights.values())
    if total <= 0 or abs(total - 1) > 1e-3:
        with pytest.raises(ConfigError):
            parse_mix(weights, SOURCES)
        return
    mix = parse_mix(weights, SOURCES)
    assert abs(sum(mix.values()) - 1) < 1e-9 and all(v > 0 for v in mix.values())


@pytest.mark.parametrize("kwargs, message", [
    ({"n_train": 0}, "data.n_train: expected a positive number of samples, got 0"),
    ({"n_train": 3}, r"data.n_train: 3 samples are too few for the splits: 3 training and 0 validation"),
    ({"n_test": 0}, "data.n_test: expected a positive number of samples, got 0"),
    ({"mix": "redundant=1,nope=0"}, "unknown source"),
    ({"modalities": 1}, "data.modalities: need at least 2"),
    ({"noise": float("nan")}, "data.noise: expected a finite non-negative number"),
])
def test_pid_xor_validator_checks_values_without_drawing_data(kwargs, message):
    params = {"n_train": None, "n_test": None, "val_fraction": 0.1, "mix": "redundant=1", "modalities": 2,
              "dim": 32, "block_frac": 0.2, "latent": 4, "strength": 3.0, "noise": 1.0, **kwargs}
    with pytest.raises(ConfigError, match=message):
        check_pid_xor(**params)
    with pytest.raises(ConfigError, match=message):  # the builder runs the same checks
        pid_xor(seed=0, **params)


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


# ---------------------------------------------------------------------------- test-time shifts (data.shift)
from interplay.data.synthetic import parse_shift  # noqa: E402


def _same_split(a, b):
    return all(torch.equal(a.inputs[m], b.inputs[m]) for m in a.inputs) and torch.equal(a.target, b.target)


@pytest.mark.parametrize("builder, shift", [
    (pid_xor, "noise=1"), (pid_xor, "mix=synergistic=1"), (pid_xor, "corrupt=x1"),
    (pid_xor, "mix=unique2=1; noise=0.5; corrupt=x2"), (gaussian_split, "noise=2"), (gaussian_split, "corrupt=x2")])
def test_shift_changes_the_test_split_only(builder, shift):
    base, shifted = builder(seed=2, n_train=200, n_test=300), builder(seed=2, n_train=200, n_test=300, shift=shift)
    assert _same_split(base.train, shifted.train) and _same_split(base.val, shifted.val)
    assert not _same_split(base.test, shifted.test)
    assert shifted.info.extra["shift"] == parse_shift(shift, ["x1", "x2"], SOURCES)
    again = builder(seed=2, n_train=200, n_test=300, shift=shift)
    assert _same_split(shifted.test, again.test)  # seeded


def test_noise_shift_adds_noise_of_the_given_sd_to_every_modality():
    base = pid_xor(seed=0, n_train=200, n_test=4000)
    shifted = pid_xor(seed=0, n_train=200, n_test=4000, shift="noise=2")
    assert torch.equal(base.test.target, shifted.test.target)
    for m in ("x1", "x2"):
        diff = shifted.test.inputs[m] - base.test.inputs[m]
        assert abs(float(diff.std()) - 2.0) < 0.02 and abs(float(diff.mean())) < 0.02
    assert _same_split(base.test, pid_xor(seed=0, n_train=200, n_test=4000, shift="noise=0").test)


def test_corrupt_shift_replaces_one_modality_by_independent_noise():
    base = gaussian_split(seed=0, n_train=200, n_test=4000)
    shifted = gaussian_split(seed=0, n_train=200, n_test=4000, shift="corrupt=x1")
    assert torch.equal(base.test.inputs["x2"], shifted.test.inputs["x2"])
    x = shifted.test.inputs["x1"].numpy()
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02
    # no linear relation to the label or to the clean features left
    y = shifted.test.target.numpy() * 2.0 - 1
    assert np.abs(np.corrcoef(np.c_[x, y].T)[-1, :-1]).max() < 0.1
    clean = base.test.inputs["x1"].numpy()
    assert abs(np.corrcoef(x[:, 0], clean[:, 0])[0, 1]) < 0.1


def test_mix_shift_draws_the_test_samples_from_the_new_mix():
    s = pid_xor(seed=0, n_train=200, n_test=3000, mix="redundant=0.9,synergistic=0.1",
                shift="mix=unique1=0.5,synergistic=0.5")
    counts = torch.bincount(s.test.meta["interaction"], minlength=4).float() / 3000
    assert counts[SOURCES.index("redundant")] == 0 and counts[SOURCES.index("unique2")] == 0
    assert abs(float(counts[SOURCES.index("unique1")]) - 0.5) < 0.03
    assert set(s.train.meta["interaction"].tolist()) <= {SOURCES.index("redundant"), SOURCES.index("synergistic")}
    # standardised with the *training* statistics: the new unique1 block has a different scale than in training
    u = s.info.block_map["x1"]["unique"]
    assert float(s.test.inputs["x1"][:, u].std()) > 1.5


@pytest.mark.parametrize("shift, message", [
    ("noise", "KIND=VALUE"), ("blur=2", "unknown kind 'blur'"), ("noise=-1", "non-negative"),
    ("noise=abc", "needs a number"), ("corrupt=x3", "corrupt='x3' is not a modality"),
    ("mix=bogus=1", "unknown source"), ("noise=1;noise=2", "given twice")])
def test_bad_shifts_are_one_line(shift, message):
    with pytest.raises(ConfigError, match="data.shift") as info:
        pid_xor(seed=0, n_train=50, n_test=10, shift=shift)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_mix_shift_is_pid_xor_only():
    with pytest.raises(ConfigError, match="pid-xor only"):
        gaussian_split(seed=0, n_train=50, n_test=10, shift="mix=redundant=1")


def test_shift_is_validated_when_the_config_resolves():
    from interplay.engine import resolve_config

    from ..conftest import make_config

    with pytest.raises(ConfigError, match="data.shift"):
        resolve_config(make_config("joint", data={"shift": "corrupt=audio"}))


def test_evaluate_a_trained_run_on_shifted_test_data(tmp_path, capsys):
    """``interplay evaluate RUN --set data.shift=...``: the shifted accuracy beside the run's own (in distribution)."""
    from interplay.engine import train
    from interplay.engine.reload import evaluate_run

    from ..conftest import make_config, run_cli

    run = tmp_path / "run"
    metrics = train(make_config("joint", epochs=8, n_train=300, n_test=200, data={"mix": "unique1=1"},
                                model={"encoder_hidden": [16], "fusion_hidden": [16]},
                                train={"lr": 0.003, "batch_size": 32}), run)
    assert metrics["test"]["accuracy"] > 0.8  # label information only in x1
    same = evaluate_run(run, {"shift": "noise=0"})  # the identity shift: exactly the run's own test metrics
    assert same["test"]["accuracy"] == metrics["test"]["accuracy"]
    assert same["in_distribution"]["accuracy"] == metrics["test"]["accuracy"]
    corrupted = evaluate_run(run, {"shift": "corrupt=x1;noise=0.5"}, out=tmp_path / "eval")
    assert corrupted["data_config"]["shift"] == "corrupt=x1;noise=0.5"
    assert corrupted["in_distribution"]["accuracy_by_interaction"] == metrics["test"]["accuracy_by_interaction"]
    assert corrupted["test"]["accuracy"] < 0.65  # x1 replaced by noise: near chance
    shift = "data.shift=mix=unique1=0.5,synergistic=0.5"
    code, out, _ = run_cli(["evaluate", run, "--set", shift, "--out", tmp_path / "e2"], capsys)
    assert code == 0 and "in distribution" in out and "test synergistic" in out
    code, _, err = run_cli(["evaluate", run, "--set", "data.shift=blur=1", "--out", tmp_path / "e3"], capsys)
    assert code != 0 and "data.shift" in err and len(err.strip().splitlines()) == 1
