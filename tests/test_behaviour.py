"""Behavioural claims of the core issue, on small pid-xor / mfeat runs with fixed seeds (seconds each).

Reference model sizes (encoders 256-256, fusion 128-128), as in the spec.
"""

import pytest

from interplay.data.mfeat import MFEAT_VIEWS
from interplay.engine import train
from interplay.objectives import METHODS

from .conftest import make_config

REFERENCE_MODEL = {"encoder_hidden": [256, 256], "fusion_hidden": [128, 128]}


def pid_xor_run(method, mix, epochs=10, seed=0):
    cfg = make_config(method, epochs=epochs, seed=seed, n_train=1000, n_test=1000, data={"mix": mix},
                      model=REFERENCE_MODEL)
    return train(cfg)["test"]


def test_synergy_needs_fusion():
    """Pure XOR: a unimodal ensemble stays at chance, joint late fusion learns it."""
    assert pid_xor_run("ensemble", "synergistic=1")["accuracy"] <= 0.6
    assert pid_xor_run("joint", "synergistic=1")["accuracy"] >= 0.9


@pytest.mark.parametrize("method", METHODS.names())
def test_redundant_is_easy_for_every_method(method):
    assert pid_xor_run(method, "redundant=1", epochs=5)["accuracy"] >= 0.95


def test_mfeat_fusion_beats_every_single_view():
    def run(method, **params):
        cfg = make_config(method, dataset="mfeat", epochs=15, n_train=None, n_test=None,
                          model={"encoder_hidden": [128], "fusion_hidden": [64]}, method=params)
        return train(cfg)["test"]["accuracy"]

    joint = run("joint")
    single = {v: run("unimodal", modality=v) for v in MFEAT_VIEWS}
    assert joint > max(single.values()), (joint, single)
