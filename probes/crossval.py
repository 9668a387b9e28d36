"""Step 1's engine: stratified k-fold CV, with a shuffled-label control task.

Every fold fits a fresh :func:`sklearn.base.clone` of the probe. The AUC is
computed once on the pooled out-of-fold scores (with a bootstrap interval);
per-fold AUCs are kept beside it. The control task (Hewitt & Liang, 2019)
re-runs the same CV with the training labels shuffled: the AUC a probe of this
capacity reaches on labels that carry no information is chance *measured* for
this probe, these features and these class counts. A cheaper measure, the
labels shuffled against the fixed out-of-fold scores, comes with every CV AUC.

>>> import numpy as np
>>> from probes.estimators import LinearProbe
>>> rng = np.random.default_rng(0)
>>> y = np.r_[np.zeros(30), np.ones(30)]
>>> X = rng.normal(size=(60, 5)) + y[:, None]
>>> cv = cross_validate(LinearProbe(), X, y, n_boot=100, n_control=2)
>>> cv.auc.auc > 0.8 > cv.control.mean
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Float, Shaped
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold

from probes.metrics import (
    AUCResult,
    PermutationResult,
    auc_score,
    auc_with_ci,
    label_permutation_null,
)

__all__ = [
    "CVResult",
    "ControlResult",
    "control_task",
    "cross_validate",
    "out_of_fold_scores",
]

#: Shapes of the probe inputs: ``n`` items by ``d`` features, one label per item.
Features = Float[np.ndarray, "n d"]
Labels = Shaped[np.ndarray, " n"]


@dataclass(frozen=True)
class ControlResult:
    """CV AUC of the same probe on shuffled training labels.

    Attributes:
        mean: mean control AUC (chance measured for this probe).
        sd: its standard deviation over shuffles.
        max: the highest control AUC.
        aucs: one pooled out-of-fold AUC per shuffle.
    """

    mean: float
    sd: float
    max: float
    aucs: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "sd": self.sd, "max": self.max, "aucs": list(self.aucs)}


@dataclass(frozen=True)
class CVResult:
    """Stratified k-fold CV of one probe on one labelled set.

    Attributes:
        auc: AUC of the pooled out-of-fold scores, with its bootstrap interval.
        fold_aucs: the AUC within each fold.
        control: the shuffled-label control task (None when not run).
        null: the labels shuffled against the out-of-fold scores (None when not run).
        scores: out-of-fold ``p(label 1)`` per item.
        labels: the labels scored.
        folds: number of folds.
    """

    auc: AUCResult
    fold_aucs: tuple[float, ...]
    control: ControlResult | None
    null: PermutationResult | None
    scores: tuple[float, ...]
    labels: tuple[int, ...]
    folds: int

    @property
    def selectivity(self) -> float | None:
        """CV AUC minus mean control AUC (None without a control task)."""
        return None if self.control is None else self.auc.auc - self.control.mean

    def to_json(self) -> dict[str, Any]:
        return {
            "auc": self.auc.to_json(),
            "fold_aucs": list(self.fold_aucs),
            "control": None if self.control is None else self.control.to_json(),
            "null": None if self.null is None else self.null.to_json(),
            "selectivity": self.selectivity,
            "folds": self.folds,
            "scores": list(self.scores),
            "labels": list(self.labels),
        }


def out_of_fold_scores(
    estimator: BaseEstimator, X: Features, y: Labels, *, folds: int, seed: int
) -> tuple[Float[np.ndarray, " n"], list[float]]:
    """Out-of-fold ``p(label 1)`` and per-fold AUCs (a clone fitted per fold)."""
    scores = np.empty(y.size, dtype=np.float64)
    fold_aucs = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(X, y):
        fitted = clone(estimator).fit(X[train], y[train])
        scores[test] = fitted.predict_proba(X[test])[:, 1]
        fold_aucs.append(auc_score(y[test], scores[test]))
    return scores, fold_aucs


def control_task(
    estimator: BaseEstimator, X: Features, y: Labels, *, folds: int, seed: int, n_control: int
) -> ControlResult:
    """CV AUC of ``estimator`` refitted on ``n_control`` shuffles of the labels."""
    y = np.asarray(y).astype(np.int8)
    rng = np.random.default_rng(seed + 1)
    aucs = []
    for _ in range(n_control):
        y_perm = rng.permutation(y)
        s, _ = out_of_fold_scores(estimator, X, y_perm, folds=folds, seed=seed)
        aucs.append(auc_score(y_perm, s))
    arr = np.asarray(aucs)
    return ControlResult(float(arr.mean()), float(arr.std()), float(arr.max()), tuple(aucs))


def cross_validate(
    estimator: BaseEstimator,
    X: Features,
    y: Labels,
    *,
    folds: int = 5,
    seed: int = 0,
    n_boot: int = 1000,
    n_perm: int = 1000,
    n_control: int = 5,
) -> CVResult:
    """Stratified k-fold CV AUC of ``estimator``, with chance measured two ways.

    Inputs are assumed checked (finite features, 0/1 labels, each class at
    least ``folds`` items); :func:`probes.falsify` checks them.

    Args:
        estimator: an unfitted probe; cloned per fold.
        X: features, one row per item.
        y: 0/1 labels.
        folds: number of stratified folds.
        seed: seed of the fold split, the bootstrap and the shuffles.
        n_boot: bootstrap resamples for the AUC interval.
        n_perm: shuffles of the labels against the out-of-fold scores (cheap,
            no refit; 0: skip).
        n_control: refits on shuffled labels, the control task (0: skip).
    """
    y = np.asarray(y).astype(np.int8)
    scores, fold_aucs = out_of_fold_scores(estimator, X, y, folds=folds, seed=seed)
    control = None
    if n_control > 0:
        control = control_task(estimator, X, y, folds=folds, seed=seed, n_control=n_control)
    return CVResult(
        auc=auc_with_ci(y, scores, n_boot=n_boot, seed=seed),
        fold_aucs=tuple(fold_aucs),
        control=control,
        null=label_permutation_null(y, scores, n_perm=n_perm, seed=seed) if n_perm > 0 else None,
        scores=tuple(scores.tolist()),
        labels=tuple(int(v) for v in y),
        folds=folds,
    )
