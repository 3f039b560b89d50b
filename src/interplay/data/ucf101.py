"""UCF101 action recognition from RGB frames and TV-L1 optical flow (``ucf101``), the two-stream layout.

On-disk layout under ``--data-root`` (the official split lists plus the frame/flow release of the two-stream
papers, e.g. feichtenhofer/twostreamfusion's ``jpegs_256`` and ``tvl1_flow``)::

    ucfTrainTestlist/classInd.txt             "1 ApplyEyeMakeup" lines (1-based class ids, 101 classes)
    ucfTrainTestlist/trainlist0{1,2,3}.txt    "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1" lines
    ucfTrainTestlist/testlist0{1,2,3}.txt     "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi" lines
    jpegs_256/<video>/frame000001.jpg ...      RGB frames (<video> = the list entry's file name without .avi)
    tvl1_flow/u/<video>/frame000001.jpg ...    horizontal flow, grayscale (128 = no motion)
    tvl1_flow/v/<video>/frame000001.jpg ...    vertical flow

A clip's class is its list entry's folder (matched to classInd.txt case-insensitively, as the release spells
``HandstandPushups`` / ``HandStandPushups`` both ways); a train-list label that disagrees is refused.

Per clip: ``rgb`` is ``(n_frames, 3, image_size, image_size)``: frames at evenly spaced fixed positions of the
clip's RGB frames (:func:`interplay.data.media.frame_positions`); ``flow`` is
``(n_frames, 2 * flow_stack, image_size, image_size)``: at evenly spaced fixed positions of the flow frames,
``flow_stack`` consecutive flow frames, channels interleaved ``u_t, v_t, u_t+1, v_t+1, ...`` (the two-stream
input with ``flow_stack=10``; clips with fewer flow frames repeat the last). Decoded uint8 arrays are cached on
disk (:func:`interplay.data.cache.cached`) keyed by the clip list, the frame counts, the sizes and modification
times of the frames read and the preprocessing parameters.

Validation: whole UCF101 *groups* (``gXX``: the clips of one group are cut from one long video, so a random clip
split leaks) held out of the training list, seeded, about ``val_fraction`` of the groups. See
``docs/data/ucf101.md``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from .cache import cached, files_fingerprint
from .dataset import DATASETS, VERIFIERS, Check, DataInfo, DataSplits, MultimodalDataset, data_root, problems
from .media import frame_positions, list_frames, read_image, subsample_indices

PREPROCESSING_VERSION = "1"
N_CLASSES = 101
#: (train, test) clips of the official splits
USUAL_SPLITS: dict[int, tuple[int, int]] = {1: (9537, 3783), 2: (9586, 3697), 3: (9624, 3696)}
CLIP_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$")
WHERE = ("get UCF101 from the UCF CRCV site (https://www.crcv.ucf.edu/data/UCF101.php: UCF101TrainTestSplits-"
         "RecognitionTask.zip -> ucfTrainTestlist/) and its RGB frames and TV-L1 flow as released with "
         "feichtenhofer/twostreamfusion (jpegs_256/, tvl1_flow/u/, tvl1_flow/v/), and put them under "
         "--data-root / data.root (see docs/data/ucf101.md)")


# ------------------------------------------------------------------------------------------------- lists
@dataclass
class ClipList:
    """One split list: video names (``v_<Class>_gXX_cXX``), 0-based labels, group and clip numbers."""

    path: Path
    names: list[str]
    labels: np.ndarray
    groups: np.ndarray
    clips: np.ndarray

    def subset(self, idx: np.ndarray) -> ClipList:
        return ClipList(self.path, [self.names[i] for i in idx], self.labels[idx], self.groups[idx], self.clips[idx])

    def __len__(self) -> int:
        return len(self.names)


def _read_lines(path: Path, what: str) -> list[tuple[int, str]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found ({what}); {WHERE}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable {what} ({exc})") from None
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_class_index(path: Path) -> list[str]:
    """``classInd.txt`` -> class names by 0-based label (the file's ids are 1-based and must be 1..K)."""
    by_id: dict[int, str] = {}
    for lineno, line in _read_lines(path, "the class index"):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}:{lineno}: expected '<id> <ClassName>' (e.g. '1 ApplyEyeMakeup'), got {line!r}")
        cid, name = int(parts[0]), parts[1]
        if cid in by_id:
            raise DataError(f"{path}:{lineno}: class id {cid} is listed twice")
        if name.lower() in (n.lower() for n in by_id.values()):
            raise DataError(f"{path}:{lineno}: class {name} is listed twice")
        by_id[cid] = name
    if not by_id:
        raise DataError(f"{path}: no classes listed (expected '<id> <ClassName>' lines)")
    if sorted(by_id) != list(range(1, len(by_id) + 1)):
        raise DataError(f"{path}: class ids must be 1..{len(by_id)} (1-based, no gaps), got {min(by_id)}.."
                        f"{max(by_id)}")
    return [by_id[i] for i in range(1, len(by_id) + 1)]


def parse_clip_name(name: str) -> tuple[str, int, int]:
    """``"v_ApplyEyeMakeup_g08_c01"`` -> ``("ApplyEyeMakeup", 8, 1)``."""
    m = CLIP_NAME.match(name)
    if m is None:
        raise ValueError(f"video name {name!r} does not look like v_<Class>_gXX_cXX")
    return m["cls"], int(m["group"]), int(m["clip"])


def read_split_list(path: Path, classes: list[str]) -> ClipList:
    """A ``trainlist0N.txt`` (``<Class>/<video>.avi <id>``) or ``testlist0N.txt`` (``<Class>/<video>.avi``)."""
    lookup = {c.lower(): i for i, c in enumerate(classes)}
    names: list[str] = []
    labels: list[int] = []
    groups: list[int] = []
    clips: list[int] = []
    seen: set[str] = set()
    for lineno, line in _read_lines(path, "a split list"):
        parts = line.split()
        if len(parts) not in (1, 2) or (len(parts) == 2 and not parts[1].isdigit()):
            raise DataError(f"{path}:{lineno}: expected '<Class>/<video>.avi [<class id>]', got {line!r}")
        entry = parts[0].replace("\\", "/")
        folder, _, file = entry.rpartition("/")
        name = file[:-4] if file.lower().endswith(".avi") else file
        try:
            name_class, group, clip = parse_clip_name(name)
        except ValueError as exc:
            raise DataError(f"{path}:{lineno}: {exc}") from None
        folder = folder.rsplit("/", 1)[-1] or name_class
        if folder.lower() not in lookup:
            raise DataError(f"{path}:{lineno}: class {folder!r} is not in classInd.txt ({len(classes)} classes)")
        label = lookup[folder.lower()]
        if len(parts) == 2 and int(parts[1]) != label + 1:
            raise DataError(f"{path}:{lineno}: class id {parts[1]} disagrees with the folder {folder} "
                            f"(id {label + 1} in classInd.txt)")
        if name in seen:
            raise DataError(f"{path}:{lineno}: video {name} is listed twice")
        seen.add(name)
        names.append(name)
        labels.append(label)
        groups.append(group)
        clips.append(clip)
    if not names:
        raise DataError(f"{path}: no videos listed")
    return ClipList(path, names, np.asarray(labels, dtype=np.int64), np.asarray(groups, dtype=np.int64),
                    np.asarray(clips, dtype=np.int64))


def read_split(base: Path, split: int, lists_dir: str = "ucfTrainTestlist") -> tuple[ClipList, ClipList, list[str]]:
    """``(train list, test list, class names)`` of official split ``split`` (1, 2 or 3); the lists must be
    disjoint."""
    if split not in (1, 2, 3):
        raise ConfigError(f"data.split: expected 1, 2 or 3, got {split!r}")
    lists = base / lists_dir
    classes = read_class_index(lists / "classInd.txt")
    train = read_split_list(lists / f"trainlist0{split}.txt", classes)
    test = read_split_list(lists / f"testlist0{split}.txt", classes)
    overlap = sorted(set(train.names) & set(test.names))
    if overlap:
        raise DataError(f"{test.path}: video {overlap[0]} is also in {train.path.name} ({len(overlap)} shared); "
                        f"the splits must be disjoint")
    return train, test, classes


def group_split(groups: np.ndarray, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(train, val)`` indices: a seeded ``round(val_fraction * n_groups)`` (at least 1, at most n_groups - 1)
    of the group numbers go to validation, for every class alike, so no group is in both parts."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"data.val_fraction: expected a number in (0, 1), got {val_fraction}")
    unique = np.unique(groups)
    if unique.size < 2:
        raise DataError(f"the training list needs clips of at least 2 groups (gXX) to hold out validation, got "
                        f"{unique.size}")
    k = min(unique.size - 1, max(1, round(val_fraction * unique.size)))
    held = rng.permutation(unique)[:k]
    is_val = np.isin(groups, held)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


# ------------------------------------------------------------------------------------------------- decoding
@dataclass(frozen=True)
class Preprocessing:
    """Everything that determines the decoded frames (part of the cache key)."""

    n_frames: int = 3
    image_size: int = 64
    flow_stack: int = 1
    rgb_dir: str = "jpegs_256"
    flow_dir: str = "tvl1_flow"

    def validate(self) -> Preprocessing:
        checks = [("n_frames", self.n_frames >= 1, "a positive integer"),
                  ("image_size", self.image_size >= 4, "an integer >= 4"),
                  ("flow_stack", self.flow_stack >= 1, "a positive integer (the two-stream papers use 10)")]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"data.{name}: expected {expected}, got {getattr(self, name)!r}")
        return self

    @property
    def rgb_shape(self) -> tuple[int, int, int, int]:
        return self.n_frames, 3, self.image_size, self.image_size

    @property
    def flow_shape(self) -> tuple[int, int, int, int]:
        return self.n_frames, 2 * self.flow_stack, self.image_size, self.image_size


def flow_positions(n_available: int, n_frames: int, flow_stack: int) -> np.ndarray:
    """``(n_frames, flow_stack)`` flow frame indices: stacks of ``flow_stack`` consecutive frames starting at
    evenly spaced fixed positions (indices past the last frame repeat the last)."""
    starts = frame_positions(max(1, n_available - flow_stack + 1), n_frames)
    return np.minimum(starts[:, None] + np.arange(flow_stack)[None, :], n_available - 1)


@dataclass
class ClipFiles:
    """The files one clip's decoding reads: ``rgb`` (n_frames,), ``u`` and ``v`` (n_frames, flow_stack)."""

    rgb: list[Path]
    u: list[list[Path]]
    v: list[list[Path]]
    counts: tuple[int, int]  # RGB frames, flow frames


def clip_files(base: Path, name: str, prep: Preprocessing) -> ClipFiles:
    """List a clip's RGB and flow folders and pick the frames to read; :class:`DataError` naming the folder when
    one is missing or empty, or when ``u`` and ``v`` hold different numbers of frames."""
    folders = {"rgb": base / prep.rgb_dir / name, "u": base / prep.flow_dir / "u" / name,
               "v": base / prep.flow_dir / "v" / name}
    files: dict[str, list[Path]] = {}
    for key, directory in folders.items():
        files[key] = list_frames(directory)
        if not files[key]:
            what = "holds no .jpg frames" if directory.is_dir() else "frames directory not found"
            raise DataError(f"{directory}: {what} (every listed video needs RGB frames and u/v flow); {WHERE}")
    n_flow = len(files["u"])
    if len(files["v"]) != n_flow:
        raise DataError(f"{folders['v']}: {len(files['v'])} flow frames but {folders['u']} has {n_flow}; "
                        f"u and v must pair up")
    pos = flow_positions(n_flow, prep.n_frames, prep.flow_stack)
    return ClipFiles([files["rgb"][i] for i in frame_positions(len(files["rgb"]), prep.n_frames)],
                     [[files["u"][i] for i in row] for row in pos], [[files["v"][i] for i in row] for row in pos],
                     (len(files["rgb"]), n_flow))


def read_gray(path: Path, size: int) -> np.ndarray:
    """``(size, size)`` uint8 grayscale (a flow frame; bilinear resize)."""
    return read_image(path, size)[0]


def decode_clips(base: Path, names: list[str], prep: Preprocessing, desc: str = "ucf101") -> dict[str, Any]:
    """Decode (or load from the cache) ``{"rgb": (N, T, 3, S, S) uint8, "flow": (N, T, 2L, S, S) uint8,
    "frames_available": (N,) int64}`` (L = ``flow_stack``; ``frames_available``: RGB frames per clip)."""
    chosen = [clip_files(base, name, prep) for name in names]
    listing = "\n".join(f"{n}\t{c.counts[0]}\t{c.counts[1]}" for n, c in zip(names, chosen))
    used = (p for c in chosen for p in (*c.rgb, *(f for row in c.u for f in row), *(f for row in c.v for f in row)))
    params = {"root": str(base.resolve()), "clips": hashlib.sha256(listing.encode()).hexdigest(),
              "files": files_fingerprint(used), **asdict(prep)}

    def build() -> dict[str, Any]:
        from tqdm import tqdm

        n, size = len(names), prep.image_size
        rgb = np.empty((n, *prep.rgb_shape), dtype=np.uint8)
        flow = np.empty((n, *prep.flow_shape), dtype=np.uint8)
        for i, c in enumerate(tqdm(chosen, desc=f"{desc}: decoding clips", disable=None, leave=False)):
            rgb[i] = np.stack([read_image(f, size) for f in c.rgb])
            for t, (us, vs) in enumerate(zip(c.u, c.v)):
                for k, (fu, fv) in enumerate(zip(us, vs)):
                    flow[i, t, 2 * k] = read_gray(fu, size)
                    flow[i, t, 2 * k + 1] = read_gray(fv, size)
        return {"rgb": torch.from_numpy(rgb), "flow": torch.from_numpy(flow),
                "frames_available": torch.as_tensor([c.counts[0] for c in chosen], dtype=torch.int64)}

    return cached("ucf101", params, PREPROCESSING_VERSION, build)


def channel_stats(x: Tensor, period: int) -> tuple[Tensor, Tensor]:
    """Mean and std of ``x / 255`` (``(N, T, C, S, S)`` uint8) per channel index modulo ``period``: per colour
    channel for RGB (``period=3``), per flow direction u/v for stacked flow (``period=2``). Shapes ``(period,)``."""
    n, t, c, h, w = x.shape
    total = torch.zeros(period, dtype=torch.float64)
    squares = torch.zeros(period, dtype=torch.float64)
    for start in range(0, n, 256):  # in chunks: a float copy of all stacked flow would double the peak memory
        v = x[start:start + 256].double().div_(255.0).view(-1, t, c // period, period, h, w)
        total += v.sum((0, 1, 2, 4, 5))
        squares += v.square().sum((0, 1, 2, 4, 5))
    count = n * t * (c // period) * h * w
    mean = total / count
    var = (squares - count * mean.square()) / max(count - 1, 1)
    return mean.float(), var.clamp_min(0).sqrt().float().clamp_min(1e-6)


def standardise(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``(x / 255 - mean) / std``, the ``(period,)`` statistics repeated along the channel axis of
    ``(N, T, C, S, S)``."""
    reps = x.shape[2] // mean.numel()
    m, s = (a.repeat(reps).view(1, 1, -1, 1, 1) for a in (mean, std))
    return x.float().div_(255.0).sub_(m).div_(s)


def _base(root: str | None) -> Path:
    return data_root(root, "ucf101", "ucfTrainTestlist/, jpegs_256/, tvl1_flow/", WHERE)


@DATASETS.register("ucf101")
def ucf101(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
           root: str | None = None, split: Literal[1, 2, 3] = 1, n_frames: int = 3, image_size: int = 64,
           flow_stack: int = 1, rgb_dir: str = "jpegs_256", flow_dir: str = "tvl1_flow",
           lists_dir: str = "ucfTrainTestlist") -> DataSplits:
    """UCF101, 101 actions from RGB frames and TV-L1 optical flow: official split ``split`` (trainlist0N /
    testlist0N), validation = about ``val_fraction`` of the training groups (gXX), seeded.

    ``rgb``: (n_frames, 3, image_size, image_size); ``flow``: (n_frames, 2 * flow_stack, image_size, image_size),
    ``flow_stack`` consecutive (u, v) pairs per position (10 in the two-stream papers). ``meta``: ``group``,
    ``clip`` (the gXX / cXX numbers) and ``frames_available`` (RGB frames of the video). Needs --data-root and
    pillow.
    """
    prep = Preprocessing(n_frames, image_size, flow_stack, rgb_dir, flow_dir).validate()
    base = _base(root)
    train_list, test_list, classes = read_split(base, split, lists_dir)
    rng = np.random.default_rng(seed)
    test_list = test_list.subset(subsample_indices(len(test_list), n_test, rng))
    train_list = train_list.subset(subsample_indices(len(train_list), n_train, rng))
    tr, va = group_split(train_list.groups, val_fraction, rng)
    pool = decode_clips(base, train_list.names, prep, "ucf101 train")
    test = decode_clips(base, test_list.names, prep, "ucf101 test")
    parts: dict[str, tuple[dict[str, Tensor], ClipList]] = {}
    for key, idx in (("train", tr), ("val", va)):
        t = torch.as_tensor(idx, dtype=torch.long)
        parts[key] = ({k: v[t] for k, v in pool.items()}, train_list.subset(idx))
    parts["test"] = (test, test_list)
    rgb_mean, rgb_std = channel_stats(parts["train"][0]["rgb"], 3)
    flow_mean, flow_std = channel_stats(parts["train"][0]["flow"], 2)
    sets: dict[str, MultimodalDataset] = {}
    for key, (arrays, cl) in parts.items():
        inputs = {"rgb": standardise(arrays["rgb"], rgb_mean, rgb_std),
                  "flow": standardise(arrays["flow"], flow_mean, flow_std)}
        meta = {"group": torch.as_tensor(cl.groups), "clip": torch.as_tensor(cl.clips),
                "frames_available": arrays["frames_available"]}
        sets[key] = MultimodalDataset(inputs, torch.as_tensor(cl.labels), meta, name=f"ucf101/{key}")
    stats = {"rgb_mean": rgb_mean.tolist(), "rgb_std": rgb_std.tolist(), "flow_mean": flow_mean.tolist(),
             "flow_std": flow_std.tolist()}
    info = DataInfo(name="ucf101", modalities={"flow": prep.flow_shape, "rgb": prep.rgb_shape},
                    num_classes=len(classes), class_names=list(classes),
                    extra={"normalisation": stats, "split": split, "flow_stack": flow_stack,
                           "val_groups": sorted(set(train_list.groups[va].tolist())),
                           "preprocessing_version": PREPROCESSING_VERSION})
    return DataSplits(train=sets["train"], val=sets["val"], test=sets["test"], info=info)


# ------------------------------------------------------------------------------------------------- verify
def verify_ucf101(root: str | None, prep: Preprocessing | None = None, lists_dir: str = "ucfTrainTestlist"
                  ) -> list[Check]:
    """The class index (101 classes), the three official splits (format, labels, disjointness, sizes), and for
    every video of any list: RGB frames and u/v flow present (first and last decodable, u/v counts equal).
    UCF101 publishes no checksums for the frame release; counts are reported instead."""
    prep = prep or Preprocessing()
    try:
        base = _base(root)
        classes = read_class_index(base / lists_dir / "classInd.txt")
    except DataError as exc:
        return [Check(False, str(exc))]
    checks = [Check(True, f"{base / lists_dir / 'classInd.txt'}: {len(classes)} classes"
                          + ("" if len(classes) == N_CLASSES else f" (UCF101 has {N_CLASSES})"))]
    names: dict[str, None] = {}
    for split in (1, 2, 3):
        try:
            train, test, _ = read_split(base, split, lists_dir)
        except DataError as exc:
            checks.append(Check(False, str(exc)))
            continue
        usual = USUAL_SPLITS[split]
        note = "the official sizes" if (len(train), len(test)) == usual else \
            f"the official split has {usual[0]:,} / {usual[1]:,}"
        tr_groups, te_groups = set(train.groups.tolist()), set(test.groups.tolist())
        checks.append(Check(True, f"split {split}: {len(train):,} train / {len(test):,} test videos ({note}), "
                                  f"disjoint; {len(tr_groups)} train and {len(te_groups)} test groups, "
                                  f"{len(tr_groups & te_groups)} in both"))
        names.update(dict.fromkeys(train.names))
        names.update(dict.fromkeys(test.names))
    if not names:
        return checks
    missing: list[str] = []
    bad: list[str] = []
    rgb_counts: list[int] = []
    flow_counts: list[int] = []
    ends = Preprocessing(2, prep.image_size, 1, prep.rgb_dir, prep.flow_dir)  # positions 0 and n-1
    for name in names:
        try:
            c = clip_files(base, name, ends)
        except DataError as exc:
            missing.append(str(exc).split(" (every")[0])
            continue
        rgb_counts.append(c.counts[0])
        flow_counts.append(c.counts[1])
        try:
            for f in dict.fromkeys(c.rgb):
                read_image(f, prep.image_size)
            for f in dict.fromkeys(row[0] for row in (*c.u, *c.v)):
                read_gray(f, prep.image_size)
        except DataError as exc:
            bad.append(str(exc))
    if missing or bad:
        found = problems({"with missing or unpaired frames": missing, "with unreadable frames": bad})
        checks.append(Check(False, f"{base}: of {len(names):,} listed videos {found}; {WHERE}"))
    else:
        checks.append(Check(True, f"{base}: RGB frames and u/v flow for all {len(names):,} listed videos, "
                                  f"{min(rgb_counts)}-{max(rgb_counts)} RGB and {min(flow_counts)}-{max(flow_counts)} "
                                  f"flow frames per video"))
    return checks


VERIFIERS.register("ucf101")(verify_ucf101)
