"""Media decoding shared by the audio-visual loaders (CREMA-D, Kinetics-Sounds, UCF101, Hateful Memes).

* audio: :func:`load_wav` (any rate, mono float32), :func:`read_wav` (resampled), :func:`crop_wave` and
  :func:`log_spectrogram` (the fixed-length log-magnitude STFT every audio modality uses);
* images and frames: :func:`read_image` (RGB, bilinear resize), :func:`list_frames` (a folder's image files in
  natural or plain name order), :func:`frame_positions` (evenly spaced fixed frame indices),
  :func:`read_frames` (a clip's frames at those positions), :func:`image_size`;
* :class:`Preprocessing`: the audio and frame parameters that determine the decoded features (part of the
  loaders' cache keys: its fields and their order must not change, or existing caches stop matching);
* the split helpers the audio-visual loaders share: :func:`subsample_indices`, :func:`train_val_indices`,
  :class:`SplitArrays` and :func:`normalise`.

Failures raise :class:`~interplay.errors.DataError` naming the file; callers add where to get the data with the
``hint`` arguments.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .dataset import split_indices

__all__ = [
    "IMAGE_SUFFIXES",
    "Preprocessing",
    "SplitArrays",
    "crop_wave",
    "frame_positions",
    "image_size",
    "list_frames",
    "load_wav",
    "log_spectrogram",
    "natural_key",
    "normalise",
    "read_frames",
    "read_image",
    "read_wav",
    "subsample_indices",
    "train_val_indices",
]

#: file suffixes counted as frames (compared in lower case)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _with_hint(message: str, hint: str | None) -> str:
    return f"{message} {hint}" if hint else message


# ------------------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Preprocessing:
    """Everything that determines decoded audio and frames (part of the cache key).

    ``audio_dir`` and ``frames_dir`` are CREMA-D's folder names; the other loaders leave them empty. Changing the
    fields (names, order, defaults) changes every loader's cache key.
    """

    n_frames: int = 3
    image_size: int = 64
    audio_seconds: float = 3.0
    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 320
    audio_pad: str = "repeat"
    audio_dir: str = "AudioWAV"
    frames_dir: str = "Image-01-FPS"

    def validate(self) -> Preprocessing:
        checks = [("n_frames", self.n_frames >= 1, "a positive integer"),
                  ("image_size", self.image_size >= 4, "an integer >= 4"),
                  ("audio_seconds", math.isfinite(self.audio_seconds) and self.audio_seconds > 0, "a positive number"),
                  ("sample_rate", self.sample_rate >= 1000, "a rate in Hz >= 1000"),
                  ("n_fft", self.n_fft >= 16, "an integer >= 16"),
                  ("hop_length", 1 <= self.hop_length <= self.n_fft, "an integer in [1, n_fft]"),
                  ("audio_pad", self.audio_pad in ("repeat", "zeros"), "repeat or zeros")]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"data.{name}: expected {expected}, got {getattr(self, name)!r}")
        if self.n_samples < self.n_fft:
            raise ConfigError(f"data.audio_seconds: {self.audio_seconds} s at {self.sample_rate} Hz is shorter than "
                              f"one FFT window (n_fft={self.n_fft})")
        return self

    @property
    def n_samples(self) -> int:
        return int(round(self.audio_seconds * self.sample_rate))

    @property
    def audio_shape(self) -> tuple[int, int, int]:
        return 1, self.n_fft // 2 + 1, self.n_samples // self.hop_length + 1

    @property
    def visual_shape(self) -> tuple[int, int, int, int]:
        return self.n_frames, 3, self.image_size, self.image_size


# ------------------------------------------------------------------------------------------------- audio
def load_wav(path: Path, hint: str | None = None) -> tuple[int, np.ndarray]:
    """``(rate, mono float32 waveform in [-1, 1])`` at the file's own rate (channels averaged).

    ``hint`` is appended to the "file not found" message (e.g. where to get the data).
    """
    from scipy.io import wavfile

    if not path.is_file():
        raise DataError(_with_hint(f"{path}: file not found", hint))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rate, data = wavfile.read(path)
    except Exception as exc:  # scipy raises ValueError, struct.error, EOFError, ... on damaged files
        raise DataError(f"{path}: unreadable wav ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") \
            from None
    data = np.asarray(data)
    if data.ndim not in (1, 2) or data.size == 0:
        raise DataError(f"{path}: wav holds no samples (shape {data.shape})")
    if data.dtype == np.uint8:
        wave = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        wave = data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    else:
        wave = data.astype(np.float32)
    if wave.ndim == 2:
        wave = wave.mean(1)
    if not np.isfinite(wave).all():
        raise DataError(f"{path}: wav contains NaN or inf samples")
    return int(rate), wave


def read_wav(path: Path, sample_rate: int, hint: str | None = None) -> np.ndarray:
    """Mono float32 waveform in [-1, 1] at ``sample_rate`` (other rates are resampled with a polyphase filter)."""
    from scipy.signal import resample_poly

    rate, wave = load_wav(path, hint)
    if rate != sample_rate:
        g = math.gcd(rate, int(sample_rate))
        wave = resample_poly(wave, sample_rate // g, rate // g).astype(np.float32)
    return wave


def crop_wave(wave: np.ndarray, n: int, crop: str) -> np.ndarray:
    """The ``n``-sample window of a longer waveform: its centre (``crop="center"``) or its start."""
    if wave.size <= n or crop == "start":
        return wave
    start = (wave.size - n) // 2
    return wave[start:start + n]


def log_spectrogram(wave: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """``(F, T)`` ``log(|STFT| + 1e-6)`` of ``wave`` brought to ``prep.n_samples`` samples."""
    n = prep.n_samples
    if wave.size < n:
        wave = np.tile(wave, math.ceil(n / wave.size)) if prep.audio_pad == "repeat" else \
            np.pad(wave, (0, n - wave.size))
    x = torch.from_numpy(np.ascontiguousarray(wave[:n], dtype=np.float32))
    spec = torch.stft(x, prep.n_fft, hop_length=prep.hop_length, window=torch.hann_window(prep.n_fft),
                      center=True, return_complex=True).abs()
    return torch.log(spec + 1e-6).numpy()


# ------------------------------------------------------------------------------------------------- images
def natural_key(path: Path) -> list[Any]:
    """Sort key comparing the digit runs of a file name as numbers (``frame_2`` before ``frame_10``)."""
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", path.name)]


def list_frames(directory: Path, order: Literal["natural", "name"] = "natural") -> list[Path]:
    """The image files (``.jpg``/``.jpeg``/``.png``) of ``directory``; ``[]`` when it does not exist.

    ``order="natural"`` compares digit runs as numbers (:func:`natural_key`; Kinetics-Sounds, UCF101);
    ``order="name"`` sorts the names as strings (CREMA-D's frame order, part of its cache key). Uses
    ``os.scandir`` so no file is stat'ed (UCF101 has millions of frames).
    """
    try:
        with os.scandir(directory) as it:
            files = [Path(e.path) for e in it
                     if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise DataError(f"{directory}: cannot list the folder ({exc.strerror})") from None
    return sorted(files, key=natural_key) if order == "natural" else sorted(files)


def frame_positions(n_available: int, n_frames: int) -> np.ndarray:
    """Evenly spaced fixed frame indices (repeats when a clip has fewer frames than ``n_frames``)."""
    if n_frames == 1:
        return np.array([(n_available - 1) // 2])
    return np.round(np.linspace(0, n_available - 1, n_frames)).astype(int)


def read_image(path: Path, size: int) -> np.ndarray:
    """``(3, size, size)`` uint8 RGB (bilinear resize)."""
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError("reading images needs the optional dependency pillow (pip install pillow)") from None
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            arr = np.asarray(rgb, dtype=np.uint8)
    except Exception as exc:  # PIL raises OSError, SyntaxError, struct.error, ... on damaged files
        raise DataError(f"{path}: unreadable image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") \
            from None
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file (reads the header only)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def read_frames(directory: Path, prep: Preprocessing, hint: str | None = None,
                order: Literal["natural", "name"] = "name") -> np.ndarray:
    """``(n_frames, 3, S, S)`` uint8 frames of one clip's folder at :func:`frame_positions` of its
    :func:`list_frames` (``order``); ``hint`` is appended to the message when the folder is missing or empty."""
    files = list_frames(directory, order)
    if not files:
        what = "holds no .jpg frames" if directory.is_dir() else "frames directory not found"
        raise DataError(_with_hint(f"{directory}: {what}", hint))
    return np.stack([read_image(files[i], prep.image_size) for i in frame_positions(len(files), prep.n_frames)])


# ------------------------------------------------------------------------------------------------- splits
def subsample_indices(n_items: int, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of ``n`` of ``n_items`` items drawn without replacement (all of them when ``n`` is
    ``None`` or at least ``n_items``)."""
    if n is None or n >= n_items:
        return np.arange(n_items)
    if n < 1:
        raise ConfigError(f"data.n_train / data.n_test: expected a positive number of samples, got {n}")
    return np.sort(rng.choice(n_items, size=n, replace=False))


def train_val_indices(labels: np.ndarray, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                                 np.ndarray]:
    """Stratified split of the training list; at least one validation and one training sample."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"data.val_fraction: expected a number in (0, 1), got {val_fraction}")
    n = len(labels)
    if n < 2:
        raise DataError(f"the training list needs at least 2 clips to hold out validation, got {n}")
    train, val = split_indices(n, (1 - val_fraction,), rng, strata=labels)
    if len(val) == 0 or len(train) == 0:  # tiny lists: fall back to an unstratified split
        order = rng.permutation(n)
        k = min(n - 1, max(1, round(val_fraction * n)))
        val, train = np.sort(order[:k]), np.sort(order[k:])
    return train, val


@dataclass
class SplitArrays:
    """Decoded, not yet normalised audio-visual features of one split with its clip / sample list."""

    audio: torch.Tensor  # (N, 1, F, T) float16
    visual: torch.Tensor  # (N, T, 3, S, S) uint8
    clips: Any  # the split's list with aligned ``labels`` and ``subset(idx)`` (CREMA-D's ClipList, ...)

    def subset(self, idx: np.ndarray) -> SplitArrays:
        t = torch.as_tensor(idx, dtype=torch.long)
        return SplitArrays(self.audio[t], self.visual[t], self.clips.subset(idx))


def normalise(arrays: dict[str, SplitArrays]) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Float32 inputs: spectrograms standardised by the training split's scalar mean/std, frames scaled to
    [0, 1] and standardised per colour channel with training statistics."""
    a = arrays["train"].audio.float()
    a_mean, a_std = float(a.mean()), float(a.std().clamp_min(1e-6))
    v = arrays["train"].visual.float().div_(255.0)
    v_mean = v.mean((0, 1, 3, 4)).view(1, 1, 3, 1, 1)
    v_std = v.std((0, 1, 3, 4)).clamp_min(1e-6).view(1, 1, 3, 1, 1)
    out = {split: {"audio": (s.audio.float() - a_mean) / a_std,
                   "visual": (s.visual.float().div_(255.0) - v_mean) / v_std} for split, s in arrays.items()}
    stats = {"audio_mean": a_mean, "audio_std": a_std, "visual_mean": v_mean.flatten().tolist(),
             "visual_std": v_std.flatten().tolist()}
    return out, stats
