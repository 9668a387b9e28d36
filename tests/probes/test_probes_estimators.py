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


@pytest.mark.parametrize("probe", [LinearProbe(), MassMeanProbe()])
def test_check_estimator(probe):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        failed = [r for r in check_estimator(probe, on_fail=None) if r["status"] == "failed"]
    assert not failed, [(r["check_name"], str(r["exception"])[:200]) for r in failed]


def test_one_class_is_a_clear_error(data):
    X, _ = data
    with pytest.raises(WorkbenchError, match="one class"):
        LinearProbe().fit(X, np.zeros(len(X)))
