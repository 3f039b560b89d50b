"""VQAv2 and CLEVR from their published question/answer JSON files plus precomputed per-image features.

Neither image set can be downloaded here, and Interplay does not run an image backbone over COCO/CLEVR images:
the ``image`` modality is a feature file per image, computed elsewhere (e.g. bottom-up-attention region features,
or a ResNet's pooled features), the layout the VQA code bases (bottom-up-attention, MCAN, MMF) document. On-disk
layouts under ``--data-root``:

VQAv2 (https://visualqa.org/download.html)::

    v2_OpenEnded_mscoco_train2014_questions.json   {"questions": [{"image_id", "question", "question_id"}, ...]}
    v2_mscoco_train2014_annotations.json           {"annotations": [{"question_id", "image_id",
                                                     "multiple_choice_answer", "answer_type", ...}, ...]}
    v2_OpenEnded_mscoco_val2014_questions.json, v2_mscoco_val2014_annotations.json
    features/train2014/COCO_train2014_000000000009.npz   (or .npy, .jpg.npz, or <image_id>.npz / .npy)
    features/val2014/...

CLEVR v1.0 (https://cs.stanford.edu/people/jcjohns/clevr/)::

    questions/CLEVR_train_questions.json   {"questions": [{"image_index", "image_filename", "question",
                                             "answer", "question_family_index", ...}, ...]}
    questions/CLEVR_val_questions.json
    features/train/CLEVR_train_000000.npz  (or .npy, .png.npz, or <image_index>.npz / .npy)
    features/val/...

A feature file holds one array: ``.npy``, or ``.npz`` with key ``feature_key`` (default ``x``, the
bottom-up-attention/MCAN key; a single-array ``.npz`` is read whatever its key). Shape ``(D,)`` or ``(K, D)``
(``K`` regions; ``feature_layout=dim_first`` for files stored ``(D, K)`` as MCAN's are). ``pool=mean`` (default)
averages the regions into ``(D,)`` (``mlp`` encoder); ``pool=none`` keeps ``(K_max, D)`` zero-padded at the back
(``gru`` encoder, which ignores the padding).

Splits: the published training questions give train and validation (``val_fraction``, seeded); the published
validation questions are the test split (the test sets' answers are not public). Questions are lower-cased and
split into words ``[a-z0-9']+``; the vocabulary is built from the training questions (the ``max_vocab`` most
frequent words with at least ``min_count`` occurrences; id 0 is ``<unk>``) and encoded as a bag of words
``(V,)`` (``question_encoding=bow``, default) or one-hot rows ``(max_length, V)`` (``onehot``, for the ``gru``
encoder). Answers: single-label classification over the ``max_answers`` most frequent training answers
(VQAv2: ``multiple_choice_answer``, the annotators' most common answer; the official 10-annotator soft accuracy
is not computed); questions whose answer is outside that set are dropped (counted in ``info.extra``). ``n_train``
/ ``n_test`` keep a seeded random subset of the (filtered) training questions / the first test questions.
See ``docs/data/vqa.md``.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .dataset import DATASETS, DataInfo, DataSplits, MultimodalDataset, data_root, problems

TOKEN = re.compile(r"[a-z0-9']+")
VQA_WHERE = ("get the VQAv2 questions and annotations from https://visualqa.org/download.html and per-image "
             "features (e.g. bottom-up-attention) under features/train2014, features/val2014 (see docs/data/vqa.md)")
CLEVR_WHERE = ("get CLEVR v1.0 from https://cs.stanford.edu/people/jcjohns/clevr/ (questions/) and put per-image "
               "features under features/train, features/val (see docs/data/vqa.md)")


@dataclass
class Question:
    """One question: its words, answer string, image file stems to look for, and an integer group (VQAv2:
    answer type index; CLEVR: question family) for ``meta``."""

    text: str
    answer: str
    stems: tuple[str, ...]
    group: int


def tokens(text: str) -> list[str]:
    """Lower-cased words of a question."""
    return TOKEN.findall(text.lower())


def _read_json(path: Path, key: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable JSON ({exc})") from None
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON object with a '{key}' list")
    return items


def _field(item: dict[str, Any], key: str, path: Path, i: int) -> Any:
    if key not in item:
        raise DataError(f"{path}: {i}-th entry has no '{key}'")
    return item[key]


def vqa_questions(base: Path, split: str, answer_types: list[str]) -> list[Question]:
    """VQAv2 questions of ``split`` (``train2014`` / ``val2014``) joined with their annotations."""
    qpath = base / f"v2_OpenEnded_mscoco_{split}_questions.json"
    apath = base / f"v2_mscoco_{split}_annotations.json"
    answers: dict[int, tuple[str, str]] = {}
    for i, a in enumerate(_read_json(apath, "annotations")):
        answers[int(_field(a, "question_id", apath, i))] = (str(_field(a, "multiple_choice_answer", apath, i)),
                                                           str(a.get("answer_type", "other")))
    out = []
    for i, q in enumerate(_read_json(qpath, "questions")):
        qid, image = int(_field(q, "question_id", qpath, i)), int(_field(q, "image_id", qpath, i))
        if qid not in answers:
            raise DataError(f"{qpath}: question {qid} has no annotation in {apath.name}")
        answer, kind = answers[qid]
        if kind not in answer_types:
            answer_types.append(kind)
        stems = (f"COCO_{split}_{image:012d}", f"COCO_{split}_{image:012d}.jpg", str(image))
        out.append(Question(str(_field(q, "question", qpath, i)), answer, stems, answer_types.index(kind)))
    return out


def clevr_questions(base: Path, split: str) -> list[Question]:
    """CLEVR questions of ``split`` (``train`` / ``val``)."""
    path = base / "questions" / f"CLEVR_{split}_questions.json"
    out = []
    for i, q in enumerate(_read_json(path, "questions")):
        name = str(_field(q, "image_filename", path, i))
        stem = name.rsplit(".", 1)[0]
        stems = (stem, name, str(q.get("image_index", stem)))
        out.append(Question(str(_field(q, "question", path, i)), str(_field(q, "answer", path, i)), stems,
                            int(q.get("question_family_index", -1))))
    return out


def read_feature(path: Path, key: str, layout: str) -> np.ndarray:
    """One image's features ``(K, D)`` (``(D,)`` files become ``(1, D)``) from a ``.npy`` or ``.npz`` file; never
    unpickles (``allow_pickle=False``)."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                names = list(data.files)
                if key not in names and len(names) != 1:
                    raise DataError(f"{path}: no array '{key}' (has {', '.join(names)}); set data.feature_key")
                arr = data[key if key in names else names[0]]
        else:
            arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable feature file ({exc})") from None
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 2 and layout == "dim_first":
        arr = arr.T
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise DataError(f"{path}: expected a finite (D,) or (K, D) feature array, got shape {arr.shape}")
    return arr


def _find(directory: Path, stems: Sequence[str]) -> Path | None:
    for stem in stems:
        for suffix in (".npz", ".npy"):
            p = directory / f"{stem}{suffix}"
            if p.is_file():
                return p
    return None


def _features(questions: list[Question], directory: Path, key: str, layout: str, pool: str) -> np.ndarray:
    """Per-question image features: ``(N, D)`` (``pool=mean``) or ``(N, K_max, D)`` zero-padded (``pool=none``);
    each image file is read once."""
    paths, missing = [], []
    for q in questions:
        p = _find(directory, q.stems)
        if p is None:
            missing.append(f"{q.stems[0]}.npz")
        paths.append(p)
    if missing:
        raise DataError(f"{directory}: no feature file for {problems({'image': missing})} (looked for "
                        f"<stem>.npz / .npy per image; see docs/data/vqa.md)")
    cache: dict[Path, np.ndarray] = {}
    for p in paths:
        assert p is not None
        if p not in cache:
            cache[p] = read_feature(p, key, layout)
    dims = {a.shape[1] for a in cache.values()}
    if len(dims) != 1:
        raise DataError(f"{directory}: feature files disagree on the feature width ({sorted(dims)})")
    if pool == "mean":
        return np.stack([cache[p].mean(0) for p in paths if p is not None])
    k = max(a.shape[0] for a in cache.values())
    out = np.zeros((len(paths), k, dims.pop()), dtype=np.float32)
    for i, p in enumerate(paths):
        assert p is not None
        out[i, : cache[p].shape[0]] = cache[p]
    return out


def _encode(questions: list[Question], vocab: dict[str, int], encoding: str, max_length: int) -> np.ndarray:
    if encoding == "bow":
        out = np.zeros((len(questions), len(vocab)), dtype=np.float32)
        for i, q in enumerate(questions):
            for w in tokens(q.text):
                out[i, vocab.get(w, 0)] += 1.0
        return out
    seq = np.zeros((len(questions), max_length, len(vocab)), dtype=np.float32)
    for i, q in enumerate(questions):
        ids = [vocab.get(w, 0) for w in tokens(q.text)][:max_length]
        seq[i, np.arange(len(ids)), ids] = 1.0
    return seq


def check_vqa(*, n_train: int | None, n_test: int | None, val_fraction: float, max_vocab: int, min_count: int,
              max_answers: int, max_length: int, question_encoding: str, pool: str, feature_layout: str,
              **_: object) -> None:
    """Validate the VQA loaders' parameter values (cheap; no file is read)."""
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if value is not None and value < 1:
            raise ConfigError(f"data.{name}: expected a positive number of questions, got {value}")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"data.val_fraction: expected a number in (0, 1), got {val_fraction}")
    for name, value in (("max_vocab", max_vocab), ("min_count", min_count), ("max_length", max_length)):
        if value < 1:
            raise ConfigError(f"data.{name}: expected a positive integer, got {value}")
    if max_answers < 2:
        raise ConfigError(f"data.max_answers: need at least 2 answer classes, got {max_answers}")
    for name, choice, allowed in (("question_encoding", question_encoding, ("bow", "onehot")),
                                  ("pool", pool, ("mean", "none")),
                                  ("feature_layout", feature_layout, ("regions_first", "dim_first"))):
        if choice not in allowed:
            raise ConfigError(f"data.{name}: expected one of {', '.join(allowed)}, got {choice!r}")


def _build(name: str, train_q: list[Question], test_q: list[Question], feature_dirs: tuple[Path, Path], *,
           seed: int, n_train: int | None, n_test: int | None, val_fraction: float, max_vocab: int, min_count: int,
           max_answers: int, max_length: int, question_encoding: str, pool: str, feature_key: str,
           feature_layout: str, groups: tuple[str, list[str]]) -> DataSplits:
    counts = Counter(q.answer for q in train_q)
    answers = [a for a, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_answers]]
    if len(answers) < 2:
        raise DataError(f"{name}: the training questions have fewer than 2 distinct answers")
    answer_id = {a: i for i, a in enumerate(answers)}
    kept_train = [q for q in train_q if q.answer in answer_id]
    kept_test = [q for q in test_q if q.answer in answer_id]
    rng = np.random.default_rng(seed)
    if n_train is not None and n_train < len(kept_train):
        kept_train = [kept_train[i] for i in np.sort(rng.choice(len(kept_train), n_train, replace=False))]
    if n_test is not None:
        kept_test = kept_test[:n_test]
    n_val = int(round(val_fraction * len(kept_train)))
    if len(kept_train) - n_val < 2 or n_val < 1 or not kept_test:
        raise DataError(f"{name}: too few questions for the splits ({len(kept_train)} training questions with a "
                        f"kept answer, {len(kept_test)} test questions)")
    words = Counter(w for q in kept_train for w in tokens(q.text))
    frequent = [w for w, c in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count][:max_vocab]
    vocab = {"<unk>": 0, **{w: i + 1 for i, w in enumerate(frequent)}}

    def dataset(qs: list[Question], directory: Path, split: str) -> MultimodalDataset:
        image = torch.from_numpy(_features(qs, directory, feature_key, feature_layout, pool))
        question = torch.from_numpy(_encode(qs, vocab, question_encoding, max_length))
        target = torch.tensor([answer_id[q.answer] for q in qs], dtype=torch.long)
        meta = {groups[0]: torch.tensor([q.group for q in qs], dtype=torch.long)}
        return MultimodalDataset({"image": image, "question": question}, target, meta, name=f"{name}/{split}")

    train_all = dataset(kept_train, feature_dirs[0], "train")
    test = dataset(kept_test, feature_dirs[1], "test")
    perm = rng.permutation(len(kept_train))
    info = DataInfo(name=name, modalities={"image": tuple(train_all.inputs["image"].shape[1:]),
                                           "question": tuple(train_all.inputs["question"].shape[1:])},
                    num_classes=len(answers), class_names=answers,
                    extra={"vocab_size": len(vocab), groups[0]: groups[1],
                           "dropped": {"train": len(train_q) - len([q for q in train_q if q.answer in answer_id]),
                                       "test": len(test_q) - len([q for q in test_q if q.answer in answer_id])}})
    splits = DataSplits(train=train_all.subset(np.sort(perm[n_val:]), f"{name}/train"),
                        val=train_all.subset(np.sort(perm[:n_val]), f"{name}/val"), test=test, info=info)
    # image features: standardised with training statistics (questions are counts / one-hot: left as they are)
    x = splits.train.inputs["image"]
    flat = x.reshape(-1, x.shape[-1])
    mean, std = flat.mean(0), flat.std(0).clamp_min(1e-6)
    for split in (splits.train, splits.val, splits.test):
        v = split.inputs["image"]
        nonzero = v.ne(0).any(-1, keepdim=True) if pool == "none" else torch.ones(())
        split.inputs["image"] = ((v - mean) / std) * nonzero  # padding rows stay zero
    return splits


Encoding = Literal["bow", "onehot"]
Pool = Literal["mean", "none"]
Layout = Literal["regions_first", "dim_first"]


def _loader(name: str, where: str, layout: str, read: Callable[[Path], tuple[list[Question], list[Question], tuple[
        Path, Path], tuple[str, list[str]]]]) -> Callable[..., DataSplits]:
    def build(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
              root: str | None = None, max_vocab: int = 1000, min_count: int = 1, max_answers: int = 1000,
              max_length: int = 14, question_encoding: Encoding = "bow", pool: Pool = "mean",
              feature_key: str = "x", feature_layout: Layout = "regions_first") -> DataSplits:
        check_vqa(n_train=n_train, n_test=n_test, val_fraction=val_fraction, max_vocab=max_vocab,
                  min_count=min_count, max_answers=max_answers, max_length=max_length,
                  question_encoding=question_encoding, pool=pool, feature_layout=feature_layout)
        base = data_root(root, name, layout, where)
        train_q, test_q, dirs, groups = read(base)
        return _build(name, train_q, test_q, dirs, seed=seed, n_train=n_train, n_test=n_test,
                      val_fraction=val_fraction, max_vocab=max_vocab, min_count=min_count, max_answers=max_answers,
                      max_length=max_length, question_encoding=question_encoding, pool=pool,
                      feature_key=feature_key, feature_layout=feature_layout, groups=groups)
    return build


def _read_vqa(base: Path) -> tuple[list[Question], list[Question], tuple[Path, Path], tuple[str, list[str]]]:
    kinds: list[str] = []
    train, test = vqa_questions(base, "train2014", kinds), vqa_questions(base, "val2014", kinds)
    return train, test, (base / "features" / "train2014", base / "features" / "val2014"), ("answer_type", kinds)


def _read_clevr(base: Path) -> tuple[list[Question], list[Question], tuple[Path, Path], tuple[str, list[str]]]:
    train, test = clevr_questions(base, "train"), clevr_questions(base, "val")
    families = sorted({q.group for q in train + test})
    return train, test, (base / "features" / "train", base / "features" / "val"), \
        ("question_family", [str(f) for f in families])


vqav2 = DATASETS.register("vqav2")(_loader(
    "vqav2", VQA_WHERE, "v2_OpenEnded_mscoco_{train,val}2014_questions.json, v2_mscoco_{train,val}2014_annotations"
    ".json, features/{train,val}2014/", _read_vqa))
clevr = DATASETS.register("clevr")(_loader(
    "clevr", CLEVR_WHERE, "questions/CLEVR_{train,val}_questions.json, features/{train,val}/", _read_clevr))
vqav2.__doc__ = "VQAv2 from its published JSON files and per-image feature files (see the module docstring)."
clevr.__doc__ = "CLEVR v1.0 from its published question JSON and per-image feature files (see the module docstring)."

__all__ = ["vqav2", "clevr", "tokens", "read_feature", "vqa_questions", "clevr_questions", "check_vqa"]
