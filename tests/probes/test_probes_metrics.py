"""AUC, its interval and measured chance, checked against independent computations."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from probes import AUCResult, auc_score, auc_with_ci, label_permutation_null
from workbench.core.errors import WorkbenchError


@pytest.mark.parametrize("seed", range(4))
def test_auc_matches_sklearn_including_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 87)
    s = np.round(rng.normal(size=87) + 0.5 * y, 1)  # rounding makes ties
    assert auc_score(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert auc_with_ci(y, s, n_boot=50).auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_interval_brackets_the_estimate_and_keeps_class_counts():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(9), np.zeros(184)]
    s = rng.normal(size=y.size)
    r = auc_with_ci(y, s, n_boot=500, seed=3)
    assert isinstance(r, AUCResult)
    assert r.lo <= r.auc <= r.hi and (r.n_pos, r.n_neg) == (9, 184)
    assert r.hi - r.lo > 0.2  # nine positives: a wide interval
    assert auc_with_ci(y, s, n_boot=500, seed=3) == r  # seeded, reproducible
    none = auc_with_ci(y, s, n_boot=0)
    assert none.lo == none.auc == none.hi
    assert r.to_json()["n_pos"] == 9


def test_bootstrap_interval_agrees_with_a_naive_loop():
    rng = np.random.default_rng(5)
    y = np.r_[np.ones(30), np.zeros(50)]
    s = rng.normal(size=80) + 0.8 * y
    r = auc_with_ci(y, s, n_boot=2000, seed=0)
    pos, neg = s[y == 1], s[y == 0]
    boots = []
    for _ in range(2000):  # pairwise Mann-Whitney, no ranks involved
        bp, bn = rng.choice(pos, 30), rng.choice(neg, 50)
        diff = bp[:, None] - bn[None, :]
        boots.append((diff > 0).mean() + 0.5 * (diff == 0).mean())
    lo, hi = np.quantile(boots, [0.025, 0.975])
    assert r.lo == pytest.approx(lo, abs=0.03) and r.hi == pytest.approx(hi, abs=0.03)


def test_permutation_null_measures_chance():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(40), np.zeros(60)]
    noise = label_permutation_null(y, rng.normal(size=100), n_perm=2000)
    assert noise.null_mean == pytest.approx(0.5, abs=0.01)
    assert noise.null_lo < 0.5 < noise.null_hi
    perfect = label_permutation_null(y, y + 0.1 * rng.normal(size=100), n_perm=500)
    assert perfect.observed == 1.0 and perfect.p_above == pytest.approx(1 / 501)
    flipped = label_permutation_null(y, -y, n_perm=500)
    assert flipped.p_below == pytest.approx(1 / 501)
    # the null spread is wider for a tiny class: chance measured, not assumed
    tiny = label_permutation_null(
        np.r_[np.ones(5), np.zeros(95)], rng.normal(size=100), n_perm=2000
    )
    assert tiny.null_hi - tiny.null_lo > noise.null_hi - noise.null_lo


def test_errors_name_the_problem():
    with pytest.raises(WorkbenchError, match=r"one class \(all 1, 3 items\)"):
        auc_score([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(WorkbenchError, match="same length"):
        auc_score([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(WorkbenchError, match="NaN"):
        auc_score([0, 1], [0.1, np.nan])
