"""Plotly figures of a falsification run; each returns a ``go.Figure``.

Chance (0.5) and the gate's AUC bar (0.63) are drawn on every AUC axis, so a
bar that looks tall can be read against both. :func:`save_html` writes any of
them as one standalone HTML file (plotly.js embedded, works offline).

>>> import numpy as np
>>> fig = depth_curve_figure([0, 1, 2], [0.55, 0.70, 0.81], [0.50, 0.52, 0.49])
>>> [t.name for t in fig.data]
['CV', 'fresh']
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike
from sklearn.decomposition import PCA
from sklearn.metrics import auc as area_under_curve
from sklearn.metrics import roc_curve

from probes.disposition import GATE_MIN_AUC, DispositionTable
from probes.metrics import AUCResult
from probes.report import FalsificationReport, Trial
from workbench.core.store import atomic_write_bytes

__all__ = [
    "auc_collapse_figure",
    "axis_bars_figure",
    "depth_curve_figure",
    "disposition_figure",
    "pca_figure",
    "report_figures",
    "roc_figure",
    "save_html",
    "page_html",
    "save_page",
    "trial_roc_figure",
]

_CV, _FRESH = "#4C78A8", "#E45756"


def _reference_lines(fig: go.Figure) -> go.Figure:
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", annotation_text="chance 0.5")
    fig.add_hline(
        y=GATE_MIN_AUC, line_dash="dash", line_color="black", annotation_text=f"gate {GATE_MIN_AUC}"
    )
    fig.update_yaxes(range=[0, 1], title="ROC AUC")
    return fig


def _err(results: Sequence[AUCResult | None]) -> dict[str, Any]:
    return {
        "type": "data",
        "symmetric": False,
        "array": [0 if r is None else r.hi - r.auc for r in results],
        "arrayminus": [0 if r is None else r.auc - r.lo for r in results],
    }


def _label(t: Trial) -> str:
    return {
        "main": "train features",
        "layers": "last-N layers",
        "second_model": "second model",
    }.get(t.name, t.name.replace("axis:", "axis "))


def auc_collapse_figure(report: FalsificationReport) -> go.Figure:
    """CV AUC against fresh AUC for every trial, in step order, with chance and gate lines.

    Error bars are the bootstrap intervals; grey diamonds are the measured
    chance (mean shuffled-label AUC on fresh, else the CV control task).
    """
    trials = report.trials
    x = [_label(t) for t in trials]
    cv = [t.best.cv.auc for t in trials]
    fresh = [t.best.transfer.auc if t.best.transfer else None for t in trials]
    chance = [
        t.best.transfer.null.null_mean
        if t.best.transfer
        else (t.best.cv.control.mean if t.best.cv.control else None)
        for t in trials
    ]
    fig = go.Figure()
    fig.add_scatter(
        x=x,
        y=[r.auc for r in cv],
        error_y=_err(cv),
        mode="markers+lines",
        name="CV",
        marker_color=_CV,
    )
    fig.add_scatter(
        x=x,
        y=[None if r is None else r.auc for r in fresh],
        error_y=_err(fresh),
        mode="markers+lines",
        name="fresh",
        marker_color=_FRESH,
    )
    fig.add_scatter(
        x=x,
        y=chance,
        mode="markers",
        name="measured chance",
        marker={"color": "grey", "symbol": "diamond"},
    )
    fig.update_layout(title=f"AUC across the falsification steps (verdict: {report.verdict})")
    return _reference_lines(fig)


def axis_bars_figure(report: FalsificationReport) -> go.Figure:
    """Per label axis: CV AUC beside transfer AUC, with intervals."""
    trials = [report.axis(a) for a in report.axes]
    x = list(report.axes)
    cv = [t.best.cv.auc for t in trials]
    fresh = [t.best.transfer.auc if t.best.transfer else None for t in trials]
    fig = go.Figure()
    fig.add_bar(x=x, y=[r.auc for r in cv], error_y=_err(cv), name="CV", marker_color=_CV)
    fig.add_bar(
        x=x,
        y=[None if r is None else r.auc for r in fresh],
        error_y=_err(fresh),
        name="transfer",
        marker_color=_FRESH,
    )
    fig.update_layout(barmode="group", title="Per-axis CV vs transfer AUC")
    return _reference_lines(fig)


def pca_figure(
    X: ArrayLike,
    y: ArrayLike,
    *,
    X_fresh: ArrayLike | None = None,
    y_fresh: ArrayLike | None = None,
    title: str = "Features, first two principal components",
) -> go.Figure:
    """2-D PCA (fitted on ``X``) coloured by label; fresh items as crosses."""
    pca = PCA(n_components=2, random_state=0).fit(np.asarray(X, dtype=np.float64))
    fig = go.Figure()
    sets = [("train", X, y, "circle")]
    if X_fresh is not None and y_fresh is not None:
        sets.append(("fresh", X_fresh, y_fresh, "x"))
    for name, feats, labels, symbol in sets:
        Z = pca.transform(np.asarray(feats, dtype=np.float64))
        lab = np.asarray(labels, dtype=np.float64)
        for cls, color in ((1, _FRESH), (0, _CV)):
            m = lab == cls
            fig.add_scatter(
                x=Z[m, 0],
                y=Z[m, 1],
                mode="markers",
                name=f"{name}, label {cls} ({int(m.sum())})",
                marker={"color": color, "symbol": symbol, "opacity": 0.7},
            )
    ev = pca.explained_variance_ratio_
    fig.update_layout(
        title=title, xaxis_title=f"PC1 ({ev[0]:.0%})", yaxis_title=f"PC2 ({ev[1]:.0%})"
    )
    return fig


def disposition_figure(table: DispositionTable, *, title: str = "Dispositions") -> go.Figure:
    """The 2x2 of correct/wrong against assert/hedge as an annotated heatmap."""
    z = [
        [table.confident_right, table.hedged_right],
        [table.confident_wrong, table.hedged_wrong],
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=["assert", "hedge"],
            y=["correct", "wrong"],
            text=[[str(v) for v in row] for row in z],
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
        )
    )
    asym = table.assertion_asymmetry
    sub = "undefined" if asym is None else f"{asym:+.3f}"
    fig.update_layout(title=f"{title} (assertion asymmetry {sub})")
    fig.update_yaxes(autorange="reversed")
    return fig


def roc_figure(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]], *, title: str = "ROC"
) -> go.Figure:
    """ROC curves, one per name -> (labels, scores), with the chance diagonal.

    >>> fig = roc_figure({"CV": ([0, 1, 0, 1], [0.1, 0.9, 0.3, 0.6])})
    >>> fig.data[0].name
    'CV (AUC 1.000)'
    """
    fig = go.Figure()
    colors = itertools.cycle([_CV, _FRESH, "#54A24B", "#B279A2"])
    for (name, (y, s)), color in zip(curves.items(), colors, strict=False):
        fpr, tpr, _ = roc_curve(np.asarray(y), np.asarray(s))
        auc = float(area_under_curve(fpr, tpr))
        fig.add_scatter(
            x=fpr, y=tpr, mode="lines", name=f"{name} (AUC {auc:.3f})", line_color=color
        )
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "grey"}
    )
    fig.update_layout(
        title=title, xaxis_title="false positive rate", yaxis_title="true positive rate"
    )
    return fig


def trial_roc_figure(trial: Trial) -> go.Figure:
    """ROC of a trial's selected run: out-of-fold CV scores against fresh scores."""
    r = trial.best
    curves = {"train CV": (r.cv.labels, r.cv.scores)}
    if r.transfer is not None:
        curves["fresh"] = (r.transfer.labels, r.transfer.scores)
    return roc_figure(curves, title=f"ROC, {_label(trial)} ({r.label}): train CV vs fresh")


def depth_curve_figure(
    layers: ArrayLike,
    cv: Sequence[float | AUCResult],
    fresh: Sequence[float | AUCResult] | None = None,
    *,
    title: str = "Probe AUC by layer",
) -> go.Figure:
    """CV and fresh AUC at every layer; :class:`AUCResult` entries draw their intervals."""
    x = np.asarray(layers).tolist()
    fig = go.Figure()
    for name, vals, color in (("CV", cv, _CV), ("fresh", fresh, _FRESH)):
        if vals is None:
            continue
        res = [v if isinstance(v, AUCResult) else None for v in vals]
        y = [v.auc if isinstance(v, AUCResult) else float(v) for v in vals]
        fig.add_scatter(
            x=x, y=y, error_y=_err(res), mode="lines+markers", name=name, marker_color=color
        )
    fig.update_layout(title=title, xaxis_title="layer")
    return _reference_lines(fig)


def report_figures(
    report: FalsificationReport,
    *,
    train_X: ArrayLike | None = None,
    train_y: ArrayLike | None = None,
    fresh_X: ArrayLike | None = None,
    fresh_y: ArrayLike | None = None,
) -> dict[str, go.Figure]:
    """The figures of a report, by file stem (PCA only when features are given)."""
    figs = {
        "auc_collapse": auc_collapse_figure(report),
        "roc": trial_roc_figure(report.trial("main")),
    }
    if report.axes:
        figs["axes"] = axis_bars_figure(report)
    best = report.trial("main").best
    if best.transfer is not None:
        figs["disposition"] = disposition_figure(
            best.transfer.disposition,
            title=f"Fresh: correct vs probe asserts (p >= {best.transfer.assert_threshold:.2f})",
        )
    if train_X is not None and train_y is not None:
        figs["pca"] = pca_figure(train_X, train_y, X_fresh=fresh_X, y_fresh=fresh_y)
    if report.confounds is not None and any(r.incremental for r in report.confounds.results):
        from probes.confound_figure import confound_figure

        figs["confounds"] = confound_figure(report.confounds)
    return figs


def save_html(fig: go.Figure, path: str | Path, *, include_plotlyjs: bool | str = True) -> Path:
    """Write ``fig`` as one standalone HTML file, atomically; returns the path.

    Args:
        fig: the figure.
        path: the target file.
        include_plotlyjs: True embeds plotly.js (offline); "cdn" links it instead.
    """
    path = Path(path)
    html = fig.to_html(include_plotlyjs=include_plotlyjs, full_html=True)
    atomic_write_bytes(path, html.encode("utf-8"))
    return path


def page_html(
    figures: Mapping[str, go.Figure], *, title: str, include_plotlyjs: bool | str = True
) -> str:
    """Several figures as one standalone HTML page.

    plotly.js is embedded once for the page (about 4.8 MB), not once per figure;
    each figure's ``div`` gets the id ``fig-NAME``.
    """
    parts = [
        fig.to_html(
            full_html=False, include_plotlyjs=i == 0 and include_plotlyjs, div_id=f"fig-{name}"
        )
        for i, (name, fig) in enumerate(figures.items())
    ]
    text = escape(title)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{text}</title></head>"
        f"<body><h1>{text}</h1>{''.join(parts)}</body></html>"
    )


def save_page(
    figures: Mapping[str, go.Figure],
    path: str | Path,
    *,
    title: str,
    include_plotlyjs: bool | str = True,
) -> Path:
    """Write :func:`page_html` atomically; returns the path."""
    path = Path(path)
    page = page_html(figures, title=title, include_plotlyjs=include_plotlyjs)
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
