"""Fixtures shared by the objective tests (DMIL's and its routing variant's)."""

import pytest

from interplay.data import pid_xor

#: every pid-xor source of two modalities, equally often
MIX = "redundant=0.25,unique1=0.25,unique2=0.25,synergistic=0.25"


@pytest.fixture(scope="module")
def data2():
    """A small 2-modality pid-xor with every source (train 72, val 24, test 48)."""
    return pid_xor(seed=0, n_train=96, n_test=48, val_fraction=0.25, mix=MIX)
