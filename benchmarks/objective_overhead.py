"""Training-step time of registered objectives relative to ``joint`` on the same model and data.

    python benchmarks/objective_overhead.py --methods synib
    python benchmarks/objective_overhead.py --methods synib --method-set synib:mask=random --method-set synib:p=0.3
    python benchmarks/objective_overhead.py --methods synib,ogm_ge,conf_penalty --set model.fusion_hidden=[64]
    python benchmarks/objective_overhead.py --methods dmil --stage finetune    # a later stage of a staged method
    python benchmarks/objective_overhead.py --data token-xor --set model.backbone=tiny-vlm --methods synib \
        --method-set synib:fill=model --memory          # token level: whole-modality EMA-noise masking, batched
    python benchmarks/objective_overhead.py --data token-xor --set model.backbone=tiny-vlm \
        --methods synib,synib#noise,synib#noise1 --method-set synib#noise:fill=model \
        --method-set synib#noise1:fill=model --method-set synib#noise1:random_modality=true   # side by side

A method may carry a label, ``NAME#LABEL``: the same registered objective several times with different
``--method-set NAME#LABEL:KEY=VALUE`` settings, timed side by side in the same rounds.

Token-level models (``--set model.backbone=...``, e.g. the built-in ``tiny-vlm`` on ``--data token-xor``) are timed the
same way; ``--memory`` adds, per method, the bytes autograd keeps for the backward pass of one step (saved tensors,
counted once per storage) and, on CUDA, the step's peak allocated memory. Compare ``--set model.variant_chunk=1``
(one backbone call per variant) with the default (all variants in one call).

Every method (and ``joint``) gets an identically initialised model (same seed) on the same batches; a step is
``objective(model, batch, state)`` + ``backward`` + ``on_after_backward`` + optimiser step over the first stage's
trainable parameters (after ``objective.setup(model, splits)``); ``--stage NAME`` times that stage of a staged
method instead (its trainable set and frozen modules; ``joint`` keeps its single stage). Methods are timed in
interleaved rounds (``--steps`` steps each, in a fresh random order per round), so load drift hits all of them
alike; the ratio of a method is the median over rounds of its mean step time divided by ``joint``'s in the same
round. The last line printed for each method is ``NAME/joint step-time ratio: X.XX``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.autograd.graph import saved_tensors_hooks

from interplay.config import RunConfig, parse_override, set_field
from interplay.engine.seeding import epoch_generator
from interplay.engine.trainer import OPTIMIZERS, build_data, resolve_config, resolve_device
from interplay.errors import InterplayError, report_errors
from interplay.models import build_model
from interplay.objectives import Objective, TrainState, build_objective


@dataclass
class Runner:
    """One objective with its own model and optimiser, stepping through the shared batches."""

    name: str
    model: torch.nn.Module
    objective: Objective
    optimizer: torch.optim.Optimizer
    params: list[torch.nn.Parameter]
    grad_clip: float | None
    state: TrainState

    def step(self, batch) -> None:
        out = self.objective(self.model, batch, self.state)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        self.objective.on_after_backward(self.model, self.state)
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        self.state.step += 1


def build_runner(name: str, base: RunConfig, params: dict, data, device: torch.device,
                 stage_name: str | None = None) -> Runner:
    """``name``: a registered objective, or ``NAME#LABEL`` (the same objective under a label of its own)."""
    cfg = RunConfig.from_dict(base.to_dict())
    cfg.method.name, cfg.method.params = name.partition("#")[0], dict(params)
    cfg = resolve_config(cfg)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, data.info).to(device)
    objective = build_objective(cfg.method)
    objective.setup(model, data)
    objective.to(device)
    stages = objective.stages(cfg.train.epochs)
    stage = stages[0]
    if stage_name is not None and len(stages) > 1:
        by_name = {s.name: s for s in stages}
        if stage_name not in by_name:
            raise InterplayError(f"--stage {stage_name!r}: {cfg.method.name} has the stages {', '.join(by_name)}")
        stage = by_name[stage_name]
    params_ = []
    named = [(f"model.{n}", p) for n, p in model.named_parameters()] + \
            [(f"objective.{n}", p) for n, p in objective.named_parameters()]
    for qual, p in named:
        p.requires_grad_(stage.trainable is None or stage.trainable(qual))
        if p.requires_grad:
            params_.append(p)
    for m in (*model.modules(), *objective.modules()):  # as the trainer: frozen modules in eval mode
        own = list(m.parameters())
        m.train(not own or any(p.requires_grad for p in own))
    t = cfg.train
    optimizer = OPTIMIZERS[t.optimizer](params_, t, t.lr * stage.lr_scale)
    state = TrainState(epoch=0, stage=stage.name, stage_epoch=0, stage_epochs=stage.epochs, num_epochs=t.epochs)
    return Runner(name, model, objective, optimizer, params_, t.grad_clip, state)


def step_memory(runner: Runner, batch, device: torch.device) -> tuple[int, int | None]:
    """Bytes autograd saves for the backward pass of one step (each storage once) and, on CUDA, the step's peak
    allocated bytes (None elsewhere)."""
    seen: dict[tuple[int, torch.device], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[(storage.data_ptr(), t.device)] = storage.nbytes()
        return t

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    with saved_tensors_hooks(pack, lambda t: t):
        runner.step(batch)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return sum(seen.values()), peak


def describe_model(cfg: RunConfig) -> str:
    m = cfg.model
    if m.backbone:
        return (f"token model {m.backbone} (token_mask {m.token_mask}, variant_chunk {m.variant_chunk}"
                + (f", lora_r {m.lora_r}" if m.lora_r else "") + ")")
    return f"model encoders {m.encoder_hidden} fusion {m.fusion_hidden}"


def batch_stream(data, batch_size: int, seed: int, device: torch.device) -> Iterator:
    epoch = 0
    while True:
        gen = epoch_generator(seed, epoch)
        for batch in data.train.batches(batch_size, shuffle=True, generator=gen, drop_last=True):
            yield batch.to(device)
        epoch += 1


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", default="synib",
                   help="comma-separated registered objectives, each optionally labelled NAME#LABEL (default: synib)")
    p.add_argument("--method-set", action="append", default=[], metavar="NAME:KEY=VALUE",
                   help="hyperparameter of one method (or NAME#LABEL), e.g. synib:mask=random (repeatable)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="data/model/train override shared by all methods, e.g. model.fusion_hidden=[64]")
    p.add_argument("--data", default="pid-xor")
    p.add_argument("--batch-size", type=int, default=None, help="default: train.batch_size (64)")
    p.add_argument("--rounds", type=int, default=30, help="interleaved timing rounds")
    p.add_argument("--steps", type=int, default=20, help="timed steps per method per round")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps per method first")
    p.add_argument("--stage", default=None, help="stage of staged methods to time (default: each one's first)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory", action="store_true",
                   help="also report the autograd-saved bytes of one step (and CUDA peak memory)")
    args = p.parse_args(argv)
    return report_errors(lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if len(set(methods)) != len(methods):
        raise InterplayError(f"--methods: a method is listed twice; label repeats as NAME#LABEL ({args.methods})")
    method_params: dict[str, dict] = {m: {} for m in methods}
    for item in args.method_set:
        name, sep, kv = item.partition(":")
        if not sep or name not in method_params:
            raise InterplayError(f"--method-set {item!r}: expected NAME:KEY=VALUE with NAME one of {methods}")
        key, value = parse_override(kv)
        method_params[name][key] = value
    base = RunConfig.from_dict({"data": {"name": args.data}, "train": {"seed": args.seed, "device": args.device}})
    for item in args.overrides:
        set_field(base, *parse_override(item))
    if args.batch_size:
        base.train.batch_size = args.batch_size
    resolved = resolve_config(base)
    device = resolve_device(resolved.train.device)
    data = build_data(resolved)
    for split in (data.train, data.val, data.test):
        split.to(device)

    names = ["joint", *[m for m in methods if m != "joint"]]
    runners = {n: build_runner(n, base, method_params.get(n, {}), data, device, args.stage) for n in names}
    streams = {n: batch_stream(data, resolved.train.batch_size, args.seed, device) for n in names}
    for n, r in runners.items():
        for _ in range(args.warmup):
            r.step(next(streams[n]))
    rng = random.Random(args.seed)
    per_round: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.rounds):
        order = names[:]
        rng.shuffle(order)
        for n in order:
            batches = [next(streams[n]) for _ in range(args.steps)]
            sync(device)
            t0 = time.perf_counter()
            for b in batches:
                runners[n].step(b)
            sync(device)
            per_round[n].append((time.perf_counter() - t0) / args.steps)

    settings = (f"{args.data}, batch {resolved.train.batch_size}, {describe_model(resolved)}, "
                f"device {device}, threads {torch.get_num_threads()}, "
                f"{args.rounds} rounds x {args.steps} steps" + (f", stage {args.stage}" if args.stage else ""))
    print(settings)
    if args.memory:
        for n in names:
            saved, peak = step_memory(runners[n], next(streams[n]), device)
            print(f"{n}: autograd-saved {saved / 2**20:.2f} MiB per step"
                  + (f", peak allocated {peak / 2**20:.1f} MiB" if peak is not None else ""))
    joint = per_round["joint"]
    print(f"joint: median step {statistics.median(joint) * 1e3:.2f} ms")
    for n in names[1:]:
        ratios = [a / b for a, b in zip(per_round[n], joint)]
        extra = ", ".join(f"{k}={v}" for k, v in method_params[n].items())
        print(f"{n}{f' ({extra})' if extra else ''}: median step {statistics.median(per_round[n]) * 1e3:.2f} ms")
        print(f"{n}/joint step-time ratio: {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
