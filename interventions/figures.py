"""Plotly figures: layer x head heatmaps, sweep lines with seed bands, sidecar tables.

Every heatmap cell's hover shows the head's numbers (d, cos, cohort means, n),
and its ``customdata`` holds them for a notebook click callback. Layers are
labelled with their original numbers (a hybrid model shows only its attention
layers). :func:`write_html` puts several figures in one standalone page.

>>> import numpy as np
>>> from interventions import attribute_heads
>>> x = np.random.default_rng(0).normal(size=(20, 2, 3, 4))
>>> fig = attribution_figure(attribute_heads({3: x, 7: x}, np.arange(20) < 10, np.arange(20) >= 10))
>>> list(fig.data[0].y)
['L3', 'L7']
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interventions.attribution import HeadAttribution, HeadScore, Ranking
from interventions.head_probes import HeadProbes
from interventions.sidecar import SidecarResult
from interventions.sweep import SweepResult
from probes.figures import disposition_figure, save_page

__all__ = [
    "attribution_figure",
    "head_probe_figure",
    "head_heatmap",
    "sidecar_figures",
    "sweep_figure",
    "write_html",
]

_TITLES = {
    "magnitude": "Magnitude attribution: Cohen's d of per-head L2 norm",
    "directional": "Directional attribution: Cohen's d on mu_a - mu_b (in-sample)",
    "directional_heldout": "Directional attribution: Cohen's d, out-of-fold directions",
}


def head_heatmap(
    cells: Mapping[tuple[int, int], float],
    hover: Mapping[tuple[int, int], str],
    *,
    title: str,
    colorbar: str,
    center: float = 0.0,
) -> go.Figure:
    """A layer x head heatmap of ``cells`` (diverging colours around ``center``), one hover text per cell."""
    layers = sorted({layer for layer, _ in cells})
    n_heads = max(h for _, h in cells) + 1
    z = np.full((len(layers), n_heads), np.nan)
    text = [["" for _ in range(n_heads)] for _ in layers]
    for (layer, head), value in cells.items():
        row = layers.index(layer)
        z[row, head] = value
        text[row][head] = hover.get((layer, head), "")
    custom = [[[layer, h] for h in range(n_heads)] for layer in layers]
    heat = go.Heatmap(
        z=z,
        x=[f"H{h}" for h in range(n_heads)],
        y=[f"L{layer}" for layer in layers],
        text=text,
        customdata=custom,
        hovertemplate="%{y} %{x}<br>%{text}<extra></extra>",
        colorscale="RdBu_r",
        zmid=center,
        colorbar={"title": colorbar},
    )
    fig = go.Figure(heat)
    fig.update_layout(title=title, xaxis_title="head", yaxis_title="layer")
    fig.update_yaxes(autorange="reversed")
    return fig


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3f}"


def _hover(h: HeadScore, attr: HeadAttribution) -> str:
    a, b = attr.names
    flag = "<br><b>collinear means: d is a variance artifact</b>" if h.collinear else ""
    return (
        f"magnitude d {_fmt(h.magnitude_d)}<br>directional d {_fmt(h.directional_d)} "
        f"(held-out {_fmt(h.directional_d_heldout)})<br>cos(mu_{a}, mu_{b}) {_fmt(h.cos)}<br>"
        f"mean norm {a} {_fmt(h.mean_a)} vs {b} {_fmt(h.mean_b)} (diff {_fmt(h.diff)})<br>"
        f"n {a}={attr.n_a}, {b}={attr.n_b}{flag}"
    )


def attribution_figure(attr: HeadAttribution, by: Ranking = "magnitude") -> go.Figure:
    """Heatmap of one ranking's scores over layer x head, collinear heads marked in the hover."""
    cells = {(h.layer, h.head): h.score(by) for h in attr.heads}
    hover = {(h.layer, h.head): _hover(h, attr) for h in attr.heads}
    a, b = attr.names
    return head_heatmap(cells, hover, title=f"{_TITLES[by]} ({a} vs {b})", colorbar="d")


def head_probe_figure(result: HeadProbes) -> go.Figure:
    """Heatmap of per-head probe AUC (held out), with CV and fresh AUCs in the hover."""
    cells = {(p.layer, p.head): p.auc for p in result.probes}
    hover = {
        (p.layer, p.head): f"CV AUC {p.cv}" + (f"<br>fresh AUC {p.fresh}" if p.fresh else "")
        for p in result.probes
    }
    return head_heatmap(
        cells,
        hover,
        title=f"Per-head linear probes: {result.held_out} AUC (n+={result.n_pos}, n-={result.n_neg})",
        colorbar="AUC",
        center=0.5,
    )


def sweep_figure(result: SweepResult) -> go.Figure:
    """Metric vs value, one panel per metric: seed mean, a band over seeds, each seed's point."""
    metrics = list(result.metrics)
    fig = make_subplots(rows=len(metrics), cols=1, subplot_titles=metrics, shared_xaxes=True)
    for row, metric in enumerate(metrics, start=1):
        sums = [s for s in result.summaries if s.metric == metric]
        x = [s.value for s in sums]
        show = row == 1
        fig.add_scatter(
            x=x,
            y=[s.hi for s in sums],
            mode="lines",
            line={"width": 0},
            showlegend=False,
            row=row,
            col=1,
        )
        fig.add_scatter(
            x=x, y=[s.lo for s in sums], mode="lines", line={"width": 0}, fill="tonexty",
            fillcolor="rgba(76,120,168,0.25)", name="seed range", showlegend=show, row=row, col=1,
        )  # fmt: skip
        fig.add_scatter(
            x=x, y=[s.mean for s in sums], mode="lines+markers", name="mean over seeds",
            line={"color": "#4C78A8"}, showlegend=show, row=row, col=1,
        )  # fmt: skip
        for i, seed in enumerate(result.seeds):
            fig.add_scatter(
                x=x, y=[s.per_seed[i] for s in sums], mode="markers", name=f"seed {seed}",
                marker={"size": 5, "opacity": 0.6}, legendgroup=f"seed{seed}",
                showlegend=show, row=row, col=1,
            )  # fmt: skip
    fig.update_xaxes(title_text=result.parameter, row=len(metrics), col=1)
    note = " | ".join(result.warnings)
    fig.update_layout(
        title=f"Sweep over {result.parameter} ({len(result.seeds)} seeds)"
        + (f"<br><sup>{note}</sup>" if note else ""),
        height=260 * len(metrics) + 120,
    )
    return fig


def sidecar_figures(result: SidecarResult) -> dict[str, go.Figure]:
    """The baseline and gated 2x2 disposition tables."""
    return {
        "baseline": disposition_figure(result.baseline_table, title="Ungated baseline"),
        "gated": disposition_figure(
            result.gated_table,
            title=f"Sidecar (gate p_correct < {result.threshold:.2f}, {result.n_gated} gated)",
        ),
    }


def write_html(figures: Mapping[str, go.Figure], path: str | Path, *, title: str) -> Path:
    """Write several figures into one standalone HTML page (plotly.js embedded once)."""
    return save_page(figures, path, title=title)
