"""``report.html`` and the plots: every figure written and inlined, nothing external, the page renders in headless
Chromium with every image decoded."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from interplay.analysis import report as report_mod
from interplay.analysis import write_report


def _q(v: float, half: float | None = 0.02) -> dict:
    return {"value": v, "interval": None if half is None else [v - half, v + half]}


def _pair(a: str, b: str, r: float, s: float, truth: bool = True) -> dict:
    return {"pair": [a, b], "clusters": [8, 8], "redundancy": _q(r), "unique": {a: _q(0.01), b: _q(0.0, None)},
            "synergy": _q(s), "total": _q(r + s + 0.01), "p_synergy_conditional": 0.01,
            "truth": {"redundancy": 0.5, "unique": {a: 0.0, b: 0.0}, "synergy": 0.5, "total": 1.0} if truth else None}


def analysis(modalities: tuple[str, str] = ("x1", "x2"), model: bool = True) -> dict:
    a, b = modalities
    out: dict = {
        "interplay_version": "0.0.test", "kind": "run" if model else "dataset", "units": "bits", "settings": {},
        "data": {"name": "pid-xor", "config": {"params": {"mix": "redundant=0.5,synergistic=0.5"}},
                 "modalities": [a, b], "num_classes": 2, "samples": {"train": 270, "val": 30, "test": 200}},
        "dataset": {"estimator": "cluster", "split": "all", "n": 500,
                    "mi": {a: _q(0.45), b: _q(0.4), "all": _q(0.9)},
                    "pairs": [_pair(a, b, 0.4, 0.45)],
                    "recommendation": {"text": ["synergy 0.45 bits of 0.86 bits (52 %)"], "evidence": {}}},
    }
    if model:
        types = ["redundant", f"unique:{a}", f"unique:{b}", "synergistic", "undetermined"]
        method = {"counts": dict(zip(types, [100, 20, 20, 50, 10])),
                  "accuracy_by_type": dict(zip(types, [0.99, 0.9, 0.8, 0.6, None])),
                  "confusion": {"estimated": types, "true": ["redundant", "synergistic"],
                                "matrix": [[90, 10], [10, 10], [5, 15], [0, 50], [5, 5]]},
                  "type_accuracy": 0.7, "macro_agreement": 0.65, "auroc": {"synergistic": 0.9}}
        out["model"] = {"run_dir": "runs/x", "method": "synib", "seed": 0, "test_accuracy": 0.83,
                        "pairs": [_pair(a, b, 0.3, 0.2, truth=False)],
                        "per_sample": {"csv": "per_sample.csv", "types": types,
                                       "methods": {"agreement": method, "lsmi": dict(method, confusion=None)}}}
    return out


EXPECTED = ["pid_x1_x2.png", "mi.png", "per_sample_types.png", "accuracy_by_type.png", "confusion_agreement.png"]


def test_report_writes_every_figure_and_inlines_it(tmp_path: Path) -> None:
    written = write_report(tmp_path, analysis())
    assert [p.name for p in written] == [*EXPECTED, "report.html"]
    page = (tmp_path / "report.html").read_text()
    for name in EXPECTED:
        png = (tmp_path / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page
    assert page.count("<img") == len(EXPECTED) == page.count('src="data:image/png;base64,')
    for external in ("http://", "https://", 'src="//', "href=", "@import", "url("):
        assert external not in page, external
    # the numbers are in the tables: dataset and model value of S, truth, the confusion counts, accuracies
    assert "0.450" in page and "[0.430, 0.470]" in page and "0.200" in page
    assert "<td>90</td><td>10</td>" in page and "0.830" in page
    assert "synergy 0.45 bits of 0.86 bits (52 %)" in page


def test_dataset_only_report_and_escaping(tmp_path: Path) -> None:
    written = write_report(tmp_path, analysis(("<b>x</b>", "y&z"), model=False))
    assert [p.name for p in written] == ["pid_b_x_b_y_z.png", "mi.png", "report.html"]
    page = (tmp_path / "report.html").read_text()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page and "y&amp;z" in page
    assert "Model" not in page


def test_report_without_matplotlib_keeps_the_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_matplotlib(_analysis: dict) -> dict:
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(report_mod, "figures", no_matplotlib)
    written = write_report(tmp_path, analysis())
    assert [p.name for p in written] == ["report.html"]
    page = (tmp_path / "report.html").read_text()
    assert "interplay[report]" in page and "<img" not in page and "0.450" in page


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium is not installed (Debian package `chromium`; .ci/run installs it on CI)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    """Load report.html offline in headless Chromium; the page's own script counts the decoded images."""
    out = tmp_path / "report"
    write_report(out, analysis())
    proc = subprocess.run(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (out / "report.html").resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None, dom[:500]
    assert f'data-images="{len(EXPECTED)}"' in body.group(0)
    assert f'data-figures="{len(EXPECTED)}"' in body.group(0)  # every image complete with naturalWidth > 0
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom)) == len(EXPECTED)
    for name in EXPECTED:
        assert f'data-name="{name}"' in dom
