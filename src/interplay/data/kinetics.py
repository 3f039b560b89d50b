"""Kinetics-Sounds audio-visual action recognition (``kinetics-sounds``) from frame folders and wavs.

On-disk layout under ``--data-root`` (the OGM-GE ``pre-processing/VGG&KS`` output), in one of two variants::

    train/<sample>/*.jpg              frames at 1 fps (sorted by name, numbers compared as numbers)
    train/<sample>/<sample>.wav       the clip's audio (16 kHz mono in the OGM-GE scripts; other rates resampled)
    test/<sample>/...                 likewise
    train.csv, test.csv               ``sample,label`` lines, label = class name (optional ``sample,label`` header)

or, when neither csv exists, class subfolders::

    train/<class>/<sample>/*.jpg + train/<class>/<sample>/<sample>.wav    (likewise test/)

Class order (label index = position): ``classes.txt`` (one class name per line) when present, else the sorted
class names of the training split. A sample folder without ``<sample>.wav`` but with exactly one ``*.wav`` uses
that file.

Per sample: ``audio`` is a ``(1, F, T)`` log-magnitude spectrogram of a fixed-length window (``audio_seconds``;
the centre of longer clips by default, ``audio_crop=start`` for the beginning; shorter clips repeated or
zero-padded) computed exactly as for CREMA-D (:func:`interplay.data.media.log_spectrogram`); ``visual`` is
``(n_frames, 3, image_size, image_size)``: ``n_frames`` frames at evenly spaced fixed positions of the sample's
frame list (:func:`interplay.data.media.frame_positions`). Decoded arrays are cached on disk
(:func:`interplay.data.cache.cached`) keyed by the sample list, the sizes and modification times of the files
read and the preprocessing parameters. Validation is a seeded, stratified part of the training list; the test
list is never touched for model selection. See ``docs/data/kinetics-sounds.md``.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .cache import cached, files_fingerprint
from .dataset import DATASETS, VERIFIERS, Check, DataInfo, DataSplits, MultimodalDataset, data_root, problems
from .media import (
    Preprocessing,
    SplitArrays,
    crop_wave,
    frame_positions,
    list_frames,
    load_wav,
    log_spectrogram,
    normalise,
    read_image,
    read_wav,
    subsample_indices,
    train_val_indices,
)

SPLITS: tuple[str, ...] = ("train", "test")
PREPROCESSING_VERSION = "1"
#: class counts of the versions used in the modality-imbalance literature (the rest of the videos are gone)
USUAL_CLASSES: tuple[int, ...] = (31, 32)
HEADER_LABELS = frozenset({"label", "labels", "class", "class_name", "category"})
WHERE = ("get Kinetics-Sounds, the 31/32-class audio-visual subset of Kinetics (Arandjelovic & Zisserman 2017), "
         "prepared with the OGM-GE pre-processing scripts (GeWu-Lab/OGM-GE_CVPR2022, pre-processing/VGG&KS: 1-fps "
         "jpg frames and <sample>.wav per clip), and put train/, test/ and train.csv/test.csv (or class "
         "subfolders) under --data-root / data.root (see docs/data/kinetics-sounds.md)")


# ------------------------------------------------------------------------------------------------- listing
# frames are listed in natural order (:func:`interplay.data.media.list_frames`)


@dataclass
class SampleList:
    """One split: sample names, label indices and sample folders (aligned); ``path`` is the csv or split folder
    the list came from."""

    path: Path
    names: list[str]
    labels: np.ndarray
    dirs: list[Path]

    def subset(self, idx: np.ndarray) -> SampleList:
        return SampleList(self.path, [self.names[i] for i in idx], self.labels[idx], [self.dirs[i] for i in idx])

    def __len__(self) -> int:
        return len(self.names)


def read_classes(path: Path) -> list[str]:
    """``classes.txt``: one class name per line (blank lines ignored, names stripped, no duplicates)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable class list ({exc})") from None
    classes: list[str] = []
    for lineno, line in enumerate(lines, 1):
        name = line.strip()
        if not name:
            continue
        if name in classes:
            raise DataError(f"{path}:{lineno}: class {name!r} is listed twice")
        classes.append(name)
    if not classes:
        raise DataError(f"{path}: no class names (expected one class name per line)")
    return classes


def _read_csv(path: Path) -> list[tuple[str, str, str]]:
    """``[(sample, class name, where)]`` of a ``sample,label`` file; ``where`` is ``path:line``."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: unreadable sample list ({exc})") from None
    out: list[tuple[str, str, str]] = []
    for lineno, row in enumerate(rows, 1):
        row = [c.strip() for c in row]
        if not row or not any(row):
            continue
        if len(row) != 2 or not row[0] or not row[1]:
            raise DataError(f"{path}:{lineno}: expected 'sample,label' (label = class name), got {','.join(row)!r}")
        if lineno == 1 and row[1].lower() in HEADER_LABELS:
            continue  # header
        out.append((row[0], row[1], f"{path}:{lineno}"))
    if not out:
        raise DataError(f"{path}: no samples listed (expected 'sample,label' lines)")
    return out


def _scan_class_folders(split_dir: Path) -> list[tuple[str, str, str]]:
    """``[(sample, class name, where)]`` of ``split_dir/<class>/<sample>/`` (hidden entries skipped)."""
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: directory not found; {WHERE}")
    out: list[tuple[str, str, str]] = []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if list_frames(class_dir) or any(class_dir.glob("*.wav")):
            raise DataError(f"{class_dir}: holds frames or a wav directly, but there is no train.csv/test.csv; "
                            f"expected class subfolders {split_dir}/<class>/<sample>/ or the csv lists")
        for sample_dir in sorted(p for p in class_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            out.append((sample_dir.name, class_dir.name, str(class_dir)))
    if not out:
        raise DataError(f"{split_dir}: no samples (expected {split_dir}/<class>/<sample>/ folders or "
                        f"train.csv/test.csv lists); {WHERE}")
    return out


def layout_variant(base: Path) -> Literal["csv", "folders"]:
    """``csv`` when ``train.csv`` or ``test.csv`` exists (both are then required), else ``folders``."""
    return "csv" if (base / "train.csv").exists() or (base / "test.csv").exists() else "folders"


def read_lists(base: Path) -> tuple[SampleList, SampleList, list[str], str]:
    """``(train, test, class names, where the class order came from)`` of a Kinetics-Sounds root.

    Checks: every listed class is in the class list, no sample is listed twice, train and test are disjoint.
    """
    variant = layout_variant(base)
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for split in SPLITS:
        if variant == "csv":
            path = base / f"{split}.csv"
            if not path.is_file():
                raise DataError(f"{path}: file not found (train.csv and test.csv go together; without both, "
                                f"labels come from class subfolders); {WHERE}")
            rows[split] = _read_csv(path)
        else:
            rows[split] = _scan_class_folders(base / split)
    classes_file = base / "classes.txt"
    if classes_file.is_file():
        classes, source = read_classes(classes_file), str(classes_file)
    else:
        classes, source = sorted({label for _, label, _ in rows["train"]}), "the training classes"
    index = {c: i for i, c in enumerate(classes)}
    lists: dict[str, SampleList] = {}
    for split in SPLITS:
        names: list[str] = []
        labels: list[int] = []
        dirs: list[Path] = []
        seen: set[str] = set()
        for name, label, where in rows[split]:
            if label not in index:
                raise DataError(f"{where}: class {label!r} is not in {source} ({len(classes)} classes)")
            if name in seen:
                raise DataError(f"{where}: sample {name} is listed twice in the {split} split")
            seen.add(name)
            names.append(name)
            labels.append(index[label])
            dirs.append(base / split / name if variant == "csv" else base / split / label / name)
        path = base / f"{split}.csv" if variant == "csv" else base / split
        lists[split] = SampleList(path, names, np.asarray(labels, dtype=np.int64), dirs)
    overlap = sorted(set(lists["train"].names) & set(lists["test"].names))
    if overlap:
        raise DataError(f"{lists['test'].path}: sample {overlap[0]} is also in the training split "
                        f"({len(overlap)} shared samples); the splits must be disjoint")
    return lists["train"], lists["test"], classes, source


# ------------------------------------------------------------------------------------------------- decoding
def sample_wav(directory: Path, name: str) -> Path:
    """``directory/<name>.wav``, else the folder's only ``*.wav``; :class:`DataError` when there is none."""
    wav = directory / f"{name}.wav"
    if wav.is_file():
        return wav
    if not directory.is_dir():
        raise DataError(f"{directory}: sample folder not found (every listed sample needs its frames and "
                        f"{name}.wav); {WHERE}")
    wavs = sorted(directory.glob("*.wav"))
    if len(wavs) == 1:
        return wavs[0]
    what = "file not found" if not wavs else f"file not found and {len(wavs)} other wavs are ambiguous"
    raise DataError(f"{wav}: {what} (every listed sample needs its audio); {WHERE}")


def sample_frames(directory: Path) -> list[Path]:
    """The sample's frames in natural order; :class:`DataError` naming the folder when there are none."""
    files = list_frames(directory)
    if not files:
        what = "holds no .jpg frames" if directory.is_dir() else "sample folder not found"
        raise DataError(f"{directory}: {what} (every listed sample needs its frames); {WHERE}")
    return files


def decode_samples(samples: SampleList, prep: Preprocessing, audio_crop: str,
                   desc: str = "kinetics-sounds") -> dict[str, Any]:
    """Decode (or load from the cache) ``{"audio": (N, 1, F, T) float16, "visual": (N, T, 3, S, S) uint8,
    "frames_available": (N,) int64, "audio_seconds": (N,) float32}`` (the last two: per sample, before cropping).

    Folders are listed on every call (a missing wav or frame folder fails here, before the cache is consulted);
    the cache key covers the frames actually read and the frame counts, so adding or replacing a frame
    that changes the selection re-decodes.
    """
    wavs: list[Path] = []
    chosen: list[list[Path]] = []
    counts: list[int] = []
    for name, directory in zip(samples.names, samples.dirs):
        frames = sample_frames(directory)
        wavs.append(sample_wav(directory, name))
        chosen.append([frames[i] for i in frame_positions(len(frames), prep.n_frames)])
        counts.append(len(frames))
    listing = "\n".join(f"{n}\t{d}\t{c}" for n, d, c in zip(samples.names, samples.dirs, counts))
    params = {"root": str(samples.path.parent.resolve()), "samples": hashlib.sha256(listing.encode()).hexdigest(),
              "audio_crop": audio_crop,
              "files": files_fingerprint(p for w, fs in zip(wavs, chosen) for p in (w, *fs)), **asdict(prep)}

    def build() -> dict[str, Any]:
        from tqdm import tqdm

        n = len(samples)
        audio = np.empty((n, *prep.audio_shape), dtype=np.float16)
        visual = np.empty((n, *prep.visual_shape), dtype=np.uint8)
        seconds = np.empty(n, dtype=np.float32)
        for i in tqdm(range(n), desc=f"{desc}: decoding samples", disable=None, leave=False):
            wave = read_wav(wavs[i], prep.sample_rate)
            seconds[i] = wave.size / prep.sample_rate
            audio[i, 0] = log_spectrogram(crop_wave(wave, prep.n_samples, audio_crop), prep)
            visual[i] = np.stack([read_image(f, prep.image_size) for f in chosen[i]])
        return {"audio": torch.from_numpy(audio), "visual": torch.from_numpy(visual),
                "frames_available": torch.as_tensor(counts, dtype=torch.int64),
                "audio_seconds": torch.from_numpy(seconds)}

    return cached("kinetics-sounds", params, PREPROCESSING_VERSION, build)


def _base(root: str | None) -> Path:
    return data_root(root, "kinetics-sounds", "train/, test/ and train.csv/test.csv or class subfolders", WHERE)


def _prep(n_frames: int, image_size: int, audio_seconds: float, sample_rate: int, n_fft: int, hop_length: int,
          audio_pad: str) -> Preprocessing:
    # the shared Preprocessing validates and carries the parameters; its CREMA-D folder fields stay empty here
    return Preprocessing(n_frames, image_size, float(audio_seconds), sample_rate, n_fft, hop_length, audio_pad,
                         audio_dir="", frames_dir="").validate()


@DATASETS.register("kinetics-sounds")
def kinetics_sounds(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None,
                    val_fraction: float = 0.1, root: str | None = None, n_frames: int = 3, image_size: int = 64,
                    audio_seconds: float = 3.0, sample_rate: int = 16000, n_fft: int = 512, hop_length: int = 320,
                    audio_pad: Literal["repeat", "zeros"] = "repeat",
                    audio_crop: Literal["center", "start"] = "center") -> DataSplits:
    """Kinetics-Sounds (31/32 audible action classes of Kinetics) from the soundtrack and 1-fps frames.

    Train and test from ``train/`` and ``test/`` (labels from train.csv/test.csv or class subfolders; class order
    from classes.txt or sorted training class names); validation is ``val_fraction`` of the training list,
    stratified and seeded. ``audio``: (1, F, T) log-spectrogram of ``audio_seconds`` (default (1, 257, 151));
    ``visual``: (n_frames, 3, image_size, image_size) fixed frames. ``meta``: ``frames_available`` and
    ``audio_seconds`` (the sample's frame count and audio length before cropping). Needs --data-root and pillow.
    """
    if audio_crop not in ("center", "start"):
        raise ConfigError(f"data.audio_crop: expected center or start, got {audio_crop!r}")
    prep = _prep(n_frames, image_size, audio_seconds, sample_rate, n_fft, hop_length, audio_pad)
    base = _base(root)
    train_list, test_list, classes, source = read_lists(base)
    rng = np.random.default_rng(seed)
    test_list = test_list.subset(subsample_indices(len(test_list), n_test, rng))
    train_list = train_list.subset(subsample_indices(len(train_list), n_train, rng))
    tr, va = train_val_indices(train_list.labels, val_fraction, rng)
    pool = decode_samples(train_list, prep, audio_crop, "kinetics-sounds train")
    test = decode_samples(test_list, prep, audio_crop, "kinetics-sounds test")
    # SplitArrays only needs a list object with labels and subset(); normalise() reads .audio and .visual
    full = SplitArrays(pool["audio"], pool["visual"], train_list)
    arrays = {"train": full.subset(tr), "val": full.subset(va),
              "test": SplitArrays(test["audio"], test["visual"], test_list)}
    meta_keys = ("frames_available", "audio_seconds")
    metas = {"train": {k: pool[k][torch.as_tensor(tr)] for k in meta_keys},
             "val": {k: pool[k][torch.as_tensor(va)] for k in meta_keys},
             "test": {k: test[k] for k in meta_keys}}
    inputs, stats = normalise(arrays)
    sets = {split: MultimodalDataset(inputs[split], torch.as_tensor(arrays[split].clips.labels), metas[split],
                                     name=f"kinetics-sounds/{split}") for split in arrays}
    info = DataInfo(name="kinetics-sounds", modalities={"audio": prep.audio_shape, "visual": prep.visual_shape},
                    num_classes=len(classes), class_names=list(classes),
                    extra={"normalisation": stats, "class_order": source, "layout": layout_variant(base),
                           "preprocessing_version": PREPROCESSING_VERSION})
    return DataSplits(train=sets["train"], val=sets["val"], test=sets["test"], info=info)


# ------------------------------------------------------------------------------------------------- verify
def verify_kinetics(root: str | None, image_size: int = 64) -> list[Check]:
    """Layout, label lists, class list, disjointness, every listed wav (present, readable, rate, duration) and
    every listed sample's frames (present, first and last decodable). No checksums exist for the prepared
    folders; counts are reported instead."""
    try:
        base = _base(root)
        train, test, classes, source = read_lists(base)
    except DataError as exc:
        return [Check(False, str(exc))]
    checks: list[Check] = []
    usual = " or ".join(str(c) for c in USUAL_CLASSES)
    checks.append(Check(True, f"{base}: {layout_variant(base)} layout, {len(classes)} classes from {source} "
                              f"(the usual versions have {usual})"))
    for split, sl in (("train", train), ("test", test)):
        counts = np.bincount(sl.labels, minlength=len(classes))
        empty = [classes[i] for i in np.flatnonzero(counts == 0)]
        note = f", {len(empty)} classes without samples (first: {empty[0]!r})" if empty else ""
        checks.append(Check(True, f"{sl.path}: {len(sl):,} {split} samples, {int(counts.min())}-{int(counts.max())} "
                                  f"per class{note}"))
    checks.append(Check(True, "train and test lists are disjoint"))
    missing_audio: list[str] = []
    bad_audio: list[str] = []
    missing_frames: list[Path] = []
    bad_frames: list[str] = []
    rates: set[int] = set()
    seconds: list[float] = []
    frame_counts: list[int] = []
    n = 0
    for sl in (train, test):
        for name, directory in zip(sl.names, sl.dirs):
            n += 1
            frames = list_frames(directory)
            if not frames:
                missing_frames.append(directory)
            else:
                frame_counts.append(len(frames))
                try:
                    for f in dict.fromkeys((frames[0], frames[-1])):
                        read_image(f, image_size)
                except DataError as exc:
                    bad_frames.append(str(exc))
            try:
                wav = sample_wav(directory, name)
            except DataError:
                missing_audio.append(str(directory / f"{name}.wav"))
                continue
            try:
                rate, wave = load_wav(wav)
            except DataError as exc:
                bad_audio.append(str(exc))
                continue
            rates.add(rate)
            seconds.append(wave.size / rate)
    if missing_audio or bad_audio:
        found = problems({"missing": missing_audio, "unreadable": bad_audio})
        checks.append(Check(False, f"{base}: of {n:,} listed samples' wavs {found}; {WHERE}"))
    else:
        checks.append(Check(True, f"{base}: {n:,} listed wavs readable, rate {'/'.join(map(str, sorted(rates)))} Hz, "
                                  f"{min(seconds):.2f}-{max(seconds):.2f} s"))
    if missing_frames or bad_frames:
        found = problems({"without frames": missing_frames, "with unreadable frames": bad_frames})
        checks.append(Check(False, f"{base}: of {n:,} listed samples {found}; {WHERE}"))
    else:
        checks.append(Check(True, f"{base}: frames for all {n:,} listed samples, "
                                  f"{min(frame_counts)}-{max(frame_counts)} per sample"))
    return checks


VERIFIERS.register("kinetics-sounds")(verify_kinetics)
