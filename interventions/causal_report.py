"""``causal.json`` and ``causal.html``: a causal test's numbers and its control distributions.

The page shows, per test and metric, every random control's change (points) and
the subject's change (a red diamond), with the verdict as its title.

>>> paths = write_causal_report("runs/causal", result)  # doctest: +SKIP
>>> sorted(paths)  # doctest: +SKIP
['html', 'json']
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interventions.causal import CausalResult
from interventions.report import _prepare, _write

__all__ = ["causal_figure", "write_causal_report"]


def causal_figure(result: CausalResult) -> go.Figure:
    """One panel per metric: controls' changes per test, the subject's change marked."""
    tests = list(dict.fromkeys(e.test for e in result.effects))
    metrics = list(dict.fromkeys(e.metric for e in result.effects))
    fig = make_subplots(rows=len(metrics), cols=1, subplot_titles=metrics, vertical_spacing=0.08)
    for row, metric in enumerate(metrics, start=1):
        for test in tests:
            e = result.effect(test, metric)
            fig.add_trace(
                go.Box(y=list(e.controls), name=test, boxpoints="all", jitter=0.4,
                       marker_color="#888", showlegend=False,
                       hovertemplate=f"{test}<br>control change %{{y:.4g}}<extra></extra>"),
                row=row, col=1,
            )  # fmt: skip
            fig.add_trace(
                go.Scatter(x=[test], y=[e.change], mode="markers", showlegend=False,
                           marker={"color": "#d62728", "size": 12, "symbol": "diamond"},
                           hovertemplate=f"{test}<br>{result.subject}: %{{y:.4g}}<br>"
                           f"p = {e.p:.3f}<extra></extra>"),
                row=row, col=1,
            )  # fmt: skip
    fig.update_layout(
        title=f"{result.subject}: {result.verdict}"[:200],
        height=260 * len(metrics),
        margin={"t": 80},
    )
    return fig


def write_causal_report(
    out: str | Path, result: CausalResult, *, meta: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """``causal.json`` (``meta`` and ``causal``: the result with its interventions) and
    ``causal.html`` in ``out``; returns their paths."""
    path = _prepare(out)
    payload = {"meta": dict(meta or {}), "causal": result.to_json()}
    return _write(path, "causal", payload, {"causal": causal_figure(result)}, "Causal test")
