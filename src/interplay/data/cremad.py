"""CREMA-D audio-visual emotion recognition (``cremad``) and the SynIB irony extension (``cremad-irony``).

On-disk layout under ``--data-root`` (the common OGM-GE / PMR preprocessing)::

    train.csv, test.csv          one ``clip,label`` line per clip, e.g. ``1001_DFA_ANG_XX,ANG`` (6,698 / 744)
    AudioWAV/<clip>.wav          the original 16 kHz mono recordings
    Image-01-FPS/<clip>/*.jpg    frames extracted at 1 fps (sorted by file name)

Per clip: ``audio`` is a ``(1, F, T)`` log-magnitude spectrogram (``torch.stft``, Hann window) of a fixed-length
waveform (``audio_seconds``; shorter clips are repeated or zero-padded, longer ones cropped from the start);
``visual`` is ``(n_frames, 3, image_size, image_size)``: ``n_frames`` frames at evenly spaced fixed positions
of the clip's frame list (the same frames every run, in every split). Decoded features are cached on disk
(:func:`interplay.data.cache.cached`) keyed by the clip list, the files' sizes and modification times and the
preprocessing parameters, so a rerun only reads the cache. See ``docs/data/cremad.md`` and
``docs/data/cremad-irony.md``. The wav / frame decoding and the split helpers are shared with the other
audio-visual loaders (:mod:`interplay.data.media`).
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Iterable, Sequence
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
    image_size,
    list_frames,
    load_wav,
    log_spectrogram,
    normalise,
    read_frames,
    read_image,
    read_wav,
    subsample_indices,
    train_val_indices,
)

#: class order of the usual preprocessing (label index = position)
EMOTIONS: tuple[str, ...] = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
IRONY = "irony"
#: which audio emotion contradicts a face's emotion (valence opposition): a happy face with a sad, fearful,
#: disgusted or angry voice, or a negative face with a happy voice. Neutral contradicts nothing, so neutral
#: clips never become ironic.
CONTRADICTIONS: dict[str, tuple[str, ...]] = {"NEU": (), "HAP": ("SAD", "FEA", "DIS", "ANG"), "SAD": ("HAP",),
                                              "FEA": ("HAP",), "DIS": ("HAP",), "ANG": ("HAP",)}
#: ``meta["interaction"]`` codes of ``cremad-irony``: ordinary clips, irony clips (synergistic by construction:
#: only the pair of modalities reveals the contradiction) and speaker-mismatch controls (evaluation splits only)
IRONY_GROUPS: tuple[str, ...] = ("congruent", "synergistic", "speaker_control")
USUAL_SPLIT = {"train": 6698, "test": 744}
PREPROCESSING_VERSION = "1"
WHERE = ("get the clips from https://github.com/CheyneyComputerScience/CREMA-D (AudioWAV/*.wav; frames extracted at "
         "1 fps from VideoFlash/*.flv into Image-01-FPS/<clip>/*.jpg) and the train.csv/test.csv lists of the usual "
         "6,698/744 split (GeWu-Lab/OGM-GE_CVPR2022, data/CREMAD/), and put them under --data-root "
         "(see docs/data/cremad.md)")


# ------------------------------------------------------------------------------------------------- clip lists
@dataclass
class ClipList:
    """One split list: clip names, label indices, actor ids and sentence codes (aligned arrays)."""

    path: Path
    clips: list[str]
    labels: np.ndarray
    actors: np.ndarray
    sentences: list[str]

    def subset(self, idx: np.ndarray) -> ClipList:
        return ClipList(self.path, [self.clips[i] for i in idx], self.labels[idx], self.actors[idx],
                        [self.sentences[i] for i in idx])

    def __len__(self) -> int:
        return len(self.clips)


def parse_clip(name: str) -> tuple[int, str, str | None]:
    """``"1001_DFA_ANG_XX"`` -> ``(1001, "DFA", "ANG")``: actor id (first field), sentence code, emotion code
    (``None`` when the name does not carry a known emotion)."""
    parts = name.split("_")
    if len(parts) < 2 or not parts[0].isdigit():
        raise ValueError(f"clip name {name!r} does not start with a numeric actor id (e.g. 1001_DFA_ANG_XX)")
    emotion = parts[2] if len(parts) > 2 and parts[2] in EMOTIONS else None
    return int(parts[0]), parts[1], emotion


def read_clip_list(path: str | Path) -> ClipList:
    """Read a ``clip,label`` list (no header, or a header row whose label is not an emotion code)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; CREMA-D needs train.csv and test.csv; {WHERE}")
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: unreadable clip list ({exc})") from None
    clips: list[str] = []
    labels: list[int] = []
    actors: list[int] = []
    sentences: list[str] = []
    seen: set[str] = set()
    for lineno, row in enumerate(rows, 1):
        row = [c.strip() for c in row]
        if not row or not any(row):
            continue
        if len(row) < 2:
            raise DataError(f"{path}:{lineno}: expected 'clip,label', got {','.join(row)!r}")
        clip, label = row[0], row[1].upper()
        if lineno == 1 and label not in EMOTIONS and not clip[:1].isdigit():
            continue  # header
        if label not in EMOTIONS:
            raise DataError(f"{path}:{lineno}: unknown emotion {row[1]!r}; expected one of {', '.join(EMOTIONS)}")
        try:
            actor, sentence, emotion = parse_clip(clip)
        except ValueError as exc:
            raise DataError(f"{path}:{lineno}: {exc}") from None
        if emotion is not None and emotion != label:
            raise DataError(f"{path}:{lineno}: label {label} disagrees with the clip name {clip}")
        if clip in seen:
            raise DataError(f"{path}:{lineno}: clip {clip} is listed twice")
        seen.add(clip)
        clips.append(clip)
        labels.append(EMOTIONS.index(label))
        actors.append(actor)
        sentences.append(sentence)
    if not clips:
        raise DataError(f"{path}: no clips listed (expected 'clip,label' lines)")
    return ClipList(path, clips, np.asarray(labels, dtype=np.int64), np.asarray(actors, dtype=np.int64), sentences)


def read_split_lists(base: Path) -> tuple[ClipList, ClipList]:
    """``train.csv`` and ``test.csv`` of a CREMA-D root; they must not share clips."""
    train, test = read_clip_list(base / "train.csv"), read_clip_list(base / "test.csv")
    overlap = sorted(set(train.clips) & set(test.clips))
    if overlap:
        raise DataError(f"{test.path}: clip {overlap[0]} is also in {train.path.name} "
                        f"({len(overlap)} shared clips); the splits must be disjoint")
    return train, test


# ------------------------------------------------------------------------------------------------- decoding
#: CREMA-D's frames are listed with names sorted as strings (``list_frames(..., order="name")``; the listing is
#: part of the cache key); messages for a clip whose wav or frames are missing:
_NO_WAV = f"(every listed clip needs a wav); {WHERE}"
_NO_FRAMES = f"(every listed clip needs its frames); {WHERE}"


def _clip_files(base: Path, clips: Sequence[str], prep: Preprocessing) -> Iterable[Path]:
    for clip in clips:
        yield base / prep.audio_dir / f"{clip}.wav"
        directory = base / prep.frames_dir / clip
        yield directory
        yield from list_frames(directory, order="name")


def decode_clips(base: Path, clips: Sequence[str], prep: Preprocessing, desc: str = "cremad") -> dict[str, Any]:
    """Decode (or load from the cache) ``{"audio": (N, 1, F, T) float16, "visual": (N, T, 3, S, S) uint8}``."""
    params = {"root": str(base.resolve()), "clips": hashlib.sha256("\n".join(clips).encode()).hexdigest(),
              "files": files_fingerprint(_clip_files(base, clips, prep)), **asdict(prep)}

    def build() -> dict[str, Any]:
        from tqdm import tqdm

        audio = np.empty((len(clips), *prep.audio_shape), dtype=np.float16)
        visual = np.empty((len(clips), *prep.visual_shape), dtype=np.uint8)
        for i, clip in enumerate(tqdm(clips, desc=f"{desc}: decoding clips", disable=None, leave=False)):
            wave = read_wav(base / prep.audio_dir / f"{clip}.wav", prep.sample_rate, _NO_WAV)
            audio[i, 0] = log_spectrogram(wave, prep)
            visual[i] = read_frames(base / prep.frames_dir / clip, prep, _NO_FRAMES, order="name")
        return {"audio": torch.from_numpy(audio), "visual": torch.from_numpy(visual)}

    return cached("cremad", params, PREPROCESSING_VERSION, build)


# ------------------------------------------------------------------------------------------------- splits
def _base(root: str | None, name: str) -> Path:
    return data_root(root, name, "train.csv, test.csv, AudioWAV/, Image-01-FPS/", WHERE)


def load_splits(root: str | None, seed: int, n_train: int | None, n_test: int | None, val_fraction: float,
                prep: Preprocessing, name: str = "cremad") -> dict[str, SplitArrays]:
    """Read the lists, subsample (seeded), decode (cached) and split train/val: ``{train, val, test}``."""
    base = _base(root, name)
    train_list, test_list = read_split_lists(base)
    rng = np.random.default_rng(seed)
    test_list = test_list.subset(subsample_indices(len(test_list), n_test, rng))
    train_list = train_list.subset(subsample_indices(len(train_list), n_train, rng))
    tr, va = train_val_indices(train_list.labels, val_fraction, rng)
    pool = decode_clips(base, train_list.clips, prep, f"{name} train")
    test = decode_clips(base, test_list.clips, prep, f"{name} test")
    full = SplitArrays(pool["audio"], pool["visual"], train_list)
    return {"train": full.subset(tr), "val": full.subset(va),
            "test": SplitArrays(test["audio"], test["visual"], test_list)}


def _prep(n_frames: int, image_size: int, audio_seconds: float, sample_rate: int, n_fft: int, hop_length: int,
          audio_pad: str, audio_dir: str, frames_dir: str) -> Preprocessing:
    return Preprocessing(n_frames, image_size, float(audio_seconds), sample_rate, n_fft, hop_length, audio_pad,
                         audio_dir, frames_dir).validate()


@DATASETS.register("cremad")
def cremad(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
           root: str | None = None, n_frames: int = 3, image_size: int = 64, audio_seconds: float = 3.0,
           sample_rate: int = 16000, n_fft: int = 512, hop_length: int = 320,
           audio_pad: Literal["repeat", "zeros"] = "repeat", audio_dir: str = "AudioWAV",
           frames_dir: str = "Image-01-FPS") -> DataSplits:
    """CREMA-D, 6 emotions (NEU HAP SAD FEA DIS ANG) from a voice and a face: the usual train.csv / test.csv split
    (6,698 / 744), validation held out of train (stratified, seeded). ``audio``: (1, F, T) log-spectrogram;
    ``visual``: (n_frames, 3, image_size, image_size) fixed frames. Needs --data-root and pillow.

    ``n_fft`` / ``hop_length`` / ``audio_seconds`` / ``sample_rate`` shape the spectrogram (default (1, 257, 151));
    ``audio_pad``: how clips shorter than ``audio_seconds`` are filled. ``meta["actor"]`` holds each clip's actor.
    """
    prep = _prep(n_frames, image_size, audio_seconds, sample_rate, n_fft, hop_length, audio_pad, audio_dir, frames_dir)
    arrays = load_splits(root, seed, n_train, n_test, val_fraction, prep, "cremad")
    inputs, stats = normalise(arrays)
    sets = {split: MultimodalDataset(inputs[split], torch.as_tensor(arrays[split].clips.labels),
                                     {"actor": torch.as_tensor(arrays[split].clips.actors)}, name=f"cremad/{split}")
            for split in arrays}
    info = DataInfo(name="cremad", modalities={"audio": prep.audio_shape, "visual": prep.visual_shape},
                    num_classes=len(EMOTIONS), class_names=list(EMOTIONS),
                    extra={"normalisation": stats, "preprocessing_version": PREPROCESSING_VERSION})
    return DataSplits(train=sets["train"], val=sets["val"], test=sets["test"], info=info)


# ------------------------------------------------------------------------------------------------- irony
@dataclass
class IronyPlan:
    """Per sample of one split: where its audio comes from and what it became.

    ``audio_source[i]``: index (within the same split) of the clip whose audio sample ``i`` carries;
    ``kind[i]``: 0 congruent (own audio), 1 irony (audio of a contradicting emotion, label ``irony``),
    2 speaker control (audio of the *same* emotion by a *different* actor, label unchanged);
    ``unmatched``: samples drawn for irony/control that had no eligible donor and stayed congruent.
    """

    audio_source: np.ndarray
    kind: np.ndarray
    unmatched: int = 0


def plan_irony(clips: ClipList, rng: np.random.Generator, irony_rate: float, same_actor: bool = True,
               same_sentence: bool = False, control_rate: float = 0.0) -> IronyPlan:
    """Draw, clip by clip, which clips become irony and which become speaker-mismatch controls.

    For each clip ``u ~ U(0, 1)``: if ``u < irony_rate`` and its emotion has contradictions, its audio is replaced
    by that of a clip (same split) whose emotion is in :data:`CONTRADICTIONS` — from the same actor when
    ``same_actor`` (otherwise from any actor), and with the same sentence when ``same_sentence`` — chosen
    uniformly among the eligible donors. Else if ``u < irony_rate + control_rate`` its audio is replaced by a clip
    of the same emotion from a different actor (same sentence when ``same_sentence``): label and emotion agree,
    only the speaker differs. Deterministic given ``rng``'s state.
    """
    n = len(clips)
    labels, actors = clips.labels, clips.actors
    sentences = np.asarray(clips.sentences)
    source, kind = np.arange(n), np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    picks = rng.random(n)  # uniform donor choice, drawn for every clip so decisions do not shift each other
    contra = {EMOTIONS.index(e): [EMOTIONS.index(c) for c in cs] for e, cs in CONTRADICTIONS.items()}
    unmatched = 0
    for i in range(n):
        if u[i] < irony_rate:
            if not contra[int(labels[i])]:
                continue  # neutral faces have no contradicting voice
            ok = np.isin(labels, contra[int(labels[i])])
            if same_actor:
                ok &= actors == actors[i]
            new_kind = 1
        elif u[i] < irony_rate + control_rate:
            ok = (labels == labels[i]) & (actors != actors[i])
            new_kind = 2
        else:
            continue
        if same_sentence:
            ok &= sentences == sentences[i]
        donors = np.flatnonzero(ok)
        if donors.size == 0:
            unmatched += 1
            continue
        source[i] = donors[min(int(picks[i] * donors.size), donors.size - 1)]
        kind[i] = new_kind
    return IronyPlan(source, kind, unmatched)


def speaker_mismatch_check(audio_actor: Any, video_actor: Any | None = None, irony: Any | None = None
                           ) -> dict[str, Any]:
    """How well "the voice and the face belong to different actors" predicts irony: the speaker shortcut.

    Pass a ``cremad-irony`` :class:`MultimodalDataset` (uses ``meta["audio_actor"]``, ``meta["actor"]`` and
    ``meta["interaction"] == 1``) or three aligned arrays. The probe is the best classifier of irony from the
    mismatch bit alone (the majority label within each of its two values, i.e. a fitted one-feature logistic
    regression in the limit); ``shortcut_gain`` is its accuracy above always predicting the majority label.
    ``shortcut`` is true when the gain exceeds 1 percentage point: with ``same_actor=true`` (default) the gain is
    0, with ``same_actor=false`` the mismatch bit almost perfectly flags irony.
    """
    if isinstance(audio_actor, MultimodalDataset):
        ds = audio_actor
        audio_actor, video_actor, irony = ds.meta["audio_actor"], ds.meta["actor"], ds.meta["interaction"] == 1
    a, v = np.asarray(audio_actor).ravel(), np.asarray(video_actor).ravel()
    y = np.asarray(irony).ravel().astype(bool)
    m = a != v
    n = int(y.size)
    if n == 0:
        return {"n": 0}
    n11, n10 = int((y & m).sum()), int((y & ~m).sum())
    n01, n00 = int((~y & m).sum()), int((~y & ~m).sum())
    majority = max(n11 + n10, n01 + n00) / n
    probe = (max(n11, n01) + max(n10, n00)) / n
    denom = math.sqrt((n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00))
    phi = (n11 * n00 - n10 * n01) / denom if denom > 0 else 0.0
    return {"n": n, "irony": n11 + n10, "mismatch": n11 + n01,
            "mismatch_given_irony": n11 / (n11 + n10) if n11 + n10 else None,
            "mismatch_given_congruent": n01 / (n01 + n00) if n01 + n00 else None,
            "phi": round(phi, 6), "probe_accuracy": round(probe, 6), "majority_accuracy": round(majority, 6),
            "shortcut_gain": round(probe - majority, 6), "shortcut": probe - majority > 0.01}


def irony_false_alarms(pred: Any, interaction: Any) -> dict[str, float | None]:
    """Share of samples *predicted* as irony (class 6) per group (``congruent``, ``synergistic``,
    ``speaker_control``): the trained model's side of the speaker control. A model that learned the speaker
    shortcut calls many ``speaker_control`` clips ironic while calling few ``congruent`` ones ironic.
    ``pred`` and ``interaction`` are the ``pred`` / ``interaction`` columns of a run's ``predictions.csv``
    (``interaction`` as codes or names)."""
    p = np.asarray(pred).ravel() == len(EMOTIONS)
    g = np.asarray(interaction).ravel()
    if g.dtype.kind in "US":
        g = np.asarray([IRONY_GROUPS.index(x) for x in g])
    return {name: float(p[g == code].mean()) if (g == code).any() else None for code, name in enumerate(IRONY_GROUPS)}


@DATASETS.register("cremad-irony")
def cremad_irony(*, seed: int = 0, n_train: int | None = None, n_test: int | None = None, val_fraction: float = 0.1,
                 root: str | None = None, irony_rate: float = 0.15, same_actor: bool = True,
                 same_sentence: bool = False, control_rate: float = 0.1, n_frames: int = 3, image_size: int = 64,
                 audio_seconds: float = 3.0, sample_rate: int = 16000, n_fft: int = 512, hop_length: int = 320,
                 audio_pad: Literal["repeat", "zeros"] = "repeat", audio_dir: str = "AudioWAV",
                 frames_dir: str = "Image-01-FPS") -> DataSplits:
    """CREMA-D with SynIB's seventh class ``irony``: with probability ``irony_rate`` a clip's audio is swapped for
    the audio of a contradicting emotion (HAP face <-> SAD/FEA/DIS/ANG voice) and the label becomes irony.

    ``same_actor`` (default true) takes the swapped audio from the same actor, so a voice/face speaker mismatch
    is no shortcut; ``same_sentence`` also keeps the sentence. ``control_rate``: share of validation/test clips
    whose audio comes from another actor with the same emotion (label unchanged; group ``speaker_control``),
    the control for the speaker shortcut. Swaps stay inside a split. Other parameters as for ``cremad``.
    """
    for field, value in (("irony_rate", irony_rate), ("control_rate", control_rate)):
        if not (math.isfinite(value) and 0 <= value <= 1):
            raise ConfigError(f"data.{field}: expected a probability in [0, 1], got {value}")
    if irony_rate + control_rate > 1:
        raise ConfigError(f"data.irony_rate + data.control_rate must not exceed 1, got {irony_rate + control_rate}")
    prep = _prep(n_frames, image_size, audio_seconds, sample_rate, n_fft, hop_length, audio_pad, audio_dir, frames_dir)
    arrays = load_splits(root, seed, n_train, n_test, val_fraction, prep, "cremad-irony")
    swapped: dict[str, SplitArrays] = {}
    meta: dict[str, dict[str, torch.Tensor]] = {}
    targets: dict[str, torch.Tensor] = {}
    checks: dict[str, Any] = {}
    for code, split in enumerate(("train", "val", "test")):
        s = arrays[split]
        rng = np.random.default_rng([seed, 7, code])
        plan = plan_irony(s.clips, rng, irony_rate, same_actor, same_sentence,
                          control_rate if split != "train" else 0.0)
        src = torch.as_tensor(plan.audio_source)
        swapped[split] = SplitArrays(s.audio[src], s.visual, s.clips)
        labels = np.where(plan.kind == 1, len(EMOTIONS), s.clips.labels)
        targets[split] = torch.as_tensor(labels)
        meta[split] = {"actor": torch.as_tensor(s.clips.actors),
                       "audio_actor": torch.as_tensor(s.clips.actors[plan.audio_source]),
                       "audio_emotion": torch.as_tensor(s.clips.labels[plan.audio_source]),
                       "visual_emotion": torch.as_tensor(s.clips.labels),
                       "interaction": torch.as_tensor(plan.kind)}
        checks[split] = {**speaker_mismatch_check(s.clips.actors[plan.audio_source], s.clips.actors, plan.kind == 1),
                         "unmatched": plan.unmatched, "speaker_control": int((plan.kind == 2).sum())}
    inputs, stats = normalise(swapped)
    sets = {split: MultimodalDataset(inputs[split], targets[split], meta[split], name=f"cremad-irony/{split}")
            for split in swapped}
    info = DataInfo(name="cremad-irony", modalities={"audio": prep.audio_shape, "visual": prep.visual_shape},
                    num_classes=len(EMOTIONS) + 1, interactions=IRONY_GROUPS, class_names=[*EMOTIONS, IRONY],
                    extra={"normalisation": stats, "speaker_mismatch": checks, "contradictions": CONTRADICTIONS,
                           "preprocessing_version": PREPROCESSING_VERSION})
    return DataSplits(train=sets["train"], val=sets["val"], test=sets["test"], info=info)


# ------------------------------------------------------------------------------------------------- verify
def verify_cremad(root: str | None, prep: Preprocessing | None = None) -> list[Check]:
    """Layout, list files, split sizes, every listed wav (readable, rate, duration) and frame folder (present,
    first and last frame decodable). CREMA-D publishes no checksums; file counts are checked instead."""
    prep = prep or Preprocessing()
    try:
        base = _base(root, "cremad")
    except DataError as exc:
        return [Check(False, str(exc))]
    checks: list[Check] = []
    lists: dict[str, ClipList] = {}
    for split in ("train", "test"):
        try:
            cl = read_clip_list(base / f"{split}.csv")
        except DataError as exc:
            checks.append(Check(False, str(exc)))
            continue
        lists[split] = cl
        usual = USUAL_SPLIT[split]
        note = "the usual split" if len(cl) == usual else f"the usual split has {usual:,}"
        counts = np.bincount(cl.labels, minlength=len(EMOTIONS))
        checks.append(Check(True, f"{cl.path}: {len(cl):,} clips ({note}), {len(np.unique(cl.actors))} actors, "
                                  f"per emotion " + " ".join(f"{e}={c}" for e, c in zip(EMOTIONS, counts))))
    if len(lists) == 2:
        overlap = sorted(set(lists["train"].clips) & set(lists["test"].clips))
        shared_actors = len(set(lists["train"].actors.tolist()) & set(lists["test"].actors.tolist()))
        checks.append(Check(not overlap, f"train and test lists are disjoint ({shared_actors} actors in both)"
                            if not overlap else
                            f"{lists['test'].path}: {len(overlap)} clips also in train.csv (first: {overlap[0]})"))
    clips = [c for cl in lists.values() for c in cl.clips]
    if not clips:
        return checks
    audio_dir, frames_root = base / prep.audio_dir, base / prep.frames_dir
    if not audio_dir.is_dir():
        checks.append(Check(False, f"{audio_dir}: directory not found; {WHERE}"))
    else:
        missing, bad, rates, seconds = [], [], set(), []
        for clip in clips:
            path = audio_dir / f"{clip}.wav"
            if not path.is_file():
                missing.append(path)
                continue
            try:
                rate, wave = load_wav(path, _NO_WAV)
            except DataError as exc:
                bad.append(str(exc))
                continue
            seconds.append(wave.size / rate)
            rates.add(rate)
        if missing or bad:
            found = problems({"missing": missing, "unreadable": bad})
            checks.append(Check(False, f"{audio_dir}: of {len(clips):,} listed wavs {found}; {WHERE}"))
        else:
            rate_note = "" if rates == {prep.sample_rate} else f" (resampled to {prep.sample_rate} Hz)"
            checks.append(Check(True, f"{audio_dir}: {len(clips):,} listed wavs readable, rate "
                                      f"{'/'.join(str(r) for r in sorted(rates))} Hz{rate_note}, "
                                      f"{min(seconds):.2f}-{max(seconds):.2f} s"))
        n_wavs = sum(1 for _ in audio_dir.glob("*.wav"))
        checks.append(Check(True, f"{audio_dir}: {n_wavs:,} wav files (the full corpus has 7,442)"))
    if not frames_root.is_dir():
        checks.append(Check(False, f"{frames_root}: directory not found; {WHERE}"))
    else:
        missing, bad = [], []
        per_clip: list[int] = []
        shape: tuple[int, int] | None = None
        for clip in clips:
            files = list_frames(frames_root / clip, order="name")
            if not files:
                missing.append(frames_root / clip)
                continue
            per_clip.append(len(files))
            try:
                for f in {files[0], files[-1]}:
                    read_image(f, prep.image_size)
                shape = shape or image_size(files[0])
            except DataError as exc:
                bad.append(str(exc))
        if missing or bad:
            found = problems({"without frames": missing, "with unreadable frames": bad})
            checks.append(Check(False, f"{frames_root}: of {len(clips):,} listed clips {found}; {WHERE}"))
        else:
            checks.append(Check(True, f"{frames_root}: frames for all {len(clips):,} listed clips, "
                                      f"{min(per_clip, default=0)}-{max(per_clip, default=0)} per clip"
                                      + (f", first frame {shape[0]}x{shape[1]}" if shape else "")))
    return checks


def verify_cremad_irony(root: str | None) -> list[Check]:
    """The ``cremad`` checks plus the irony plan of the default parameters (seed 0) on the full lists: donors
    available, and the speaker-mismatch control (no shortcut with ``same_actor``)."""
    checks = verify_cremad(root)
    try:
        base = _base(root, "cremad-irony")
        lists = read_split_lists(base)
    except DataError:
        return checks
    for code, cl in enumerate(lists):
        split = ("train", "test")[code]
        plan = plan_irony(cl, np.random.default_rng([0, 7, code]), 0.15, True, False, 0.0 if code == 0 else 0.1)
        irony = plan.kind == 1
        check = speaker_mismatch_check(cl.actors[plan.audio_source], cl.actors, irony)
        ok = not check["shortcut"] and int(irony.sum()) > 0
        checks.append(Check(ok, f"{cl.path.name}: irony plan (seed 0, rate 0.15, same actor): "
                                f"{int(irony.sum())} irony, {int((plan.kind == 2).sum())} speaker controls, "
                                f"{plan.unmatched} without a donor; speaker-mismatch probe gain "
                                f"{check['shortcut_gain']:.3f} ({'SHORTCUT' if check['shortcut'] else 'no shortcut'})"
                                f" on the {split} split"))
    return checks


VERIFIERS.register("cremad")(verify_cremad)
VERIFIERS.register("cremad-irony")(verify_cremad_irony)
