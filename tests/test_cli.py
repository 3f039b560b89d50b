"""The command line: the train contract, outputs, and one-line errors with a non-zero exit."""

import json
import subprocess
import sys

import pytest

from .conftest import run_cli

SMALL = ["--n-train", "200", "--n-test", "100", "--epochs", "1", "--set", "model.encoder_hidden=[16]",
         "--set", "model.fusion_hidden=[16]", "--quiet"]


def test_train_contract(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(["train", "--data", "pid-xor", "--mix", "redundant=0.9,synergistic=0.1", "--method",
                               "joint", "--seed", "0", "--out", str(out), *SMALL], capsys)
    assert code == 0 and "test accuracy" in stdout and "test synergistic" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"accuracy"} <= set(metrics["val"]) and {"accuracy", "macro_f1", "accuracy_by_interaction"} <= set(
        metrics["test"])


def test_config_file_and_overrides(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {name: gaussian-split, preset: sim2}\nmethod: {name: conf_penalty, beta: 0.2}\n")
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--config", str(cfg), "--set", "method.beta=0.4", "--set", "data.preset=sim3",
                            "--out", str(out), *SMALL], capsys)
    assert code == 0, err
    text = (out / "config.yaml").read_text()
    assert "beta: 0.4" in text and "preset: sim3" in text and "name: gaussian-split" in text


@pytest.mark.parametrize("args, message", [
    (["--method", "nope"], "unknown method 'nope'; expected one of: "),
    (["--data", "nope"], "unknown dataset 'nope'; expected one of: "),
    (["--set", "method.lam=3"], "unknown config key method.lam for method 'joint'"),
    (["--set", "trainn.epochs=3"], "config key 'trainn.epochs'"),
    (["--mix", "redundant=-1"], "data.mix: weights must be finite and non-negative"),
    (["--mix", "redundant=0,synergistic=0"], "data.mix: at least one weight must be positive"),
    (["--set", "train.epochs=many"], "train.epochs: expected an integer"),
    (["--config", "/nonexistent/c.yaml"], "cannot read config file"),
    (["--n-train", "0"], "data.n_train: expected a positive number of samples, got 0"),
    (["--n-train", "3"], "data.n_train: 3 samples are too few for the splits: 3 training and 0 validation"),
    (["--n-test", "0"], "data.n_test: expected a positive number of samples, got 0"),
    (["--seed", "-1"], "train.seed: expected an integer from 0 to 2**64-1, got -1"),
    (["--lr", "inf"], "train.lr: expected a finite positive number, got inf"),
    (["--lr", "nan"], "train.lr: expected a finite positive number, got nan"),
    (["--set", "train.weight_decay=.nan"], "train.weight_decay: expected a finite non-negative number, got nan"),
    (["--set", "train.grad_clip=.inf"], "train.grad_clip: expected a finite non-negative number, got inf"),
    (["--mix", "redundant=0.9,synergistic=0.2"], "data.mix: weights must sum to 1, got redundant=0.9, "
                                                 "synergistic=0.2 summing to 1.1"),
    (["--mix", "redundant=0.5,nope=0.5"], "data.mix: unknown source(s) nope"),
    (["--set", "data.trust_pickle=true"], "data.trust_pickle: pickle trust cannot come from a config"),
])
def test_bad_input_one_line_nonzero(tmp_path, capsys, args, message):
    code, _, err = run_cli(["train", "--out", str(tmp_path / "r"), *SMALL, *args], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("interplay: error: ") and message in err
    assert not (tmp_path / "r").exists()  # refused before the run directory is written


@pytest.mark.parametrize("content, message", [
    (b"", "c.yaml: empty config file"),
    (b"# only a comment\n", "c.yaml: empty config file"),
    (b"train: {epochs: 1}\ndata: {name: caf\xe9}\n", "c.yaml: not a UTF-8 text file (byte 0xe9 at offset 35)"),
    (b"\xff\xfe\x00t\x00r", "c.yaml: not a UTF-8 text file"),
])
def test_unusable_config_file_one_line(tmp_path, capsys, content, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content)
    code, _, err = run_cli(["train", "--config", cfg, "--out", tmp_path / "r", *SMALL], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err and not (tmp_path / "r").exists()


def test_set_integers_are_decimal(tmp_path, capsys):
    out = tmp_path / "r"
    code, _, err = run_cli(["train", "--out", out, *SMALL, "--set", "train.seed=010"], capsys)
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["seed"] == 10  # not YAML 1.1's octal 8


def test_unwritable_output_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(["train", "--out", tmp_path / "file" / "run", *SMALL], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"interplay: error: {tmp_path / 'file' / 'run'}") and "cannot create the run directory" in err
    # a write that fails later (e.g. a full or read-only disk) is one line naming the file as well
    import interplay.engine.trainer as trainer

    def refuse(path, obj):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(trainer, "atomic_torch_save", refuse)
    code, _, err = run_cli(["train", "--out", tmp_path / "r", *SMALL], capsys)
    assert code == 1 and err == f"interplay: error: {tmp_path / 'r' / 'best.pt'}: Permission denied\n"


def test_resume_into_directory_of_other_config(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert run_cli(["train", "--out", out, *SMALL], capsys)[0] == 0
    code, _, err = run_cli(["train", "--out", out, *SMALL, "--seed", "3"], capsys)
    assert code == 2 and "different config (train.seed: 0 in the directory, 3 now)" in err


def test_methods_and_data_list(capsys):
    code, out, _ = run_cli(["methods"], capsys)
    assert code == 0 and all(m in out for m in ["joint", "ensemble", "multi_loss", "ogm_ge", "conf_penalty",
                                                "label_smoothing", "unimodal"])
    code, out, _ = run_cli(["data", "list"], capsys)
    assert code == 0 and "pid-xor" in out and "mfeat" in out and "gaussian-split" in out


def test_console_script_entry_point():
    proc = subprocess.run([sys.executable, "-m", "interplay.cli", "train", "--out", "/tmp/x", "--method", "zzz"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "unknown method 'zzz'" in proc.stderr


def test_data_verify(capsys, tmp_path):
    code, out, _ = run_cli(["data", "verify", "--data", "mfeat"], capsys)
    assert code == 0 and "all 3 checks passed" in out
    code, _, err = run_cli(["data", "verify", "--data", "mfeat", "--data-root", str(tmp_path)], capsys)
    assert code == 2 and "mfeat-fac.csv.gz: file not found" in err and err.count("\n") == 1


def _interplay(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "interplay.cli", *args], capture_output=True, text=True, **kwargs)


@pytest.mark.parametrize("command", [["data", "list"], ["methods"], ["bench", "--list"], ["--help"]])
def test_closed_pipe_exits_quietly(command):
    """`interplay data list | head -c 5`: the reader closes the pipe early; no traceback, exit 0."""
    proc = subprocess.Popen([sys.executable, "-m", "interplay.cli", *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(5)) == 5
    proc.stdout.close()  # like `head -c 5` exiting
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and err == ""


def test_help_shows_defaults_and_two_examples():
    from interplay.cli import EXAMPLES, build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(EXAMPLES) == set(commands)
    for name, sub in commands.items():
        text = sub.format_help()
        examples = text.split("examples:")[1].strip().splitlines()
        assert len(examples) == 2 and all(line.strip().startswith("interplay ") for line in examples), name
    train = commands["train"].format_help()
    assert "(default: 30;" in train and "(default: 64)" in train and "default: joint)" in train
    assert "(default: 1)" in commands["bench"].format_help().replace("(default 1)", "(default: 1)")
    proc = _interplay("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("interplay ")


def test_no_progress_bar_frames_in_redirected_logs(tmp_path):
    """Progress bars are drawn only on a terminal: stderr redirected to a file holds no carriage returns."""
    log = tmp_path / "stderr.log"
    with log.open("w") as fh:
        code = subprocess.run([sys.executable, "-m", "interplay.cli", "train", "--data", "pid-xor", "--method",
                               "joint", "--out", str(tmp_path / "run"), *[a for a in SMALL if a != "--quiet"],
                               "--epochs", "2"], stdout=subprocess.DEVNULL, stderr=fh).returncode
    assert code == 0 and "\r" not in log.read_text()
