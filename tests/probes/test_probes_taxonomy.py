"""The taxonomy on synthetic data where the truth is planted, over several seeds.

Nothing here uses the paper's numbers: each outcome is built from its
definition (a signal that transfers, one that exists only in training, a
base-rate collapse, a confound that flips, no signal at all).
"""

import numpy as np
import pytest

from probes import AUCResult, diagnose, falsify
from probes.taxonomy import CLIFF_RATE_RATIO, VERDICTS
from workbench.core.errors import WorkbenchError

FAST = {"n_boot": 300, "n_perm": 300, "n_control": 0}


def scenario(make, name, seed):
    rng = np.random.default_rng(seed)
    if name == "pass":  # a linear signal present in both sets
        return make(rng, 200, 0.5), make(rng, 200, 0.5)
    if name == "single_output_distribution":  # signal in train only, base rate comparable
        return make(rng, 200, 0.5), make(rng, 200, 0.4, signal=0.0)
    if name == "capability_cliff":  # signal in train; on fresh the positives nearly vanish
        return make(rng, 200, 0.5), make(rng, 200, 0.04, signal=0.0)
    if name == "below_chance":  # the probe reads a confound whose sign flips on fresh
        return make(rng, 200, 0.5, signal=0.0, confound=1.0), make(
            rng, 200, 0.5, signal=0.0, confound=-1.0
        )
    if name == "weak_transfer":  # the fresh signal is real but faint (AUC near 0.58)
        return make(rng, 200, 0.5), make(rng, 600, 0.5, signal=0.35)
    if name == "cv_fail":  # nothing to read anywhere
        return make(rng, 200, 0.5, signal=0.0), make(rng, 200, 0.5, signal=0.0)
    raise AssertionError(name)


SEEDS = range(10)


@pytest.mark.parametrize(
    "truth",
    [
        "pass",
        "single_output_distribution",
        "capability_cliff",
        "below_chance",
        "cv_fail",
        "weak_transfer",
    ],
)
def test_planted_truth_is_recovered(make_planted, truth):
    """Each verdict is a statistical decision (95% intervals), so a few seeds in a
    hundred may land elsewhere: the truth must be recovered in at least 8 of 10."""
    hits, flag_hits, misses = 0, 0, []
    for seed in SEEDS:
        (X, y), (Xf, yf) = scenario(make_planted, truth, seed)
        report = falsify(X, y, fresh_X=Xf, fresh_y=yf, seed=seed, **FAST)
        d = report.diagnosis
        assert d.verdict in VERDICTS
        if d.verdict != truth:
            misses.append((seed, d.verdict, d.explanation))
            continue
        hits += 1
        if truth == "pass":
            assert report.step("cv").verdict == "pass"
            flag_hits += "degenerate_asymmetry" not in d.flags
        if truth == "capability_cliff":
            assert "base_rate_collapse" in d.flags
            assert d.evidence.pos_rate_ratio < CLIFF_RATE_RATIO
            if "degenerate_asymmetry" in d.flags:
                flag_hits += 1
                assert "Degenerate asymmetry" in d.explanation and "8 correct" in d.explanation
        if truth == "below_chance":
            assert "below_chance" in d.flags and d.evidence.fresh_auc.hi < 0.5
            flag_hits += 1
        if truth == "single_output_distribution":
            assert report.step("cv").verdict == "pass" and report.step("fresh").verdict == "fail"
            flag_hits += "base_rate_collapse" not in d.flags
        if truth == "cv_fail":
            flag_hits += "cv_not_passed" in d.flags
        if truth == "weak_transfer":
            a = d.evidence.fresh_auc
            assert a.lo > 0.5 and a.auc < 0.63 and report.step("fresh").verdict == "fail"
            flag_hits += not d.flags
    assert hits >= 8, misses
    assert flag_hits >= 8, (hits, flag_hits)


def test_halved_base_rate_is_still_comparable(make_planted):
    """0.58 -> 0.285 (a halving) is not a cliff: the class stays well populated."""
    rng = np.random.default_rng(7)
    X, y = make_planted(rng, 200, 0.58)
    Xf, yf = make_planted(rng, 193, 0.285, signal=0.0)
    d = falsify(X, y, fresh_X=Xf, fresh_y=yf, **FAST).diagnosis
    assert d.verdict == "single_output_distribution"


def test_genuine_signal_in_a_tiny_class_is_not_degenerate(make_planted):
    """9 positives in 193, as in the paper's fresh set, but a strong planted signal:
    the asymmetry beats shuffled labels, so it is evidence, not an imbalance artifact."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        X, y = make_planted(rng, 200, 0.5, signal=3.0)
        Xf, yf = make_planted(rng, 193, 9 / 193, signal=3.0)
        d = falsify(X, y, fresh_X=Xf, fresh_y=yf, seed=seed, **FAST).diagnosis
        assert d.verdict == "pass" and "base_rate_collapse" in d.flags
        assert "degenerate_asymmetry" not in d.flags, d.explanation
        assert d.evidence.asymmetry.p_value <= 0.05


def test_undefined_asymmetry_is_flagged_and_explained():
    from probes.disposition import AsymmetryResult

    none = AsymmetryResult(None, None, None, None, 20, 80, null_bar_rate=0.0, n_perm=100)
    d = diagnose(
        train_y=[0, 1] * 50,
        fresh_y=[1] * 20 + [0] * 80,
        cv_auc=AUCResult(0.8, 0.7, 0.9, 50, 50),
        fresh_auc=AUCResult(0.52, 0.4, 0.64, 20, 80),
        asymmetry=none,
    )
    assert d.verdict == "single_output_distribution"
    assert d.flags == ("asymmetry_undefined",)
    assert "asymmetry is undefined" in d.explanation


def test_negative_class_collapse_is_a_cliff_too():
    ev = diagnose(
        train_y=np.r_[np.ones(50), np.zeros(50)],
        fresh_y=np.r_[np.ones(190), np.zeros(6)],
        cv_auc=AUCResult(0.9, 0.85, 0.95, 50, 50),
        fresh_auc=AUCResult(0.55, 0.3, 0.8, 190, 6),
    )
    assert ev.verdict == "capability_cliff" and ev.evidence.neg_rate_ratio < CLIFF_RATE_RATIO


def test_evidence_is_reported():
    d = diagnose(
        train_y=[1] * 56 + [0] * 44,
        fresh_y=[1] * 9 + [0] * 184,
        cv_auc=AUCResult(0.8, 0.7, 0.9, 56, 44),
        fresh_auc=AUCResult(0.52, 0.33, 0.71, 9, 184),
    )
    ev = d.to_json()["evidence"]
    assert (ev["train_n_pos"], ev["fresh_n_pos"], ev["fresh_n_neg"]) == (56, 9, 184)
    assert ev["pos_rate_ratio"] == pytest.approx((9 / 193) / 0.56)
    assert ev["fresh_auc"]["lo"] == 0.33
    assert "0.560 (56/100)" in d.explanation and "0.047 (9/193)" in d.explanation


def test_single_class_is_refused():
    with pytest.raises(WorkbenchError, match=r"fresh labels have one class \(all 0"):
        diagnose(
            train_y=[0, 1],
            fresh_y=[0, 0],
            cv_auc=None,
            fresh_auc=AUCResult(0.5, 0.5, 0.5, 1, 1),
        )


def test_cv_at_chance_comes_before_a_base_rate_collapse():
    """The paper's SmolLM shape: CV at chance and a collapsed fresh rate. No signal in
    training is the diagnosis; the collapse is a flag and a note, never the verdict."""
    d = diagnose(
        train_y=[1] * 56 + [0] * 44,
        fresh_y=[1] * 9 + [0] * 184,
        cv_auc=AUCResult(0.524, 0.413, 0.643, 56, 44),
        fresh_auc=AUCResult(0.519, 0.33, 0.71, 9, 184),
    )
    assert d.verdict == "cv_fail"
    assert d.flags == ("base_rate_collapse", "cv_not_passed")
    assert "capability cliff on top" in d.explanation
    # the same rates with a CV handle are a cliff
    d2 = diagnose(
        train_y=[1] * 56 + [0] * 44,
        fresh_y=[1] * 9 + [0] * 184,
        cv_auc=AUCResult(0.80, 0.70, 0.88, 56, 44),
        fresh_auc=AUCResult(0.519, 0.33, 0.71, 9, 184),
    )
    assert d2.verdict == "capability_cliff"


def test_no_cv_given_is_not_a_cv_failure():
    d = diagnose(
        train_y=[1] * 58 + [0] * 42,
        fresh_y=[1] * 55 + [0] * 138,
        cv_auc=None,
        fresh_auc=AUCResult(0.51, 0.41, 0.60, 55, 138),
    )
    assert d.verdict == "single_output_distribution" and "no CV AUC was given" in d.explanation
