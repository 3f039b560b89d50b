"""CREMA-D and cremad-irony on a tiny fixture in the real layout (train.csv/test.csv, AudioWAV/, Image-01-FPS/)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402
from scipy.io import wavfile  # noqa: E402

import interplay.models.vision  # noqa: E402,F401  (registers "cnn", "frames")
from interplay.data import cremad as cd  # noqa: E402
from interplay.errors import DataError  # noqa: E402

from ..conftest import run_cli as run

RATE = 16000
# small preprocessing so every test stays fast: (1, 65, 51) spectrograms, 2 frames of 16x16
PREP = {"audio_seconds": 0.4, "n_fft": 128, "hop_length": 128, "image_size": 16, "n_frames": 2}
SET = [a for k, v in PREP.items() for a in ("--set", f"data.{k}={v}")]
MODEL = ["--set", "model.encoder_hidden=[8,8]", "--set", "model.fusion_hidden=[8]", "--batch-size", "8", "--quiet"]


def make_cremad(root: Path, train_actors=(1001, 1002), test_actors=(1003, 1004), seconds: float = 0.2) -> Path:
    """Every actor says every sentence (two in train, one in test) in every emotion: a 0.2 s tone per emotion,
    2 coloured 32x32 jpgs per clip. 24 training and 12 test clips."""
    rng = np.random.default_rng(0)
    (root / "AudioWAV").mkdir(parents=True)
    for split, actors, sentences in (("train", train_actors, ("DFA", "IEO")), ("test", test_actors, ("DFA",))):
        lines = []
        for actor in actors:
            for sentence in sentences:
                for k, emo in enumerate(cd.EMOTIONS):
                    clip = f"{actor}_{sentence}_{emo}_XX"
                    lines.append(f"{clip},{emo}")
                    t = np.arange(int(seconds * RATE)) / RATE
                    wave = 0.5 * np.sin(2 * np.pi * (200 + 150 * k) * t) + 0.05 * rng.standard_normal(t.size)
                    wavfile.write(root / "AudioWAV" / f"{clip}.wav", RATE, (wave * 20000).astype(np.int16))
                    frames = root / "Image-01-FPS" / clip
                    frames.mkdir(parents=True)
                    for f in range(2):
                        pix = np.full((32, 32, 3), 40 * k, dtype=np.uint8) + rng.integers(0, 20, (32, 32, 3),
                                                                                         dtype=np.uint8)
                        Image.fromarray(pix).save(frames / f"{f:05d}.jpg")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def root(tmp_path):
    return make_cremad(tmp_path / "CREMAD")


def test_shapes_labels_split_and_cache(root, tmp_path):
    s = cd.cremad(root=str(root), seed=0, **PREP)
    assert s.info.modalities == {"audio": (1, 65, 51), "visual": (2, 3, 16, 16)} and s.info.num_classes == 6
    assert len(s.train) + len(s.val) == 24 and len(s.test) == 12 and len(s.val) >= 1
    assert s.train.inputs["audio"].dtype == torch.float32 and torch.isfinite(s.train.inputs["visual"]).all()
    assert sorted(s.test.target.tolist()) == sorted(list(range(6)) * 2)
    assert set(s.test.meta["actor"].tolist()) == {1003, 1004}
    entries = list((tmp_path / "interplay-cache" / "cremad").glob("*.pt"))
    assert len(entries) == 2  # train list and test list, decoded once
    again = cd.cremad(root=str(root), seed=0, **PREP)
    assert list((tmp_path / "interplay-cache" / "cremad").glob("*.pt")) == entries
    assert torch.equal(again.test.inputs["visual"], s.test.inputs["visual"])  # fixed evaluation frames
    assert torch.equal(again.train.inputs["audio"], s.train.inputs["audio"])


def test_train_two_methods_end_to_end(root, tmp_path, capsys):
    for method in ("joint", "ogm_ge"):
        out = tmp_path / method
        code, stdout, err = run(["train", "--data", "cremad", "--data-root", str(root), "--method", method,
                                 "--epochs", "1", *SET, *MODEL, "--out", str(out)], capsys)
        assert code == 0, err
        assert "test accuracy" in stdout
        assert json.loads((out / "metrics.json").read_text())["test"]["accuracy"] >= 0


def test_irony_construction(root):
    s = cd.cremad_irony(root=str(root), seed=0, irony_rate=0.5, control_rate=0.3, **PREP)
    assert s.info.num_classes == 7 and s.info.class_names[-1] == "irony"
    assert s.info.interactions == ("congruent", "synergistic", "speaker_control")
    for split in (s.train, s.val, s.test):
        kind, target = split.meta["interaction"], split.target
        assert torch.equal(kind == 1, target == 6)
        # irony: same actor, contradicting audio emotion; congruent: own audio
        irony = kind == 1
        assert torch.equal(split.meta["audio_actor"][irony], split.meta["actor"][irony])
        contra = {cd.EMOTIONS.index(e): {cd.EMOTIONS.index(c) for c in cs} for e, cs in cd.CONTRADICTIONS.items()}
        faces, voices = split.meta["visual_emotion"][irony].tolist(), split.meta["audio_emotion"][irony].tolist()
        assert all(voice in contra[face] for face, voice in zip(faces, voices))
        congruent = kind == 0
        assert torch.equal(split.meta["audio_emotion"][congruent], target[congruent])
    assert (s.train.meta["interaction"] == 2).sum() == 0  # controls only in evaluation splits
    # speaker controls: other actor, same emotion, label unchanged
    ctrl = s.test.meta["interaction"] == 2
    assert ctrl.any() and (s.test.meta["audio_actor"][ctrl] != s.test.meta["actor"][ctrl]).all()
    assert torch.equal(s.test.meta["audio_emotion"][ctrl], s.test.target[ctrl])
    check = s.info.extra["speaker_mismatch"]["train"]
    assert check["shortcut"] is False and check["shortcut_gain"] == 0 and check["irony"] > 0
    again = cd.cremad_irony(root=str(root), seed=0, irony_rate=0.5, control_rate=0.3, **PREP)
    assert torch.equal(again.test.target, s.test.target) and torch.equal(again.train.inputs["audio"],
                                                                         s.train.inputs["audio"])


def test_irony_contradiction_map_and_shortcut_control():
    actors = range(1001, 1011)
    clips = cd.ClipList(Path("x.csv"), [f"{a}_DFA_{e}_XX" for a in actors for e in cd.EMOTIONS],
                        np.tile(np.arange(6), 10), np.repeat(list(actors), 6), ["DFA"] * 60)
    plan = cd.plan_irony(clips, np.random.default_rng(0), irony_rate=1.0, same_actor=True)
    contra = {cd.EMOTIONS.index(e): {cd.EMOTIONS.index(c) for c in cs} for e, cs in cd.CONTRADICTIONS.items()}
    for i in np.flatnonzero(plan.kind == 1):
        assert clips.labels[plan.audio_source[i]] in contra[clips.labels[i]]
        assert clips.actors[plan.audio_source[i]] == clips.actors[i]
    assert not (plan.kind[clips.labels == 0]).any()  # neutral never becomes irony
    assert cd.speaker_mismatch_check(clips.actors[plan.audio_source], clips.actors, plan.kind == 1)["shortcut"] is False
    mixed = cd.plan_irony(clips, np.random.default_rng(0), irony_rate=0.5, same_actor=False)
    chk = cd.speaker_mismatch_check(clips.actors[mixed.audio_source], clips.actors, mixed.kind == 1)
    assert chk["mismatch_given_congruent"] == 0 and chk["mismatch_given_irony"] > 0.5 and chk["shortcut"] is True
    rates = cd.irony_false_alarms([6, 0, 6, 6], ["congruent", "congruent", "synergistic", "speaker_control"])
    assert rates == {"congruent": 0.5, "synergistic": 1.0, "speaker_control": 1.0}


def test_irony_trains_with_two_methods(root, tmp_path, capsys):
    for method in ("joint", "synib"):
        out = tmp_path / method
        code, stdout, err = run(["train", "--data", "cremad-irony", "--data-root", str(root), "--method", method,
                                 "--epochs", "1", "--set", "data.irony_rate=0.4", *SET, *MODEL, "--out", str(out)],
                                capsys)
        assert code == 0, err
        assert "test synergistic" in stdout and "test speaker_control" in stdout


def test_verify(root, capsys):
    code, out, err = run(["data", "verify", "--data", "cremad", "--data-root", str(root)], capsys)
    assert code == 0, err + out
    assert "24 clips (the usual split has 6,698)" in out and "frames for all 36 listed clips" in out
    code, out, err = run(["data", "verify", "--data", "cremad-irony", "--data-root", str(root)], capsys)
    assert code == 0 and "no shortcut" in out
    (root / "AudioWAV" / "1001_DFA_HAP_XX.wav").unlink()
    code, out, err = run(["data", "verify", "--data", "cremad", "--data-root", str(root)], capsys)
    assert code == 2 and "1 missing" in err and "1001_DFA_HAP_XX.wav" in err and "CheyneyComputerScience" in err
    code, out, err = run(["data", "verify", "--data", "cremad", "--data-root", str(root / "nope")], capsys)
    assert code == 2 and "directory not found" in err and err.count("\n") == 1


def _train_error(root, tmp_path, capsys):
    out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
    code, _, err = run(["train", "--data", "cremad", "--data-root", str(root), "--method", "joint", "--epochs", "1",
                        *SET, *MODEL, "--out", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("interplay: error: ") and "Traceback" not in err
    return err


def test_missing_list_file(root, tmp_path, capsys):
    (root / "test.csv").unlink()
    err = _train_error(root, tmp_path, capsys)
    assert "test.csv: file not found" in err and "--data-root" in err


def test_unreadable_and_truncated_wav(root, tmp_path, capsys):
    wav = root / "AudioWAV" / "1003_DFA_SAD_XX.wav"
    header = wav.read_bytes()[:30]
    wav.write_bytes(b"RIFF\x00\x00not a wav at all")
    assert "1003_DFA_SAD_XX.wav: unreadable wav" in _train_error(root, tmp_path, capsys)
    wav.write_bytes(header)  # cut inside the format chunk
    assert "1003_DFA_SAD_XX.wav: unreadable wav" in _train_error(root, tmp_path, capsys)


def test_missing_frames_dir(root, tmp_path, capsys):
    for f in (root / "Image-01-FPS" / "1002_DFA_ANG_XX").iterdir():
        f.unlink()
    (root / "Image-01-FPS" / "1002_DFA_ANG_XX").rmdir()
    assert "Image-01-FPS/1002_DFA_ANG_XX: frames directory not found" in _train_error(root, tmp_path, capsys)


def test_truncated_frame_and_bad_list_lines(root, tmp_path, capsys):
    jpg = root / "Image-01-FPS" / "1001_IEO_FEA_XX" / "00000.jpg"
    jpg.write_bytes(jpg.read_bytes()[:40])
    assert "00000.jpg: unreadable image" in _train_error(root, tmp_path, capsys)
    (root / "train.csv").write_text("1001_DFA_ANG_XX,HAP\n")
    with pytest.raises(DataError, match=r"train.csv:1: label HAP disagrees with the clip name"):
        cd.read_clip_list(root / "train.csv")
    (root / "train.csv").write_text("clip,label\n1001_DFA_ANG_XX,XYZ\n")
    with pytest.raises(DataError, match=r"train.csv:2: unknown emotion 'XYZ'"):
        cd.read_clip_list(root / "train.csv")


def test_cache_invalidated_when_a_file_changes(root):
    s = cd.cremad(root=str(root), seed=0, **PREP)
    wav = root / "AudioWAV" / "1003_DFA_NEU_XX.wav"
    wavfile.write(wav, RATE, np.zeros(3200, dtype=np.int16))
    again = cd.cremad(root=str(root), seed=0, **PREP)
    assert not torch.equal(again.test.inputs["audio"], s.test.inputs["audio"])
