"""workbench.study.activation_plots: hover content, per-head click data, depth series, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from interventions import attribute_heads
from probes import AUCResult
from workbench.core.errors import WorkbenchError
from workbench.study.activation_plots import (
    depth_figure,
    head_attribution_heatmap,
    head_numbers,
    token_trace_figure,
)


def test_token_trace_hover_names_token_and_value():
    fig = token_trace_figure(["[end of prompt]", " Paris", "\n"], [0.2, 0.7, 0.9],
                             head_norm=[1.0, 3.0, 2.0], head_label="L5.H1")  # fmt: skip
    score, head = fig.data
    assert list(score.customdata) == ["[end of prompt]", " Paris", "\\n"]
    assert "%{customdata}" in score.hovertemplate and "p(correct)" in score.hovertemplate
    assert head.name == "L5.H1 norm" and list(head.y) == [1.0, 3.0, 2.0]
    assert list(fig.layout.xaxis2.ticktext) == ["[end of prompt]", " Paris", "\\n"]


def test_token_trace_without_head_and_length_mismatch():
    fig = token_trace_figure(["a", "b"], [0.1, 0.2], head_norm=None)
    assert len(fig.data) == 1
    with pytest.raises(WorkbenchError, match="one value per token"):
        token_trace_figure(["a", "b"], [0.1])


def test_depth_figure_draws_intervals_and_undefined_layers():
    cv = [AUCResult(0.6, 0.5, 0.7, 10, 10), AUCResult(0.8, 0.7, 0.9, 10, 10)]
    fig = depth_figure([3, 4], cv, {"fresh": [0.55, None]})
    assert [t.name for t in fig.data] == ["CV", "fresh"]
    assert list(fig.data[0].error_y.array) == pytest.approx([0.1, 0.1])
    assert list(fig.data[1].y) == [0.55, None]


def test_attribution_heatmap_cells_carry_the_head_numbers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2, 3, 8))
    x[:15, :, 2] *= 3.0  # head 2 of every layer is louder in cohort a
    a = np.arange(30) < 15
    attr = attribute_heads({4: x, 9: x}, a, ~a)
    fig = head_attribution_heatmap(attr)
    heat = fig.data[0]
    assert list(heat.y) == ["L4", "L9"] and list(heat.x) == ["H0", "H1", "H2"]
    assert list(heat.customdata[1][2]) == [9, 2]
    assert "magnitude d" in heat.text[1][2] and "cos(mu_cw, mu_cr)" in heat.text[1][2]
    stars = [ann for ann in fig.layout.annotations if ann.text == "★"]
    assert {(s.y, s.x) for s in stars} >= {("L4", "H2"), ("L9", "H2")}
    numbers = head_numbers(attr, 9, 2)
    assert numbers["magnitude_d"] > 1 and numbers["cohort_a"] == {"name": "cw", "n": 15}


def test_module_does_not_import_probes_or_interventions():
    import ast
    from pathlib import Path

    import workbench.study.activation_plots as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    runtime = [
        node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
    ]  # TYPE_CHECKING imports sit inside an `if`, not at the top level
    names = {getattr(n, "module", None) or n.names[0].name for n in runtime}
    assert not any(n.split(".")[0] in ("probes", "interventions") for n in names if n)
