"""The plots and the self-contained ``report.html`` of ``interplay analyze``.

Plots (matplotlib, the ``report`` extra; drawn on an Agg canvas without touching pyplot's global state):

* ``pid_<a>_<b>.png``: the PID atoms of each modality pair with their bootstrap intervals; the model's PID
  (run mode) beside the dataset's; the generator's ground truth as black ticks where it is known.
* ``mi.png``: ``I(X_m; Y)`` per modality and of all modalities together, with intervals and truth.
* ``per_sample_types.png``: how many test samples each per-sample method assigns to each interaction type.
* ``accuracy_by_type.png``: the model's test accuracy on the samples of each estimated type, per method.
* ``confusion_<method>.png``: estimated (rows) vs true (columns) type, counts, where the data have
  ground-truth types (``matrix[i][j]``: estimated ``estimated[i]``, true ``true[j]``).

``report.html`` inlines every PNG as a ``data:image/png;base64`` URI and has tables of all the numbers; it names
no external resource (no stylesheet, script or font from a URL), so a browser opens it offline. A small inline
script records in ``document.body.dataset.figures`` how many images decoded (checked in the tests with headless
Chromium). Without matplotlib the report has the tables and says that the plots need ``interplay[report]``.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..io import atomic_write_bytes, atomic_write_text

__all__ = ["figures", "render_html", "write_report"]

_ATOM_LABELS = ("R", "U", "U", "S")
_COLORS = {"dataset": "#4c72b0", "model": "#dd8452"}


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _atoms(entry: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any] | None]]:
    """``[(label, Q)]`` of a pair entry: R, U_a, U_b, S, I(a,b;Y)."""
    a, b = entry["pair"]
    uniq = entry.get("unique") or {}
    return [("R", entry.get("redundancy")), (f"U {a}", uniq.get(a)), (f"U {b}", uniq.get(b)),
            ("S", entry.get("synergy")), (f"I({a},{b};Y)", entry.get("total"))]


def _truth_values(entry: Mapping[str, Any]) -> list[float | None]:
    t = entry.get("truth")
    if not t:
        return [None] * 5
    a, b = entry["pair"]
    u = t.get("unique") or {}
    return [_num(t.get("redundancy")), _num(u.get(a)), _num(u.get(b)), _num(t.get("synergy")), _num(t.get("total"))]


# ---------------------------------------------------------------------------------------------- plots
def _figure(width: float = 6.4, height: float = 3.6) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _bars(ax: Any, labels: Sequence[str], series: Sequence[tuple[str, Sequence[Mapping[str, Any] | None], str]],
          truth: Sequence[float | None] | None = None) -> None:
    """Grouped bars with interval whiskers; ``truth`` as black ticks."""
    n = len(series)
    width = 0.8 / max(n, 1)
    xs = list(range(len(labels)))
    for k, (name, qs, color) in enumerate(series):
        pos = [x - 0.4 + width * (k + 0.5) for x in xs]
        vals = [_num(q.get("value")) if q else None for q in qs]
        heights = [v if v is not None else 0.0 for v in vals]
        lo_err, hi_err = [], []
        for q, v in zip(qs, heights):
            iv = q.get("interval") if q else None
            lo_err.append(max(v - iv[0], 0.0) if iv else 0.0)
            hi_err.append(max(iv[1] - v, 0.0) if iv else 0.0)
        whiskers = any(q and q.get("interval") for q in qs)
        ax.bar(pos, heights, width=width * 0.95, color=color, label=name,
               yerr=[lo_err, hi_err] if whiskers else None, capsize=3, ecolor="#333333")
    if truth is not None and any(t is not None for t in truth):
        first = True
        for x, t in zip(xs, truth):
            if t is not None:
                ax.hlines(t, x - 0.45, x + 0.45, colors="black", linewidth=2, label="truth" if first else None)
                first = False
    ax.axhline(0.0, color="#888888", linewidth=0.8)
    ax.set_xticks(xs)
    ax.set_xticklabels(labels)
    top = ax.get_ylim()[1]
    ax.set_ylim(top=top * 1.2 if top > 0 else 1.0)
    ax.legend(fontsize=8, loc="upper left")


def figures(analysis: Mapping[str, Any]) -> dict[str, bytes]:
    """``{file name: PNG bytes}`` of every plot the analysis supports (see the module docstring)."""
    units = analysis.get("units", "bits")
    out: dict[str, bytes] = {}
    dataset = analysis.get("dataset") or {}
    model = analysis.get("model") or {}
    model_pairs = {tuple(e["pair"]): e for e in model.get("pairs") or []}
    for entry in dataset.get("pairs") or []:
        key = tuple(entry["pair"])
        labels = [lab for lab, _ in _atoms(entry)]
        series = [("dataset (features, label)", [q for _, q in _atoms(entry)], _COLORS["dataset"])]
        if key in model_pairs:
            series.append(("model (features, prediction)", [q for _, q in _atoms(model_pairs[key])],
                           _COLORS["model"]))
        fig = _figure()
        ax = fig.add_subplot(1, 1, 1)
        _bars(ax, labels, series, _truth_values(entry))
        ax.set_ylabel(units)
        ax.set_title(f"PID of {key[0]}, {key[1]} (bars: corrected value, whiskers: interval)", fontsize=9)
        out[f"pid_{_slug(key[0])}_{_slug(key[1])}.png"] = _png(fig)
    for key, entry in model_pairs.items():  # a model pair without a dataset pair (not expected, but drawn)
        if not any(tuple(e["pair"]) == key for e in dataset.get("pairs") or []):
            fig = _figure()
            ax = fig.add_subplot(1, 1, 1)
            _bars(ax, [lab for lab, _ in _atoms(entry)],
                  [("model (features, prediction)", [q for _, q in _atoms(entry)], _COLORS["model"])])
            ax.set_ylabel(units)
            out[f"pid_{_slug(key[0])}_{_slug(key[1])}.png"] = _png(fig)
    mi = dataset.get("mi") or {}
    if mi:
        names = list(mi)
        fig = _figure()
        ax = fig.add_subplot(1, 1, 1)
        labels = [f"I({'all' if m == 'all' else m};Y)" for m in names]
        _bars(ax, labels, [("dataset", [mi[m] for m in names], _COLORS["dataset"])],
              [_num(mi[m].get("truth")) for m in names])
        ax.set_ylabel(units)
        ax.set_title("mutual information with the label", fontsize=9)
        out["mi.png"] = _png(fig)
    methods = ((model.get("per_sample") or {}).get("methods") or {})
    if methods:
        types = list((model.get("per_sample") or {}).get("types") or [])
        for m in methods.values():
            for t in list(m.get("counts") or {}) + list(m.get("accuracy_by_type") or {}):
                if t not in types:
                    types.append(t)
        palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
        for fname, field, ylabel, title in (
                ("per_sample_types.png", "counts", "test samples", "estimated interaction type per sample"),
                ("accuracy_by_type.png", "accuracy_by_type", "model accuracy", "model accuracy by estimated type")):
            fig = _figure(max(6.4, 1.1 * len(types) + 2), 3.6)
            ax = fig.add_subplot(1, 1, 1)
            series = []
            for k, (name, m) in enumerate(methods.items()):
                vals = m.get(field) or {}
                series.append((name, [{"value": _num(vals.get(t))} if _num(vals.get(t)) is not None else None
                                      for t in types], palette[k % len(palette)]))
            _bars(ax, types, series)
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=9)
            ax.tick_params(axis="x", labelsize=8)
            out[fname] = _png(fig)
        for name, m in methods.items():
            conf = m.get("confusion")
            if not conf:
                continue
            matrix = conf["matrix"]
            est, true = conf["estimated"], conf["true"]
            # matrix[i][j]: samples of estimated type est[i] and true type true[j] (analysis.types' convention)
            fig = _figure(1.3 * len(true) + 3.0, 0.6 * len(est) + 1.8)
            ax = fig.add_subplot(1, 1, 1)
            im = ax.imshow(matrix, cmap="Blues", aspect="auto")
            vmax = max((max(row) for row in matrix if row), default=0)
            for i, row in enumerate(matrix):
                for j, v in enumerate(row):
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                            color="white" if vmax and v > vmax / 2 else "black")
            ax.set_xticks(range(len(true)))
            ax.set_xticklabels(true, rotation=30, ha="right", fontsize=8)
            ax.set_yticks(range(len(est)))
            ax.set_yticklabels(est, fontsize=8)
            ax.set_xlabel("true type")
            ax.set_ylabel("estimated type")
            ax.set_title(f"{name}: estimated vs true type (test samples)", fontsize=9)
            fig.colorbar(im, ax=ax)
            out[f"confusion_{_slug(name)}.png"] = _png(fig)
    return out


# ---------------------------------------------------------------------------------------------- html
def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _f(v: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals (``-`` for None / NaN); anything else escaped as text."""
    if v is None:
        return "-"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return "-" if math.isnan(float(v)) else f"{float(v):.{digits}f}"
    return _e(v)


def _q(q: Mapping[str, Any] | None) -> tuple[str, str]:
    if not q:
        return "-", "-"
    iv = q.get("interval")
    return _f(q.get("value")), ("-" if not iv else f"[{_f(iv[0])}, {_f(iv[1])}]")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{_e(name)}" data-name="{_e(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(name)}</figcaption></figure>")


_CSS = """
body { font-family: sans-serif; margin: 2em; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em; }
img { max-width: 100%; }
code { background: #f3f3f3; padding: 0 0.2em; }
.note { color: #555; }
"""

# counts the images that decoded once the page has loaded (checked by the headless-Chromium test)
_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  document.body.dataset.figures = String(imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; })
                                         .length);
  document.body.dataset.images = String(imgs.length);
});
"""


def _pair_rows(entry: Mapping[str, Any], model_entry: Mapping[str, Any] | None) -> list[list[str]]:
    rows = []
    truth = _truth_values(entry)
    model_atoms = _atoms(model_entry) if model_entry else None
    for k, (label, q) in enumerate(_atoms(entry)):
        row = [_e(label), *_q(q), _f(truth[k])]
        if model_atoms is not None:
            row += list(_q(model_atoms[k][1]))
        rows.append(row)
    return rows


def render_html(analysis: Mapping[str, Any], pngs: Mapping[str, bytes], note: str | None = None) -> str:
    """The report page: the analysis's numbers as tables and ``pngs`` inlined as data URIs."""
    units = analysis.get("units", "bits")
    data = analysis.get("data") or {}
    dataset = analysis.get("dataset") or {}
    model = analysis.get("model") or {}
    parts: list[str] = []
    title = f"Interaction analysis: {data.get('name', '?')}" + (
        f", {model.get('method')} run" if model else "")
    parts.append(f"<h1>{_e(title)}</h1>")
    samples = data.get("samples") or {}
    parts.append(f"<p>interplay {_e(analysis.get('interplay_version', '?'))}; {_e(analysis.get('kind', '?'))} "
                 f"analysis; values in <b>{_e(units)}</b>; modalities {_e(', '.join(data.get('modalities') or []))};"
                 f" {_e(data.get('num_classes', '?'))} classes; samples train {_e(samples.get('train', '?'))}, val "
                 f"{_e(samples.get('val', '?'))}, test {_e(samples.get('test', '?'))}.</p>")
    config = data.get("config") or {}
    params = {k: v for k, v in config.items() if v is not None and k not in ("name", "params")}
    params.update(config.get("params") or {})
    if params:
        parts.append("<p class=note>data parameters: "
                     + ", ".join(f"<code>{_e(k)}={_e(v)}</code>" for k, v in params.items()) + "</p>")
    if note:
        parts.append(f"<p class=note>{_e(note)}</p>")
    if dataset:
        rec = dataset.get("recommendation") or {}
        parts.append("<h2>What the numbers say</h2><ul>"
                     + "".join(f"<li>{_e(t)}</li>" for t in rec.get("text") or []) + "</ul>")
        parts.append(f"<h2>Dataset: PID of each modality pair with the label</h2><p class=note>cluster estimator on "
                     f"split {_e(dataset.get('split'))}, N = {_e(dataset.get('n'))}; "
                     f"{_e(dataset.get('bias_correction', ''))}; interval: {_e(dataset.get('interval', ''))}.</p>")
        model_pairs = {tuple(e["pair"]): e for e in model.get("pairs") or []}
        for entry in dataset.get("pairs") or []:
            a, b = entry["pair"]
            m_entry = model_pairs.get((a, b))
            headers = ["quantity", f"value ({units})", "interval", "truth"]
            if m_entry is not None:
                headers += [f"model value ({units})", "model interval"]
            k = entry.get("clusters") or ["?", "?"]
            parts.append(f"<h3>{_e(a)}, {_e(b)}</h3><p class=note>k-means clusters {_e(k[0])} x {_e(k[1])}; "
                         f"conditional-independence null p of S = {_f(entry.get('p_synergy_conditional'))}</p>")
            parts.append(_table(headers, _pair_rows(entry, m_entry)))
            png = f"pid_{_slug(a)}_{_slug(b)}.png"
            if png in pngs:
                parts.append(_img(png, pngs[png]))
        mi = dataset.get("mi") or {}
        if mi:
            parts.append("<h3>Mutual information with the label</h3>")
            rows = [[_e(f"I({m};Y)" if m != "all" else "I(all modalities;Y)"), *_q(q), _f(q.get("truth"))]
                    for m, q in mi.items()]
            parts.append(_table(["quantity", f"value ({units})", "interval", "truth"], rows))
            if "mi.png" in pngs:
                parts.append(_img("mi.png", pngs["mi.png"]))
    if model:
        parts.append("<h2>Model</h2>")
        parts.append(f"<p>run <code>{_e(model.get('run_dir'))}</code>, method <b>{_e(model.get('method'))}</b>, "
                     f"seed {_e(model.get('seed'))}, test accuracy {_f(model.get('test_accuracy'))}.</p>")
        ps = model.get("per_sample") or {}
        methods = ps.get("methods") or {}
        if methods:
            parts.append(f"<h3>Per-sample interaction types (test samples; <code>{_e(ps.get('csv', ''))}</code>)"
                         f"</h3>")
            types: list[str] = list(ps.get("types") or [])
            for m in methods.values():
                for t in list(m.get("counts") or {}) + list(m.get("accuracy_by_type") or {}):
                    if t not in types:
                        types.append(t)
            rows = []
            for name, m in methods.items():
                counts, acc = m.get("counts") or {}, m.get("accuracy_by_type") or {}
                rows.append([_e(name), *(f"{_e(counts.get(t, 0))} / {_f(acc.get(t))}" for t in types),
                             _f(m.get("type_accuracy")), _f(m.get("macro_agreement"))])
            parts.append("<p class=note>each cell: samples of that estimated type / the model's accuracy on them"
                         "</p>")
            parts.append(_table(["method", *types, "type accuracy", "macro agreement"], rows))
            for name, m in methods.items():
                auroc = m.get("auroc")
                if auroc:
                    parts.append(f"<p>{_e(name)}: AUROC per type: "
                                 + ", ".join(f"{_e(t)} {_f(v)}" for t, v in auroc.items()) + "</p>")
            for fname in ("per_sample_types.png", "accuracy_by_type.png"):
                if fname in pngs:
                    parts.append(_img(fname, pngs[fname]))
            for name, m in methods.items():
                conf = m.get("confusion")
                if not conf:
                    continue
                parts.append(f"<h3>{_e(name)}: estimated (rows) vs true (columns) type</h3>")
                rows = [[_e(t), *(_e(v) for v in row)] for t, row in zip(conf["estimated"], conf["matrix"])]
                parts.append(_table(["estimated \\ true", *conf["true"]], rows))
                fname = f"confusion_{_slug(name)}.png"
                if fname in pngs:
                    parts.append(_img(fname, pngs[fname]))
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n" + "\n".join(parts)
            + f"\n<script>{_SCRIPT}</script>\n</body></html>\n")


def write_report(out: Path, analysis: Mapping[str, Any]) -> list[Path]:
    """Write the PNG plots and ``report.html`` into ``out`` (atomically); returns the paths written.

    Without matplotlib no PNG is written and the report says that the plots need ``pip install interplay[report]``.
    """
    out = Path(out)
    try:
        pngs = figures(analysis)
        note = None
    except ImportError:
        pngs, note = {}, "matplotlib is not installed (pip install interplay[report]): no plots."
    written: list[Path] = []
    for name, data in pngs.items():
        atomic_write_bytes(out / name, data)
        written.append(out / name)
    atomic_write_text(out / "report.html", render_html(analysis, pngs, note))
    written.append(out / "report.html")
    return written
