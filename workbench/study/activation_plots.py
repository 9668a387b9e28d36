"""Interactive plotly views of activations, for reports and notebooks.

* :func:`token_trace_figure`: a response token by token: a probe's score and
  a head's norm at every token, the token and the value in the hover, so one
  sees where along the answer a signal appears.
* :func:`depth_figure`: probe AUC (CV and each fresh set) at every layer:
  where in the network the signal lives, if anywhere.
* :func:`head_attribution_heatmap`: the layer x head attribution heatmap;
  every cell carries its head's numbers (hover, ``customdata``) so a click
  handler (``report.html`` has one; in Jupyter wrap the figure in a
  ``go.FigureWidget`` and use ``on_click``) can show them, and
  :func:`head_numbers` returns them for one head.

Numpy and plotly only (no model, and no import of ``probes`` or
``interventions``, per the design's one-way data flow): their result objects
are read by attribute, so cached results can be drawn anywhere.

>>> fig = token_trace_figure(["[end of prompt]", "Paris", "."], [0.4, 0.8, 0.9],
...                          head_norm=[1.0, 2.0, 1.5], head_label="L29.H3")
>>> [t.name for t in fig.data]
['probe p(correct)', 'L29.H3 norm']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.errors import WorkbenchError

if TYPE_CHECKING:
    from interventions import HeadAttribution

__all__ = ["depth_figure", "head_attribution_heatmap", "head_numbers", "token_trace_figure"]

_COLORS = ("#E45756", "#F58518", "#54A24B", "#B279A2")


def token_trace_figure(
    tokens: Sequence[str],
    scores: Sequence[float],
    *,
    head_norm: Sequence[float] | None = None,
    head_label: str = "head",
    threshold: float | None = 0.5,
    title: str = "Probe score at every token",
) -> go.Figure:
    """The probe's ``p(correct)`` (and one head's norm) at every token of a response.

    Args:
        tokens: the token strings, in order (x axis; shown in the hover).
        scores: the probe's score at each token.
        head_norm: a head's ``o_proj``-input L2 norm at each token (second panel).
        head_label: the head's name for the legend, e.g. ``"L29.H3"``.
        threshold: a horizontal reference line on the score panel (None: none).
        title: the figure title.
    """
    if len(scores) != len(tokens) or (head_norm is not None and len(head_norm) != len(tokens)):
        raise WorkbenchError(
            f"{len(tokens)} tokens but {len(scores)} scores"
            + ("" if head_norm is None else f" and {len(head_norm)} head norms")
            + ": pass one value per token"
        )
    rows = 1 if head_norm is None else 2
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    x = list(range(len(tokens)))
    shown = [repr(t)[1:-1] or "·" for t in tokens]
    fig.add_scatter(
        x=x, y=list(scores), mode="lines+markers", name="probe p(correct)",
        customdata=shown, line={"color": "#4C78A8"},
        hovertemplate="token %{x}: <b>%{customdata}</b><br>p(correct) %{y:.3f}<extra></extra>",
        row=1, col=1,
    )  # fmt: skip
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dot", line_color="grey", row=1, col=1)
    fig.update_yaxes(title_text="p(correct)", range=[0, 1], row=1, col=1)
    if head_norm is not None:
        fig.add_scatter(
            x=x, y=list(head_norm), mode="lines+markers", name=f"{head_label} norm",
            customdata=shown, line={"color": "#E45756"},
            hovertemplate="token %{x}: <b>%{customdata}</b><br>"
            + f"{head_label} norm "
            + "%{y:.3f}<extra></extra>",
            row=2, col=1,
        )  # fmt: skip
        fig.update_yaxes(title_text="head norm", row=2, col=1)
    fig.update_xaxes(tickmode="array", tickvals=x, ticktext=shown, tickangle=-60, row=rows, col=1)
    fig.update_layout(title=title, height=260 * rows + 140, hovermode="x unified")
    return fig


def _auc_point(v: Any) -> tuple[float | None, float, float]:
    """(auc, upper error, lower error) of a float, None or an AUCResult-like object."""
    if v is None:
        return None, 0.0, 0.0
    if hasattr(v, "auc"):
        return float(v.auc), float(v.hi - v.auc), float(v.auc - v.lo)
    return float(v), 0.0, 0.0


def depth_figure(
    layers: Sequence[int],
    cv: Sequence[Any],
    transfer: Mapping[str, Sequence[Any]] | None = None,
    *,
    gate: float = 0.63,
    title: str = "Probe AUC by layer",
) -> go.Figure:
    """CV AUC and the AUC on each held-out set at every layer.

    Values are floats, ``None`` (undefined at that layer) or objects with
    ``auc``/``lo``/``hi`` (``probes.AUCResult``), drawn with their intervals.
    Chance (0.5) and the gate's bar are drawn for reference.

    >>> fig = depth_figure([0, 1], [0.6, 0.7], {"fresh": [0.5, 0.55], "fresh_hard": [None, 0.4]})
    >>> [t.name for t in fig.data]
    ['CV', 'fresh', 'fresh_hard']
    """
    fig = go.Figure()
    series = {"CV": cv, **dict(transfer or {})}
    colors = ("#4C78A8", *_COLORS)
    for i, (name, values) in enumerate(series.items()):
        points = [_auc_point(v) for v in values]
        fig.add_scatter(
            x=list(layers), y=[p[0] for p in points], mode="lines+markers", name=name,
            marker_color=colors[i % len(colors)], line={"dash": "solid" if i < 2 else "dash"},
            error_y={
                "type": "data", "symmetric": False,
                "array": [p[1] for p in points], "arrayminus": [p[2] for p in points],
            },
            hovertemplate=f"{name}<br>layer " + "%{x}: AUC %{y:.3f}<extra></extra>",
        )  # fmt: skip
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", annotation_text="chance 0.5")
    fig.add_hline(y=gate, line_dash="dash", line_color="black", annotation_text=f"gate {gate}")
    fig.update_yaxes(range=[0, 1], title="ROC AUC")
    fig.update_layout(title=title, xaxis_title="layer")
    return fig


def head_numbers(attr: HeadAttribution, layer: int, head: int) -> dict[str, Any]:
    """One head's attribution numbers with the cohorts' names and sizes."""
    h = attr.head(layer, head)
    return {
        **h.to_json(),
        "cohort_a": {"name": attr.names[0], "n": attr.n_a},
        "cohort_b": {"name": attr.names[1], "n": attr.n_b},
    }


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3f}"


def head_attribution_heatmap(
    attr: HeadAttribution, by: str = "magnitude", *, n_marked: int = 3
) -> go.Figure:
    """Layer x head heatmap of one ranking's Cohen d (``magnitude``, ``directional``...).

    Every cell's ``customdata`` is ``[layer, head]`` and its ``text`` the head's
    numbers (d, cos, cohort means and sizes): the hover shows them and a click
    handler can display them. The ``n_marked`` top heads carry a star.
    """
    a, b = attr.names
    layers = attr.layers
    n_heads = max(h.head for h in attr.heads) + 1
    z = np.full((len(layers), n_heads), np.nan)
    text = [["" for _ in range(n_heads)] for _ in layers]
    for h in attr.heads:
        row = layers.index(h.layer)
        z[row, h.head] = h.score(by)  # type: ignore[arg-type]
        flag = "<br><b>collinear means: d is a variance artifact</b>" if h.collinear else ""
        text[row][h.head] = (
            f"magnitude d {_fmt(h.magnitude_d)}<br>directional d {_fmt(h.directional_d)} "
            f"(held-out {_fmt(h.directional_d_heldout)})<br>cos(mu_{a}, mu_{b}) {_fmt(h.cos)}"
            f"<br>mean norm {a} {_fmt(h.mean_a)} vs {b} {_fmt(h.mean_b)}"
            f"<br>n {a}={attr.n_a}, {b}={attr.n_b}{flag}"
        )
    fig = go.Figure(
        go.Heatmap(
            z=z, x=[f"H{h}" for h in range(n_heads)], y=[f"L{layer}" for layer in layers],
            text=text, customdata=[[[layer, h] for h in range(n_heads)] for layer in layers],
            hovertemplate="%{y} %{x}<br>%{text}<extra></extra>",
            colorscale="RdBu_r", zmid=0.0, colorbar={"title": "d"},
        )
    )  # fmt: skip
    top = [h for h in attr.ranked(by) if np.isfinite(h.score(by))][:n_marked]  # type: ignore[arg-type]
    for h in top:
        fig.add_annotation(
            x=f"H{h.head}",
            y=f"L{h.layer}",
            text="★",
            showarrow=False,
            font={"size": 16, "color": "gold"},
        )
    fig.update_yaxes(autorange="reversed", title="layer")
    fig.update_layout(
        title=f"Head attribution ({by} Cohen d, {a} vs {b}); ★ top {len(top)}; click a cell",
        xaxis_title="head",
        height=max(420, 22 * len(layers) + 160),
    )
    return fig
