"""Smoke test of benchmarks/objective_overhead.py: it runs, prints the documented last line, refuses bad stages.
(No timing is asserted: speed claims live in the script's output, not in tests.)"""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "objective_overhead.py"


@pytest.fixture(scope="module")
def overhead():
    spec = importlib.util.spec_from_file_location("objective_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass needs the module registered
    spec.loader.exec_module(module)
    return module


TINY = ["--rounds", "2", "--steps", "1", "--warmup", "1", "--set", "data.n_train=128",
        "--set", "model.encoder_hidden=[16]", "--set", "model.fusion_hidden=[8]"]


def test_last_line_is_the_ratio(overhead, capsys):
    assert overhead.main(["--methods", "synib", "--method-set", "synib:mask=random", *TINY]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "synib (mask=random): median step" in out[-2]
    assert re.fullmatch(r"synib/joint step-time ratio: \d+\.\d\d", out[-1])


def test_stage_of_a_staged_method(overhead, capsys):
    assert overhead.main(["--methods", "dmil", "--stage", "finetune", *TINY]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].endswith("stage finetune") and out[-1].startswith("dmil/joint step-time ratio: ")
    assert overhead.main(["--methods", "omib", "--stage", "finetune", *TINY]) == 2
    assert "--stage 'finetune': omib has the stages warmup, main" in capsys.readouterr().err


def test_token_level_model_with_memory(overhead, capsys):
    pytest.importorskip("transformers")
    args = ["--data", "token-xor", "--set", "model.backbone=tiny-vlm", "--set", "data.n_train=80",
            "--set", "model.variant_chunk=1", "--methods", "synib", "--method-set", "synib:fill=model",
            "--memory", "--rounds", "1", "--steps", "1", "--warmup", "1", "--batch-size", "8"]
    assert overhead.main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "token model tiny-vlm (token_mask noise, variant_chunk 1)" in out[0]
    saved = {line.split(":")[0]: float(line.split("autograd-saved ")[1].split()[0]) for line in out
             if "autograd-saved" in line}
    assert saved["synib"] > saved["joint"] > 0  # the masked sequences keep activations of their own
    assert re.fullmatch(r"synib/joint step-time ratio: \d+\.\d\d", out[-1])


def test_labelled_variants_of_one_method_side_by_side(overhead, capsys):
    """NAME#LABEL: the same objective twice with its own settings, one ratio line each; a repeat is refused."""
    assert overhead.main(["--methods", "synib#zero,synib#rm", "--method-set", "synib#zero:fill=zero",
                          "--method-set", "synib#rm:fill=zero", "--method-set", "synib#rm:random_modality=true",
                          "--set", "data.modalities=3", *TINY]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "synib#zero (fill=zero): median step" in out[-4]
    assert "synib#rm (fill=zero, random_modality=True): median step" in out[-2]
    assert re.fullmatch(r"synib#rm/joint step-time ratio: \d+\.\d\d", out[-1])
    assert overhead.main(["--methods", "synib,synib", *TINY]) == 2
    assert "--methods: a method is listed twice" in capsys.readouterr().err


def test_token_step_breakdown_prints_the_parts(capsys):
    pytest.importorskip("transformers")
    path = SCRIPT.parent / "token_step_breakdown.py"
    spec = importlib.util.spec_from_file_location("token_step_breakdown", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--set", "data.n_train=80", "--set", "data.n_test=16", "--batch-size", "8", "--repeats", "1",
                        "--warmup", "0"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "batch 8, tiny-vlm, 2 modalities, sequence 24 tokens" in out[0]
    names = [line.split(":")[0] for line in out[1:-2]]
    assert names == ["encoders", "backbone x1", "backbone x2", "backbone x3", "assemble", "noise", "optimizer"]
    assert re.fullmatch(r"estimated step-time ratio with 3 sequences \(B rows each\): \d+\.\d\d", out[-1])
    assert module.main(["--data", "pid-xor", "--set", "model.backbone=null", "--set", "data.n_train=80",
                        "--set", "data.n_test=16"]) == 2
    assert "this benchmark times token-level models" in capsys.readouterr().err
