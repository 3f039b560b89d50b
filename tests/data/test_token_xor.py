"""token-xor: shapes, determinism, the latent structure per source (decoded from the tokens), bad parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interplay.data import DATASETS
from interplay.data.token_xor import PATCH, SLOTS
from interplay.errors import ConfigError


def build(**kw):
    args = {"seed": 0, "n_train": 400, "n_test": 200, "val_fraction": 0.1, "root": None}
    args.update(kw)
    return DATASETS.get("token-xor")(**args)


def test_shapes_splits_and_info():
    data = build()
    assert len(data.train) == 360 and len(data.val) == 40 and len(data.test) == 200
    assert data.info.modalities == {"image": (3, 16, 16), "text": (8,)}
    assert data.info.interactions == ("unique1", "unique2", "redundant", "synergistic")
    assert data.train.inputs["image"].shape == (360, 3, 16, 16) and data.train.inputs["text"].shape == (360, 8)
    text = data.train.inputs["text"]
    assert torch.equal(text, text.round()) and text.min() >= 1 and text.max() < data.info.extra["vocab_size"]


def test_deterministic_by_seed():
    a, b, c = build(seed=3), build(seed=3), build(seed=4)
    assert torch.equal(a.test.inputs["image"], b.test.inputs["image"])
    assert torch.equal(a.test.inputs["text"], b.test.inputs["text"])
    assert not torch.equal(a.test.inputs["text"], c.test.inputs["text"])


def decode(data, split):
    """Per sample and slot: the text bit (+1/-1/0 from the slot's words) and the image code (patch projection on
    the slot's template, noise included)."""
    fillers = data.info.extra["vocab_size"] - 1 - 2 * len(SLOTS)
    text = split.inputs["text"].long().numpy()
    image = split.inputs["image"].numpy()
    text_bits = np.zeros((len(text), len(SLOTS)), dtype=int)
    image_code = np.zeros((len(text), len(SLOTS)))
    grid = data.info.modalities["image"][1] // PATCH
    rng = np.random.default_rng(1234)  # the dataset's projection_seed: its cells and templates
    cells = rng.permutation(grid * grid)[:len(SLOTS) * 2].reshape(len(SLOTS), 2)
    templates = rng.normal(0.0, 0.5, size=(len(SLOTS), 3, PATCH, PATCH))
    for k in range(len(SLOTS)):
        for bit, word in ((-1, fillers + 1 + 2 * k), (1, fillers + 2 + 2 * k)):
            text_bits[:, k] += bit * (text == word).any(1)
        assert np.array_equal(cells[k], data.info.extra["image_patches"][SLOTS[k]])
        for cell in cells[k]:
            r, c = divmod(int(cell), grid)
            patch = image[:, :, r * PATCH:(r + 1) * PATCH, c * PATCH:(c + 1) * PATCH]
            image_code[:, k] += (patch * templates[k]).sum((1, 2, 3))
    return text_bits, image_code


def test_latent_structure_per_source():
    data = build(mix="unique1=0.25,unique2=0.25,redundant=0.25,synergistic=0.25", n_train=2000, noise=0.0)
    split = data.train
    y = split.target.numpy()
    sign = 2 * y - 1
    source = split.meta["interaction"].numpy()
    text_bits, image_code = decode(data, split)
    image_bits = np.sign(np.round(image_code, 6)).astype(int)  # noise 0: the code is exact
    names = data.info.interactions
    for s, name in enumerate(names):
        rows = source == s
        assert rows.sum() > 300
        t, im = text_bits[rows], image_bits[rows]
        if name == "unique1":
            assert (im[:, 0] == sign[rows]).all() and not t.any() and not im[:, 1:].any()
        elif name == "unique2":
            assert (t[:, 0] == sign[rows]).all() and not im.any() and not t[:, 1:].any()
        elif name == "redundant":
            assert (t[:, 1] == sign[rows]).all() and (im[:, 1] == sign[rows]).all()
        else:  # the label is the XOR of the two synergy bits; each alone is independent of it
            xor = (im[:, 2] != t[:, 2]).astype(int)  # bits differ <=> y = 1
            assert (xor == y[rows]).all()
            assert abs(np.mean(t[:, 2] == sign[rows]) - 0.5) < 0.08
            assert abs(np.mean(im[:, 2] == sign[rows]) - 0.5) < 0.08
            assert not t[:, :2].any() and not im[:, :2].any()


def test_mix_is_followed():
    data = build(n_train=4000, n_test=10)
    counts = np.bincount(data.train.meta["interaction"].numpy(), minlength=4) / len(data.train)
    assert abs(counts[2] - 0.9) < 0.03 and abs(counts[3] - 0.1) < 0.03 and counts[:2].sum() == 0


@pytest.mark.parametrize(("kw", "match"), [
    ({"mix": "redundant=2"}, "data.mix"),
    ({"size": 10}, "data.size: expected a positive multiple of 4"),
    ({"patches": 6}, "data.patches"),
    ({"length": 0}, "data.length"),
    ({"strength": -1.0}, "data.strength"),
])
def test_bad_parameters_are_one_line(kw, match):
    with pytest.raises(ConfigError, match=match):
        build(**kw)
