"""Does ``interplay analyze``'s dataset-level PID cover pid-xor's known structure? (issue 16; docs/analysis.md)

For every pid-xor mix, seed and discretiser (``gmm``, the default, and ``kmeans``) this runs the dataset section
of ``interplay analyze`` (``interplay.analysis.dataset.analyze_dataset``: cluster estimator, label-shuffle
correction, basic bootstrap interval) with the command's defaults, and prints per atom the corrected value, its
interval, the generator's latent truth and whether the interval covers it; then, per mix and discretiser, how many
(seed, atom) intervals cover the truth and the mean error (estimate - truth) of every atom.

    python benchmarks/analyze_coverage.py                              # 4 mixes x 5 seeds x 2 discretisers
    python benchmarks/analyze_coverage.py --seeds 0 --clusterers gmm   # the acceptance mix, one seed
    python benchmarks/analyze_coverage.py --clusters 4,8,12,17 --seeds 0 --mixes redundant=0.5,synergistic=0.5

``--clusters`` sweeps the number of components (default: the command's automatic choice). One thread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from interplay.analysis.dataset import analyze_dataset  # noqa: E402
from interplay.analysis.settings import AnalysisSettings  # noqa: E402
from interplay.data import pid_xor  # noqa: E402
from interplay.errors import report_errors  # noqa: E402

MIXES = (
    "redundant=0.5,synergistic=0.5",
    "redundant=0.33,unique1=0.165,unique2=0.165,synergistic=0.34",
    "unique1=0.35,unique2=0.35,redundant=0.15,synergistic=0.15",
    "synergistic=0.7,redundant=0.1,unique1=0.1,unique2=0.1",
)
ATOMS = ("redundancy", "unique:x1", "unique:x2", "synergy")


def _atoms(pair: dict) -> dict[str, tuple[float, list[float], float]]:
    """atom -> (corrected value, interval, latent truth) of a pair entry of analysis.json's dataset section."""
    out = {}
    for atom in ATOMS:
        if atom.startswith("unique:"):
            m = atom.split(":")[1]
            q, t = pair["unique"][m], pair["truth"]["unique"][m]
        else:
            q, t = pair[atom], pair["truth"][atom]
        out[atom] = (q["value"], q["interval"], t)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mixes", default=";".join(MIXES), help="pid-xor mixes separated by ';'")
    p.add_argument("--seeds", default="0,1,2,3,4", help="data seeds (comma-separated)")
    p.add_argument("--clusterers", default="gmm,kmeans", help="discretisers to compare")
    p.add_argument("--clusters", default="", help="components per modality to sweep (default: automatic)")
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--permutations", type=int, default=100)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    ks: list[int | None] = [int(k) for k in args.clusters.split(",") if k.strip()] or [None]
    summary: dict[tuple[str, str, int | None], list[tuple[str, float, bool]]] = {}
    for mix in filter(None, (m.strip() for m in args.mixes.split(";"))):
        for seed in seeds:
            splits = pid_xor(seed=seed, mix=mix)
            for clusterer in filter(None, (c.strip() for c in args.clusterers.split(","))):
                for k in ks:
                    settings = AnalysisSettings(clusterer=clusterer, clusters=k, seed=seed, quiet=True,
                                                bootstrap=args.bootstrap, permutations=args.permutations,
                                                per_sample=())
                    start = time.perf_counter()
                    pair = analyze_dataset(splits, settings)["pairs"][0]
                    took = time.perf_counter() - start
                    cells = []
                    for atom, (v, (lo, hi), t) in _atoms(pair).items():
                        covered = lo <= t <= hi
                        summary.setdefault((mix, clusterer, k), []).append((atom, v - t, covered))
                        cells.append(f"{atom} {v:.3f} [{lo:.3f},{hi:.3f}] truth {t:.3f}{'' if covered else ' MISS'}")
                    print(f"{mix} seed {seed} {clusterer} K={pair['clusters']} ({took:.0f} s): " + "; ".join(cells),
                          flush=True)
    print("\nmix | discretiser | K | intervals covering the truth | mean error R / U1 / U2 / S (bits)")
    for (mix, clusterer, k), rows in summary.items():
        hits = sum(c for _, _, c in rows)
        err = {a: statistics.mean(e for name, e, _ in rows if name == a) for a in ATOMS}
        print(f"{mix} | {clusterer} | {'auto' if k is None else k} | {hits}/{len(rows)} | "
              + " / ".join(f"{err[a]:+.3f}" for a in ATOMS))
    return 0


if __name__ == "__main__":
    sys.exit(report_errors(main))
