"""The confound step on planted truths, checked against brute-force computations."""

import itertools
import json

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from probes import falsify
from probes.confound_inputs import Confound
from probes.erasure import decodability, leace_erase
from probes.incremental import incremental_validity
from probes.stratified import strata_of, stratified_auc
from workbench.core.errors import WorkbenchError

FAST = {"n_boot": 200, "n_perm": 200, "n_control": 0}
SEEDS = range(5)


def world(seed, kind, n=300):
    """Train = first half, fresh = second half; z is the confound (say, length)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    X = rng.normal(size=(n, 20))
    if kind == "confound drives the label":  # the features encode z, the label is z
        y = (z + 0.3 * rng.normal(size=n) > 0).astype(int)
        X[:, 0] += 2 * z
    elif kind == "beyond the confound":  # the label is z and u; the features carry both
        u = rng.normal(size=n)
        y = (z + u > 0).astype(int)
        X[:, 0] += 2 * z
        X[:, 1] += 2 * u
    elif kind == "noisy correlate":  # the features encode only the label; z is a noisy copy
        y = rng.integers(0, 2, n)
        X[:, 0] += 1.5 * y
        z = y + 0.5 * rng.normal(size=n)
    elif kind == "unrelated":  # z unrelated to both; signal in both sets
        y = rng.integers(0, 2, n)
        X[:, 0] += 1.5 * y
    elif kind == "unrelated, no transfer":  # z unrelated; the signal exists in train only
        y = rng.integers(0, 2, n)
        X[: n // 2, 0] += 1.5 * y[: n // 2]
    else:
        raise AssertionError(kind)
    h = n // 2
    return (X[:h], y[:h], X[h:], y[h:]), (z[:h], z[h:])


def run(seed, kind, erase=False, **kw):
    (X, y, Xf, yf), (zt, zf) = world(seed, kind)
    return falsify(X, y, fresh_X=Xf, fresh_y=yf, confounds={"length": (zt, zf)},
                   erase_confounds=erase, seed=seed, **FAST, **kw)  # fmt: skip


@pytest.mark.parametrize(
    "kind, truth",
    [("confound drives the label", "explained by length"),
     ("beyond the confound", "survives"),
     ("noisy correlate", "survives"),
     ("unrelated", "survives")],
)  # fmt: skip
def test_planted_truth(kind, truth):
    """Statistical decisions at 0.05: the truth must come out in at least 4 of 5 seeds."""
    verdicts = [run(seed, kind).step("confounds").verdict for seed in SEEDS]
    assert sum(v == truth for v in verdicts) >= 4, verdicts


def test_explained_by_fails_the_overall_verdict():
    r = run(0, "confound drives the label")
    assert r.step("fresh").verdict == "pass"  # the probe transfers ...
    assert r.step("confounds").verdict == "explained by length"  # ... by reading length
    assert r.verdict == "fail"
    s = r.step("confounds").summary
    assert s.startswith("Explained by length: on fresh, length alone reaches AUC")
    inc = r.confounds.result("length").incremental
    assert inc.delta_lo <= 0 or inc.p_value >= 0.05


def test_noisy_correlate_survives_and_erasure_disagreement_is_explained():
    r = run(0, "noisy correlate", erase=True)
    step = r.confounds
    assert step.verdict == "survives"
    er = step.result("length").erasure
    assert er.fresh.auc < step.fresh_auc - 0.05  # erasure removed label information too
    assert er.r2_after < 1e-8 < er.r2_before
    assert len(step.notes) == 1 and "evidence, not a veto" in step.notes[0]
    assert "collinear" in r.step("confounds").summary


def test_unrelated_confound_leaves_step_2_unchanged():
    for kind in ("unrelated", "unrelated, no transfer"):
        (X, y, Xf, yf), _ = world(1, kind)
        plain = falsify(X, y, fresh_X=Xf, fresh_y=yf, seed=1, **FAST)
        with_c = run(1, kind)
        assert with_c.step("fresh").verdict == plain.step("fresh").verdict
        assert with_c.verdict == plain.verdict, (kind, with_c.step("confounds").summary)
    assert plain.step("fresh").verdict == "fail"  # the second world does not transfer


def test_erasure_leaves_the_confound_at_chance_in_sample():
    """LEACE's guarantee, checked with independent linear read-outs on the erased train set."""
    rng = np.random.default_rng(0)
    n, d = 120, 200  # wider than it is long, as h_last is
    fam = rng.integers(0, 2, n)  # a categorical confound
    length = rng.normal(size=n)  # a numeric one
    X = rng.normal(size=(n, d))
    X[:, :5] += 1.5 * fam[:, None]
    X[:, 5:10] += length[:, None]
    Z = np.c_[np.eye(2)[fam], length]
    Xe, _ = leace_erase(X, X[:5], Z)
    # class-conditional means of the family are equal after erasure (before: far apart)
    gap = lambda A: np.abs(A[fam == 1].mean(0) - A[fam == 0].mean(0)).max()  # noqa: E731
    assert gap(X) > 1.0 and gap(Xe) < 1e-8
    # an L2 logistic probe fitted in sample does no better than the base rate
    base = log_loss(fam, np.full(n, fam.mean()))
    before = LogisticRegression(max_iter=5000).fit(X, fam)
    after = LogisticRegression(max_iter=5000).fit(Xe, fam)
    assert log_loss(fam, before.predict_proba(X)[:, 1]) < 0.2 * base
    assert log_loss(fam, after.predict_proba(Xe)[:, 1]) == pytest.approx(base, rel=1e-4)
    # least squares on the erased features explains none of the length
    assert LinearRegression().fit(X, length).score(X, length) > 0.99
    assert LinearRegression().fit(Xe, length).score(Xe, length) < 1e-6
    assert decodability(Xe, Z) < 1e-8


def test_stratified_auc_matches_brute_force_pairs():
    rng = np.random.default_rng(2)
    y, s = rng.integers(0, 2, 90), rng.normal(size=90)
    strata = strata_of(rng.normal(size=90), "num", n_bins=4)
    strata[:3] = 9  # a tiny stratum, likely one class
    r = stratified_auc(y, s, strata, n_perm=0)
    good = total = 0.0
    for g in np.unique(strata):
        idx = np.flatnonzero(strata == g)
        for i, j in itertools.product(idx, idx):
            if y[i] == 1 and y[j] == 0:
                total += 1
                good += 1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0
    assert r.auc == pytest.approx(good / total) and r.n_pairs == total
    pure = [g for g in np.unique(strata) if np.unique(y[strata == g]).size == 1]
    assert r.n_dropped_strata == len(pure)
    assert r.n_dropped_items == sum(int((strata == g).sum()) for g in pure)


def test_within_strata_null_matches_exact_enumeration():
    """Two strata of four items, two positives each: 36 equally likely relabellings."""
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    s = np.array([0.9, 0.2, 0.4, 0.1, 0.8, 0.7, 0.3, 0.1])
    strata = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    obs = stratified_auc(y, s, strata, n_perm=0).auc
    null = []
    for a, b in itertools.product(itertools.combinations(range(4), 2), repeat=2):
        yy = np.zeros(8, int)
        yy[list(a)] = 1
        yy[[4 + k for k in b]] = 1
        null.append(stratified_auc(yy, s, strata, n_perm=0).auc)
    exact = np.mean(np.array(null) >= obs - 1e-12)
    r = stratified_auc(y, s, strata, n_perm=20000, seed=1)
    assert r.p_value == pytest.approx(exact, abs=0.01)


def test_incremental_delta_is_the_difference_of_two_sklearn_fits():
    rng = np.random.default_rng(3)
    z, u = rng.normal(size=(400, 1)), rng.normal(size=400)
    y = (z[:, 0] + u + rng.normal(size=400) > 0).astype(int)
    tr, fr = slice(0, 200), slice(200, None)
    r = incremental_validity(z[tr], y[tr], u[tr], z[fr], y[fr], u[fr], n_boot=300)
    zs = lambda v: ((v - u[tr].mean()) / u[tr].std())[:, None]  # noqa: E731
    a = LogisticRegression(C=1e4, max_iter=5000).fit(z[tr], y[tr])
    b = LogisticRegression(C=1e4, max_iter=5000).fit(np.c_[z[tr], zs(u[tr])], y[tr])
    auc_a = roc_auc_score(y[fr], a.decision_function(z[fr]))
    auc_b = roc_auc_score(y[fr], b.decision_function(np.c_[z[fr], zs(u[fr])]))
    assert (r.auc_confounds, r.auc_combined) == pytest.approx((auc_a, auc_b), abs=1e-6)
    assert r.delta_lo < r.delta < r.delta_hi and r.delta_lo > 0 and r.score_coef > 0


def test_likelihood_ratio_p_is_calibrated_under_the_null():
    """A score independent of the label given the confound: p < 0.05 in about 5% of seeds."""
    hits = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(200, 1))
        y = (z[:, 0] + rng.normal(size=200) > 0).astype(int)
        s = rng.normal(size=200)
        r = incremental_validity(z[:100], y[:100], s[:100], z[100:], y[100:], s[100:], n_boot=1)
        hits += r.p_value < 0.05
    assert hits <= 6, hits


def test_degenerate_confound_and_a_joint_result():
    (X, y, Xf, yf), (zt, zf) = world(0, "beyond the confound")
    fam_t, fam_f = (zt > 0).astype(int), (zf > 0).astype(int)
    r = falsify(X, y, fresh_X=Xf, fresh_y=yf, erase_confounds=False, **FAST,
                confounds={"length": (zt, zf), "family": Confound(fam_t, fam_f, "cat")})  # fmt: skip
    names = [res.name for res in r.confounds.results]
    assert names == ["length", "family", "length+family"]
    assert r.confounds.result("family").kind == "cat"
    assert r.confounds.result("length+family").stratified.n_strata > 2
    d = falsify(X, y, fresh_X=Xf, fresh_y=yf, erase_confounds=False, **FAST,
                confounds={"the label": Confound(y, yf, "cat"), "length": (zt, zf)})  # fmt: skip
    assert d.step("confounds").verdict == "degenerate confound"
    assert d.verdict == "incomplete"  # not a pass, not a fail
    assert "separates the labels perfectly" in d.step("confounds").summary
    assert d.confounds.result("length").verdict == "survives"  # the others are still tested


def test_json_and_markdown_of_the_step():
    r = run(0, "beyond the confound", erase=True)
    doc = json.loads(json.dumps(r.to_json()))
    c = doc["confounds"]
    assert c["verdict"] == "survives" and doc["steps"][5]["name"] == "confounds"
    res = c["results"]["length"]
    assert set(res) == {
        "name",
        "kind",
        "verdict",
        "incremental",
        "stratified",
        "erasure",
        "sentence",
    }
    assert set(res["erasure"]) == {"cv", "fresh", "fresh_p", "holds", "r2_before", "r2_after"}
    assert doc["config"]["confounds"] == {"length": "num"}
    md = r.to_markdown()
    assert "## Confounds: survives" in md and "| 6. Beyond named confounds | survives |" in md


def test_unlabelled_items_are_dropped_from_the_confounds_too():
    (X, y, Xf, yf), (zt, zf) = world(0, "confound drives the label")
    y = y.astype(float)
    y[:5] = np.nan
    zt = zt.copy()
    r = falsify(X, y, fresh_X=Xf, fresh_y=yf, confounds={"length": (zt, zf)},
                erase_confounds=False, **FAST)  # fmt: skip
    assert r.step("confounds").verdict == "explained by length"


BAD = {
    "NaN": ({"length": ([np.nan] + [1.0] * 149, [1.0] * 150)},
            r"confound 'length' has NaN or no value for 1 of 150 train items \(first: item 0\)"),
    "missing value": ({"fam": (["a"] * 149 + [None], ["a"] * 150)},
                      r"confound 'fam' has NaN or no value for 1 of 150 train items \(first: item 149\)"),
    "constant": ({"length": ([3.0] * 150, list(range(150)))},
                 r"confound 'length' is constant on the training set \(all 3.0\)"),
    "fresh without train": ({"length": (None, [1.0] * 150)},
                            "confound 'length' has fresh values but no train values"),
    "train without fresh": ({"length": ([1.0, 2.0] * 75, None)},
                            "confound 'length' has train values but no fresh values"),
    "unknown type": ({"length": ([1.0, 2.0] * 75, [1.0] * 150, "ordinal")},
                     "confound 'length' has unknown type 'ordinal': use 'cat'"),
    "wrong length": ({"length": ([1.0, 2.0] * 70, [1.0] * 150)},
                     "confound 'length' has 140 train values for 150 train items"),
    "strings as num": ({"fam": (["a", "b"] * 75, ["a"] * 150, "num")},
                       "confound 'fam' is num but holds 'a': mark it categorical"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_confounds_are_one_line_errors(case):
    (X, y, Xf, yf), _ = world(0, "unrelated")
    confounds, message = BAD[case]
    with pytest.raises(WorkbenchError, match=message) as e:
        falsify(X, y, fresh_X=Xf, fresh_y=yf, confounds=confounds, **FAST)
    assert "\n" not in str(e.value)


def test_confounds_need_the_fresh_set():
    (X, y, _, _), (zt, _) = world(0, "unrelated")
    with pytest.raises(WorkbenchError, match=r"confounds \(length\) need the fresh set"):
        falsify(X, y, confounds={"length": (zt, zt)}, **FAST)
