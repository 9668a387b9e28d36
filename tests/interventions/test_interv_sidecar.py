"""The confidence-gated sidecar: probe-read h_last, hedge prefix below a threshold, 2x2 tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interventions import (
    DEFAULT_HEDGE_PREFIX,
    gate_responses,
    sidecar,
    sidecar_figures,
    write_sidecar_report,
)
from probes import LinearProbe, disposition_table
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.labels.verbal import classify_verbal
from workbench.model.capture import capture

ITEMS = [Item(str(i), f"Question number {i}: what is {i} + {i}?") for i in range(8)]
RIGHT = {"0", "1", "2", "5"}


def _checker(item: Item, response: str) -> bool:
    return item.id in RIGHT


def _probe(lm) -> LinearProbe:
    X = capture(lm, ITEMS, ["h_last"]).features["resid(-1,normed)"]
    return LinearProbe(C=1.0).fit(X, [int(it.id in RIGHT) for it in ITEMS])


def test_default_prefix_reads_as_a_hedge():
    assert classify_verbal(DEFAULT_HEDGE_PREFIX + "the capital is Lima.") == "hedge"
    assert gate_responses([" Lima."], [0.1], 0.5, "Maybe ") == (["Maybe Lima."], [True])


@pytest.mark.parametrize("read", ("prompt", "draft"))
def test_sidecar_gates_low_confidence_items_and_reports_both_tables(tiny, read, tmp_path):
    lm = tiny("llama")
    probe = _probe(lm)
    responses = [f"The answer is {2 * i}." for i in range(8)]
    result = sidecar(
        lm, ITEMS, probe, threshold=0.5, read=read, responses=responses, checker=_checker
    )
    p = np.array(result.p_correct)
    assert result.gated == tuple(p < 0.5)
    for base, gated, g in zip(result.baseline, result.responses, result.gated, strict=True):
        assert gated == (DEFAULT_HEDGE_PREFIX + base if g else base)
    assert result.verbal_baseline == ("assert",) * 8
    assert all(v == "hedge" for v, g in zip(result.verbal_gated, result.gated, strict=True) if g)
    correct = [it.id in RIGHT for it in ITEMS]
    assert result.correct == tuple(correct)
    assert result.baseline_table == disposition_table(correct, ["assert"] * 8)
    gated_right = sum(g and c for g, c in zip(result.gated, correct, strict=True))
    assert result.gated_table.hedged_right == gated_right
    assert result.gated_table.hedged_wrong == result.n_gated - gated_right
    if read == "prompt":  # the probe was fitted on these prompt-end features: it separates them
        assert result.gated_table.assertion_asymmetry < result.baseline_table.assertion_asymmetry
    paths = write_sidecar_report(tmp_path / read, result)
    out = json.loads(paths["json"].read_text())["sidecar"]
    assert out["n_gated"] == result.n_gated and out["read"] == read
    assert set(out["baseline"]) >= {"confident_right", "hedged_wrong", "assertion_asymmetry"}
    assert set(sidecar_figures(result)) == {"baseline", "gated"}


def test_draft_reading_differs_from_prompt_reading(tiny):
    lm = tiny("llama")
    probe = _probe(lm)
    responses = [f"The answer is {2 * i}." for i in range(8)]
    kwargs = {"responses": responses, "checker": _checker}
    a = sidecar(lm, ITEMS, probe, read="prompt", **kwargs)
    b = sidecar(lm, ITEMS, probe, read="draft", **kwargs)
    assert not np.allclose(a.p_correct, b.p_correct)


def test_sidecar_generates_the_baseline_when_not_given(tiny):
    lm = tiny("gpt2")
    X = capture(lm, ITEMS, ["h_last"]).features["resid(-1,normed)"]
    probe = LinearProbe().fit(X, [i % 2 for i in range(8)])
    result = sidecar(lm, ITEMS[:3], probe, threshold=1.0, checker=_checker)
    assert result.n_gated == 3 and all(r.startswith(DEFAULT_HEDGE_PREFIX) for r in result.responses)


def test_sidecar_bad_input(tiny):
    lm = tiny("llama")
    probe = _probe(lm)
    good = {"responses": ["x"] * 8, "checker": _checker}
    with pytest.raises(WorkbenchError, match=r"threshold 1.5 must be a probability"):
        sidecar(lm, ITEMS, probe, threshold=1.5, **good)
    with pytest.raises(WorkbenchError, match="read='middle'"):
        sidecar(lm, ITEMS, probe, read="middle", **good)  # type: ignore[arg-type]
    with pytest.raises(WorkbenchError, match="hedge_prefix is empty"):
        sidecar(lm, ITEMS, probe, hedge_prefix=" ", **good)
    with pytest.raises(WorkbenchError, match="7 responses for 8 items"):
        sidecar(lm, ITEMS, probe, responses=["x"] * 7, checker=_checker)
    small = LinearProbe().fit(np.eye(4)[[0, 1, 2, 3] * 2], [0, 1] * 4)
    with pytest.raises(WorkbenchError, match="fitted on 4 features but the site gives 64"):
        sidecar(lm, ITEMS, small, **good)
