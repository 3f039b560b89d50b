"""``shapes-vqa``: a synergy-heavy visual question answering task, rendered offline (PIL).

Each sample is an ``image`` ``(3, size, size)`` of two coloured shapes on a black canvas and a ``question``, a
templated token sequence stored one-hot ``(length, vocab)`` (back-padded with all-zero rows, which the ``gru``
encoder treats as padding). Answers are yes (1) / no (0). The question *family* fixes which modality the answer
needs, so every sample's interaction type is known by construction (``meta["interaction"]``, names as pid-xor's
so that DMIL's gate agreement applies: ``unique1`` = the image, ``unique2`` = the question):

* ``unique1`` (image only), family ``same-colour``: the fixed question "are the shapes the same colour ?"; the
  scene has two equal colours with probability 1/2. The question is constant, so it says nothing.
* ``unique2`` (question only), family ``category``: "is <word> a colour ?" / "is <word> a shape ?" with a
  colour or shape word (each answer with probability 1/2); the scene is an unrelated random scene.
* ``synergistic`` (both needed), families ``exists``: "is there a <colour> <shape> ?" (with probability 1/2 one of
  the scene's two objects, else a pair not in the scene) and ``left-of``: "is the <colour> shape left of the
  <shape> ?" (the colour of one object, the shape of the other, in random order). In both families the answer is
  independent of the image alone and of the question alone: neither modality alone beats chance (1/2).

Scenes: two objects with different colours and different shapes (``same-colour`` scenes: equal colours with
probability 1/2), in different horizontal thirds of the canvas, vertical jitter, plus ``N(0, noise^2)`` pixel
noise. Images are in ``[0, 1]`` plus noise (not standardised). ``meta["family"]`` indexes
``info.extra["families"]``. See ``docs/data/shapes-vqa.md``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ..errors import ConfigError
from .dataset import DATASETS, DataInfo, DataSplits, MultimodalDataset, holdout_splits, validated_by
from .synthetic import check_split_sizes, parse_mix

COLOURS: dict[str, tuple[int, int, int]] = {"red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 240)}
SHAPES = ("circle", "square", "triangle")
#: interaction types (pid-xor's names: unique1 = image, unique2 = question)
INTERACTIONS = ("unique1", "unique2", "synergistic")
FAMILIES = ("same-colour", "category", "exists", "left-of")
FAMILY_TYPE = {"same-colour": "unique1", "category": "unique2", "exists": "synergistic", "left-of": "synergistic"}
WORDS = ("is", "are", "there", "a", "the", "shape", "shapes", "same", "colour", "left", "of", "?",
         *COLOURS, *SHAPES)
VOCAB = {w: i for i, w in enumerate(WORDS)}
LENGTH = 9  # the longest template: "is the red shape left of the square ?"


def tokenize(question: str) -> list[int]:
    """Word ids of a templated question (words separated by spaces)."""
    return [VOCAB[w] for w in question.split()]


def one_hot(questions: list[str], length: int = LENGTH) -> np.ndarray:
    """``(N, length, len(WORDS))`` float32: one row per word, back-padded with zero rows."""
    out = np.zeros((len(questions), length, len(WORDS)), dtype=np.float32)
    for i, q in enumerate(questions):
        ids = tokenize(q)
        out[i, np.arange(len(ids)), ids] = 1.0
    return out


def render(objects: list[tuple[str, str, float, float]], size: int) -> np.ndarray:
    """Draw ``(colour, shape, cx, cy)`` objects (centres as fractions of the side) with PIL: ``(3, size, size)``
    float32 in ``[0, 1]``."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    r = size / 8  # thirds are size / 3 apart: two objects never touch (2r + jitter < size / 3 - 1)
    for colour, shape, cx, cy in objects:
        x, y = cx * size, cy * size
        fill = COLOURS[colour]
        if shape == "circle":
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
        elif shape == "square":
            draw.rectangle([x - r, y - r, x + r, y + r], fill=fill)
        else:
            draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def _scene(rng: np.random.Generator, same_colour: bool = False) -> list[tuple[str, str, float, float]]:
    """Two objects: different shapes, different colours (unless ``same_colour``), in different horizontal
    thirds (so "left of" is never ambiguous), with vertical jitter."""
    colours = list(COLOURS)
    c = rng.choice(len(colours), 2, replace=False)
    if same_colour:
        c[1] = c[0]
    s = rng.choice(len(SHAPES), 2, replace=False)
    thirds = rng.choice(3, 2, replace=False)
    xs = (thirds + 0.5) / 3 + rng.uniform(-0.02, 0.02, 2)
    ys = rng.uniform(0.3, 0.7, 2)
    return [(colours[c[k]], SHAPES[s[k]], float(xs[k]), float(ys[k])) for k in range(2)]


def _sample(family: str, rng: np.random.Generator) -> tuple[list[tuple[str, str, float, float]], str, int]:
    """One (scene, question, answer) of ``family`` (see the module docstring)."""
    answer = int(rng.integers(0, 2))
    if family == "same-colour":
        return _scene(rng, same_colour=bool(answer)), "are the shapes the same colour ?", answer
    scene = _scene(rng)
    if family == "category":
        asked = ("colour", "shape")[int(rng.integers(0, 2))]
        own, other = (list(COLOURS), list(SHAPES)) if asked == "colour" else (list(SHAPES), list(COLOURS))
        word = (own if answer else other)[int(rng.integers(0, 3))]
        return scene, f"is {word} a {asked} ?", answer
    if family == "exists":
        present = {(o[0], o[1]) for o in scene}
        pool = sorted(present) if answer else sorted((c, s) for c in COLOURS for s in SHAPES if (c, s) not in present)
        colour, shape = pool[int(rng.integers(0, len(pool)))]
        return scene, f"is there a {colour} {shape} ?", answer
    a, b = (scene[0], scene[1]) if rng.integers(0, 2) else (scene[1], scene[0])
    return scene, f"is the {a[0]} shape left of the {b[1]} ?", int(a[2] < b[2])


def check_shapes_vqa(*, n_train: int | None, n_test: int | None, val_fraction: float, mix: str | Mapping[str, float],
                     size: int, noise: float, **_: object) -> dict[str, float]:
    """Validate shapes-vqa's parameter values (cheap; nothing drawn); return the parsed mix over interaction types."""
    check_split_sizes(3000 if n_train is None else n_train, 1000 if n_test is None else n_test, val_fraction)
    if not 12 <= size <= 256:
        raise ConfigError(f"data.size: expected an image side between 12 and 256 pixels, got {size}")
    if not np.isfinite(noise) or noise < 0:
        raise ConfigError(f"data.noise: expected a finite non-negative number, got {noise}")
    return parse_mix(mix, INTERACTIONS)


@DATASETS.register("shapes-vqa")
@validated_by(check_shapes_vqa)
def shapes_vqa(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
               root: str | None = None, mix: str | dict[str, float] = "unique1=0.25,unique2=0.25,synergistic=0.5",
               size: int = 32, noise: float = 0.05) -> DataSplits:
    """Shapes VQA (see the module docstring): ``n_train`` samples (default 3000, ``val_fraction`` of them
    validation), ``n_test`` (default 1000). ``mix`` weighs the interaction types (``unique1`` = image only,
    ``unique2`` = question only, ``synergistic`` = both; the two synergistic families equally likely)."""
    weights = check_shapes_vqa(n_train=n_train, n_test=n_test, val_fraction=val_fraction, mix=mix, size=size,
                               noise=noise)
    n_train = 3000 if n_train is None else n_train
    n_test = 1000 if n_test is None else n_test
    n = n_train + n_test
    rng = np.random.default_rng(seed)
    types = rng.choice(len(INTERACTIONS), size=n, p=[weights.get(t, 0.0) for t in INTERACTIONS])
    images = np.empty((n, 3, size, size), dtype=np.float32)
    questions: list[str] = []
    answers = np.empty(n, dtype=np.int64)
    family = np.empty(n, dtype=np.int64)
    for i, t in enumerate(types):
        options = [f for f in FAMILIES if FAMILY_TYPE[f] == INTERACTIONS[t]]
        fam = options[int(rng.integers(0, len(options)))]
        scene, question, answers[i] = _sample(fam, rng)
        images[i] = render(scene, size)
        questions.append(question)
        family[i] = FAMILIES.index(fam)
    if noise > 0:
        images += noise * rng.standard_normal(size=images.shape, dtype=np.float32)
    tokens = one_hot(questions)
    full = MultimodalDataset({"image": torch.from_numpy(images), "question": torch.from_numpy(tokens)},
                             torch.from_numpy(answers),
                             {"interaction": torch.from_numpy(types.astype(np.int64)),
                              "family": torch.from_numpy(family)},
                             name="shapes-vqa")
    info = DataInfo(name="shapes-vqa", modalities={"image": (3, size, size), "question": (LENGTH, len(WORDS))},
                    num_classes=2, interactions=INTERACTIONS, class_names=["no", "yes"],
                    extra={"mix": weights, "families": list(FAMILIES), "family_type": dict(FAMILY_TYPE),
                           "vocab": list(WORDS), "interaction_labels": {"unique1": "image only",
                                                                         "unique2": "question only",
                                                                         "synergistic": "both"}})
    return holdout_splits(full, n_train, val_fraction, rng, info, "shapes-vqa")


__all__ = ["shapes_vqa", "render", "one_hot", "tokenize", "COLOURS", "SHAPES", "FAMILIES", "FAMILY_TYPE",
           "INTERACTIONS", "WORDS", "check_shapes_vqa"]
