import gzip
import shutil
from importlib import resources
from pathlib import Path

import pytest
import torch

from interplay.data.mfeat import MFEAT_VIEWS, load_mfeat_arrays, mfeat
from interplay.errors import ConfigError, DataError


def test_shipped_views_and_labels():
    views, labels = load_mfeat_arrays()
    assert {v: x.shape for v, x in views.items()} == {v: (2000, d) for v, d in MFEAT_VIEWS.items()}
    assert (torch.bincount(torch.as_tensor(labels)) == 200).all()


def test_stratified_seeded_splits():
    s = mfeat(seed=0)
    assert (len(s.train) + len(s.val), len(s.test)) == (1500, 500)
    assert sorted(s.info.modalities) == sorted(MFEAT_VIEWS) and s.info.num_classes == 10
    assert (torch.bincount(s.test.target) == 50).all()
    again = mfeat(seed=0)
    assert torch.equal(s.test.inputs["fac"], again.test.inputs["fac"])
    two = mfeat(seed=0, views="fou,kar")
    assert sorted(two.info.modalities) == ["fou", "kar"]


def test_bad_views():
    with pytest.raises(ConfigError, match="data.views"):
        mfeat(views="fou")
    with pytest.raises(ConfigError, match="data.views"):
        mfeat(views="fou,nope")


def _copy_shipped(dst: Path) -> None:
    src = Path(str(resources.files("interplay") / "data" / "files" / "mfeat"))
    for f in src.glob("*.csv.gz"):
        shutil.copy(f, dst / f.name)


def test_missing_file_names_the_file(tmp_path):
    _copy_shipped(tmp_path)
    (tmp_path / "mfeat-zer.csv.gz").unlink()
    with pytest.raises(DataError, match="mfeat-zer.csv.gz: file not found"):
        load_mfeat_arrays(str(tmp_path))


def test_truncated_file_names_the_file(tmp_path):
    _copy_shipped(tmp_path)
    with gzip.open(tmp_path / "mfeat-mor.csv.gz", "rt") as fh:
        lines = fh.readlines()[:100]
    with gzip.open(tmp_path / "mfeat-mor.csv.gz", "wt") as fh:
        fh.writelines(lines)
    with pytest.raises(DataError, match=r"mfeat-mor.csv.gz: expected 2000 rows of 6 features"):
        load_mfeat_arrays(str(tmp_path))
    (tmp_path / "mfeat-mor.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="mfeat-mor.csv.gz: unreadable"):
        load_mfeat_arrays(str(tmp_path))
