r"""Dataset-level interaction analysis: pairwise PID of every modality pair, mutual information with the label,
and a recommendation that cites the measured numbers (the ``dataset`` section of ``analysis.json``).

Estimator. Every pair ``(a, b)`` of modalities goes through the registered ``cluster`` estimator
(:func:`interplay.pid.cluster.estimate_cluster`; ``interplay pid --estimator cluster --pair a,b --set
estimator.clusterer=gmm --set estimator.correction=bootstrap`` runs the same): each modality discretised by a
full-covariance Gaussian mixture (``clusterer="gmm"``; ``"kmeans"`` on request) with ``clusters`` components
(default ``floor(sqrt(N / (10 |Y|)))`` clipped to ``[2, 20]``), the empirical pmf ``P_hat[c_a, c_b, y]``, its exact
BROJA PID. Each atom is reported **bias-corrected**: plug-in minus Efron's bootstrap bias estimate
``mean(draws) - plug-in`` over ``bootstrap`` resamples (clusters fixed; ``correction="shuffle"``: minus the mean of
``permutations`` label-shuffle draws, Panzeri's shuffle correction), with the **basic bootstrap interval** of the
same resamples placed around the corrected value: ``[v - (q_{1-alpha/2} - m), v + (m - q_{alpha/2})]`` (``m``,
``q``: mean and quantiles of the draws). The label-shuffle draws are still made: they give the p-values and the
conditional-independence null of the recommendation.

Why these defaults (docs/analysis.md, "Which discretiser"; ``benchmarks/analyze_coverage.py``): on pid-xor
(N = 6000) k-means cuts the elongated class clouds across and loses 0.05-0.15 bits of redundancy and synergy,
whereas the mixture's plug-in PID stays within about 0.01 bits of the generator's truth. The shuffle null is the
bias of an information-free table; on a nearly deterministic one it over-corrects by up to its mean (synergy at
K = 17 on ``redundant=0.5,synergistic=0.5``: shuffle-corrected 0.487 against a plug-in of 0.502 and a truth of
0.5), while the bootstrap estimate follows the table's own bias (-0.002 there; most of the shuffle mean on an
information-free table).

Mutual information. ``I(X_m; Y)`` uses modality ``m``'s clusters from the first pair that contains it and equals
that pair's ``R + U_m`` (same pmf, same correction, same bootstrap draws). ``I(X_1..X_M; Y)``: with two
modalities the pair's ``I(X_1, X_2; Y)``; with more, the plug-in MI of the product cell ``(c_1, ..., c_M)``
(the same per-modality clusters) with ``Y``, minus the mean over ``permutations`` label shuffles, with a basic
bootstrap interval over ``bootstrap`` resamples (:func:`cell_information`). The product table has ``K^M |Y|``
cells: far fewer samples per cell than a pair's, so the plug-in's upward bias is large; the shuffle mean removes
the bias of an information-free table, which over-corrects when the label is nearly determined.

Units. Values are computed in bits and multiplied by ``ln 2`` for nats (the same conversion as ``interplay pid``).

Ground truth. On ``pid-xor`` each pair gets ``truth``: the exact PID of the generator's latent pmf
(:func:`interplay.data.groundtruth.pid_xor_ground_truth`); ``mi`` gets the latent ``I(L_m; Y)`` and
``I(L_1..L_M; Y) = H(Y)`` (all latents together determine ``y``: every source writes ``sign(y)``, or for the
synergistic source the bits whose XOR is ``y``). Features are noisy functions of the latents, so a consistent
estimate approaches the truth from below; the interval expresses sampling variability at fixed clusters, not the
information a discretiser loses (with the default mixture that loss is within the interval on pid-xor).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import torch

from ..data import DataSplits
from ..errors import ConfigError, DataError
from ..pid.cluster import ClusterPIDResult, ClusterSettings, estimate_cluster
from ..pid.estimator import make_settings
from ..pid.results import unit_scale
from .settings import AnalysisSettings

__all__ = ["BASELINE_EVIDENCE", "analyze_dataset", "cell_information", "cluster_settings", "recommendation"]

_LN2 = math.log(2.0)

#: measurements the recommendation cites (docs/results/baselines.md: the ``baselines`` bench preset, pid-xor,
#: 800 training samples incl. validation, 1000 test, 8 epochs, 3 seeds; test accuracy on the samples whose source
#: is synergistic, mean over seeds) with the synergy share of ``I(X1,X2;Y)`` that ``interplay analyze`` measures
#: on the same mix (docs/analysis.md, "Evidence behind the recommendation": default n = 6000, seed 0, gmm discretiser
#: and bootstrap correction; the PID synergy of a mixture is not its fraction of synergistic samples: the
#: unique-heavy mix with 15 % synergistic samples measures 49 %, its latent truth 50 %)
BASELINE_EVIDENCE: dict[str, Any] = {
    "source": "docs/results/baselines.md (800 train, 8 epochs, 3 seeds)",
    "regimes": [
        {"mix": "synergistic=0.7,redundant=0.1,unique1=0.1,unique2=0.1", "synergy_share": 0.80,
         "synergistic_accuracy": {"joint": 0.840, "synib": 0.963, "dmil": 0.531}},
        {"mix": "unique1=0.35,unique2=0.35,redundant=0.15,synergistic=0.15", "synergy_share": 0.49,
         "synergistic_accuracy": {"joint": 0.532, "synib": 0.594, "dmil": 0.530}},
        {"mix": "redundant=0.7,unique1=0.1,unique2=0.1,synergistic=0.1", "synergy_share": 0.21,
         "synergistic_accuracy": {"joint": 0.473, "synib": 0.502, "dmil": 0.478}},
    ],
    "dmil_larger_budget": {"source": "docs/methods/dmil.md (dmil_ablation_2000: 2000 train, 30 epochs)",
                           "synergistic_accuracy": {"dmil": 0.907, "joint": 0.901}},
}


# ---------------------------------------------------------------------------------------------- settings
def cluster_settings(settings: AnalysisSettings) -> ClusterSettings:
    """The ``cluster`` estimator's settings for ``settings``: ``split``, ``k`` (= ``clusters``), ``clusterer``,
    ``correction``, ``permutations``, ``bootstrap``, ``seed``, ``units``, ``ci_level`` (= ``confidence``), then
    ``settings.estimator``'s fields (validated: one line naming ``estimator.KEY`` otherwise)."""
    settings.check()
    params: dict[str, Any] = {"split": settings.split, "k": settings.clusters, "clusterer": settings.clusterer,
                              "correction": settings.correction if settings.bootstrap else "shuffle",
                              "permutations": settings.permutations,
                              "bootstrap": settings.bootstrap, "seed": settings.seed, "units": settings.units,
                              "ci_level": float(settings.confidence), "quiet": True}
    extra = dict(settings.estimator)
    for key, why in (("modalities", "every pair is analysed"), ("units", "use --units"), ("split", "use --split"),
                     ("k", "use --clusters"), ("clusterer", "use --clusterer"), ("correction", "use --correction"),
                     ("seed", "use --seed"), ("bootstrap", "use --bootstrap"), ("permutations", "use --permutations"),
                     ("ci_level", "the confidence setting")):
        if key in extra:
            raise ConfigError(f"estimator.{key}: set by interplay analyze itself ({why})")
    params.update(extra)
    cs: ClusterSettings = make_settings(ClusterSettings, params, section="estimator", owner="estimator cluster")
    return cs


# ---------------------------------------------------------------------------------------------- numbers
def _quantity(value: float, lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    """``{"value": v, "interval": [lo, hi] | None}`` (the schema's ``Q``)."""
    return {"value": float(value), "interval": None if lo is None or hi is None else [float(lo), float(hi)]}


def _basic_interval(corrected: float, draws: np.ndarray, level: float) -> tuple[float, float] | tuple[None, None]:
    """Basic bootstrap interval around ``corrected``: ``[v - (q_hi - m), v + (m - q_lo)]``."""
    if draws.size == 0:
        return None, None
    alpha = 1.0 - level
    lo_q, hi_q = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    centre = float(draws.mean())
    return float(corrected - (hi_q - centre)), float(corrected + (centre - lo_q))


def _plugin_mi_bits(counts: np.ndarray) -> float:
    """Plug-in ``I(C; Y)`` in bits of a ``(C, Y)`` table of (weighted) counts."""
    total = counts.sum()
    p = counts / total
    pc = p.sum(1, keepdims=True)
    py = p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (pc @ py)[nz])).sum() / _LN2)


def cell_information(cells: Sequence[np.ndarray], y: np.ndarray, num_classes: int, *, permutations: int,
                     bootstrap: int, seed: int, level: float = 0.95, units: str = "bits") -> dict[str, Any]:
    r"""Bias-corrected ``I(C_1, ..., C_M; Y)`` of discrete labels (e.g. k-means clusters of each modality).

    The product cell ``(c_1, ..., c_M)`` of every sample is mapped to an index over the occupied cells; the
    plug-in ``I = H(C) + H(Y) - H(C, Y)`` of the ``(cells, |Y|)`` count table is corrected by subtracting the mean
    over ``permutations`` label shuffles, and the basic bootstrap interval of ``bootstrap`` resamples (rows drawn
    with replacement, cells fixed) is placed around the corrected value. Always the shuffle correction, whatever
    the pair tables use: the product table is sparse (most cells hold one or two samples), and resampling such a
    table cannot show how much of its plug-in is bias. Measured with three 17-valued cells, N = 6000 and labels
    independent of them: plug-in 0.563 bits, bootstrap-corrected 0.417, shuffle-corrected 0.001.

    Args:
        cells: ``M`` arrays of shape ``(N,)``, non-negative integers.
        y: ``(N,)`` labels in ``[0, num_classes)``.

    Returns:
        ``{"value", "interval", "plugin", "null_mean", "cells", "samples_per_cell"}`` in ``units``.
    """
    scale = unit_scale(units, "units")
    yy = np.asarray(y, dtype=np.int64)
    stacked = np.stack([np.asarray(c, dtype=np.int64) for c in cells], 1)
    _, joint = np.unique(stacked, axis=0, return_inverse=True)
    joint = joint.reshape(-1)
    n_cells = int(joint.max()) + 1
    n = len(yy)

    def table(labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        flat = joint * num_classes + labels
        return np.bincount(flat, weights=weights, minlength=n_cells * num_classes).reshape(n_cells, num_classes)

    plugin = _plugin_mi_bits(table(yy).astype(np.float64))
    rng = np.random.default_rng(seed)
    null = np.array([_plugin_mi_bits(table(rng.permutation(yy)).astype(np.float64)) for _ in range(permutations)])
    null_mean = float(null.mean()) if permutations else 0.0
    corrected = plugin - null_mean
    boot = np.array([_plugin_mi_bits(table(yy, np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)))
                     for _ in range(bootstrap)])
    lo, hi = _basic_interval(corrected, boot, level)
    full_cells = int(np.prod([int(np.max(c)) + 1 for c in cells])) * num_classes
    out = _quantity(corrected * scale, None if lo is None else lo * scale, None if hi is None else hi * scale)
    out.update({"plugin": plugin * scale, "null_mean": null_mean * scale, "cells": full_cells,
                "samples_per_cell": n / full_cells})
    return out


def _pair_entry(result: ClusterPIDResult, a: str, b: str, level: float,
                truth: dict[str, Any] | None) -> dict[str, Any]:
    """One element of ``pairs``: the corrected atoms with intervals, the corrected ``I(X_a, X_b; Y)`` as total."""
    def atom(name: str) -> dict[str, Any]:
        return _quantity(result.corrected[name], result.ci_low.get(name), result.ci_high.get(name))

    def info(key: str) -> dict[str, Any]:
        corrected = getattr(result.plugin, key) - result.bias.get(key, 0.0)
        draws = result.boot_draws.get(key, np.zeros(0))
        lo, hi = _basic_interval(corrected, np.asarray(draws), level)
        return _quantity(corrected, lo, hi)

    st = result.settings
    return {
        "pair": [a, b], "clusters": [int(st["k1"]), int(st["k2"])],
        "redundancy": atom("redundancy"), "unique": {a: atom("unique1"), b: atom("unique2")},
        "synergy": atom("synergy"), "total": info("i_x1x2_y"),
        "information": {a: info("i_x1_y"), b: info("i_x2_y")},
        "plugin": {k: float(getattr(result.plugin, k)) for k in ("redundancy", "unique1", "unique2", "synergy",
                                                                 "i_x1x2_y")},
        "null_mean": {k: float(v) for k, v in result.null_mean.items()},
        "p_value": {k: float(v) for k, v in result.p_value.items()},
        "p_synergy_conditional": (None if math.isnan(result.p_synergy_conditional)
                                  else float(result.p_synergy_conditional)),
        "samples_per_cell": float(st["samples_per_cell"]),
        "warnings": list(result.warnings),
        "truth": truth,
    }


# ---------------------------------------------------------------------------------------------- ground truth
def _latent_truth(splits: DataSplits, pair: tuple[int, int], units: str, names: tuple[str, str],
                  split: str) -> dict[str, Any] | None:
    """The pid-xor latent truth of a pair in ``units`` (``None`` for other data or a test-only mix shift)."""
    info = splits.info
    if info.name != "pid-xor" or "mix" not in info.extra:
        return None
    shift = info.extra.get("shift")
    if isinstance(shift, Mapping) and "mix" in shift and split in ("all", "test"):
        return None  # the test rows come from another mix: the pooled data have no single latent pmf
    from ..data.groundtruth import pid_xor_ground_truth

    gt = pid_xor_ground_truth(info.extra["mix"], len(info.modalities), pair).to_units(units)
    a, b = names
    return {"redundancy": gt.redundancy, "unique": {a: gt.unique1, b: gt.unique2}, "synergy": gt.synergy,
            "total": gt.i_x1x2_y, "information": {a: gt.i_x1_y, b: gt.i_x2_y}}


def _label_entropy(splits: DataSplits, units: str) -> float:
    """``H(Y)`` of pid-xor's label (uniform over ``num_classes``) in ``units``."""
    return math.log(splits.info.num_classes) / (_LN2 if units == "bits" else 1.0)


# ---------------------------------------------------------------------------------------------- recommendation
def _fmt(v: float) -> str:
    return f"{v:.2f}"


def _interval_text(q: Mapping[str, Any]) -> str:
    iv = q.get("interval")
    return "" if iv is None else f" [{_fmt(iv[0])}, {_fmt(iv[1])}]"


def _significant(q: Mapping[str, Any], p: float | None, alpha: float) -> bool | None:
    """Above zero: the interval's lower end > 0; without an interval the label-shuffle p-value <= alpha; ``None``
    when neither exists (no bootstrap and no permutations)."""
    iv = q.get("interval")
    if iv is not None:
        return bool(iv[0] > 0)
    if p is not None:
        return bool(p <= alpha)
    return None


def synergy_present(entry: Mapping[str, Any], alpha: float) -> tuple[bool | None, str]:
    """Whether a pair's synergy counts as present, and why: its bootstrap interval lies above 0 (without one: the
    label-shuffle p-value <= ``alpha``) **and** the conditional-independence null (``x_b`` shuffled within each
    class: the synergy the pair tables imply by themselves) gives p <= ``alpha`` (when it was drawn)."""
    s = entry["synergy"]
    above = _significant(s, entry["p_value"].get("synergy"), alpha)
    p_cond = entry.get("p_synergy_conditional")
    if above is None:
        return None, "significance not assessed (no bootstrap and no permutations)"
    iv = s.get("interval")
    where = "the interval lies above 0" if above else (
        "the interval does not lie above 0" if iv is not None else "label-shuffle p > " + f"{alpha:.2f}")
    if p_cond is None:
        return above, where
    cond = f"conditional-independence null p = {p_cond:.2f}"
    return bool(above and p_cond <= alpha), f"{where}, {cond}"


def recommendation(section: Mapping[str, Any], units: str, confidence: float) -> dict[str, Any]:
    """Sentences that state what the measured numbers say, each citing them, and the numbers cited.

    The rule (docs/analysis.md, "Recommendation"): an atom counts as present when its bootstrap interval lies
    above 0 (without an interval: when the label-shuffle p-value is at most ``1 - confidence``); shares are of the
    pair's ``I(X_a, X_b; Y)``. Present synergy is reported with its share beside the measured regimes of
    :data:`BASELINE_EVIDENCE`; no present synergy in any pair means the joint model is the natural baseline. No
    other cut-off is used.
    """
    alpha = 1.0 - confidence
    text: list[str] = []
    evidence: dict[str, Any] = {"units": units, "confidence": confidence, "pairs": {}}
    synergistic: list[str] = []
    for entry in section["pairs"]:
        a, b = entry["pair"]
        key = f"{a},{b}"
        total = entry["total"]["value"]
        s = entry["synergy"]
        r = entry["redundancy"]
        def share(v: float, total: float = total) -> float:
            return v / total if total > 0 else math.nan

        sig_s, why = synergy_present(entry, alpha)
        sig_t = _significant(entry["total"], None, alpha) if entry["total"]["interval"] is not None else total > 0
        ev = {"total": entry["total"], "synergy": s, "redundancy": r, "unique": entry["unique"],
              "synergy_share": share(s["value"]), "redundancy_share": share(r["value"]),
              "unique_share": {m: share(q["value"]) for m, q in entry["unique"].items()},
              "synergy_present": sig_s}
        evidence["pairs"][key] = ev
        if not sig_t:
            text.append(f"{a}, {b}: no detectable label information (I({a},{b};Y) = {_fmt(total)} {units}"
                        f"{_interval_text(entry['total'])}).")
            continue
        if sig_s:
            synergistic.append(key)
            text.append(f"{a}, {b}: synergy {_fmt(s['value'])} {units}{_interval_text(s)} of I({a},{b};Y) = "
                        f"{_fmt(total)} {units} ({100 * share(s['value']):.0f} %; {why}): part of the label is only "
                        f"available from {a} and {b} together.")
        elif sig_s is None:
            text.append(f"{a}, {b}: synergy {_fmt(s['value'])} {units} of I({a},{b};Y) = {_fmt(total)} {units}; "
                        f"{why}.")
        else:
            text.append(f"{a}, {b}: no significant synergy (S = {_fmt(s['value'])} {units}{_interval_text(s)}; "
                        f"{why}).")
        parts = [f"redundancy {_fmt(r['value'])} {units} ({100 * share(r['value']):.0f} %)"]
        for m, q in entry["unique"].items():
            if _significant(q, entry["p_value"].get("unique1" if m == a else "unique2"), alpha):
                parts.append(f"unique to {m} {_fmt(q['value'])} {units} ({100 * share(q['value']):.0f} %)")
        text.append(f"{a}, {b}: " + ", ".join(parts) + "; "
                    + "; ".join(f"{m} alone carries I({m};Y) = {_fmt(entry['information'][m]['value'])} {units}"
                                for m in (a, b)) + ".")
    names = [m for m in section["mi"] if m != "all"]
    joint = section["mi"].get("all")
    if len(names) > 2 and joint is not None and section["pairs"]:
        best = max(section["pairs"], key=lambda e: e["total"]["value"])
        ji, bi = joint.get("interval"), best["total"].get("interval")
        beyond = ji[0] > bi[1] if ji is not None and bi is not None else joint["value"] > best["total"]["value"]
        label = ",".join(names)
        evidence["higher_order"] = {"all": joint, "best_pair": best["pair"], "best_pair_total": best["total"],
                                    "beyond_best_pair": beyond}
        if beyond:
            synergistic.append(label)
            text.append(f"Together {', '.join(names)} carry I({label};Y) = {_fmt(joint['value'])} {units}"
                        f"{_interval_text(joint)}, more than the most informative pair ({best['pair'][0]}, "
                        f"{best['pair'][1]}: {_fmt(best['total']['value'])} {units}{_interval_text(best['total'])}; "
                        f"the intervals do not overlap): information no pair shows, i.e. synergy of more than two "
                        f"modalities, which the pairwise PID cannot see.")
        else:
            text.append(f"Together {', '.join(names)} carry I({label};Y) = {_fmt(joint['value'])} {units}"
                        f"{_interval_text(joint)}, not more than the most informative pair ({best['pair'][0]}, "
                        f"{best['pair'][1]}: {_fmt(best['total']['value'])} {units}{_interval_text(best['total'])}) "
                        f"within the intervals.")
    evidence["baselines"] = copy.deepcopy(BASELINE_EVIDENCE)
    if synergistic:
        reg = BASELINE_EVIDENCE["regimes"]
        hi, lows = reg[0], reg[1:]
        low_joint = [r_["synergistic_accuracy"]["joint"] for r_ in lows]
        low_synib = [r_["synergistic_accuracy"]["synib"] for r_ in lows]
        larger = BASELINE_EVIDENCE["dmil_larger_budget"]["synergistic_accuracy"]
        text.append(
            f"Joint training tends to under-use synergy: in {BASELINE_EVIDENCE['source']} joint training reached "
            f"{hi['synergistic_accuracy']['joint']:.3f} accuracy on the synergistic samples against "
            f"{hi['synergistic_accuracy']['synib']:.3f} for synib where the synergy share measures "
            f"{100 * hi['synergy_share']:.0f} %; where it measures {100 * min(r_['synergy_share'] for r_ in lows):.0f}"
            f"-{100 * max(r_['synergy_share'] for r_ in lows):.0f} % no method learned those samples at that budget "
            f"(joint {min(low_joint):.2f}-{max(low_joint):.2f}, synib {min(low_synib):.2f}-{max(low_synib):.2f}).")
        text.append(f"Methods that target synergy: synib, dmil (dmil did not beat joint in our measurements: "
                    f"{larger['dmil']:.3f} vs {larger['joint']:.3f} on synergistic samples, "
                    f"{BASELINE_EVIDENCE['dmil_larger_budget']['source']}).")
    elif all(ev["synergy_present"] is False for ev in evidence["pairs"].values()):  # every pair assessed
        text.append("No pair has significant synergy: a joint model is the natural baseline, and the methods that "
                    "target synergy have none to recover here (in docs/results/baselines.md the methods differ by at "
                    "most about two seed standard deviations wherever synergistic samples are not the majority).")
    evidence["synergistic_pairs"] = synergistic
    return {"text": text, "evidence": evidence}


# ---------------------------------------------------------------------------------------------- analysis
def _pooled_target(splits: DataSplits, split: str) -> np.ndarray:
    parts = [splits.train, splits.val, splits.test] if split == "all" else [getattr(splits, split)]
    return torch.cat([p.target for p in parts if len(p) > 0]).numpy().astype(np.int64)


def _progress(settings: AnalysisSettings, progress: Callable[[str], None] | None) -> Callable[[str], None]:
    if progress is not None:
        return progress
    if settings.quiet:
        return lambda _msg: None
    return lambda msg: print(f"interplay analyze: {msg}", file=sys.stderr, flush=True)


def analyze_dataset(splits: DataSplits, settings: AnalysisSettings, *, truth: bool = True,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The ``dataset`` section of ``analysis.json``: pairwise cluster PID of every modality pair, ``I(X_m; Y)``,
    ``I(X_1..X_M; Y)``, the recommendation (see the module docstring for the estimator and its correction).

    Args:
        splits: a classification dataset's splits with at least two modalities.
        settings: :class:`AnalysisSettings` (units, split, clusters, bootstrap, permutations, confidence, seed,
            further cluster-estimator fields in ``estimator``).
        truth: add the generator's ground truth where it is known (pid-xor).
        progress: called with a message before each long step (default: stderr unless ``settings.quiet``).
    """
    cs = cluster_settings(settings)
    info = splits.info
    if info.task != "classification":
        raise DataError(f"{info.name}: the interaction analysis needs class labels; this dataset is a regression "
                        f"task")
    names = list(info.modalities)
    if len(names) < 2:
        raise DataError(f"{info.name}: the interaction analysis needs at least two modalities, got {len(names)}")
    say = _progress(settings, progress)
    pairs: list[dict[str, Any]] = []
    labels: dict[str, np.ndarray] = {}
    info_of: dict[str, dict[str, Any]] = {}
    combos = list(itertools.combinations(range(len(names)), 2))
    n = 0
    for count, (i, j) in enumerate(combos, 1):
        a, b = names[i], names[j]
        say(f"cluster PID of {a}, {b} ({count}/{len(combos)}): {cs.permutations} label shuffles, "
            f"{cs.bootstrap} bootstraps")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # kept in the result's warnings
            # DataSplits is a LabelledSplits at run time (mypy does not see its MultimodalDataset splits as one)
            result = estimate_cluster(cast(Any, splits), dataclasses.replace(cs, modalities=(a, b)))
        n = int(result.settings["n"])
        gt = _latent_truth(splits, (i, j), settings.units, (a, b), settings.split) if truth else None
        entry = _pair_entry(result, a, b, float(settings.confidence), gt)
        pairs.append(entry)
        for m, lab in ((a, result.labels1), (b, result.labels2)):
            if m not in labels:
                labels[m] = lab
                info_of[m] = dict(entry["information"][m])
                if gt is not None:
                    info_of[m]["truth"] = gt["information"][m]
    mi: dict[str, Any] = {m: info_of[m] for m in names}
    if len(names) == 2:
        mi["all"] = dict(pairs[0]["total"])
        if pairs[0]["truth"] is not None:
            mi["all"]["truth"] = pairs[0]["truth"]["total"]
    else:
        say(f"I({', '.join(names)}; Y) of the product of the clusters")
        mi["all"] = cell_information([labels[m] for m in names], _pooled_target(splits, settings.split),
                                     info.num_classes, permutations=settings.permutations,
                                     bootstrap=settings.bootstrap, seed=settings.seed + 3,
                                     level=float(settings.confidence), units=settings.units)
        if truth and pairs[0]["truth"] is not None:
            mi["all"]["truth"] = _label_entropy(splits, settings.units)
    section: dict[str, Any] = {
        "estimator": "cluster", "split": settings.split, "n": n, "mi": mi, "pairs": pairs,
        "settings": {f.name: getattr(cs, f.name) for f in dataclasses.fields(cs) if f.name != "modalities"},
        "bias_correction": ("plug-in minus the bootstrap bias estimate (mean of the draws minus plug-in)"
                            if cs.correction == "bootstrap" else "plug-in minus the mean of the label-shuffle null"),
        "interval": f"{round(100 * float(settings.confidence))}% basic bootstrap (clusters fixed) around the "
                    f"corrected value",
    }
    section["recommendation"] = recommendation(section, settings.units, float(settings.confidence))
    return section
