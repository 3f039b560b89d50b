"""What a user gets from ``pip install interplay`` and from the source distribution: both are built here, offline
and without build isolation (``python -m build --no-isolation``: the sdist first, then the wheel from the unpacked
sdist, as an index would), and their contents are checked. Needs the ``build`` package (in the ``dev`` extra)."""

from __future__ import annotations

import email
import fnmatch
import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: never copied into the build tree, at any depth: caches, environments, build outputs, VCS
_IGNORE_ANYWHERE = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis",
                    "*.egg-info", "*.py[cod]"}
#: never copied from the top level: run outputs and earlier builds
_IGNORE_TOP = {"runs", "out", "build", "dist"}
#: folders of the source tree the sdist must hold entirely (what the test suite, benchmarks and docs need)
SDIST_TREES = ("tests", "docs", "benchmarks")
SDIST_FILES = ("README.md", "Makefile", "pyproject.toml", "MANIFEST.in", "LICENSE", "LICENSES/CC-BY-4.0.txt",
               "LICENSES/README.md", "src/interplay/_version.py", "src/interplay/py.typed")
MFEAT_VIEWS = ("fac", "fou", "kar", "mor", "pix", "zer")


def _ignore(directory: str, names: list[str]) -> set[str]:
    out = {n for n in names if any(fnmatch.fnmatch(n, pat) for pat in _IGNORE_ANYWHERE)}
    if Path(directory).resolve() == ROOT:
        out |= _IGNORE_TOP & set(names)
    return out


def _version() -> str:
    text = (ROOT / "src" / "interplay" / "_version.py").read_text()
    return re.search(r"""__version__\s*=\s*["']([^"']+)["']""", text).group(1)


class Built:
    def __init__(self, tree: Path, wheel: Path, sdist: Path):
        self.tree = tree                      # the copy of the source tree that was built
        with zipfile.ZipFile(wheel) as zf:
            self.wheel_names = set(zf.namelist())
            dist_info = {n.split("/")[0] for n in self.wheel_names if n.split("/")[0].endswith(".dist-info")}
            assert len(dist_info) == 1, dist_info
            self.dist_info = dist_info.pop()
            self.metadata = email.message_from_bytes(zf.read(f"{self.dist_info}/METADATA"))
            self.entry_points = zf.read(f"{self.dist_info}/entry_points.txt").decode()
            self.license_text = zf.read(f"{self.dist_info}/licenses/LICENSE").decode() \
                if f"{self.dist_info}/licenses/LICENSE" in self.wheel_names else ""
        with tarfile.open(sdist) as tf:
            names = [m.name for m in tf.getmembers() if m.isfile()]
        prefix = f"interplay-{_version()}/"
        assert all(n.startswith(prefix) for n in names), "sdist members outside interplay-VERSION/"
        self.sdist_names = {n[len(prefix):] for n in names}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    if importlib.util.find_spec("build") is None:
        pytest.fail("the `build` package is missing: install the dev extra (pip install -e '.[dev]')")
    work = tmp_path_factory.mktemp("packaging")
    # Build from a copy: a build writes src/interplay.egg-info into the tree, and setuptools reads an existing
    # SOURCES.txt there into the sdist (stale files would pass unnoticed); a fresh copy is what a clean checkout has.
    tree = work / "tree"
    shutil.copytree(ROOT, tree, ignore=_ignore)
    dist = work / "dist"
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(tree)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"python -m build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    wheels, sdists = sorted(dist.glob("interplay-*.whl")), sorted(dist.glob("interplay-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    assert wheels[0].name == f"interplay-{_version()}-py3-none-any.whl"
    return Built(tree, wheels[0], sdists[0])


def test_wheel_holds_the_package_and_its_data(built):
    names = built.wheel_names
    assert "interplay/py.typed" in names
    assert "interplay/__init__.py" in names and "interplay/cli.py" in names
    for view in MFEAT_VIEWS:
        assert f"interplay/data/files/mfeat/mfeat-{view}.csv.gz" in names
    assert "interplay/data/files/mfeat/README.md" in names          # the data's source and licence
    # every file of the source package is in the wheel
    src = built.tree / "src" / "interplay"
    missing = sorted(p.relative_to(src.parent).as_posix() for p in src.rglob("*")
                     if p.is_file() and p.relative_to(src.parent).as_posix() not in names)
    assert not missing, f"files of src/interplay missing from the wheel: {missing}"
    # nothing else: no tests, caches or byte code
    tops = {n.split("/")[0] for n in names}
    assert tops == {"interplay", built.dist_info}, tops
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_holds_the_bench_presets(built):
    presets = built.tree / "src" / "interplay" / "configs" / "bench"
    if not (presets / "demo.yaml").is_file():
        pytest.skip("the bench presets have not moved to src/interplay/configs/bench/ yet")
    for path in sorted(presets.parent.rglob("*.yaml")):
        assert f"interplay/{path.relative_to(presets.parents[1]).as_posix()}" in built.wheel_names
    assert "interplay/configs/bench/demo.yaml" in built.wheel_names


def test_wheel_metadata(built):
    md = built.metadata
    assert md["Name"] == "interplay" and md["Version"] == _version()
    assert md["License-Expression"] == "Apache-2.0 AND CC-BY-4.0"
    assert md["License"] is None                                     # PEP 639: the expression replaces it
    assert set(md.get_all("License-File")) >= {"LICENSE", "LICENSES/CC-BY-4.0.txt"}
    classifiers = md.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert "Topic :: Scientific/Engineering :: Artificial Intelligence" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # not allowed beside License-Expression
    assert md["Requires-Python"] == ">=3.10"
    assert "Install" in md.get_payload() and "pip install interplay" in md.get_payload()  # the README
    assert re.search(r"^interplay\s*=\s*interplay\.cli:main$", built.entry_points, re.M)


def test_wheel_ships_the_licence_texts(built):
    for name in ("LICENSE", "LICENSES/CC-BY-4.0.txt", "LICENSES/README.md"):
        assert f"{built.dist_info}/licenses/{name}" in built.wheel_names
    assert "Apache License" in built.license_text and "Version 2.0, January 2004" in built.license_text


def test_sdist_holds_what_the_test_suite_needs(built):
    names = built.sdist_names
    for name in SDIST_FILES:
        assert name in names, name
    for top in SDIST_TREES:
        wanted = {p.relative_to(built.tree).as_posix() for p in (built.tree / top).rglob("*") if p.is_file()}
        assert wanted, f"{top}/ is empty in the source tree"
        assert not wanted - names, f"missing from the sdist: {sorted(wanted - names)}"
    # the test subfolders (some without __init__.py) and their non-Python fixtures
    subfolders = {p.name for p in (built.tree / "tests").iterdir() if p.is_dir()}
    assert {"pid", "data", "bench", "engine"} <= subfolders
    for sub in subfolders:
        assert any(n.startswith(f"tests/{sub}/") for n in names), sub
    assert not [n for n in names if n.split("/")[0] in {".venv", ".git", ".ci", "runs", "dist", "build"}]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "_cache/" in n]
