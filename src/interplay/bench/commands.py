"""``interplay bench FILE --out DIR --print-commands``: the grid as ``interplay train`` commands, one per cell.

For schedulers the bench does not drive (SLURM array jobs, a shell loop on several machines): each line trains one
cell of the grid into its run directory in the bench layout, with exactly the cell's resolved config, e.g.::

    interplay train --data pid-xor --method synib --set data.mix=redundant=0.8,synergistic=0.2 \\
        --set data.n_train=2000 ... --set method.lam=1 --set train.seed=1 --out DIR/runs/pid-xor/synib/default/seed1

A command names the dataset and method and sets (``--set``) every field whose value differs from what
``interplay train --data D --method M`` would use, so the line is short and reproduces the cell exactly: each
printed command is checked, before it is printed, by parsing it with the CLI's own parser and resolving its config
(it must equal the cell's). Afterwards ``interplay bench FILE --out DIR`` finds the run directories finished
(their ``config.yaml`` and ``env.json`` match the grid's fingerprints, as for run directories from before the
ledger), trains nothing, and writes results.csv, selection.json and what ``interplay report DIR`` needs.

Only the cells that are not finished are printed (all of them for a new ``--out``): after a partial array job,
printing again gives the cells still to run.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..config import RunConfig
from ..engine import resolve_config
from ..errors import ConfigError, InterplayError
from .grid import RunSpec, load_spec, plan
from .presets import resolve_preset
from .runner import grid_states, move_stale, stale_message


def _yaml_value(value: Any) -> str:
    """``value`` as the text of ``--set KEY=TEXT`` that parses back to it (YAML flow style: ``[64, 64]``,
    ``'010'`` for the string, ``1.0e-05``; the CLI reads ``--set`` values as YAML)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30, sort_keys=True).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def _sections(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    return cfg.to_dict()


def _baseline(cfg: RunConfig) -> dict[str, dict[str, Any]] | None:
    """What ``interplay train --data D --method M`` resolves to for the cell's dataset and method (``None`` if
    that does not resolve, e.g. a dataset parameter without a default)."""
    base = RunConfig()
    base.data.name, base.method.name = cfg.data.name, cfg.method.name
    try:
        return _sections(resolve_config(base))
    except InterplayError:
        return None


def train_args(run: RunSpec, run_dir: str, full: bool = False) -> list[str]:
    """The arguments after ``interplay`` that train ``run`` into ``run_dir``: every field that differs from the
    defaults of its dataset and method (``full``: every field)."""
    cell = _sections(run.config)
    base = None if full else _baseline(run.config)
    args = ["train", "--data", str(run.config.data.name), "--method", str(run.config.method.name)]
    for section, values in cell.items():
        for key, value in values.items():
            if key == "name" or (base is not None and key in base[section] and base[section][key] == value):
                continue
            args += ["--set", f"{section}.{key}={_yaml_value(value)}"]
    return args + ["--out", run_dir, "--quiet"]


#: the command line's own reading of ``interplay ARGS...`` into a run config (``interplay.cli`` passes it in:
#: the bench sits below the CLI); ``None`` if it does not parse
ToConfig = Callable[[list[str]], "RunConfig | None"]


def _reproduces(args: list[str], run: RunSpec, to_config: ToConfig) -> bool:
    """Whether the CLI, given ``args``, resolves exactly the cell's config."""
    try:
        cfg = to_config(args)
        return cfg is not None and _sections(resolve_config(cfg)) == _sections(run.config)
    except InterplayError:
        return False


def cell_command(run: RunSpec, out: str | Path, to_config: ToConfig, plugins: Sequence[str] = ()) -> str:
    """One shell line that trains ``run`` into its run directory under the bench directory ``out``, checked with
    ``to_config`` (the CLI's parser) to resolve to exactly the cell's config."""
    run_dir = str(Path(out) / run.rel_dir)
    prefix = [a for p in plugins for a in ("--plugin", p)]
    for full in (False, True):
        args = train_args(run, run_dir, full)
        if _reproduces(prefix + args, run, to_config):
            return shlex.join(["interplay", *prefix, *args])
    raise ConfigError(f"bench: cannot express the config of {run.rel_dir} as `interplay train` options "
                      f"(its fields do not survive the command line); run it with `interplay bench` instead")


def print_commands(path: str | Path, out: str | Path, to_config: ToConfig, seeds: int | None = None,
                   rerun_changed: bool = False, plugins: Sequence[str] = (), emit: Callable[[str], None] = print,
                   notify: Callable[[str], None] | None = None) -> list[str]:
    """Emit (``emit``, default stdout) one ``interplay train`` command per cell of the grid ``path`` that is not
    finished in ``out``; return them. ``to_config``: the CLI's reading of a command line (each command is checked
    with it). Writes nothing, except that ``rerun_changed`` moves cells run with other
    settings aside first (as the bench does); without it such cells are refused in one line."""
    spec = load_spec(resolve_preset(path), seeds)
    runs = plan(spec)
    out = Path(out)
    states = grid_states(out, runs)
    if any(s.status == "stale" for s in states):
        if not rerun_changed:
            raise ConfigError(stale_message(out, runs, states))
        moved_to = move_stale(out, runs, states)
        if notify is not None:
            notify(f"bench: moved the cell(s) run with other settings to {moved_to} (kept, not deleted)")
        states = grid_states(out, runs)
    todo = [r for r, s in zip(runs, states) if s.status != "finished"]
    lines = [cell_command(r, out, to_config, plugins) for r in todo]
    for line in lines:
        emit(line)
    if notify is not None:
        notify(f"bench {spec.name}: {len(lines)} of {len(runs)} cells to train ({len(runs) - len(todo)} finished in "
               f"{out}); afterwards `interplay bench {path} --out {out}` collects them into results.csv")
    return lines
