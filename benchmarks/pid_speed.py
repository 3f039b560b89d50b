"""Speed and accuracy of the exact BROJA PID solver against reference implementations.

On the same random Dirichlet pmfs ``k x k x k``, times :func:`interplay.pid.broja` against a CVXPY
exponential-cone formulation (Clarabel) and, at small sizes, dit's ``PID_BROJA``; prints per-size
medians, the speed ratio and the largest disagreement in bits. One size far beyond the references
(100 x 100 x 10 by default) and a batched run close the table.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pid_speed.py            # a few minutes
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pid_speed.py --quick    # under a minute

Times are CPU seconds of this process (``time.process_time``) by default, so that other load on
the machine does not distort the ratio; ``--wall`` uses wall-clock time instead. CVXPY and dit are
optional (``pip install -e ".[reference]"``); missing ones are skipped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from interplay.data.pmfs import random_pmf  # noqa: E402
from interplay.pid import broja, broja_batch  # noqa: E402
from interplay.pid.reference import cvxpy_i_min  # noqa: E402


def dit_i_min(P: np.ndarray) -> float:
    """``min_Q I_Q(X1, X2; Y)`` in bits from dit's ``PID_BROJA`` (default route): ``I(X1;Y) + U2``."""
    import dit
    from dit.pid import PID_BROJA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pid = PID_BROJA(dit.Distribution.from_ndarray(P), rng=np.random.default_rng(0))
    r = broja(P)  # only for I(X1; Y), a closed-form quantity
    return r.i_x1_y + float(pid.get_pi(((1,),)))


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def timed(fn: Callable[[], Any], clock: Callable[[], float]) -> tuple[float, Any]:
    t0 = clock()
    out = fn()
    return clock() - t0, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 3, 4, 5, 8, 10, 12, 15, 20])
    ap.add_argument("--reps", type=int, default=3, help="random pmfs per size")
    ap.add_argument("--max-ref", type=int, default=12, help="largest k solved by CVXPY")
    ap.add_argument("--max-dit", type=int, default=4, help="largest k solved by dit (slow)")
    ap.add_argument("--big", type=int, nargs=3, default=[100, 100, 10], metavar=("A", "C", "Y"),
                    help="one size beyond the references (0 0 0: skip)")
    ap.add_argument("--batch", type=int, default=64, help="pmfs in the batched run (0: skip)")
    ap.add_argument("--zero-fraction", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--wall", action="store_true", help="wall-clock instead of process CPU time")
    ap.add_argument("--quick", action="store_true", help="sizes 2 3 5 8 12 20, 3 reps, no big size")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.reps, args.big, args.batch = [2, 3, 5, 8, 12, 20], 3, None, 16
    clock = time.perf_counter if args.wall else time.process_time
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    has_cvx, has_dit = _have("cvxpy"), _have("dit")
    rng = np.random.default_rng(args.seed)

    print(f"# BROJA PID speed ({'wall' if args.wall else 'CPU'} seconds, median of {args.reps}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, torch threads {torch.get_num_threads()})")
    print(f"# references: cvxpy {'yes' if has_cvx else 'missing'}, dit {'yes' if has_dit else 'missing'}")
    broja(random_pmf((3, 3, 3), 0))  # warm-up (imports, first-call overheads)
    header = f"{'k':>4} {'ours s':>9} {'iters':>6} {'max gap':>9} {'cvxpy s':>9} {'ratio':>7} " \
             f"{'|d| cvxpy':>10} {'dit s':>8} {'|d| dit':>9}"
    print(header)
    summary: dict[int, dict[str, float]] = {}
    for k in args.sizes:
        t_ours, t_cvx, t_dit, d_cvx, d_dit, its, gaps = [], [], [], [], [], [], []
        for _ in range(args.reps):
            P = random_pmf((k, k, k), rng, zero_fraction=args.zero_fraction)
            t, r = timed(lambda P=P: broja(P), clock)
            t_ours.append(t)
            its.append(r.iterations)
            gaps.append(r.gap)
            if has_cvx and k <= args.max_ref:
                t, ref = timed(lambda P=P: cvxpy_i_min(P)[0], clock)
                t_cvx.append(t)
                d_cvx.append(abs(r.i_min - ref))
            if has_dit and k <= args.max_dit:
                t, ref = timed(lambda P=P: dit_i_min(P), clock)
                t_dit.append(t)
                d_dit.append(abs(r.i_min - ref))
        med = statistics.median
        row = {"ours": med(t_ours)}
        line = f"{k:>4} {med(t_ours):>9.4f} {med(its):>6.0f} {max(gaps):>9.1e}"
        if t_cvx:
            row["cvxpy"], row["ratio"], row["d_cvx"] = med(t_cvx), med(t_cvx) / med(t_ours), max(d_cvx)
            line += f" {med(t_cvx):>9.3f} {row['ratio']:>6.0f}x {max(d_cvx):>10.1e}"
        else:
            line += f" {'-':>9} {'-':>7} {'-':>10}"
        if t_dit:
            line += f" {med(t_dit):>8.2f} {max(d_dit):>9.1e}"
        else:
            line += f" {'-':>8} {'-':>9}"
        print(line, flush=True)
        summary[k] = row

    if args.big and min(args.big) > 0:
        a, c, y = args.big
        P = random_pmf((a, c, y), rng, zero_fraction=args.zero_fraction)
        t, r = timed(lambda: broja(P), clock)
        print(f"# {a}x{c}x{y}: {t:.2f} s, {r.iterations} iterations, gap {r.gap:.1e} bits, "
              f"converged {r.converged}")
    if args.batch:
        k = 10
        zf = args.zero_fraction
        Ps = np.stack([random_pmf((k, k, k), rng, zero_fraction=zf) for _ in range(args.batch)])
        t, rb = timed(lambda: broja_batch(Ps), clock)
        t1, _ = timed(lambda: [broja(P) for P in Ps[:8]], clock)
        print(f"# batch of {args.batch} pmfs {k}^3: {t:.2f} s ({t / args.batch * 1e3:.1f} ms/pmf; "
              f"one at a time {t1 / 8 * 1e3:.1f} ms/pmf), max gap {float(np.max(rb.gap)):.1e}")
        if torch.cuda.is_available():
            Pt = torch.from_numpy(Ps).cuda()
            broja_batch(Pt[:2])
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            broja_batch(Pt)
            torch.cuda.synchronize()
            print(f"# same batch on {torch.cuda.get_device_name()}: {time.perf_counter() - t0:.2f} s wall")
    if 20 in summary:
        t20 = summary[20]["ours"]
        print(f"# target 20^3 <= 0.5 s: {t20:.3f} s -> {'met' if t20 <= 0.5 else 'MISSED'}")
    if "ratio" in summary.get(12, {}):
        ratio = summary[12]["ratio"]
        print(f"# target >= 100x CVXPY at 12^3: {ratio:.0f}x -> {'met' if ratio >= 100 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
