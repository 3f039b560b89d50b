r"""The "model" section of ``interplay analyze RUN``: what a trained model's predictions carry, and per-sample types.

:func:`analyze_run` takes a reloaded run (:func:`interplay.engine.reload.load_run`) and its dataset's splits and
measures on the **test split**:

* **Model PID** (Liang et al., "Multimodal learning without labeled multimodal data", the model-PID): for every
  pair of modalities ``(a, b)``, the cluster estimator with the dataset section's settings
  (:func:`interplay.analysis.dataset.cluster_settings`: discretiser, bias correction, bootstrap interval, estimator
  fields) of ``(X_a, X_b; Y_hat)`` with the model's predicted class ``Y_hat`` as the target: which interactions the
  model's *output* depends on, beside the dataset section's ``(X_a, X_b; Y)``.
* **Per-sample types** by every method in ``settings.per_sample`` (:mod:`interplay.analysis.types`:
  ``agreement``, ``confidence``, ``lsmi``, ``cluster``), the model's accuracy per estimated type and, where the
  dataset knows each sample's source (``info.interactions``, ``meta["interaction"]``), the confusion matrix,
  type-identification accuracy, macro agreement and per-type AUROC.

Unimodal predictions for ``agreement`` and ``confidence`` come from, in this order: the run's unimodal reference
runs (``train.unimodal_reference`` / ``train.unimodal_from``), the method's own unimodal heads (methods that train
them), or reference classifiers fitted now on the training split (:func:`interplay.pid.lsmi.fit_classifier`,
early stopping on the validation split, seeded by ``settings.seed``). The section records which
(``unimodal_source``). Every probability used (the model's and the unimodal ones) is temperature-scaled on the
validation split (:func:`temperature`): ``confidence`` reads probabilities as evidence, and e.g. SynIB's raw
probabilities are far too soft (fitted temperature about 0.08 on pid-xor). Predictions always go through
:func:`interplay.engine.evaluation.evaluate` (the method's own ``predict``), never a re-implemented forward pass.

Settings (:class:`~interplay.analysis.settings.AnalysisSettings`) used here besides the dataset section's:
``cluster_pca_dim`` (PCA components before clustering in the ``cluster`` per-sample method), ``reference_epochs``
(epochs of the fitted reference classifiers), ``model_permutations`` (label-shuffle draws of the model PID).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data import DataSplits
from ..engine.evaluation import evaluate
from ..engine.reload import LoadedRun, load_run
from ..errors import DataError
from ..metrics import accuracy, accuracy_by_group, fit_temperature
from ..pid.cluster import ClusterPIDResult, auto_k, cluster_pid
from ..pid.lsmi import fit_classifier, lsmi
from .dataset import cluster_settings
from .settings import AnalysisSettings
from .types import (
    TypeEstimate,
    agreement_types,
    check_methods,
    cluster_types,
    confidence_types,
    lsmi_types,
    true_type_names,
    type_metrics,
    type_names,
)

__all__ = ["RunAnalysis", "analyze_run", "model_pair_pid", "pair_entry", "unimodal_probabilities"]


@dataclass
class RunAnalysis:
    """The "model" section of ``analysis.json`` and the rows of ``per_sample.csv`` (one per test sample)."""

    section: dict[str, Any]
    per_sample_header: list[str]
    per_sample_rows: list[list[Any]]


# ---------------------------------------------------------------------------------------------- model PID
def _q(value: float, lo: float | None, hi: float | None) -> dict[str, Any]:
    return {"value": float(value), "interval": None if lo is None or hi is None else [float(lo), float(hi)]}


def pair_entry(result: ClusterPIDResult, a: str, b: str) -> dict[str, Any]:
    """One entry of a ``pairs`` list (the analysis.json schema) from a cluster PID of the pair ``(a, b)``:
    bias-corrected values with their basic-bootstrap interval (``null`` without bootstrap); ``total`` is the
    corrected ``I(X_a, X_b; T)`` (= the sum of the corrected atoms), its interval from the bootstrap draws of
    ``I(X_a, X_b; T)`` placed the same way. ``truth`` is ``None``."""
    def atom(name: str) -> dict[str, Any]:
        return _q(result.corrected[name], result.ci_low.get(name), result.ci_high.get(name))

    total = sum(result.corrected[k] for k in ("redundancy", "unique1", "unique2", "synergy"))
    draws = result.boot_draws.get("i_x1x2_y")
    interval = None
    if draws is not None and len(draws) > 1:
        alpha = 1.0 - float(result.settings["ci_level"])
        lo_q, hi_q = (float(v) for v in torch.quantile(torch.as_tensor(draws, dtype=torch.float64),
                                                        torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.float64)))
        centre = float(draws.mean())
        interval = [total - (hi_q - centre), total + (centre - lo_q)]
    return {"pair": [a, b], "clusters": [int(result.settings["k1"]), int(result.settings["k2"])],
            "redundancy": atom("redundancy"), "unique": {a: atom("unique1"), b: atom("unique2")},
            "synergy": atom("synergy"), "total": {"value": float(total), "interval": interval},
            "p_value": {k: float(v) for k, v in result.p_value.items()}, "truth": None}


def model_pair_pid(x_a: Tensor, x_b: Tensor, prediction: Tensor, num_classes: int, settings: AnalysisSettings,
                   pair: tuple[str, str]) -> dict[str, Any]:
    """Cluster PID of ``(X_a, X_b; Y_hat)``: ``x_a``, ``x_b`` ``(N, ...)`` test inputs, ``prediction`` ``(N,)`` the
    model's predicted classes; the dataset section's estimator settings (:func:`cluster_settings`: clusters,
    discretiser, bias correction, ``settings.bootstrap`` draws for a ``settings.confidence`` interval, further
    estimator fields) with ``model_permutations`` label shuffles. Returns a :func:`pair_entry`."""
    cs = dataclasses.replace(cluster_settings(settings), num_classes=num_classes,
                             permutations=settings.model_permutations)
    result = cluster_pid(x_a, x_b, prediction, cs)
    entry = pair_entry(result, *pair)
    entry["warnings"] = list(result.warnings)
    return entry


# ---------------------------------------------------------------------------------------------- unimodal models
def _reference_dirs(run: LoadedRun) -> dict[str, Path] | None:
    t = run.config.train
    if not (t.unimodal_from or t.unimodal_reference):
        return None
    dirs = {m: (Path(t.unimodal_from) / m if t.unimodal_from else run.run_dir / "unimodal" / m)
            for m in run.info.modalities}
    if not all((d / "config.yaml").is_file() and (d / "best.pt").is_file() for d in dirs.values()):
        return None
    return dirs


def temperature(logits: Tensor, target: Tensor) -> float:
    """The validation temperature of ``logits`` ``(N, C)`` (float64; :func:`interplay.metrics.fit_temperature`,
    ``log T`` in ``[-5, 5]``)."""
    return fit_temperature(logits.double(), target, -5.0, 5.0, 80)


def calibrated(test_logits: Tensor, val_logits: Tensor, val_target: Tensor) -> tuple[Tensor, float]:
    """``softmax(test_logits / T)`` ``(N, C)`` float64 with ``T`` fitted on the validation logits
    (:func:`temperature`), and ``T``."""
    t = temperature(val_logits, val_target)
    return torch.softmax(test_logits.double() / t, -1), t


def unimodal_probabilities(run: LoadedRun, splits: DataSplits, heads: Mapping[str, Tensor] | None,
                           val_heads: Mapping[str, Tensor] | None, settings: AnalysisSettings,
                           batch_size: int = 256) -> tuple[dict[str, Tensor], str, dict[str, float]]:
    """``{m: (N_test, C)}`` calibrated class probabilities of one unimodal model per modality on ``splits.test``,
    their source and temperatures. Sources, in order of preference: ``"reference"`` (the run's unimodal
    reference runs, reloaded and evaluated), ``"heads"`` (``heads`` / ``val_heads``: the method's unimodal logits
    on the test / validation split) or ``"fitted"`` (an MLP per modality fitted now on ``splits.train``,
    :func:`~interplay.pid.lsmi.fit_classifier` with validation early stopping). Every source is temperature-scaled
    on the validation split (:func:`temperature`; ``fit_classifier`` does it itself)."""
    modalities = list(splits.info.modalities)
    yv = splits.val.target.long()
    dirs = _reference_dirs(run)
    out: dict[str, Tensor] = {}
    temps: dict[str, float] = {}
    if dirs is not None:
        for m, d in dirs.items():
            ref = load_run(d, run.device)
            logits = evaluate(ref.objective, ref.model, splits.test, batch_size, run.device).logits
            val = evaluate(ref.objective, ref.model, splits.val, batch_size, run.device).logits
            out[m], temps[m] = calibrated(logits, val, yv)
        return out, "reference", temps
    if heads and val_heads and all(m in heads and m in val_heads for m in modalities):
        for m in modalities:
            out[m], temps[m] = calibrated(heads[m], val_heads[m], yv)
        return out, "heads", temps
    c = splits.info.num_classes
    epochs = settings.reference_epochs
    for j, m in enumerate(modalities):
        model = fit_classifier(splits.train.inputs[m], splits.train.target.long(), splits.val.inputs[m], yv, c,
                               epochs=epochs, seed=settings.seed + 1000 + 10 * j)
        with torch.no_grad():
            out[m] = model(splits.test.inputs[m].reshape(len(splits.test), -1).float()).double().exp()
        temps[m] = float(torch.as_tensor(getattr(model, "log_t", 0.0)).exp())  # fitted by fit_classifier
    return out, "fitted", temps


# ---------------------------------------------------------------------------------------------- analysis
def _class_prior(target: Tensor, c: int) -> Tensor:
    """Training-split class frequencies ``(C,)``, smoothed by 0.5 per class (as LSMI's prior)."""
    counts = torch.bincount(target.long(), minlength=c).double()
    return (counts + 0.5) / (counts.sum() + 0.5 * c)


def _round(v: Any) -> Any:
    return round(v, 6) if isinstance(v, float) else v


def analyze_run(run: LoadedRun, splits: DataSplits, settings: AnalysisSettings) -> RunAnalysis:
    """The model section of ``interplay analyze RUN`` on ``splits.test`` (see the module docstring).

    Args:
        run: a reloaded run (:func:`~interplay.engine.reload.load_run`).
        splits: the run's dataset, rebuilt as training built it (train/val fit the reference models, test is
            analysed).
        settings: :class:`~interplay.analysis.settings.AnalysisSettings`.

    Returns:
        :class:`RunAnalysis`: ``section`` (run_dir, method, seed, test_accuracy, pairs, per_sample),
        ``per_sample_header`` / ``per_sample_rows`` (index, label, prediction, correct, true_type,
        ``<method>_type`` per method, then the methods' score columns).

    Raises:
        DataError: a regression run (types need class labels) or an empty test split.
        ConfigError: an unknown per-sample method.
    """
    info = splits.info
    if info.task != "classification":
        raise DataError(f"{info.name}: interplay analyze RUN needs a classification run (per-sample types compare "
                        f"class predictions); this run is {info.task}")
    test = splits.test
    if len(test) == 0:
        raise DataError(f"{info.name}: the test split is empty")
    methods = check_methods(settings.per_sample)
    modalities = list(info.modalities)
    c = info.num_classes
    batch_size = max(int(run.config.train.batch_size), 256)
    out = evaluate(run.objective, run.model, test, batch_size, run.device)
    val_out = evaluate(run.objective, run.model, splits.val, batch_size, run.device)
    y = test.target.long()
    pred = out.pred.long()
    correct = pred == y
    probs, model_t = calibrated(out.logits, val_out.logits, splits.val.target)
    p_true = probs.gather(1, y[:, None])[:, 0]
    prior = _class_prior(splits.train.target, c)[y]

    pairs = [model_pair_pid(test.inputs[a], test.inputs[b], pred, c, settings, (a, b))
             for a, b in itertools.combinations(modalities, 2)]

    truth: list[str] | None = None
    if info.interactions is not None and "interaction" in test.meta:
        names = true_type_names(info.interactions, modalities)
        truth = [names[k] for k in test.meta["interaction"].long().tolist()]

    estimates: dict[str, TypeEstimate] = {}
    skipped: dict[str, str] = {}
    uni: dict[str, Tensor] | None = None
    source = None
    uni_t: dict[str, float] = {}
    for method in methods:
        if method in ("agreement", "confidence"):
            if uni is None:
                uni, source, uni_t = unimodal_probabilities(run, splits, out.unimodal_logits, val_out.unimodal_logits,
                                                           settings, batch_size)
            if method == "agreement":
                est = agreement_types({m: uni[m].argmax(1) == y for m in modalities}, correct)
            else:
                est = confidence_types({m: uni[m].gather(1, y[:, None])[:, 0] for m in modalities}, p_true, prior)
            est.info["unimodal_source"] = source
            est.info["temperature"] = {"model": model_t, **uni_t}
            est.info["unimodal_accuracy"] = {m: accuracy(uni[m].argmax(1), y) for m in modalities}
        elif len(modalities) != 2:
            skipped[method] = (f"{method} decomposes a pair of modalities; this dataset has {len(modalities)} "
                               f"({', '.join(modalities)})")
            continue
        elif method == "lsmi":
            data: Any = splits  # MultimodalDataset satisfies LabelledData (mypy: dict vs Mapping members)
            res = lsmi(data.train, data.test, data.val, modalities=(modalities[0], modalities[1]), num_classes=c,
                       seed=settings.seed, units=settings.units)
            est = lsmi_types(res.r, res.u1, res.u2, res.s, modalities)
            est.info.update({"units": settings.units, "accuracy": res.accuracy, "means": res.means})
        else:  # cluster
            k = settings.clusters if settings.clusters is not None else auto_k(len(splits.train), c)
            est = cluster_types({m: splits.train.inputs[m] for m in modalities}, splits.train.target,
                                {m: test.inputs[m] for m in modalities}, y, c, k=k,
                                pca_dim=settings.cluster_pca_dim, seed=settings.seed, clusterer=settings.clusterer)
        if method in ("confidence", "cluster") and settings.units == "nats":  # computed in bits
            est.scores = {t: v * math.log(2.0) for t, v in est.scores.items()}
            est.columns = {k: v * math.log(2.0) for k, v in est.columns.items()}
        if method in ("confidence", "cluster", "lsmi"):
            est.info["units"] = settings.units
        estimates[method] = est

    types = type_names(modalities)
    section_methods: dict[str, Any] = {}
    for method, est in estimates.items():
        entry: dict[str, Any] = {"counts": est.counts(),
                                 "accuracy_by_type": accuracy_by_group(correct, est.codes, est.types),
                                 "confusion": None, "type_accuracy": None, "macro_agreement": None, "auroc": None,
                                 "info": est.info}
        if truth is not None:
            m = type_metrics(est, truth)
            entry.update(confusion=m["confusion"], type_accuracy=m["type_accuracy"],
                         macro_agreement=m["macro_agreement"], auroc=m["auroc"], recall=m["recall"])
        section_methods[method] = entry
    for method, why in skipped.items():
        section_methods[method] = {"counts": {}, "accuracy_by_type": {}, "confusion": None, "type_accuracy": None,
                                   "macro_agreement": None, "auroc": None, "skipped": why}

    header = ["index", "label", "prediction", "correct", "true_type", *(f"{m}_type" for m in estimates)]
    columns: list[list[Any]] = [list(range(len(test))), y.tolist(), pred.tolist(), [int(v) for v in correct.tolist()],
                                truth if truth is not None else [""] * len(test)]
    columns += [est.labels for est in estimates.values()]
    for est in estimates.values():
        for name, values in est.columns.items():
            header.append(name)
            columns.append([_round(v) for v in values.tolist()])
    rows = [list(r) for r in zip(*columns)]

    section = {
        "run_dir": str(run.run_dir), "method": run.config.method.name, "seed": int(run.config.train.seed),
        "test_accuracy": accuracy(pred, y), "n": len(test), "target": "model prediction (argmax)",
        "pairs": pairs,
        "per_sample": {"csv": "per_sample.csv", "types": types, "methods": section_methods,
                       "unimodal_source": source},
    }
    return RunAnalysis(section, header, rows)

