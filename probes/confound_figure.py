"""The confound step as one figure: what the confounds give, what the probe adds.

Per confound (and for all together), fresh-set AUCs side by side: the
confounds alone, the confounds plus the probe's score, the probe within the
confound's strata, and the probe refitted on LEACE-erased features; a dashed
line marks the probe alone.

>>> import numpy as np
>>> from probes import falsify
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(size=200); y = (z > 0).astype(int); X = rng.normal(size=(200, 4))
>>> X[:, 0] += 2 * z
>>> r = falsify(X[:100], y[:100], fresh_X=X[100:], fresh_y=y[100:], n_boot=50, n_perm=50,
...             n_control=0, confounds={"length": (z[:100], z[100:])}, erase_confounds=False)
>>> len(confound_figure(r.confounds).data)
3
"""

from __future__ import annotations

import plotly.graph_objects as go

from probes.confound_step import ConfoundStep
from probes.disposition import GATE_MIN_AUC

__all__ = ["confound_figure"]


def confound_figure(step: ConfoundStep) -> go.Figure:
    """Grouped fresh AUCs per confound (bars absent where an analysis did not run)."""
    rows = [r for r in step.results if r.incremental is not None]
    names = [r.name for r in rows]
    series = {
        "confounds alone": [r.incremental.auc_confounds if r.incremental else None for r in rows],
        "confounds + probe": [r.incremental.auc_combined if r.incremental else None for r in rows],
        "probe within strata": [r.stratified.auc if r.stratified else None for r in rows],
    }
    if any(r.erasure is not None for r in rows):
        series["probe on erased features"] = [
            r.erasure.fresh.auc if r.erasure else None for r in rows
        ]
    fig = go.Figure([go.Bar(name=label, x=names, y=values) for label, values in series.items()])
    fig.add_hline(y=step.fresh_auc, line_dash="dash", line_color="#E45756",
                  annotation_text=f"probe alone {step.fresh_auc:.3f}")  # fmt: skip
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", annotation_text="chance 0.5")
    fig.add_hline(y=GATE_MIN_AUC, line_dash="dash", line_color="black",
                  annotation_text=f"gate {GATE_MIN_AUC}")  # fmt: skip
    fig.update_layout(barmode="group", title=f"Confound step: {step.verdict} (fresh AUCs)")
    fig.update_yaxes(range=[0, 1], title="fresh ROC AUC")
    return fig
