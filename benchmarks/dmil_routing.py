"""DMIL's gate against the ground-truth interaction type: the default gate vs the opt-in ``routing`` variant.

    python benchmarks/dmil_routing.py --out runs/dmil_routing [--seeds 3] [--epochs 30] [--mixes r33-u33-s34,all25]
        [--settings none,none+focus,sufficiency:0.3,sufficiency:1,sufficiency:0.3+focus,sufficiency:1+focus]

pid-xor with two source mixes (redundant .33 / unique .33 / synergistic .34, and every source .25), 2,000
training samples of which 10% validation, 2,000 test samples, per-modality MLP 32-128-128 (fusion 128-64, unused
by DMIL), Adam lr 3e-4, batch 64, 30 epochs, best-validation checkpoint, the same seeds for every setting. A
setting is ``none`` (DMIL's default gate) or ``sufficiency:W`` (``method.routing=sufficiency``,
``method.w_route=W``), optionally with ``+focus`` (``method.synergy_focus=true``). Each run lives in
``OUT/<mix>/<setting>/seed<s>``; rerunning skips finished runs.

Prints, per mix and setting (mean ± std over seeds), on validation and on test: ``gate_agreement`` (dominant
component = true type), ``gate_agreement_macro`` (mean over types of each type's recall), ``gate_s_auroc`` (the
gate's S weight as a score for "synergistic"), overall and synergistic accuracy. Then the choice made **on
validation**: the routing (``sufficiency``) setting with the highest mean validation ``gate_agreement_macro``
(over mixes and seeds) among those whose mean validation synergistic accuracy is at most 0.02 below the
default's; and for the default and the chosen setting on test: the mean gate weight per true type and the
component x true-type accuracy matrix.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from interplay.bench.tables import fmt_mean_std, format_table, mean_std
from interplay.config import RunConfig
from interplay.engine import train

MIXES = {"r33-u33-s34": "redundant=0.33,unique1=0.165,unique2=0.165,synergistic=0.34",
         "all25": "redundant=0.25,unique1=0.25,unique2=0.25,synergistic=0.25"}
TYPES = ("redundant", "unique1", "unique2", "synergistic")
COMPONENTS = ("R", "U1", "U2", "S")
MODEL = {"encoder_hidden": [128, 128], "fusion_hidden": [128, 64]}
#: the grid of docs/methods/dmil.md
SETTINGS = ("none", "none+focus", "sufficiency:0.3", "sufficiency:1", "sufficiency:0.3+focus", "sufficiency:1+focus")
#: the allowed loss of synergistic accuracy against the default when choosing a routing setting on validation
SYN_TOLERANCE = 0.02


def setting_params(setting: str) -> dict[str, Any]:
    """``none`` -> DMIL defaults; ``sufficiency:W`` -> ``routing=sufficiency, w_route=W``; a ``+focus`` suffix adds
    ``synergy_focus=true``."""
    params: dict[str, Any] = {}
    for part in setting.split("+"):
        if part == "focus":
            params["synergy_focus"] = True
        elif part != "none":
            routing, _, weight = part.partition(":")
            params.update(routing=routing, **({"w_route": float(weight)} if weight else {}))
    return params


def run_config(mix: str, setting: str, seed: int, epochs: int) -> RunConfig:
    return RunConfig.from_dict({
        "data": {"name": "pid-xor", "mix": MIXES[mix], "n_train": 2000, "n_test": 2000, "val_fraction": 0.1},
        "model": MODEL,
        "method": {"name": "dmil", **setting_params(setting)},
        "train": {"epochs": epochs, "seed": seed, "batch_size": 64, "lr": 3e-4}})


def run(out: Path, mix: str, setting: str, seed: int, epochs: int) -> dict[str, Any]:
    path = out / mix / setting.replace(":", "_").replace("+", "_") / f"seed{seed}"
    if (path / "metrics.json").exists():
        return dict(json.loads((path / "metrics.json").read_text()))
    return train(run_config(mix, setting, seed, epochs), path, quiet=True)


def values(runs: list[dict[str, Any]], split: str, key: str) -> list[float | None]:
    out: list[float | None] = []
    for r in runs:
        m = r[split]
        if key == "overall":
            out.append(m["accuracy"])
        elif key == "synergistic":
            out.append((m.get("accuracy_by_interaction") or {}).get("synergistic"))
        else:
            out.append(m.get(key))
    return out


KEYS = ("gate_agreement", "gate_agreement_macro", "gate_s_auroc", "overall", "synergistic")


def mean_of(runs: list[dict[str, Any]], split: str, key: str) -> float:
    return mean_std(values(runs, split, key))[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/dmil_routing")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--mixes", default=",".join(MIXES), help=f"comma-separated, from {', '.join(MIXES)}")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    args = parser.parse_args(argv)
    mixes = [m for m in args.mixes.split(",") if m]
    settings = [s for s in args.settings.split(",") if s]
    if "none" not in settings:
        settings.insert(0, "none")
    out = Path(args.out)
    t0 = time.perf_counter()
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for mix in mixes:
        for setting in settings:
            results[mix, setting] = [run(out, mix, setting, s, args.epochs) for s in range(args.seeds)]
    print(f"pid-xor, 2000 train (10% validation) / 2000 test, {args.epochs} epochs, MLP 32-128-128, seeds "
          f"0..{args.seeds - 1} (mean ± std); runs in {out}; {time.perf_counter() - t0:.0f} s "
          f"(summed run time {sum(r['train_time_s'] for rs in results.values() for r in rs):.0f} s)\n")
    for split in ("val", "test"):
        rows = [[mix, setting, *[fmt_mean_std(values(results[mix, setting], split, k)) for k in KEYS]]
                for mix in mixes for setting in settings]
        print(f"{split}:\n")
        print(format_table(["mix", "setting", "agreement", "macro agreement", "S-weight AUROC", "overall",
                            "synergistic"], rows, markdown=True))
        print()

    # choice on validation: best macro agreement among routing settings within SYN_TOLERANCE of the default
    def pooled(setting: str, split: str, key: str) -> float:
        return mean_std([v for mix in mixes for v in values(results[mix, setting], split, key)])[0]

    default_syn = pooled("none", "val", "synergistic")
    routed = [s for s in settings if "sufficiency" in s]
    allowed = [s for s in routed if pooled(s, "val", "synergistic") >= default_syn - SYN_TOLERANCE]
    print(f"validation, pooled over mixes and seeds: default synergistic {default_syn:.3f}; " + ", ".join(
        f"{s}: macro agreement {pooled(s, 'val', 'gate_agreement_macro'):.3f}, synergistic "
        f"{pooled(s, 'val', 'synergistic'):.3f}" for s in settings if s != "none"))
    chosen = max(allowed, key=lambda s: pooled(s, "val", "gate_agreement_macro")) if allowed else None
    print(f"chosen on validation: {chosen or 'none of the routing settings (all lose more synergistic accuracy)'}\n")
    shown = ["none"] + ([chosen] if chosen else [])
    for setting in shown:
        for mix in mixes:
            runs = results[mix, setting]
            gate = [[fmt_mean_std([(r["test"]["gate"].get("by_source") or {}).get(t, {}).get(c) for r in runs], 2)
                     for c in COMPONENTS] for t in TYPES]
            acc = [[fmt_mean_std([(r["test"].get("component_accuracy_by_source") or {}).get(t, {}).get(c)
                                  for r in runs]) for c in COMPONENTS] for t in TYPES]
            print(f"{setting}, {mix}, test: mean gate weight | component accuracy, per true type\n")
            print(format_table(["type", *[f"g_{c}" for c in COMPONENTS], *[f"acc_{c}" for c in COMPONENTS]],
                               [[t, *g, *a] for t, g, a in zip(TYPES, gate, acc)], markdown=True))
            print()
    if chosen:
        print("test, chosen vs default (mean over seeds; difference chosen - default):\n")
        rows = []
        for mix in mixes:
            pairs = [(mean_of(results[mix, chosen], "test", k), mean_of(results[mix, "none"], "test", k)) for k in KEYS]
            rows.append([mix, *[f"{a:.3f} vs {b:.3f} ({a - b:+.3f})" for a, b in pairs]])
        print(format_table(["mix", *KEYS], rows, markdown=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
