"""Media decoding shared by the audio-visual loaders (``interplay.data.media``): spectrograms, frame positions,
frame listing orders, wav and image errors, and the split helpers."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402
from scipy.io import wavfile  # noqa: E402

from interplay.data import media  # noqa: E402
from interplay.errors import ConfigError, DataError  # noqa: E402


def test_spectrogram_padding_and_frame_positions():
    prep = media.Preprocessing(audio_seconds=0.1, n_fft=64, hop_length=32, sample_rate=1000).validate()
    wave = np.ones(40, dtype=np.float32)
    rep = media.log_spectrogram(wave, prep)
    zero = media.log_spectrogram(wave, media.Preprocessing(audio_seconds=0.1, n_fft=64, hop_length=32,
                                                           sample_rate=1000, audio_pad="zeros"))
    assert rep.shape == zero.shape == (33, 4) and not np.allclose(rep, zero)
    assert media.frame_positions(5, 3).tolist() == [0, 2, 4] and media.frame_positions(2, 3).tolist() == [0, 0, 1]
    assert media.frame_positions(4, 1).tolist() == [1]


def test_preprocessing_fields_are_the_cache_key():
    # the loaders put asdict(Preprocessing) into their cache keys: these names and defaults keep old caches valid
    assert asdict(media.Preprocessing()) == {
        "n_frames": 3, "image_size": 64, "audio_seconds": 3.0, "sample_rate": 16000, "n_fft": 512, "hop_length": 320,
        "audio_pad": "repeat", "audio_dir": "AudioWAV", "frames_dir": "Image-01-FPS"}
    with pytest.raises(ConfigError, match="data.hop_length"):
        media.Preprocessing(hop_length=1000).validate()


def _jpg(path: Path, value: int = 0) -> None:
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


def test_list_frames_orders_and_missing_folders(tmp_path: Path):
    for name in ("frame_10.jpg", "frame_2.JPG", "frame_1.png", "notes.txt"):
        _jpg(tmp_path / name) if name.endswith(("jpg", "JPG", "png")) else (tmp_path / name).write_text("x")
    (tmp_path / "sub.jpg").mkdir()  # a folder with an image suffix is not a frame
    natural = [p.name for p in media.list_frames(tmp_path)]
    assert natural == ["frame_1.png", "frame_2.JPG", "frame_10.jpg"]
    assert [p.name for p in media.list_frames(tmp_path, order="name")] == ["frame_1.png", "frame_10.jpg",
                                                                           "frame_2.JPG"]
    assert media.list_frames(tmp_path / "missing") == [] and media.list_frames(tmp_path / "notes.txt") == []


def test_read_frames_and_images(tmp_path: Path):
    clip = tmp_path / "clip"
    clip.mkdir()
    for i in range(4):
        _jpg(clip / f"{i:05d}.jpg", 60 * i)
    prep = media.Preprocessing(n_frames=2, image_size=4)
    frames = media.read_frames(clip, prep)
    assert frames.shape == (2, 3, 4, 4) and frames.dtype == np.uint8
    assert frames[0].mean() < 5 and abs(frames[1].mean() - 180) < 5  # positions 0 and 3
    assert media.image_size(clip / "00000.jpg") == (8, 8)
    with pytest.raises(DataError, match=r"nope: frames directory not found \(see the docs\)$"):
        media.read_frames(tmp_path / "nope", prep, "(see the docs)")
    (clip / "00001.jpg").write_bytes(b"not a jpg")
    with pytest.raises(DataError, match=r"00001\.jpg: unreadable image"):
        media.read_image(clip / "00001.jpg", 4)


def test_wav_reading_resampling_and_cropping(tmp_path: Path):
    wav = tmp_path / "a.wav"
    wavfile.write(wav, 8000, (np.ones((800, 2)) * 16384).astype(np.int16))
    rate, wave = media.load_wav(wav)
    assert rate == 8000 and wave.shape == (800,) and np.allclose(wave, 0.5)
    assert media.read_wav(wav, 16000).shape == (1600,)
    with pytest.raises(DataError, match=r"b\.wav: file not found \(needs a wav\)$"):
        media.load_wav(tmp_path / "b.wav", "(needs a wav)")
    wav.write_bytes(b"RIFF\x00\x00not a wav")
    with pytest.raises(DataError, match=r"a\.wav: unreadable wav"):
        media.load_wav(wav)
    w = np.arange(10, dtype=np.float32)
    assert media.crop_wave(w, 4, "center").tolist() == [3, 4, 5, 6]
    assert media.crop_wave(w, 4, "start").tolist() == list(range(10)) and media.crop_wave(w, 20, "center").size == 10


def test_split_helpers():
    rng = np.random.default_rng(0)
    assert media.subsample_indices(5, None, rng).tolist() == [0, 1, 2, 3, 4]
    picked = media.subsample_indices(10, 4, rng)
    assert len(picked) == 4 and list(picked) == sorted(picked)
    with pytest.raises(ConfigError, match="positive number of samples"):
        media.subsample_indices(10, 0, rng)
    labels = np.repeat(np.arange(3), 10)
    train, val = media.train_val_indices(labels, 0.2, np.random.default_rng(1))
    assert len(val) == 6 and sorted(np.concatenate([train, val]).tolist()) == list(range(30))
    with pytest.raises(ConfigError, match="data.val_fraction"):
        media.train_val_indices(labels, 1.0, rng)
