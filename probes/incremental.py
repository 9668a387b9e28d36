"""Incremental validity: does the probe's score add to what the confounds already predict?

Two logistic models, both fitted on the training set only: the confounds
alone, and the confounds plus the probe's score. On train the score is the
probe's *out-of-fold* score, so the combined model does not learn to trust a
score that is overfitted to the items it was fitted on; on fresh it is the
score of the probe fitted on all training items. Both models score the fresh
set; the difference of their fresh AUCs (ΔAUC) gets a paired, class-stratified
bootstrap interval (the same resampled items for both models).

The p-value is a likelihood-ratio test on the fresh set: the two nested
models are refitted there (near maximum likelihood) with the probe's fresh
score as a fixed covariate, and twice the log-likelihood gain of adding it is
referred to chi-squared with one degree of freedom. The probe never saw a
fresh label, so under the null (the score carries nothing about the fresh
label beyond the confounds) the reference distribution holds.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(size=(400, 1)); u = rng.normal(size=400)
>>> y = (z[:, 0] + u > 0).astype(int)
>>> r = incremental_validity(z[:200], y[:200], u[:200], z[200:], y[200:], u[200:], n_boot=200)
>>> r.delta_lo > 0 and r.p_value < 0.001
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import chi2, rankdata
from sklearn.linear_model import LogisticRegression

from probes.metrics import _auc_from_ranks, auc_score

__all__ = ["IncrementalResult", "incremental_validity", "logit"]

_NEAR_MLE_C = 1e4
"""Inverse L2 strength of the nested models: near maximum likelihood, finite under separation."""


@dataclass(frozen=True)
class IncrementalResult:
    """Confounds alone against confounds plus the probe's score, on the fresh set.

    Attributes:
        auc_confounds: fresh AUC of the confounds-only model (fitted on train).
        auc_combined: fresh AUC of the confounds + score model (fitted on train).
        delta: ``auc_combined - auc_confounds``.
        delta_lo: lower end of the paired bootstrap interval of ``delta``.
        delta_hi: upper end.
        lr_stat: likelihood-ratio statistic on fresh (twice the log-likelihood gain).
        p_value: its chi-squared (1 df) p-value.
        score_coef: the score's coefficient in the fresh refit (its sign says
            whether a higher score means label 1 once the confounds are held fixed).
        n_boot: bootstrap resamples.
    """

    auc_confounds: float
    auc_combined: float
    delta: float
    delta_lo: float
    delta_hi: float
    lr_stat: float
    p_value: float
    score_coef: float
    n_boot: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Log-odds of probabilities, clipped away from 0 and 1."""
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(q) - np.log1p(-q)


def _fit(Z: np.ndarray, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=_NEAR_MLE_C, max_iter=5000).fit(Z, y)


def _loglik(model: LogisticRegression, Z: np.ndarray, y: np.ndarray) -> float:
    """Bernoulli log-likelihood from the logits, stable when a probability rounds to 0 or 1."""
    f = model.decision_function(Z)
    return -float(np.logaddexp(0.0, -(2 * y - 1) * f).sum())


def _paired_boot(y: np.ndarray, a: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """ΔAUC (b - a) per class-stratified bootstrap resample, the same items for both."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    idx = np.concatenate(
        [rng.choice(pos, (n_boot, pos.size)), rng.choice(neg, (n_boot, neg.size))], axis=1
    )
    yb = np.r_[np.ones(pos.size), np.zeros(neg.size)]
    auc_a = _auc_from_ranks(rankdata(a[idx], axis=1), yb, pos.size, neg.size)
    auc_b = _auc_from_ranks(rankdata(b[idx], axis=1), yb, pos.size, neg.size)
    return np.asarray(auc_b - auc_a)


def incremental_validity(
    Z_train: np.ndarray,
    y_train: np.ndarray,
    score_train: np.ndarray,
    Z_fresh: np.ndarray,
    y_fresh: np.ndarray,
    score_fresh: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> IncrementalResult:
    """ΔAUC of adding the probe's score to the confounds, with its interval and p-value.

    Args:
        Z_train: confound design columns of the training items (:func:`probes.confound_inputs.encode`).
        y_train: 0/1 training labels.
        score_train: the probe's out-of-fold score per training item (log-odds).
        Z_fresh: the fresh items' confound columns.
        y_fresh: 0/1 fresh labels.
        score_fresh: the probe's fresh score per item (log-odds, same scale).
        n_boot: paired bootstrap resamples.
        seed: bootstrap seed.
        level: coverage of the interval.
    """
    y_tr, y_fr = np.asarray(y_train).astype(int), np.asarray(y_fresh).astype(int)
    mu, sd = float(np.mean(score_train)), float(np.std(score_train)) or 1.0
    s_tr = ((np.asarray(score_train) - mu) / sd)[:, None]
    s_fr = ((np.asarray(score_fresh) - mu) / sd)[:, None]
    both_tr, both_fr = np.hstack([Z_train, s_tr]), np.hstack([Z_fresh, s_fr])
    p_conf = _fit(Z_train, y_tr).decision_function(Z_fresh)
    p_both = _fit(both_tr, y_tr).decision_function(both_fr)
    auc_c, auc_b = auc_score(y_fr, p_conf), auc_score(y_fr, p_both)
    deltas = _paired_boot(y_fr, p_conf, p_both, max(n_boot, 1), seed)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(deltas, [alpha, 1 - alpha]) if n_boot > 0 else (auc_b - auc_c,) * 2
    small, big = _fit(Z_fresh, y_fr), _fit(both_fr, y_fr)
    stat = max(0.0, 2 * (_loglik(big, both_fr, y_fr) - _loglik(small, Z_fresh, y_fr)))
    return IncrementalResult(
        auc_confounds=auc_c,
        auc_combined=auc_b,
        delta=auc_b - auc_c,
        delta_lo=float(lo),
        delta_hi=float(hi),
        lr_stat=stat,
        p_value=float(chi2.sf(stat, 1)),
        score_coef=float(big.coef_[0, -1]),
        n_boot=max(n_boot, 0),
    )
