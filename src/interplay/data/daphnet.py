"""Daphnet freezing of gait: three accelerometers (ankle, thigh, trunk) cut into windows, label = freeze in window.

Source recordings: Baechlin et al., "Wearable assistant for Parkinson's disease patients with the freezing of gait
symptom", IEEE T-ITB 14(2), 2010; 3-axis accelerometers at 64 Hz on the ankle (shank), the thigh (above the knee)
and the trunk (hip). Two readers:

* default: the excerpt ``S06R02E0`` shipped inside ``aeon`` (``aeon/datasets/data/Daphnet_S06R02E0/S06R02E0.csv``,
  TimeEval's anomaly-detection version: ``timestamp``, nine channels, ``is_anomaly`` = freeze), read from aeon's
  package directory without importing aeon (optional extra ``interplay[datasets]``). **Its 7,040 steps contain
  no freeze** (``is_anomaly`` is 0 throughout; aeon 1.6 deprecates the file for that reason), so every window is
  class 0 and no classifier can be trained on it: loading it raises one line saying so.
* ``root``: a directory of the original release's ``S<ss>R<rr>.txt`` files (space-separated: time [ms], ankle x3,
  thigh x3, trunk x3 [mg], annotation 0 = not part of the experiment, 1 = no freeze, 2 = freeze), e.g.
  ``dataset_fog_release/dataset``; ``data.files`` picks some (default all). Steps annotated 0 are dropped, which
  splits a recording into separate segments.

Windows (documented defaults): ``window = 256`` steps (4 s) every ``stride = 128`` steps (2 s, 50 % overlap); a
window's label is 1 if any of its steps is a freeze. Split without leakage between overlapping windows: each
continuous segment is cut into contiguous blocks of ``block = 2048`` steps (32 s; the last block of a segment
takes the rest), windows are formed inside blocks only, and whole blocks are assigned to test / val / train
(``test_fraction``, ``val_fraction`` of the blocks), stratified by whether a block holds a freeze, with a fixed
seed (``split_seed = 0``, independent of the training seed). Each modality is a ``(window, 3)`` sequence
(standardised per channel with training statistics) for the sequence encoders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .basicmotions import aeon_data_dir
from .dataset import DATASETS, DataInfo, DataSplits, MultimodalDataset

DAPHNET_MODALITIES = ("ankle", "thigh", "trunk")
AEON_FILE = "S06R02E0.csv"


def read_aeon_excerpt(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The aeon / TimeEval CSV: ``[(signals (T, 9), freeze (T,) bool)]`` (one segment)."""
    try:
        table = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=range(1, 11), dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable Daphnet CSV ({exc})") from None
    if table.ndim != 2 or table.shape[1] != 10 or not np.isfinite(table).all():
        raise DataError(f"{path}: expected a timestamp, nine accelerometer channels and is_anomaly per row")
    return [(table[:, :9], table[:, 9] > 0)]


def read_release(root: Path, files: Sequence[str] | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Segments of the original release's ``S<ss>R<rr>.txt`` files: runs of steps annotated 1 or 2 (0 dropped)."""
    paths = sorted(root.glob("S*R*.txt")) if not files else [root / f for f in files]
    if not paths:
        raise DataError(f"{root}: no S<ss>R<rr>.txt files (the Daphnet release's dataset/ folder)")
    segments = []
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        try:
            table = np.loadtxt(path, ndmin=2)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable Daphnet recording ({exc})") from None
        if table.shape[1] != 11 or not np.isin(table[:, 10], (0, 1, 2)).all():
            raise DataError(f"{path}: expected 11 columns (time, 9 accelerometer channels, annotation 0/1/2)")
        inside = table[:, 10] > 0
        edges = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2]):
            segments.append((table[start:stop, 1:10], table[start:stop, 10] == 2))
    return segments


def blocks_of(segments: list[tuple[np.ndarray, np.ndarray]], block: int,
              window: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous blocks of ``block`` steps per segment (the last one takes the rest; a segment shorter than
    ``window`` is dropped)."""
    out = []
    for x, f in segments:
        starts = list(range(0, len(x), block))
        if len(starts) > 1 and len(x) - starts[-1] < window:
            starts.pop()  # merge a short tail into the previous block
        for i, s in enumerate(starts):
            e = starts[i + 1] if i + 1 < len(starts) else len(x)
            if e - s >= window:
                out.append((x[s:e], f[s:e]))
    return out


def windows_of(x: np.ndarray, freeze: np.ndarray, window: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``(W, window, 9)`` windows every ``stride`` steps and their labels (1 if any step is a freeze)."""
    starts = np.arange(0, len(x) - window + 1, stride)
    idx = starts[:, None] + np.arange(window)[None, :]
    labels = np.asarray(freeze[idx].any(axis=1), dtype=np.int64)
    return x[idx], labels


def assign_blocks(has_freeze: np.ndarray, test_fraction: float, val_fraction: float,
                  seed: int) -> np.ndarray:
    """Split code per block (0 train, 1 val, 2 test), stratified by ``has_freeze``: within each stratum a seeded
    permutation, the first ``round(test_fraction n)`` blocks to test, the next ``round(val_fraction n)`` to val; if
    that leaves test or val without a block, the last training block of the larger stratum moves there."""
    rng = np.random.default_rng(seed)
    code = np.zeros(len(has_freeze), dtype=np.int64)
    order = []
    for value in (False, True):
        idx = rng.permutation(np.flatnonzero(has_freeze == value))
        n_test = int(round(test_fraction * len(idx)))
        n_val = int(round(val_fraction * len(idx)))
        code[idx[:n_test]] = 2
        code[idx[n_test:n_test + n_val]] = 1
        order.append(idx)
    for split in (2, 1):  # few blocks: rounding may leave test or val empty; move one training block there
        if not (code == split).any():
            spare = [i for idx in sorted(order, key=len, reverse=True) for i in idx.tolist() if code[i] == 0]
            if len(spare) > 1:
                code[spare[-1]] = split
    return code


@DATASETS.register("daphnet")
def daphnet(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.15,
            root: str | None = None, files: list[str] | None = None, window: int = 256, stride: int = 128,
            block: int = 2048, test_fraction: float = 0.25, split_seed: int = 0,
            standardize: bool = True) -> DataSplits:
    """Daphnet freezing of gait: ``ankle``, ``thigh``, ``trunk`` accelerometer windows ``(window, 3)``; label 1 if
    the window holds a freeze. Default source: aeon's excerpt S06R02E0 (which holds no freeze: refused with one
    line); ``root``: the original release's ``S<ss>R<rr>.txt`` files (``files`` selects some). ``window`` /
    ``stride`` in steps at 64 Hz (256 / 128: 4 s every 2 s); blocks of ``block`` steps go whole to one split
    (``test_fraction`` / ``val_fraction`` of the blocks, stratified by freeze, seeded by ``split_seed``), so
    overlapping windows never straddle splits. ``n_train`` / ``n_test`` subsample windows (seeded by ``seed``).
    """
    if not (0 < window and 0 < stride and block >= window):
        raise ConfigError(f"data.window / stride / block: expected window > 0, stride > 0 and block >= window, got "
                          f"{window}, {stride}, {block}")
    if not (0 < test_fraction < 1 and 0 < val_fraction < 1 and test_fraction + val_fraction < 1):
        raise ConfigError(f"data.test_fraction / val_fraction: expected fractions in (0, 1) summing below 1, got "
                          f"{test_fraction}, {val_fraction}")
    if root is None:
        path = aeon_data_dir("daphnet", "Daphnet_S06R02E0") / AEON_FILE
        segments = read_aeon_excerpt(path)
        source = str(path)
    else:
        segments = read_release(Path(root), files)
        source = str(root)
    if not any(f.any() for _, f in segments):
        raise DataError(f"{source}: no freeze-of-gait step in this recording (the aeon excerpt S06R02E0 has none: "
                        f"is_anomaly is 0 on all its steps), so every window would be class 0; pass --data-root "
                        f"with the Daphnet release's S<ss>R<rr>.txt files (docs/data/daphnet.md)")
    blocks = blocks_of(segments, block, window)
    if len(blocks) < 3:
        raise DataError(f"{source}: {len(blocks)} block(s) of {block} steps; need at least 3 (train, val, test); "
                        f"lower data.block")
    has_freeze = np.array([f.any() for _, f in blocks])
    code = assign_blocks(has_freeze, test_fraction, val_fraction, split_seed)
    rng = np.random.default_rng(seed)
    parts = {}
    for value, name, limit in ((0, "train", n_train), (1, "val", None), (2, "test", n_test)):
        chosen = [windows_of(x, f, window, stride) for (x, f), c in zip(blocks, code) if c == value]
        if not chosen:
            raise DataError(f"{source}: the {name} split got no block; lower data.block or change the fractions")
        xs = np.concatenate([w for w, _ in chosen])
        ys = np.concatenate([y for _, y in chosen])
        if limit is not None and limit < len(ys):
            keep = np.sort(rng.choice(len(ys), size=max(1, limit), replace=False))
            xs, ys = xs[keep], ys[keep]
        inputs = {m: torch.as_tensor(xs[:, :, 3 * i:3 * i + 3], dtype=torch.float32)
                  for i, m in enumerate(DAPHNET_MODALITIES)}
        parts[name] = MultimodalDataset(inputs, torch.as_tensor(ys), name=f"daphnet/{name}")
    counts = {n: [int((d.target == c).sum()) for c in (0, 1)] for n, d in parts.items()}
    info = DataInfo(name="daphnet", modalities={m: (window, 3) for m in DAPHNET_MODALITIES}, num_classes=2,
                    class_names=["no freeze", "freeze"],
                    extra={"source": source, "window": window, "stride": stride, "block": block,
                           "blocks": {"train": int((code == 0).sum()), "val": int((code == 1).sum()),
                                      "test": int((code == 2).sum())},
                           "class_counts": counts, "split_seed": split_seed, "sampling_hz": 64})
    out = DataSplits(train=parts["train"], val=parts["val"], test=parts["test"], info=info)
    if standardize:
        from .features import standardize_splits

        info.extra["standardized"] = standardize_splits(out, skip_padding=False)
    return out
