"""Disposition table, best balanced asymmetry and the gate, against brute force."""

import json

import numpy as np
import pytest

from probes import (
    GATE_MAX_ASYMMETRY,
    GATE_MIN_AUC,
    best_balanced_asymmetry,
    disposition_table,
    gate,
)
from workbench.core.errors import WorkbenchError


def brute_force_asymmetry(y, p):
    """The definition, written out with plain Python loops."""
    best = None
    for k in range(5, 96):
        t = k / 100
        right = [pi >= t for yi, pi in zip(y, p, strict=True) if yi == 1]
        wrong = [pi >= t for yi, pi in zip(y, p, strict=True) if yi == 0]
        pc, pw = sum(right) / len(right), sum(wrong) / len(wrong)
        if pc >= 0.70 - 1e-12 and (best is None or pw - pc < best[0] - 1e-12):
            best = (pw - pc, t)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_best_balanced_asymmetry_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_pos = [9, 20, 50, 90, 10, 40][seed]
    y = np.r_[np.ones(n_pos), np.zeros(100)].astype(int)
    p = 1 / (1 + np.exp(-(rng.normal(size=y.size) + 0.7 * y)))
    r = best_balanced_asymmetry(y, p)
    value, threshold = brute_force_asymmetry(y, p)
    assert r.value == pytest.approx(value) and r.threshold == pytest.approx(threshold)
    assert r.p_assert_wrong - r.p_assert_correct == pytest.approx(value)
    assert r.p_assert_correct >= 0.70


def test_no_qualifying_threshold_gives_none():
    r = best_balanced_asymmetry([1, 1, 0, 0], [0.01, 0.02, 0.5, 0.6])
    assert r.value is None and r.threshold is None
    assert gate(0.9, r).passed is False


def test_asymmetry_null_flags_tiny_classes():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=193)
    tiny = best_balanced_asymmetry(np.r_[np.ones(9), np.zeros(184)], p, n_perm=1000)
    balanced = best_balanced_asymmetry(np.r_[np.ones(96), np.zeros(97)], p, n_perm=1000)
    assert tiny.null_bar_rate > 0.2 > balanced.null_bar_rate
    assert 0 < tiny.p_value <= 1


def test_disposition_table_counts_and_rates():
    t = disposition_table(
        [1, 1, 1, 0, 0, 0, 0], ["assert", "assert", "hedge", "assert", "hedge", "hedge", "hedge"]
    )
    assert (t.confident_right, t.hedged_right, t.confident_wrong, t.hedged_wrong) == (2, 1, 1, 3)
    assert t.accuracy == pytest.approx(3 / 7)
    assert t.assertion_rate == pytest.approx(3 / 7)
    assert t.hallucination_rate == pytest.approx(1 / 4)
    assert t.over_hedging_rate == pytest.approx(1 / 3)
    assert t.assertion_asymmetry == pytest.approx(1 / 4 - 2 / 3)
    # bools and ints, 1 = assert, give the same table
    assert disposition_table([True, True, True, 0, 0, 0, 0], [1, 1, 0, 1, 0, 0, 0]) == t
    assert json.loads(json.dumps(t.to_json()))["hedged_wrong"] == 3


def test_zero_denominators_are_none_not_zero():
    t = disposition_table([1, 1], ["assert", "hedge"])
    assert t.hallucination_rate is None and t.assertion_asymmetry is None
    assert t.over_hedging_rate == 0.5
    assert disposition_table([0, 0], [1, 1]).over_hedging_rate is None


def test_disposition_table_on_the_gemma_judge_file(artifacts):
    items = json.loads((artifacts / "judge_v4_step16.json").read_text())["items"]
    t = disposition_table([it["correct"] for it in items], [it["verbal"] for it in items])
    cr = sum(1 for it in items if it["correct"] and it["verbal"] == "assert")
    cw = sum(1 for it in items if not it["correct"] and it["verbal"] == "assert")
    n_right = sum(1 for it in items if it["correct"])
    assert (t.confident_right, t.confident_wrong) == (cr, cw)
    assert t.assertion_asymmetry == pytest.approx(cw / (100 - n_right) - cr / n_right)


def test_bad_verbal_is_a_clear_error():
    with pytest.raises(WorkbenchError, match="'maybe' at item 1"):
        disposition_table([1, 0], ["assert", "maybe"])
    with pytest.raises(WorkbenchError, match="correct has 2 items but verbal has 3"):
        disposition_table([1, 0], [1, 0, 1])


def test_gate_constants_and_edges():
    assert (GATE_MIN_AUC, GATE_MAX_ASYMMETRY) == (0.63, -0.15)
    assert gate(0.63, -0.15).passed
    g = gate(0.62999, -0.5)
    assert not g.passed and not g.auc_ok and g.asymmetry_ok
    assert not gate(0.9, -0.149).passed
    assert not gate(0.9, None).asymmetry_ok
