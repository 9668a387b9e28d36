"""The probes are scikit-learn estimators, and compose sklearn rather than rewrite it."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from probes import LinearProbe, MassMeanProbe, MLPProbe
from workbench.core.errors import WorkbenchError


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    X = rng.normal(size=(120, 6)) + np.outer(y, [1.0, 0.5, 0, 0, 0, 0])
    return X, y


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("probe", [LinearProbe(C=0.5), MLPProbe(max_iter=200), MassMeanProbe()])
def test_sklearn_protocol(probe, data):
    X, y = data
    fresh = clone(probe)
    assert fresh.get_params() == probe.get_params()
    assert fresh.fit(X, y) is fresh
    assert not hasattr(clone(fresh), "classes_")  # clone drops fitted state
    p = fresh.predict_proba(X)
    assert p.shape == (120, 2) and np.allclose(p.sum(axis=1), 1)
    d = fresh.decision_function(X)
    assert d.shape == (120,)
    # decision_function and predict_proba rank items the same way
    assert roc_auc_score(y, d) == pytest.approx(roc_auc_score(y, p[:, 1]))
    assert set(fresh.predict(X)) <= {0, 1}


def test_params_are_keyword_only():
    with pytest.raises(TypeError):
        LinearProbe(1.0)  # type: ignore[misc]


def test_linear_probe_is_the_composed_sklearn_pipeline(data):
    X, y = data
    ours = LinearProbe(C=0.3, max_iter=500).fit(X, y)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=500)).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X))
    np.testing.assert_allclose(ours.coef_, ref[-1].coef_[0])


def test_mass_mean_direction_is_difference_of_class_means(data):
    X, y = data
    probe = MassMeanProbe().fit(X, y)
    np.testing.assert_allclose(probe.direction_, X[y == 1].mean(0) - X[y == 0].mean(0))
    proj = (X - (X[y == 1].mean(0) + X[y == 0].mean(0)) / 2) @ probe.direction_
    np.testing.assert_allclose(probe.project(X), proj)
    # calibrated proba keeps the projection's ranking
    assert roc_auc_score(y, probe.predict_proba(X)[:, 1]) == pytest.approx(roc_auc_score(y, proj))


def test_mlp_reads_a_non_linear_handle_the_linear_probe_misses():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)  # XOR: no linear handle
    tr, te = slice(0, 300), slice(300, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPProbe(hidden=(16,), alpha=1e-3, max_iter=2000).fit(X[tr], y[tr])
    lin = LinearProbe().fit(X[tr], y[tr])
    assert roc_auc_score(y[te], mlp.predict_proba(X[te])[:, 1]) > 0.9
    assert roc_auc_score(y[te], lin.predict_proba(X[te])[:, 1]) < 0.65


def test_grid_search_tunes_C(data):
    X, y = data
    grid = GridSearchCV(LinearProbe(), {"C": [0.01, 1.0]}, cv=3, scoring="roc_auc").fit(X, y)
    assert grid.best_params_["C"] in (0.01, 1.0)


MLP_XFAIL = {
    # the one check scikit-learn's own MLPClassifier is exempted from, for the same reason
    "check_sample_weight_equivalence_on_dense_data": "adam's minibatches differ between "
    "repeated items and integer weights, as in sklearn's MLPClassifier",
}


@pytest.mark.parametrize(
    "probe, xfail",
    [(LinearProbe(), None), (MassMeanProbe(), None), (MLPProbe(max_iter=50), MLP_XFAIL)],
)
def test_check_estimator(probe, xfail):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(probe, on_fail=None, expected_failed_checks=xfail)
    failed = [r for r in results if r["status"] == "failed"]
    assert not failed, [(r["check_name"], str(r["exception"])[:200]) for r in failed]
    ran = {r["check_name"] for r in results if r["status"] == "passed"}
    # the sample-weight checks ran (they are skipped for a fit without sample_weight)
    assert {"check_sample_weights_shape", "check_all_zero_sample_weights_error"} <= ran
    if xfail is None:
        assert "check_sample_weight_equivalence_on_dense_data" in ran


def _weighted_data(seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 80)
    X = rng.normal(size=(80, 4)) + np.outer(y, [1.0, 0.5, 0, 0])
    w = rng.integers(0, 4, 80).astype(float)
    return X, y, w


@pytest.mark.parametrize("probe", [LinearProbe(C=0.5), MassMeanProbe()])
def test_integer_weights_equal_repeated_items(probe):
    """An independent check of sample_weight: weight k is k copies of the item."""
    X, y, w = _weighted_data()
    rep = np.repeat(np.arange(80), w.astype(int))
    weighted = clone(probe).fit(X, y, sample_weight=w)
    repeated = clone(probe).fit(X[rep], y[rep])
    np.testing.assert_allclose(
        weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-4, atol=1e-5
    )
    unweighted = clone(probe).fit(X, y)
    assert not np.allclose(weighted.predict_proba(X), unweighted.predict_proba(X), atol=1e-3)


def test_weighted_mass_mean_uses_weighted_class_means():
    X, y, w = _weighted_data(1)
    probe = MassMeanProbe().fit(X, y, sample_weight=w)
    mu = [(X[y == c] * w[y == c, None]).sum(0) / w[y == c].sum() for c in (0, 1)]
    np.testing.assert_allclose(probe.direction_, mu[1] - mu[0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("probe", [LinearProbe(), MLPProbe(max_iter=100), MassMeanProbe()])
def test_predict_log_proba_and_cross_val_predict(probe, data):
    X, y = data
    fitted = clone(probe).fit(X, y)
    np.testing.assert_allclose(
        np.exp(fitted.predict_log_proba(X)), fitted.predict_proba(X), rtol=1e-6
    )
    from sklearn.model_selection import cross_val_predict

    lp = cross_val_predict(clone(probe), X, y, cv=3, method="predict_log_proba")
    assert lp.shape == (len(y), 2) and np.all(lp <= 0)
    assert roc_auc_score(y, lp[:, 1]) > 0.7


def test_weighted_grid_search(data):
    X, y = data
    w = np.where(y == 1, 2.0, 1.0)
    grid = GridSearchCV(LinearProbe(), {"C": [0.01, 1.0]}, cv=3, scoring="roc_auc")
    grid.fit(X, y, sample_weight=w)
    ref = LinearProbe(C=grid.best_params_["C"]).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(grid.best_estimator_.predict_proba(X), ref.predict_proba(X))


def test_mass_mean_keeps_float32():
    X, y, _ = _weighted_data(2)
    X32 = X.astype(np.float32)
    probe = MassMeanProbe().fit(X32, y)
    assert probe.direction_.dtype == np.float32 and probe.midpoint_.dtype == np.float32
    assert probe.project(X32).dtype == np.float32
    assert MassMeanProbe().fit(X, y).direction_.dtype == np.float64
    ref = MassMeanProbe().fit(X, y)
    np.testing.assert_allclose(probe.direction_, ref.direction_, rtol=1e-5)


def test_zero_weight_for_a_class_is_a_clear_error():
    X, y, _ = _weighted_data(3)
    with pytest.raises(WorkbenchError, match="class 1 all have sample_weight 0"):
        MassMeanProbe().fit(X, y, sample_weight=np.where(y == 1, 0.0, 1.0))


def test_one_class_is_a_clear_error(data):
    X, _ = data
    with pytest.raises(WorkbenchError, match="one class"):
        LinearProbe().fit(X, np.zeros(len(X)))
