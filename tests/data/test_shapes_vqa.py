"""shapes-vqa: rendering and answers checked by an independent pixel parser, interaction types by construction."""

from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from interplay.data import DATASETS
from interplay.data.shapes_vqa import COLOURS, FAMILIES, INTERACTIONS, WORDS, shapes_vqa
from interplay.errors import ConfigError

from ..conftest import make_config


@pytest.fixture(scope="module")
def clean():
    """Noise-free images (exact colours) so the parser below can read them."""
    return shapes_vqa(seed=3, n_train=1200, n_test=400, noise=0.0)


def parse_image(img: torch.Tensor) -> list[tuple[str, str, float]]:
    """An independent reading of a rendered scene: ``(colour, shape, centre x)`` per object, left to right.

    Colour = the palette entry of the pixels; objects of one colour are split at empty columns (objects sit in
    different thirds); shape from the fill ratio of the bounding box (square ~1, circle ~pi/4, triangle ~1/2)."""
    rgb = (img.numpy().transpose(1, 2, 0) * 255).round().astype(int)
    objects = []
    for name, colour in COLOURS.items():
        mask = (np.abs(rgb - np.array(colour)).sum(-1) < 3)
        cols = np.flatnonzero(mask.any(0))
        if not len(cols):
            continue
        runs = np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)
        for run in runs:
            sub = mask[:, run[0]:run[-1] + 1]
            rows = np.flatnonzero(sub.any(1))
            fill = sub.sum() / (len(rows) * len(run))
            shape = "square" if fill > 0.9 else "triangle" if fill < 0.68 else "circle"
            objects.append((name, shape, float(run.mean())))
    return sorted(objects, key=lambda o: o[2])


def words(q: torch.Tensor) -> list[str]:
    return [WORDS[i] for i in q.argmax(-1)[q.sum(-1) > 0].tolist()]


def oracle(objects, question: list[str]) -> int | None:
    """The answer from the parsed scene and the question text (None: the question does not need the image)."""
    if question[:2] == ["are", "the"]:
        return int(objects[0][0] == objects[1][0])
    if question[1] == "there":
        return int((question[3], question[4]) in {(c, s) for c, s, _ in objects})
    if question[1] == "the":
        a = next(o for o in objects if o[0] == question[2])
        b = next(o for o in objects if o[1] == question[7])
        return int(a[2] < b[2])
    return None


def test_shapes_splits_and_types():
    s = shapes_vqa(seed=0, n_train=200, n_test=100, size=16)
    assert (len(s.train), len(s.val), len(s.test)) == (180, 20, 100)
    assert s.info.modalities == {"image": (3, 16, 16), "question": (9, len(WORDS))}
    assert s.info.interactions == INTERACTIONS == ("unique1", "unique2", "synergistic")
    assert s.info.num_classes == 2 and s.info.class_names == ["no", "yes"]
    fam_type = [INTERACTIONS.index(s.info.extra["family_type"][f]) for f in FAMILIES]
    for split in (s.train, s.val, s.test):
        assert torch.equal(split.meta["interaction"], torch.tensor(fam_type)[split.meta["family"]])
    # one-hot rows, back-padded with zero rows (the gru encoder's padding)
    q = s.train.inputs["question"]
    assert set(q.sum(-1).unique().tolist()) <= {0.0, 1.0}
    lengths = q.sum((1, 2))
    assert torch.equal(q.sum(-1)[:, :5], torch.ones(len(q), 5)) and lengths.min() >= 5
    a, b = shapes_vqa(seed=0, n_train=200, n_test=100, size=16), shapes_vqa(seed=1, n_train=200, n_test=100, size=16)
    assert torch.equal(s.test.inputs["image"], a.test.inputs["image"])
    assert not torch.equal(s.test.inputs["image"], b.test.inputs["image"])


def test_answers_agree_with_an_independent_reading_of_the_images(clean):
    checked = Counter()
    for split in (clean.train, clean.test):
        for img, q, y, fam in zip(split.inputs["image"], split.inputs["question"], split.target, split.meta["family"]):
            objects = parse_image(img)
            assert len(objects) == 2, objects
            question = words(q)
            expected = oracle(objects, question)
            family = FAMILIES[int(fam)]
            if family == "category":
                assert expected is None
                asked, word = question[3], question[1]
                expected = int(word in (COLOURS if asked == "colour" else ("circle", "square", "triangle")))
            assert expected == int(y), (family, question, objects)
            checked[family] += 1
    assert min(checked.values()) > 100


def test_each_family_needs_the_modalities_its_type_says(clean):
    fam = torch.cat([clean.train.meta["family"], clean.test.meta["family"]])
    y = torch.cat([clean.train.target, clean.test.target]).tolist()
    imgs = torch.cat([clean.train.inputs["image"], clean.test.inputs["image"]])
    qs = torch.cat([clean.train.inputs["question"], clean.test.inputs["question"]])
    by_question, by_scene = defaultdict(list), defaultdict(list)
    for i in range(len(y)):
        family = FAMILIES[int(fam[i])]
        question = " ".join(words(qs[i]))
        scene = tuple(sorted((c, s) for c, s, _ in parse_image(imgs[i])))
        by_question[family, question].append(y[i])
        by_scene[family, scene].append(y[i])
    # question only: the question decides the answer; image only: one constant question
    assert all(len(set(v)) == 1 for (f, _), v in by_question.items() if f == "category")
    assert len({q for f, q in by_question if f == "same-colour"}) == 1
    # synergistic: neither the question nor the scene alone predicts the answer (pooled over groups)
    for family in ("exists", "left-of"):
        for groups in (by_question, by_scene):
            votes = [v for (f, _), v in groups.items() if f == family]
            majority = sum(max(sum(v), len(v) - sum(v)) for v in votes) / sum(len(v) for v in votes)
            assert majority < 0.66, (family, majority)  # a lookup table per group is near chance
    answers = [y[i] for i in range(len(y)) if FAMILIES[int(fam[i])] in ("exists", "left-of")]
    assert abs(np.mean(answers) - 0.5) < 0.05


def test_mix_weighs_the_interaction_types():
    s = shapes_vqa(seed=0, n_train=600, n_test=400, size=16, mix="synergistic=1")
    assert set(s.test.meta["interaction"].tolist()) == {2}
    s = shapes_vqa(seed=0, n_train=600, n_test=2000, size=16)  # default: 1/4, 1/4, 1/2
    share = torch.bincount(s.test.meta["interaction"], minlength=3).float() / 2000
    assert torch.allclose(share, torch.tensor([0.25, 0.25, 0.5]), atol=0.04)


@pytest.mark.parametrize("params, message", [
    ({"size": 8}, "data.size"), ({"noise": -1.0}, "data.noise"), ({"mix": "redundant=1"}, "unknown source"),
    ({"n_train": 2}, "data.n_train")])
def test_bad_parameters_are_one_line(params, message):
    with pytest.raises(ConfigError, match=message) as info:
        DATASETS.get("shapes-vqa")(**{"seed": 0, "n_test": 10, **params})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("method", ["dmil", "joint"])
def test_trains_with_the_cnn_and_gru_encoders_and_reports_accuracy_by_interaction(tmp_path, method):
    from interplay.engine import train

    cfg = make_config(method, "shapes-vqa", epochs=2, n_train=120, n_test=60, data={"size": 16},
                      model={"encoder_hidden": [8, 16], "fusion_hidden": [16]},
                      method={"dim": 8} if method == "dmil" else {})
    metrics = train(cfg, tmp_path / method)
    test = metrics["test"]
    assert set(test["accuracy_by_interaction"]) == set(INTERACTIONS)
    if method == "dmil":  # the ID heads are DMIL's unimodal predictions: the synergy subset is none_right
        assert {"none_right", "only_image", "only_question", "all_right"} == set(test["agreement_groups"])
        assert 0 <= test["gate_agreement"] <= 1
