"""``token-xor``: pid-xor's latent structure rendered as tokens, image patches and words (for token-level models).

Same sources and ``mix`` as ``pid-xor`` with two modalities (``unique1`` = the image, ``unique2`` = the text,
``redundant``, ``synergistic``), a binary label ``y`` and one latent bit per active source:

* ``unique1`` / ``unique2``: the bit ``y`` in that modality's *unique* slot;
* ``redundant``: ``y`` in both modalities' *redundant* slots;
* ``synergistic``: ``b ~ Bernoulli(1/2)`` in the image's *synergy* slot and ``y xor b`` in the text's: either
  modality alone says nothing about ``y``.

Rendering (slots that carry no bit stay uninformative):

* ``image`` ``(channels, size, size)``: ``N(0, noise^2)`` pixels; slot ``k`` owns ``patches`` fixed 4x4 patches
  (drawn once from ``projection_seed``); an active slot adds ``sign(bit) * |N(0, strength^2)| * T_k`` to its
  patches, with ``T_k`` a fixed ``N(0, 0.5^2)`` template per slot (one magnitude per sample and slot, as
  pid-xor's ``|N(0, s^2)| sign`` codes);
* ``text`` ``(length,)`` word ids (stored as floats): ``length`` filler words drawn uniformly from ``fillers``
  ids; an active slot writes its word for the bit (two words per slot) at a random position.

Token ids: 0 unused (padding), ``1 .. fillers`` filler words, then two words per slot; ``info.extra["vocab_size"]``
says how many ids a model needs. Not standardised. ``meta["interaction"]`` is each sample's source code.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ..errors import ConfigError
from .dataset import DATASETS, DataInfo, DataSplits, MultimodalDataset, holdout_splits, validated_by
from .synthetic import check_split_sizes, parse_mix, pid_xor_sources

SLOTS = ("unique", "redundant", "synergy")
PATCH = 4


def check_token_xor(*, n_train: int | None, n_test: int | None, val_fraction: float, mix: str | Mapping[str, float],
                    size: int, channels: int, patches: int, length: int, fillers: int, strength: float, noise: float,
                    **_: object) -> dict[str, float]:
    """Validate token-xor's parameter values (cheap; nothing drawn); return the parsed mix."""
    check_split_sizes(2000 if n_train is None else n_train, 1000 if n_test is None else n_test, val_fraction)
    if size < PATCH or size % PATCH:
        raise ConfigError(f"data.size: expected a positive multiple of {PATCH}, got {size}")
    if channels < 1:
        raise ConfigError(f"data.channels: expected a positive integer, got {channels}")
    if patches < 1 or len(SLOTS) * patches > (size // PATCH) ** 2:
        raise ConfigError(f"data.patches: {len(SLOTS)} slots of {patches} patches must fit in the "
                          f"{(size // PATCH) ** 2} patches of a {size}x{size} image")
    if length < 1:
        raise ConfigError(f"data.length: expected a positive number of words, got {length}")
    if fillers < 1:
        raise ConfigError(f"data.fillers: expected a positive number of filler words, got {fillers}")
    for name, value in (("strength", strength), ("noise", noise)):
        if not np.isfinite(value) or value < 0:
            raise ConfigError(f"data.{name}: expected a finite non-negative number, got {value}")
    return parse_mix(mix, pid_xor_sources(2))


@DATASETS.register("token-xor")
@validated_by(check_token_xor)
def token_xor(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
              root: str | None = None, mix: str | dict[str, float] = "redundant=0.9,synergistic=0.1",
              size: int = 16, channels: int = 3, patches: int = 2, length: int = 8, fillers: int = 16,
              strength: float = 3.0, noise: float = 1.0, projection_seed: int = 1234) -> DataSplits:
    """Token-level XOR (see the module docstring): ``image`` ``(channels, size, size)`` and ``text`` ``(length,)``
    word ids; ``n_train`` samples (default 2000, ``val_fraction`` of them validation), ``n_test`` (default 1000)."""
    weights = check_token_xor(n_train=n_train, n_test=n_test, val_fraction=val_fraction, mix=mix, size=size,
                              channels=channels, patches=patches, length=length, fillers=fillers,
                              strength=strength, noise=noise)
    n_train = 2000 if n_train is None else n_train
    n_test = 1000 if n_test is None else n_test
    sources = pid_xor_sources(2)
    grid = size // PATCH
    proj_rng = np.random.default_rng(projection_seed)
    cells = proj_rng.permutation(grid * grid)[:len(SLOTS) * patches].reshape(len(SLOTS), patches)
    templates = proj_rng.normal(0.0, 0.5, size=(len(SLOTS), channels, PATCH, PATCH))

    rng = np.random.default_rng(seed)
    n = n_train + n_test
    y = rng.integers(0, 2, size=n)
    source = rng.choice(len(sources), size=n, p=[weights.get(s, 0.0) for s in sources])
    # the latent bits per modality and slot: +-1 where the slot is active, 0 where it carries nothing
    bits = {m: np.zeros((n, len(SLOTS)), dtype=np.int64) for m in ("image", "text")}
    sign = 2 * y - 1
    for i, m in enumerate(("image", "text")):
        rows = source == sources.index(f"unique{i + 1}")
        bits[m][rows, 0] = sign[rows]
    rows = source == sources.index("redundant")
    for m in bits:
        bits[m][rows, 1] = sign[rows]
    rows = np.flatnonzero(source == sources.index("synergistic"))
    b = rng.integers(0, 2, size=len(rows))
    bits["image"][rows, 2] = 2 * b - 1
    bits["text"][rows, 2] = 2 * ((y[rows] + b) % 2) - 1

    image = rng.normal(0.0, noise, size=(n, channels, size, size))
    magnitude = np.abs(rng.normal(0.0, strength, size=(n, len(SLOTS))))
    for k in range(len(SLOTS)):
        code = bits["image"][:, k] * magnitude[:, k]  # 0 where inactive
        for cell in cells[k]:
            r, c = divmod(int(cell), grid)
            rows_, cols_ = slice(r * PATCH, (r + 1) * PATCH), slice(c * PATCH, (c + 1) * PATCH)
            image[:, :, rows_, cols_] += code[:, None, None, None] * templates[k]
    text = rng.integers(1, fillers + 1, size=(n, length))
    position = rng.integers(0, length, size=(n, len(SLOTS)))
    for k in range(len(SLOTS)):
        active = np.flatnonzero(bits["text"][:, k] != 0)
        word = fillers + 1 + 2 * k + (bits["text"][active, k] > 0)
        text[active, position[active, k]] = word
    vocab = fillers + 1 + 2 * len(SLOTS)

    info = DataInfo(name="token-xor", modalities={"image": (channels, size, size), "text": (length,)}, num_classes=2,
                    interactions=sources,
                    extra={"mix": weights, "vocab_size": vocab,
                           "image_patches": {s: cells[k].tolist() for k, s in enumerate(SLOTS)}})
    full = MultimodalDataset({"image": torch.as_tensor(image, dtype=torch.float32),
                              "text": torch.as_tensor(text, dtype=torch.float32)},
                             torch.as_tensor(y, dtype=torch.long), {"interaction": torch.as_tensor(source)},
                             name="token-xor")
    return holdout_splits(full, n_train, val_fraction, rng, info, "token-xor")
