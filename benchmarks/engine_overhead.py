"""The training engine's cost: its epoch time against a minimal hand-written loop, and the fixed cost of
``interplay train`` beyond its epochs.

    python benchmarks/engine_overhead.py                       # pid-xor, 7,200 training samples, batch 64
    python benchmarks/engine_overhead.py --methods joint --epochs 7
    python benchmarks/engine_overhead.py --quick               # a few seconds (smoke test; numbers meaningless)

**Epochs.** For each method the engine trains a real run (``Trainer.fit`` with a run directory) and, right after
each of its epochs, a minimal loop trains one epoch of an identically initialised model (same seed) on the same
batches (the engine's shuffled order of that epoch): ``objective(model, batch, state)``, ``zero_grad``,
``backward``, ``on_after_backward``, optimiser step, nothing else (no metrics, no validation, no checkpoint).
Interleaving makes load drift hit both alike; the first epoch is a warm-up (its validation imports scipy.stats,
counted in the fixed cost) and is left out of the medians. The engine's epoch is timed twice: its training pass
alone (``train``, what ``log.jsonl``'s ``time_s`` shows) and the whole epoch as ``interplay train`` runs it
(``epoch``: training pass + validation + best/last checkpoints + ``log.jsonl``). Medians over the epochs; the last
line of each method is ``NAME engine/minimal epoch-time ratio: X.XX`` (the whole epoch over the minimal epoch).

**Fixed cost.** ``interplay train --epochs 1`` runs in a fresh process whose phases are timed from inside
(torch import, the rest of Interplay's imports, data build, model + method build, first optimiser construction,
run-directory writes, final validation/test and their writes) and whose wall time is measured from outside; the
Python start (``python -c pass``) and ``python -c "import interplay"`` are timed in fresh processes too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

#: the child process of the fixed-cost measurement: ``interplay train`` (its ``main``) with its phases timed
_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import interplay.cli
import interplay.engine.trainer as tm
t2 = time.perf_counter()
times = {"import torch": t1 - t0, "import interplay (engine, cli)": t2 - t1}
dynamo_before = "torch._dynamo" in sys.modules

def timed(name, fn):
    def inner(*a, **k):
        s = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            times[name] = times.get(name, 0.0) + time.perf_counter() - s
    return inner

tm.build_data = timed("data build", tm.build_data)
tm.build_model = timed("model + method build", tm.build_model)
tm.build_mode_objective = timed("model + method build", tm.build_mode_objective)
first = {}
for key, make in list(tm.OPTIMIZERS.items()):
    def once(*a, _make=make, **k):
        if first:
            return _make(*a, **k)
        s = time.perf_counter()
        out = _make(*a, **k)
        first["t"] = time.perf_counter() - s
        first["dynamo"] = "torch._dynamo" in sys.modules
        return out
    tm.OPTIMIZERS[key] = once
T = tm.Trainer
T._create_dir = timed("run-directory writes", T._create_dir)
tm.environment = timed("run-directory writes", tm.environment)
tm.write_data_info = timed("run-directory writes", tm.write_data_info)
T.__init__ = timed("config resolution (imports every method + dataset)", T.__init__)
split_metrics = tm.split_metrics
def _split_metrics(*a, **k):
    name = "epochs" if "first validation metrics (scipy.stats import)" in times else \
        "first validation metrics (scipy.stats import)"
    return timed(name, split_metrics)(*a, **k)
tm.split_metrics = _split_metrics
T._train_epoch = timed("epochs", T._train_epoch)
T._evaluate = timed("epochs", T._evaluate)  # validation (the final evaluations are moved below)
T._save_last = timed("epochs", T._save_last)
T._save_best = timed("epochs", T._save_best)
finish = T._finish
def _finish(self, *a):
    s, before = time.perf_counter(), times.get("epochs", 0.0)
    try:
        return finish(self, *a)
    finally:
        times["epochs"] = before
        times["final validation + test + writes"] = time.perf_counter() - s
T._finish = _finish
code = interplay.cli.main(sys.argv[1:])
times["first optimiser construction"] = first.get("t", 0.0)
times["model + method build"] = times.get("model + method build", 0.0)
total = time.perf_counter() - t0
print(json.dumps({"code": code, "times": times, "inside": total, "dynamo_before": dynamo_before,
                  "dynamo_after_optimiser": first.get("dynamo")}))
"""


def _wall(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - start, done.stdout


def fixed_cost(method: str, n_train: int, overrides: list[str], repeats: int) -> list[tuple[str, float]]:
    """Median seconds of each fixed-cost cause of ``interplay train --epochs 1`` (fresh processes)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = [_wall(["-c", "pass"], env)[0] for _ in range(repeats)]
    imp = [_wall(["-c", "import interplay"], env)[0] for _ in range(repeats)]
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            args = ["-c", _CHILD, "train", "--method", method, "--epochs", "1", "--n-train", str(n_train),
                    "--quiet", "--out", str(Path(tmp) / "run")]
            for o in overrides:
                args += ["--set", o]
            wall, out = _wall(args, env)
        child = json.loads(out.strip().splitlines()[-1])
        if child["code"] != 0:
            raise RuntimeError(f"interplay train exited with {child['code']}")
        runs.append((wall, child))
    med = statistics.median
    rows = [("python start + exit (wall - time inside the process)", med(w - c["inside"] for w, c in runs)),
            ("  of which a bare start + exit (python -c pass)", med(start)),
            ("import interplay (package only, python -c)", med(imp) - med(start))]
    names = ["import torch", "import interplay (engine, cli)", "config resolution (imports every method + dataset)",
             "data build", "model + method build", "first optimiser construction",
             "first validation metrics (scipy.stats import)", "run-directory writes",
             "final validation + test + writes"]
    for name in names:
        rows.append((name, med(c["times"].get(name, 0.0) for _, c in runs)))
    inside = [c["inside"] - c["times"].get("epochs", 0.0) - sum(c["times"].get(n, 0.0) for n in names)
              for _, c in runs]
    rows.append(("other (arguments, seeding, setup, summary, ...)", med(inside)))
    rows.append(("total beyond the epochs", med(w - c["times"].get("epochs", 0.0) for w, c in runs)))
    rows.append(("(epochs, for reference)", med(c["times"].get("epochs", 0.0) for _, c in runs)))
    dyn = runs[0][1]
    print(f"torch._dynamo imported before the first optimiser: {dyn['dynamo_before']}; after it: "
          f"{dyn['dynamo_after_optimiser']}")
    return rows


_PROBE = r"""
import sys, time
import torch
p = [torch.nn.Parameter(torch.zeros(3))]
s = time.perf_counter()
if sys.argv[1] == "dynamo-first":
    import torch._dynamo
t = time.perf_counter()
torch.optim.Adam(p, lr=1e-3, **({"foreach": False} if sys.argv[1] == "foreach=False" else {}))
print(t - s, time.perf_counter() - t)
"""


def optimiser_probe(repeats: int) -> list[tuple[str, float]]:
    """Median seconds of the first ``torch.optim.Adam`` construction in a fresh process (after ``import torch``):
    as the engine builds it, with ``foreach=False``, and after importing ``torch._dynamo`` first (its cost then
    shows as the import)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    rows = []
    for mode in ("default", "foreach=False", "dynamo-first"):
        runs = [[float(x) for x in _wall(["-c", _PROBE, mode], env)[1].split()] for _ in range(repeats)]
        if mode == "dynamo-first":
            rows.append(("import torch._dynamo alone", statistics.median(r[0] for r in runs)))
            rows.append(("Adam() once torch._dynamo is imported", statistics.median(r[1] for r in runs)))
        else:
            rows.append((f"first Adam() ({mode})", statistics.median(r[1] for r in runs)))
    return rows


def epoch_times(method: str, cfg_dict: dict[str, Any], epochs: int) -> dict[str, list[float]]:
    """Per-epoch seconds of the engine (training pass, whole epoch) and of the minimal loop, interleaved."""
    import torch

    import interplay.engine.trainer as tm
    from interplay.config import RunConfig
    from interplay.engine.seeding import epoch_generator, seed_everything
    from interplay.models import build_model
    from interplay.objectives import TrainState, build_objective

    cfg = tm.resolve_config(RunConfig.from_dict({**cfg_dict, "method": {"name": method},
                                                 "train": {**cfg_dict.get("train", {}), "epochs": epochs}}))
    seed_everything(cfg.train.seed)
    data = tm.build_data(cfg)
    model = build_model(cfg.model, data.info)
    objective = build_objective(cfg.method)
    objective.setup(model, data)
    stage = objective.stages(epochs)[0]
    params = [p for n, p in [*((f"model.{n}", p) for n, p in model.named_parameters()),
                             *((f"objective.{n}", p) for n, p in objective.named_parameters())]
              if stage.trainable is None or stage.trainable(n)]
    optimizer = tm.OPTIMIZERS[cfg.train.optimizer](params, cfg.train, cfg.train.lr * stage.lr_scale)

    def minimal_epoch(epoch: int) -> float:
        model.train()
        objective.train()
        state = TrainState(epoch=epoch, stage=stage.name, stage_epochs=stage.epochs, num_epochs=epochs)
        gen = epoch_generator(cfg.train.seed, epoch)
        start = time.perf_counter()
        for idx in data.train.index_batches(cfg.train.batch_size, shuffle=True, generator=gen):
            batch = data.train.batch(idx)
            out = objective(model, batch, state)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            objective.on_after_backward(model, state)
            optimizer.step()
            state.step += 1
        objective.pop_epoch_logs()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"train": [], "epoch": [], "minimal": []}
    original_train, original_save = tm.Trainer._train_epoch, tm.Trainer._save_last
    begun: list[float] = []

    def train_epoch(self, optimizer, state):  # type: ignore[no-untyped-def]
        begun.append(time.perf_counter())
        row = original_train(self, optimizer, state)
        times["train"].append(time.perf_counter() - begun[-1])
        return row

    def save_last(self, optimizer, stage_index, epoch, best):  # type: ignore[no-untyped-def]
        original_save(self, optimizer, stage_index, epoch, best)
        times["epoch"].append(time.perf_counter() - begun[-1])
        rng = torch.get_rng_state()
        times["minimal"].append(minimal_epoch(epoch - 1))
        torch.set_rng_state(rng)  # the engine's run goes on as if alone

    tm.Trainer._train_epoch, tm.Trainer._save_last = train_epoch, save_last  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tm.Trainer(cfg, Path(tmp) / "run", quiet=True).fit()
    finally:
        tm.Trainer._train_epoch, tm.Trainer._save_last = original_train, original_save  # type: ignore[method-assign]
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="joint,synib", help="comma-separated methods (default: joint,synib)")
    parser.add_argument("--epochs", type=int, default=6,
                        help="epochs per method (default 6; medians over all but the first)")
    parser.add_argument("--n-train", type=int, default=8000,
                        help="pid-xor samples incl. validation (default 8000: 7,200 training samples)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per fixed-cost measurement")
    parser.add_argument("--quick", action="store_true", help="tiny data and model, 2 epochs, 1 repeat")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model: dict[str, Any] = {}
    overrides: list[str] = []
    if args.quick:
        args.epochs, args.n_train, args.repeats = 2, 256, 1
        model = {"encoder_hidden": [16], "fusion_hidden": [8]}
        overrides = ["model.encoder_hidden=[16]", "model.fusion_hidden=[8]"]
    cfg = {"data": {"name": "pid-xor", "n_train": args.n_train}, "model": model, "train": {"batch_size": 64}}
    methods = [m for m in args.methods.split(",") if m]
    print(f"pid-xor n_train={args.n_train} (90% training), batch 64, {args.epochs} epochs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print("\nfixed cost of `interplay train --epochs 1` beyond its epochs (median seconds, fresh processes):")
    for name, seconds in fixed_cost(methods[0], args.n_train, overrides, args.repeats):
        print(f"  {name:<60} {seconds:7.3f}")
    if not args.quick:
        print("\nfirst optimiser construction, fresh processes (median seconds):")
        for name, seconds in optimiser_probe(args.repeats):
            print(f"  {name:<60} {seconds:7.3f}")
    ratios = []
    for method in methods:
        t = epoch_times(method, cfg, args.epochs)
        med = {k: statistics.median(v[1:] if len(v) > 1 else v) for k, v in t.items()}  # epoch 1: warm-up
        print(f"\n{method}: median epoch seconds  engine training pass {med['train']:.3f}  engine whole epoch "
              f"{med['epoch']:.3f}  minimal loop {med['minimal']:.3f}  (training-pass ratio "
              f"{med['train'] / med['minimal']:.2f})")
        ratios.append(f"{method} engine/minimal epoch-time ratio: {med['epoch'] / med['minimal']:.2f}")
    print()
    print("\n".join(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
