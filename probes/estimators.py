"""Probe estimators: linear, small MLP, and mass-mean direction.

All three are scikit-learn estimators: keyword-only parameters stored in
``__init__``, ``fit`` returns ``self``, fitted state ends in ``_``, and they
work with :func:`sklearn.base.clone` (one fresh copy per CV fold). They are
binary classifiers: ``predict_proba(X)[:, 1]`` is the probability of label 1.
Each ``fit`` takes ``sample_weight`` (per-item weights, as in scikit-learn:
an integer weight counts as that many copies of the item) and each probe has
``predict_log_proba``, so weighted ``GridSearchCV`` and
``cross_val_predict(method="predict_log_proba")`` work.

>>> import numpy as np
>>> X = np.r_[np.zeros((5, 3)), np.ones((5, 3))]
>>> y = np.r_[np.zeros(5), np.ones(5)]
>>> LinearProbe(C=1.0).fit(X, y).predict(X).tolist()
[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from workbench.core.errors import WorkbenchError

__all__ = ["LinearProbe", "MLPProbe", "MassMeanProbe"]

_FLOATS = [np.float64, np.float32]


def _binary_targets(estimator: BaseEstimator, y: np.ndarray) -> np.ndarray:
    check_classification_targets(y)
    classes = np.unique(y)
    if classes.size != 2:
        name = type(estimator).__name__
        if classes.size > 2:
            raise WorkbenchError(
                f"Only binary classification is supported. {name} got {classes.size} classes "
                f"({classes.tolist()[:5]}): pass binary labels (0/1)"
            )
        raise WorkbenchError(
            f"{name} needs labels with two classes, got one class ({classes.tolist()}): "
            "pass labels where both 0 and 1 occur"
        )
    return classes


class _BinaryProbe(ClassifierMixin, BaseEstimator):
    """Binary classifier tags shared by the probes."""

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        if tags.classifier_tags is not None:
            tags.classifier_tags.multi_class = False
        return tags


class _PipelineProbe(_BinaryProbe):
    """Shared behaviour of the probes that wrap a fitted sklearn ``Pipeline``."""

    pipeline_: Pipeline

    def _make_pipeline(self) -> Pipeline:
        raise NotImplementedError

    def fit(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> _PipelineProbe:
        X, y = validate_data(self, X, y)
        self.classes_ = _binary_targets(self, y)
        pipeline = self._make_pipeline()
        params = {}
        if sample_weight is not None:
            w = _check_sample_weight(sample_weight, X)
            params = {f"{name}__sample_weight": w for name, _ in pipeline.steps}
        self.pipeline_ = pipeline.fit(X, y, **params)
        self.n_iter_ = self.pipeline_[-1].n_iter_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        X = validate_data(self, X, reset=False)
        return self.pipeline_.predict_proba(X)

    def predict_log_proba(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        X = validate_data(self, X, reset=False)
        return self.pipeline_.predict_log_proba(X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        p = np.clip(self.predict_proba(X)[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)

    def predict(self, X: np.ndarray) -> np.ndarray:
        p = self.predict_proba(X)[:, 1]
        return self.classes_[(p >= 0.5).astype(int)]


class LinearProbe(_PipelineProbe):
    """``StandardScaler`` then ``LogisticRegression(C, max_iter)``, as in the paper.

    The scaler is fitted on the training features only, so scoring a fresh set
    reuses the training mean and scale.

    Args:
        C: inverse L2 regularisation strength of the logistic regression.
        max_iter: iteration cap of the lbfgs solver.

    >>> probe = LinearProbe(C=0.1)
    >>> probe.get_params()
    {'C': 0.1, 'max_iter': 2000}
    """

    def __init__(self, *, C: float = 1.0, max_iter: int = 2000) -> None:
        self.C = C
        self.max_iter = max_iter

    def _make_pipeline(self) -> Pipeline:
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=self.max_iter))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        X = validate_data(self, X, reset=False)
        return self.pipeline_.decision_function(X)

    @property
    def coef_(self) -> np.ndarray:
        """Weights in standardised feature space, shape ``(n_features,)``."""
        check_is_fitted(self, "pipeline_")
        return self.pipeline_[-1].coef_[0]


class MLPProbe(_PipelineProbe):
    """A small non-linear probe: ``StandardScaler`` then a one-hidden-layer MLP.

    The paper tested only linear probes and names that as its limitation; a
    handle that is present but not linear shows up here and not in
    :class:`LinearProbe`.

    Args:
        hidden: width of each hidden layer.
        alpha: L2 penalty of the MLP weights.
        max_iter: epochs of the adam solver.
        random_state: seed of the weight initialisation.
    """

    def __init__(
        self,
        *,
        hidden: tuple[int, ...] = (64,),
        alpha: float = 1e-2,
        max_iter: int = 300,
        random_state: int = 0,
    ) -> None:
        self.hidden = hidden
        self.alpha = alpha
        self.max_iter = max_iter
        self.random_state = random_state

    def _make_pipeline(self) -> Pipeline:
        mlp = MLPClassifier(
            hidden_layer_sizes=self.hidden,
            alpha=self.alpha,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )
        return make_pipeline(StandardScaler(), mlp)


class MassMeanProbe(_BinaryProbe):
    """Difference-of-class-means direction, read out by projection.

    ``direction_ = mean(X[y == 1]) - mean(X[y == 0])``; :meth:`project` gives
    an item's projection on that direction relative to the midpoint of the two
    class means. A logistic regression fitted on that one-dimensional
    projection calibrates it: :meth:`decision_function` is its logit and
    :meth:`predict_proba` its probability, both increasing in the projection
    (the ranking, hence the AUC, is the projection's). With ``sample_weight``
    the class means and the calibration are weighted. The direction, the
    midpoint and the projection keep the input's float dtype (float32 stays
    float32); the calibrated probabilities are float64.

    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [0.0, 2.0], [2.0, 1.0], [2.0, 2.0]])
    >>> MassMeanProbe().fit(X, [0, 0, 1, 1]).direction_.tolist()
    [2.0, 0.0]
    """

    def __init__(self) -> None:
        pass

    def fit(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> MassMeanProbe:
        X, y = validate_data(self, X, y, dtype=_FLOATS)
        self.classes_ = _binary_targets(self, y)
        w = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        means = []
        for cls in self.classes_:
            mask = y == cls
            if not w[mask].sum() > 0:
                raise WorkbenchError(
                    f"MassMeanProbe: the items of class {cls} all have sample_weight 0: "
                    "give each class some weight"
                )
            means.append(np.average(X[mask], axis=0, weights=w[mask]).astype(X.dtype))
        self.direction_ = means[1] - means[0]
        self.midpoint_ = (means[0] + means[1]) / 2
        proj = (X - self.midpoint_) @ self.direction_
        self.calibrator_ = LogisticRegression().fit(proj[:, None], y, sample_weight=w)
        return self

    def project(self, X: np.ndarray) -> np.ndarray:
        """Projection on ``direction_`` relative to the class-mean midpoint."""
        check_is_fitted(self, "direction_")
        X = validate_data(self, X, reset=False, dtype=_FLOATS)
        return (X - self.midpoint_) @ self.direction_

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "calibrator_")
        return self.calibrator_.decision_function(self.project(X)[:, None])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "calibrator_")
        return self.calibrator_.predict_proba(self.project(X)[:, None])

    def predict_log_proba(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "calibrator_")
        return self.calibrator_.predict_log_proba(self.project(X)[:, None])

    def predict(self, X: np.ndarray) -> np.ndarray:
        d = self.decision_function(X)
        return self.classes_[(d >= 0).astype(int)]
