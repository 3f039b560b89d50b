"""Data-parallel training with torch DDP (``--devices N --strategy ddp``).

``interplay train --devices 2`` spawns one process per device with :func:`torch.multiprocessing.spawn`
(gloo on CPU, NCCL on CUDA); under ``torchrun`` the process group from the environment is used as is.
Each rank takes its slice of every global batch (the same shuffled order on every rank, so the global batch
matches a single-process run with the same ``train.batch_size``); DDP averages the gradients; objectives
whose per-batch statistics drive the loss reduce them across ranks (OGM-GE's scores, OMIB's r); the epoch's
training sums (loss, loss terms, correct counts) and the objectives' epoch statistics (``log_epoch``: sums and
weights) are summed across ranks once per epoch before they are logged; rank 0 writes the run directory.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..objectives import Objective, ObjectiveOutput


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if is_distributed() else (0, 1)


class ObjectiveStep(nn.Module):
    """Model and objective as one module whose forward is a training step's loss, so DDP sees every
    parameter the objective uses (the objective may call any part of the model)."""

    def __init__(self, model: nn.Module, objective: Objective) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, batch: Any, state: Any) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        out = self.objective(self.model, batch, state)
        return out.loss, out.logits, out.parts


def wrap(model: nn.Module, objective: Objective, device: torch.device):
    """A callable ``(batch, state) -> ObjectiveOutput``; DDP-wrapped when a process group is initialised."""
    step = ObjectiveStep(model, objective)
    if is_distributed():
        ddp = nn.parallel.DistributedDataParallel(
            step, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)

        def call(batch: Any, state: Any) -> ObjectiveOutput:
            return ObjectiveOutput(*ddp(batch, state))

        return call
    return lambda batch, state: objective(model, batch, state)


def all_reduce_tensor(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed across ranks (a new tensor; ``t`` itself without a process group)."""
    if not is_distributed():
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t


def all_reduce_sums(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Sum every value across ranks (identity without a process group)."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    t = all_reduce_tensor(torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device))
    return dict(zip(keys, t.tolist()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, fit: Callable[[dict[str, Any], str, bool], Any],
            config: dict[str, Any], out_dir: str, quiet: bool, cuda: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if cuda:
        torch.cuda.set_device(rank)
    else:
        torch.set_num_threads(max(1, torch.get_num_threads() // world))
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    try:
        fit(config, out_dir, quiet or rank > 0)
    finally:
        dist.destroy_process_group()


def spawn_fit(fit: Callable[[dict[str, Any], str, bool], Any], config: dict[str, Any], out_dir: Path, devices: int,
              quiet: bool, cuda: bool) -> None:
    """Run ``fit(config, out_dir, quiet)`` in ``devices`` processes on one machine, each in a process group of
    ``devices`` ranks (NCCL with ``cuda``, one GPU per rank; gloo otherwise), and wait for them. ``fit`` must be
    a module-level function (it is pickled into the spawned processes)."""
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(devices, free_port(), fit, config, str(out_dir), quiet, cuda), nprocs=devices, join=True)
