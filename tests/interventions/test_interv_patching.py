"""Activation patching sweeps: layers x positions and heads, normalised scores, alignment."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interventions.patching import PatchResult, logit_diff, patching_sweep, prob
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item

CLEAN = [Item("x", "The capital of Italy is"), Item("y", "Two plus two is")]
CORRUPT = [Item("x", "The capital of Spain is"), Item("y", "Two plus one is")]


def _tokens(lm, text):
    return lm.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_layer_by_position_sweep_restores_at_the_last_layer(tiny):
    lm = tiny("llama")
    metric = logit_diff([_tokens(lm, "R")[0]], [_tokens(lm, "M")[0]])
    result = patching_sweep(lm, CLEAN, CORRUPT, metric, n_positions=3)
    assert result.grid.shape == (lm.layout.n_layers, 3)
    last = result.grid[-1]
    assert last[-1] == pytest.approx(1.0, abs=1e-4)  # the final token's last residual decides
    assert np.abs(last[:-1]).max() < 1e-4  # earlier tokens at the last layer cannot reach it
    data = json.loads(json.dumps(result.to_json()))
    assert PatchResult.from_json(data).to_json() == data
    assert result.figure().data[0].type == "heatmap"


def test_head_sweep_and_probability_metric(tiny):
    lm = tiny("qwen3")
    metric = prob([_tokens(lm, "R")[0]])
    result = patching_sweep(lm, CLEAN, CORRUPT, metric, heads=True, layers=[1, 2])
    assert result.grid.shape == (2, lm.layout.attention(1).n_heads)
    assert np.isfinite(result.grid).all() and np.abs(result.grid).max() > 1e-3


def test_misaligned_runs_and_a_metric_that_cannot_move_are_refused(tiny):
    lm = tiny("llama")
    metric = logit_diff([_tokens(lm, "R")[0]], [_tokens(lm, "M")[0]])
    longer = [Item("x", "The capital city of Spain is"), Item("y", "Two plus one is")]
    with pytest.raises(WorkbenchError, match="do not align"):
        patching_sweep(lm, CLEAN, longer, metric, heads=True, layers=[1])
    with pytest.raises(WorkbenchError, match="nothing to restore"):
        patching_sweep(lm, CLEAN, CLEAN, metric)
    with pytest.raises(WorkbenchError, match="pair them one to one"):
        patching_sweep(lm, CLEAN, CORRUPT[:1], metric)
    ok = patching_sweep(lm, CLEAN, longer, metric, heads=True, layers=[1],
                        align=[(p, p) for p in range(12)])  # fmt: skip
    assert ok.grid.shape == (1, 4)
