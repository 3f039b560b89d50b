"""VQAv2 / CLEVR loaders on fixtures written in the published formats (JSON + per-image feature files)."""

import json

import numpy as np
import pytest
import torch

from interplay.data import DATASETS
from interplay.data.vqa import read_feature, tokens
from interplay.errors import ConfigError, DataError

from ..conftest import make_config

D = 6


def _vqa_fixture(root, n_images=6, per_image=3, layout="stem", dim_first=False, regions=4):
    """A miniature VQAv2 release: questions + annotations JSON per split, one .npz of region features per image.
    Answers: "yes" / "no" and a rare answer "two" (once, in train) that ``max_answers=2`` drops."""
    rng = np.random.default_rng(0)
    qid = 0
    for split in ("train2014", "val2014"):
        questions, annotations = [], []
        (root / "features" / split).mkdir(parents=True)
        for k in range(n_images):
            image_id = 1000 * (split == "val2014") + k + 1
            feats = rng.normal(size=(regions, D)).astype(np.float32) + k
            stem = f"COCO_{split}_{image_id:012d}" if layout == "stem" else str(image_id)
            np.savez(root / "features" / split / f"{stem}.npz", x=feats.T if dim_first else feats)
            for j in range(per_image):
                qid += 1
                answer = "two" if (split, k, j) == ("train2014", 0, 0) else ("yes" if (k + j) % 2 else "no")
                questions.append({"image_id": image_id, "question": f"Is the thing {j} red?", "question_id": qid})
                annotations.append({"question_id": qid, "image_id": image_id, "multiple_choice_answer": answer,
                                    "answer_type": "number" if answer == "two" else "yes/no", "answers": []})
        (root / f"v2_OpenEnded_mscoco_{split}_questions.json").write_text(json.dumps({"questions": questions}))
        (root / f"v2_mscoco_{split}_annotations.json").write_text(json.dumps({"annotations": annotations}))
    return root


def _clevr_fixture(root, n_images=5):
    rng = np.random.default_rng(1)
    (root / "questions").mkdir(parents=True)
    for split in ("train", "val"):
        (root / "features" / split).mkdir(parents=True)
        questions = []
        for k in range(n_images):
            name = f"CLEVR_{split}_{k:06d}.png"
            np.save(root / "features" / split / f"CLEVR_{split}_{k:06d}.npy", rng.normal(size=(D,)).astype(np.float32))
            for j, (q, a) in enumerate([("How many cubes are there?", str(k % 3)), ("Is the sphere red?", "yes")]):
                questions.append({"image_index": k, "image_filename": name, "question": q, "answer": a,
                                  "question_family_index": j, "split": split})
        path = root / "questions" / f"CLEVR_{split}_questions.json"
        path.write_text(json.dumps({"info": {}, "questions": questions}))
    return root


def test_vqav2_splits_answers_vocabulary_and_features(tmp_path):
    root = _vqa_fixture(tmp_path)
    s = DATASETS.get("vqav2")(seed=0, root=str(root), max_answers=2, val_fraction=0.25)
    # 18 training questions minus the one whose answer ("two") is not among the 2 most frequent
    assert len(s.train) + len(s.val) == 17 and len(s.val) == 4 and len(s.test) == 18
    assert s.info.class_names == ["yes", "no"] and s.info.num_classes == 2  # by training frequency (9, 8)
    assert s.info.extra["dropped"] == {"train": 1, "test": 0}
    assert s.info.modalities == {"image": (D,), "question": (s.info.extra["vocab_size"],)}
    # bag of words over the training vocabulary (id 0 = <unk>)
    assert s.train.inputs["question"].sum(1).eq(len(tokens("Is the thing 0 red?"))).all()
    # image features: the region mean of the image's file, standardised with training statistics
    raw = {}
    for split in ("train2014", "val2014"):
        for f in (root / "features" / split).iterdir():
            raw[split, int(f.stem.split("_")[-1])] = np.load(f)["x"].mean(0)
    x = s.train.inputs["image"]
    assert torch.allclose(x.mean(0), torch.zeros(D), atol=1e-5) and torch.allclose(x.std(0), torch.ones(D), atol=1e-4)
    # one affine map per feature (the training statistics) takes the raw region means to every split
    raw_test = torch.tensor(np.stack([raw["val2014", 1000 + k] for k in range(1, 7) for _ in range(3)]))
    for d in range(D):
        a, b = np.polyfit(raw_test[:, d].numpy(), s.test.inputs["image"][:, d].numpy(), 1)
        recovered = (torch.cat([x, s.val.inputs["image"]])[:, d] - b) / a
        train_raw = torch.tensor([raw["train2014", k][d] for k in range(1, 7)])
        assert ((recovered[:, None] - train_raw[None]).abs().min(1).values < 1e-4).all()
    assert torch.equal(s.test.target, torch.tensor([0 if (k + j) % 2 else 1 for k in range(6) for j in range(3)]))
    assert s.info.extra["answer_type"] == ["number", "yes/no"] and set(s.test.meta["answer_type"].tolist()) == {1}


def test_vqav2_region_sequences_layouts_and_onehot_questions(tmp_path):
    root = _vqa_fixture(tmp_path, layout="id", dim_first=True, regions=3)
    s = DATASETS.get("vqav2")(seed=0, root=str(root), pool="none", feature_layout="dim_first",
                              question_encoding="onehot", max_length=4)
    assert s.info.modalities["image"] == (3, D)
    v = s.info.extra["vocab_size"]
    assert s.info.modalities["question"] == (4, v)
    assert torch.equal(s.train.inputs["question"].sum(-1), torch.ones(len(s.train), 4))  # 5 words cut to 4
    np.testing.assert_allclose(read_feature(next((root / "features" / "val2014").iterdir()), "x", "dim_first").shape,
                               (3, D))


def test_clevr_npy_features_and_answers(tmp_path):
    root = _clevr_fixture(tmp_path)
    s = DATASETS.get("clevr")(seed=0, root=str(root), val_fraction=0.2)
    assert len(s.train) + len(s.val) == 10 and len(s.test) == 10
    assert sorted(s.info.class_names) == ["0", "1", "2", "yes"]
    assert set(s.test.meta["question_family"].tolist()) == {0, 1}
    assert s.info.modalities["image"] == (D,)


def test_missing_or_bad_files_are_one_line(tmp_path):
    root = _vqa_fixture(tmp_path / "a")
    victim = next((root / "features" / "val2014").iterdir())
    victim.unlink()
    with pytest.raises(DataError, match="no feature file") as info:
        DATASETS.get("vqav2")(seed=0, root=str(root))
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="directory not found"):
        DATASETS.get("vqav2")(seed=0, root=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="no data root"):
        DATASETS.get("clevr")(seed=0)
    root = _clevr_fixture(tmp_path / "b")
    bad = root / "features" / "train" / "CLEVR_train_000000.npy"
    np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)  # a pickle: never loaded
    with pytest.raises(DataError, match="unreadable feature file"):
        DATASETS.get("clevr")(seed=0, root=str(root))
    (root / "questions" / "CLEVR_val_questions.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable JSON"):
        DATASETS.get("clevr")(seed=0, root=str(root))


@pytest.mark.parametrize("params, field", [({"pool": "max"}, "data.pool"), ({"question_encoding": "glove"},
                                           "data.question_encoding"), ({"max_answers": 1}, "data.max_answers")])
def test_bad_parameters_are_one_line(tmp_path, params, field):
    with pytest.raises(ConfigError, match=field):
        DATASETS.get("vqav2")(seed=0, root=str(tmp_path), **params)


def test_trains_through_the_engine(tmp_path):
    from interplay.engine import train

    root = _vqa_fixture(tmp_path / "data")
    cfg = make_config("dmil", "vqav2", epochs=2, n_train=None, n_test=None,
                      data={"root": str(root), "val_fraction": 0.25},
                      model={"encoder_hidden": [8], "fusion_hidden": [8]}, method={"dim": 4})
    metrics = train(cfg, tmp_path / "run")
    assert "none_right" in metrics["test"]["agreement_groups"]  # the paper's synergy-subset metric
