"""Where a token-level SynIB step spends its time: the parts of one training step of a token model, timed apart.

    python benchmarks/token_step_breakdown.py                       # tiny-vlm on token-xor, batch 64, CPU
    python benchmarks/token_step_breakdown.py --set model.backbone=tiny-text --data DATA ...

Times (median over ``--repeats``, after ``--warmup`` untimed calls), all forward + backward where a backward exists:

* ``encoders``: ``model.encode`` on ``B`` rows (vision tower + projector, token embeddings);
* ``backbone xK``: the sequence backbone (language model + pooling) on ``K * B`` rows of assembled sequences,
  ``K`` = 1 (joint), 2 (SynIB with one masked sequence: the shuffle fill's shared pass, or ``random_modality``),
  ``1 + M`` (one masked sequence per modality, e.g. ``fill=model`` noise);
* ``assemble``: building one variant's sequence (concatenation, padding to the end), no backward;
* ``noise``: the EMA statistics update and one noise draw per modality (``model.token_mask=noise``);
* ``optimizer``: one Adam step over every trainable parameter.

The step-time ratio of SynIB to joint is roughly ``(encoders + backbone xK + optimizer + rest) / (encoders +
backbone x1 + optimizer + rest)``; the last line prints that estimate for ``K = 2`` and ``K = 1 + M`` from the parts
(``rest``: loss, logging and Python, not timed here: use ``objective_overhead.py`` for measured ratios).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import typing
from collections.abc import Callable

import torch

from interplay.config import RunConfig, parse_override, set_field
from interplay.engine.trainer import build_data, resolve_config
from interplay.errors import InterplayError, report_errors
from interplay.models import Absent, TokenModel, build_model


def timed(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median seconds of ``fn()``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="token-xor")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="data/model overrides (default model.backbone=tiny-vlm)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    return report_errors(lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = RunConfig.from_dict({"data": {"name": args.data}, "model": {"backbone": "tiny-vlm"}})
    for item in args.overrides:
        set_field(cfg, *parse_override(item))
    cfg = resolve_config(cfg)
    data = build_data(cfg)
    torch.manual_seed(0)
    model = build_model(cfg.model, data.info)
    if not isinstance(model, TokenModel):
        raise InterplayError("model.backbone: this benchmark times token-level models (set model.backbone)")
    model.train()
    batch = data.train.batch(torch.arange(min(args.batch_size, len(data.train))))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    fusion = model.fusion
    mods = list(model.modalities)
    b = len(batch)

    def encoders() -> None:
        feats = model.encode(batch.inputs)
        sum(z.float().square().mean() for z in feats.values()).backward()

    feats = {m: z.detach() for m, z in model.encode(batch.inputs).items()}
    embeds, att, _ = fusion.assemble(feats)

    def backbone(k: int) -> Callable[[], None]:
        e = embeds.repeat(k, 1, 1).requires_grad_()
        a = att.repeat(k, 1)
        return lambda: fusion.encode_sequence(e, a).square().mean().backward()

    def noise() -> None:
        if fusion.stats is None:
            return
        for m in mods:
            fusion.stats[m].update(feats[m].flatten(0, 1))
            fusion.stats[m].sample(feats[m])

    def step_optimizer() -> None:
        optimizer.step()

    encoders()  # gradients exist for the optimiser's timing
    parts = {"encoders": timed(encoders, args.repeats, args.warmup)}
    for k in sorted({1, 2, 1 + len(mods)}):
        parts[f"backbone x{k}"] = timed(backbone(k), args.repeats, args.warmup)
    parts["assemble"] = timed(lambda: fusion.assemble(feats, {mods[0]: Absent()}), args.repeats, args.warmup)
    parts["noise"] = timed(noise, args.repeats, args.warmup)
    parts["optimizer"] = timed(step_optimizer, args.repeats, args.warmup)
    optimizer.zero_grad(set_to_none=True)

    seq = typing.cast(int, att.shape[1])
    print(f"{args.data}, batch {b}, {cfg.model.backbone}, {len(mods)} modalities, sequence {seq} tokens, "
          f"threads {torch.get_num_threads()}, median of {args.repeats}")
    for name, t in parts.items():
        print(f"{name}: {t * 1e3:.2f} ms")
    fixed = parts["encoders"] + parts["optimizer"]
    joint = fixed + parts["backbone x1"]
    for k in sorted({2, 1 + len(mods)}):
        extra = (k - 1) * parts["assemble"] + (parts["noise"] if k == 1 + len(mods) else 0.0)
        print(f"estimated step-time ratio with {k} sequences (B rows each): "
              f"{(fixed + parts[f'backbone x{k}'] + extra) / joint:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
