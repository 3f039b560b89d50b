"""Smoke test of benchmarks/engine_overhead.py: ``--quick`` runs and prints the fixed-cost table and the documented
last line. (No timing is asserted: speed claims live in the script's output, not in tests.)"""

import importlib.util
import re
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "engine_overhead.py"


def test_quick_run_prints_the_fixed_costs_and_the_ratio(capsys):
    spec = importlib.util.spec_from_file_location("engine_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--methods", "joint"]) == 0
    out = capsys.readouterr().out
    for cause in ("import torch", "data build", "model + method build", "first optimiser construction",
                  "run-directory writes", "total beyond the epochs"):
        assert re.search(rf"^  {re.escape(cause)} +\d+\.\d{{3}}$", out, re.M), cause
    assert re.fullmatch(r"joint engine/minimal epoch-time ratio: \d+\.\d\d", out.strip().splitlines()[-1])
