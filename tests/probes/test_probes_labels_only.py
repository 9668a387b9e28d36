"""Labels-only analyses: the paper's Gemma 4 E2B disposition, the taxonomy from labels."""

import json

import numpy as np
import pytest

from probes.labels import load_labels, load_values, record_ids
from probes.labels_only import auc_from_number, diagnose_labels, disposition, summarise_values
from probes.metrics import AUCResult
from workbench.core.errors import WorkbenchError


def test_disposition_on_the_paper_gemma_file(artifacts):
    """The paper's Gemma 4 E2B step16 numbers: 53/5/38/4, asymmetry -0.009, 91% asserted."""
    spec = str(artifacts / "judge_v4_step16.json")
    ids = record_ids(spec)
    r = disposition(load_labels(f"{spec}:correct", ids=ids), load_labels(f"{spec}:verbal", ids=ids))
    t = r.table
    assert (t.confident_right, t.hedged_right, t.confident_wrong, t.hedged_wrong) == (53, 5, 38, 4)
    assert round(t.assertion_asymmetry, 3) == -0.009 and t.assertion_rate == pytest.approx(0.91)
    # independent count from the raw JSON
    items = json.loads((artifacts / "judge_v4_step16.json").read_text())["items"]
    cw = sum(1 for it in items if not it["correct"] and it["verbal"] == "assert")
    assert cw == 38
    assert r.asymmetry_lo < -0.009 < r.asymmetry_hi
    doc = r.to_json()
    assert doc["confident_wrong"] == 38 and "91% asserted" in doc["sentence"]
    assert doc["p_assert_correct"] == pytest.approx(53 / 58)
    assert doc["p_assert_wrong"] == pytest.approx(38 / 42)


def test_bootstrap_interval_matches_an_independent_loop():
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2, 120)
    a = (rng.random(120) < np.where(c == 1, 0.8, 0.5)).astype(int)
    r = disposition(c, a, n_boot=400, seed=3)
    # independent: class-stratified resampling written out as a loop
    boot_rng = np.random.default_rng(3)
    right, wrong = a[c == 1].astype(float), a[c == 0].astype(float)
    pr = boot_rng.choice(right, size=(400, right.size)).mean(1)
    pw = boot_rng.choice(wrong, size=(400, wrong.size)).mean(1)
    lo, hi = np.quantile(pw - pr, [0.025, 0.975])
    assert (r.asymmetry_lo, r.asymmetry_hi) == pytest.approx((lo, hi))
    true = a[c == 0].mean() - a[c == 1].mean()
    assert r.asymmetry_lo < true < r.asymmetry_hi < 0


def test_missing_labels_are_left_out_and_counted():
    r = disposition([1, 0, np.nan, 1], ["assert", None, "hedge", "hedge"], n_boot=0)
    assert r.n_unlabelled == 2 and r.table.n == 2


def test_hanley_mcneil_interval():
    auc, n1, n2 = 0.8, 30, 50
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = np.sqrt(
        (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n2 - 1) * (q2 - auc**2)) / (n1 * n2)
    )
    r = auc_from_number(auc, n1, n2)
    assert (r.lo, r.hi) == pytest.approx((auc - 1.959964 * se, auc + 1.959964 * se), abs=1e-6)
    with pytest.raises(WorkbenchError, match=r"AUC 1.3 is not in \[0, 1\]"):
        auc_from_number(1.3, 5, 5)


def test_diagnose_from_labels_and_numbers(artifacts):
    """Gemma 4 E2B from its labels only: rates 0.58 -> 0.285 and a chance-level fresh AUC
    read as a single output distribution (the paper's reading)."""
    ty = load_labels(f"{artifacts / 'judge_v4_step16.json'}:correct")
    fy = load_labels(f"{artifacts / 'v1_full_fresh_judged_gold.json'}:labels")
    d = diagnose_labels(ty, fy, fresh_auc=0.51)
    assert d.verdict == "single_output_distribution"
    assert d.evidence.train_pos_rate == pytest.approx(0.58)
    assert d.evidence.fresh_pos_rate == pytest.approx(55 / 193)


def test_diagnose_from_scores_and_cv_number(make_planted):
    rng = np.random.default_rng(0)
    _, ty = make_planted(rng, 100, 0.56)
    fy = np.r_[np.ones(9), np.zeros(184)]
    scores = rng.random(193)
    d = diagnose_labels(ty, fy, cv_auc=0.524, fresh_scores=scores, n_boot=200)
    assert d.verdict == "cv_fail" and "base_rate_collapse" in d.flags
    assert d.evidence.fresh_auc.n_boot == 200
    with pytest.raises(WorkbenchError, match="both as a number and as scores"):
        diagnose_labels(ty, fy, fresh_auc=0.5, fresh_scores=scores)
    with pytest.raises(WorkbenchError, match="needs the fresh AUC"):
        diagnose_labels(ty, fy)
    d = diagnose_labels(ty, fy, fresh_auc=AUCResult(0.9, 0.85, 0.95, 9, 184),
                        cv_auc=AUCResult(0.9, 0.85, 0.95, 56, 44))  # fmt: skip
    assert d.verdict == "pass"


def test_continuous_labels_are_summarised_without_threshold(artifacts):
    cov = load_values(f"{artifacts / 'judge_v4_step16.json'}:coverage")
    s = summarise_values(cov, n_boot=200)
    items = json.loads((artifacts / "judge_v4_step16.json").read_text())["items"]
    ref = np.array([it["coverage"] for it in items], dtype=float)
    assert (
        s.n == 100
        and s.mean == pytest.approx(ref.mean())
        and s.sd == pytest.approx(ref.std(ddof=1))
    )
    assert s.mean_lo < s.mean < s.mean_hi and s.quantiles[2] == pytest.approx(np.median(ref))
