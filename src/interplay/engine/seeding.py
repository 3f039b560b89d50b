"""Seeding and random-state capture (same seed, same device -> same numbers, also across a resume)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (all devices) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator for the epoch's shuffling order that depends only on ``(seed, epoch)``."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's (every device's) global generator states, as tensors and plain values only
    (so that a checkpoint holding them loads with ``torch.load(weights_only=True)``); :func:`set_rng_state`
    restores them exactly."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": None if gauss is None else float(gauss)},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generator states :func:`rng_state` captured."""
    py = state["python"]
    gauss = py["gauss"]
    random.setstate((int(py["version"]), tuple(int(v) for v in py["state"].tolist()),
                     None if gauss is None else float(gauss)))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].cpu().numpy().astype(np.uint32), int(npy["pos"]),
                         int(npy["has_gauss"]), float(npy["cached_gaussian"])))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
