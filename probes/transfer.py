"""Step 2's engine: fit on the training set, score a fresh held-out set.

Beside the fresh AUC and its interval come chance measured by shuffling the
fresh labels, the best balanced assertion asymmetry (with how often shuffled
labels clear the gate's bar), the gate, and the 2x2 disposition table of the
probe used as an assert/hedge rule at the asymmetry's threshold.

>>> import numpy as np
>>> from probes.estimators import LinearProbe
>>> rng = np.random.default_rng(0)
>>> y = np.r_[np.zeros(40), np.ones(40)]
>>> X = rng.normal(size=(80, 4)) + 2 * y[:, None]
>>> r = fit_and_score(LinearProbe(), X, y, X[::-1], y[::-1], n_boot=100, n_perm=100)
>>> r.auc.auc > 0.9, r.gate.auc_ok
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Float, Shaped
from sklearn.base import BaseEstimator, clone

from probes.disposition import (
    AsymmetryResult,
    DispositionTable,
    GateResult,
    best_balanced_asymmetry,
    disposition_table,
    gate,
)
from probes.metrics import AUCResult, PermutationResult, auc_with_ci, label_permutation_null

__all__ = ["TransferResult", "fit_and_score"]


@dataclass(frozen=True)
class TransferResult:
    """A probe fitted on the training set and scored on a fresh set.

    Attributes:
        auc: fresh AUC with its bootstrap interval.
        null: chance measured by shuffling the fresh labels against the scores.
        asymmetry: best balanced assertion asymmetry on the fresh set.
        gate: the gate applied to ``auc`` and ``asymmetry``.
        disposition: the 2x2 of fresh labels against "probe asserts" at the
            asymmetry's threshold (0.5 when no threshold qualifies).
        assert_threshold: the threshold used for ``disposition``.
        scores: fresh ``p(label 1)`` per item.
        labels: the fresh labels.
    """

    auc: AUCResult
    null: PermutationResult
    asymmetry: AsymmetryResult
    gate: GateResult
    disposition: DispositionTable
    assert_threshold: float
    scores: tuple[float, ...]
    labels: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "auc": self.auc.to_json(),
            "null": self.null.to_json(),
            "asymmetry": self.asymmetry.to_json(),
            "gate": self.gate.to_json(),
            "disposition": self.disposition.to_json(),
            "assert_threshold": self.assert_threshold,
            "scores": list(self.scores),
            "labels": list(self.labels),
        }


def fit_and_score(
    estimator: BaseEstimator,
    train_X: Float[np.ndarray, "n_train d"],
    train_y: Shaped[np.ndarray, " n_train"],
    fresh_X: Float[np.ndarray, "n_fresh d"],
    fresh_y: Shaped[np.ndarray, " n_fresh"],
    *,
    n_boot: int = 1000,
    n_perm: int = 1000,
    seed: int = 0,
) -> TransferResult:
    """Fit a clone of ``estimator`` on train, score fresh, and measure chance.

    Inputs are assumed checked; :func:`probes.falsify` checks them.

    Args:
        estimator: an unfitted probe (a clone is fitted).
        train_X: training features.
        train_y: training 0/1 labels.
        fresh_X: fresh features, same width.
        fresh_y: fresh 0/1 labels.
        n_boot: bootstrap resamples for the AUC interval.
        n_perm: fresh-label shuffles for the AUC and asymmetry nulls.
        seed: seed of the bootstrap and the shuffles.
    """
    fitted = clone(estimator).fit(train_X, np.asarray(train_y).astype(np.int8))
    y = np.asarray(fresh_y).astype(np.int8)
    p = fitted.predict_proba(fresh_X)[:, 1].astype(np.float64)
    auc = auc_with_ci(y, p, n_boot=n_boot, seed=seed)
    asym = best_balanced_asymmetry(y, p, n_perm=n_perm, seed=seed)
    threshold = asym.threshold if asym.threshold is not None else 0.5
    return TransferResult(
        auc=auc,
        null=label_permutation_null(y, p, n_perm=n_perm, seed=seed),
        asymmetry=asym,
        gate=gate(auc, asym),
        disposition=disposition_table(y, (p >= threshold).astype(int)),
        assert_threshold=threshold,
        scores=tuple(p.tolist()),
        labels=tuple(int(v) for v in y),
    )
