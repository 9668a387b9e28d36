"""Family-wise nulls: exact enumeration with plain sklearn, and the error rate on noise."""

import itertools

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from probes import LinearProbe
from probes.batched_logistic import fit_batched
from probes.familywise import _shuffles, max_statistic_null, screen_null
from workbench.core.errors import WorkbenchError


@pytest.mark.parametrize("n, d, C", [(80, 6, 1.0), (50, 200, 0.1), (50, 200, 1.0)])
def test_batched_fits_equal_tightly_converged_sklearn(n, d, C):
    rng = np.random.default_rng(0)
    X, Xf = rng.normal(size=(n, d)), rng.normal(size=(30, d))
    y = rng.integers(0, 2, n)
    X[:, 0] += y
    Y = np.stack([y, rng.permutation(y), 1 - y])
    got = fit_batched(X, Y, C=C).decision(Xf)
    for row, labels in zip(got, Y, strict=True):
        ref = make_pipeline(StandardScaler(), LogisticRegression(C=C, tol=1e-12, max_iter=100000))
        ref.fit(X, labels)
        np.testing.assert_allclose(row, ref.decision_function(Xf), atol=1e-5)
    # and LinearProbe (lbfgs at its default tolerance) ranks the fresh items the same way
    lp = LinearProbe(C=C).fit(X, y).decision_function(Xf)
    assert roc_auc_score(Xf[:, 0] > 0, lp) == pytest.approx(
        roc_auc_score(Xf[:, 0] > 0, got[0]), abs=0.01
    )


def test_max_statistic_null_equals_exact_enumeration_with_sklearn_refits():
    """6 train and 6 fresh items (3 positives each), 3 members: all 400 relabellings,
    each member refitted with plain sklearn; the adjusted p of every member must match."""
    rng = np.random.default_rng(4)
    y, yf = np.array([1, 1, 1, 0, 0, 0]), np.array([1, 0, 1, 0, 1, 0])
    train = [rng.normal(size=(6, 2)) for _ in range(3)]
    fresh = [rng.normal(size=(6, 2)) for _ in range(3)]
    train[1][:, 0] += 1.5 * y
    fresh[1][:, 0] += 1.5 * yf

    def fresh_scores(yt):  # one sklearn refit per member and training relabelling
        out = []
        for a, b in zip(train, fresh, strict=True):
            ref = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-12, max_iter=100000))
            out.append(ref.fit(a, yt).decision_function(b))
        return out

    def stats(scores, yfr):
        return np.array([roc_auc_score(yfr, s) for s in scores])

    observed = stats(fresh_scores(y), yf)
    maxima = []
    for pos_t in itertools.combinations(range(6), 3):
        yt = np.zeros(6, int)
        yt[list(pos_t)] = 1
        scores = fresh_scores(yt)
        for pos_f in itertools.combinations(range(6), 3):
            yfr = np.zeros(6, int)
            yfr[list(pos_f)] = 1
            maxima.append(stats(scores, yfr).max())
    maxima = np.array(maxima)
    exact = [(maxima >= o - 1e-9).mean() for o in observed]
    r = screen_null(train, y, fresh, yf, n_perm=3000, seed=0)
    np.testing.assert_allclose(r.observed, observed, atol=1e-9)
    np.testing.assert_allclose(r.adjusted_p, exact, atol=0.025)
    assert r.best == int(np.argmax(observed))


def test_best_of_30_noise_layers_is_rarely_significant():
    """Pure noise: the best of 30 layers has adjusted p < 0.05 in at most 6 of 40 seeds,
    while the same best layer read against its own null alone (the bare best-of-many)
    is 'significant' in most seeds."""
    adjusted = naive = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        y, yf = np.arange(40) % 2, np.arange(40) % 2
        train = [rng.normal(size=(40, 8)) for _ in range(30)]
        fresh = [rng.normal(size=(40, 8)) for _ in range(30)]
        r = screen_null(train, y, fresh, yf, n_perm=49, seed=seed)
        adjusted += r.best_p < 0.05
        alone = screen_null([train[r.best]], y, [fresh[r.best]], yf, n_perm=49, seed=seed)
        naive += alone.best_p < 0.05
    assert adjusted <= 6, adjusted
    assert naive >= 15, naive
    print(f"best of 30 noise layers significant: adjusted {adjusted}/40, bare {naive}/40")


def test_generic_null_with_groups_keeps_class_counts_per_group():
    y = np.r_[np.ones(5), np.zeros(15), np.ones(10), np.zeros(10)]
    groups = np.r_[np.zeros(20, int), np.ones(20, int)]
    rows = _shuffles(y, groups, 100, seed=0)
    assert (rows[:, :20].sum(1) == 5).all() and (rows[:, 20:].sum(1) == 10).all()
    assert len({tuple(r) for r in rows}) > 90
    seen = []

    def stat(Y):
        seen.append(Y.shape)
        return np.c_[Y[:, :20].sum(1), np.full(len(Y), np.nan)]

    r = max_statistic_null(stat, y, groups=groups, n_perm=30, chunk=8, names=["a", "b"])
    assert seen[0] == (1, 40) and [s[0] for s in seen[1:]] == [8, 8, 8, 6]
    assert r.adjusted_p[0] == 1.0 and np.isnan(r.adjusted_p[1]) and r.best == 0
    assert r.to_json()["best_name"] == "a"


def test_screen_errors():
    rng = np.random.default_rng(0)
    y = np.arange(20) % 2
    a = [rng.normal(size=(20, 3))]
    with pytest.raises(WorkbenchError, match="1 training and 2 fresh matrices"):
        screen_null(a, y, a * 2, y)
    with pytest.raises(WorkbenchError, match="fresh labels have one class"):
        screen_null(a, y, a, np.zeros(20))
    with pytest.raises(WorkbenchError, match=r"member 0: train \(20, 3\) and fresh \(20, 4\)"):
        screen_null(a, y, [rng.normal(size=(20, 4))], y)
    with pytest.raises(WorkbenchError, match="n_perm=0"):
        screen_null(a, y, a, y, n_perm=0)


def test_depth_curve_reports_the_best_layer_with_its_adjusted_p():
    from probes.depth import depth_curve

    rng = np.random.default_rng(1)
    y, yf = np.arange(60) % 2, np.arange(60) % 2
    train = [rng.normal(size=(60, 6)) for _ in range(8)]
    fresh = [rng.normal(size=(60, 6)) for _ in range(8)]
    train[5][:, 0] += 1.5 * y
    fresh[5][:, 0] += 1.5 * yf
    curve = depth_curve(train, y, {"fresh": (fresh, yf)}, C=1.0, folds=3, n_boot=0, n_null=99)
    layer, auc, p = curve.best_fresh("fresh")
    assert layer == 5 and p < 0.05 and p == min(curve.nulls["fresh"].adjusted_p)
    null = curve.nulls["fresh"]
    np.testing.assert_allclose(null.observed, [r.auc for r in curve.transfer["fresh"]], atol=0.01)
    assert sorted(null.adjusted_p)[1] > 0.05  # no other layer survives the correction
    assert curve.to_json()["familywise"]["fresh"]["best_name"] == "L5"
    assert depth_curve(train, y, {"fresh": (fresh, yf)}, C=1.0, folds=3, n_boot=0).nulls == {}
