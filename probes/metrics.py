"""ROC AUC with a bootstrap interval, and chance measured by shuffling labels.

The AUC is the Mann-Whitney statistic (ties count one half), computed from
ranks so thousands of resamples run as one array operation. The interval is a
percentile bootstrap that resamples within each class, so every resample keeps
the observed class counts (a set with 9 positives never draws a resample with
none). :func:`label_permutation_null` measures chance for fixed scores by
shuffling the labels: with a tiny class the spread of chance AUCs is wide, and
it is reported beside every AUC rather than assumed to be 0.5 +- nothing.

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1])
>>> round(auc_score(y, np.array([0.1, 0.4, 0.35, 0.8])), 2)
0.75
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from workbench.core.errors import WorkbenchError

__all__ = [
    "AUCResult",
    "PermutationResult",
    "auc_score",
    "auc_with_ci",
    "label_permutation_null",
]


@dataclass(frozen=True)
class AUCResult:
    """ROC AUC of scores against binary labels, with its bootstrap interval.

    Attributes:
        auc: the point estimate.
        lo: lower bound of the interval (``level`` coverage, percentile bootstrap).
        hi: upper bound.
        n_pos: items labelled 1.
        n_neg: items labelled 0.
        level: coverage of the interval, e.g. 0.95.
        n_boot: bootstrap resamples behind ``lo``/``hi`` (0: no interval, lo = hi = auc).
    """

    auc: float
    lo: float
    hi: float
    n_pos: int
    n_neg: int
    level: float = 0.95
    n_boot: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.auc:.3f} [{self.lo:.3f}, {self.hi:.3f}]"


@dataclass(frozen=True)
class PermutationResult:
    """Chance measured by shuffling labels against fixed scores.

    Attributes:
        observed: the statistic on the real labels.
        null_mean: its mean over shuffles.
        null_lo: 2.5th percentile over shuffles.
        null_hi: 97.5th percentile over shuffles.
        p_above: one-sided p-value that ``observed`` is above chance
            (``(1 + #null >= observed) / (1 + n_perm)``).
        p_below: the same for below chance.
        n_perm: number of shuffles.
    """

    observed: float
    null_mean: float
    null_lo: float
    null_hi: float
    p_above: float
    p_below: float
    n_perm: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _check_pair(y: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y)
    s_arr = np.asarray(scores, dtype=np.float64)
    if y_arr.ndim != 1 or s_arr.ndim != 1 or y_arr.shape != s_arr.shape:
        raise WorkbenchError(
            f"labels {y_arr.shape} and scores {s_arr.shape} must be 1-D of the same length: "
            "pass one score per labelled item"
        )
    if not np.isin(y_arr, (0, 1)).all():
        raise WorkbenchError(
            f"labels must be 0/1, got values {np.unique(y_arr)[:5].tolist()}: binarise them first"
        )
    if not np.isfinite(s_arr).all():
        raise WorkbenchError(
            f"scores hold {int((~np.isfinite(s_arr)).sum())} NaN or infinite values: "
            "score finite features"
        )
    y_int = y_arr.astype(np.int8)
    n_pos = int(y_int.sum())
    if n_pos == 0 or n_pos == y_int.size:
        cls = int(y_int[0]) if y_int.size else 0
        raise WorkbenchError(
            f"labels have one class (all {cls}, {y_int.size} items): AUC is undefined; "
            "pass a set with both classes"
        )
    return y_int, s_arr


def _auc_from_ranks(ranks: np.ndarray, y: np.ndarray, n_pos: int, n_neg: int) -> np.ndarray:
    """AUC per row of ``ranks`` (rows: resamples) for 0/1 rows ``y``."""
    rank_sum = (ranks * y).sum(axis=-1)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc_score(y: ArrayLike, scores: ArrayLike) -> float:
    """ROC AUC of ``scores`` for binary labels ``y`` (ties count one half)."""
    y_int, s = _check_pair(y, scores)
    n_pos = int(y_int.sum())
    return float(_auc_from_ranks(rankdata(s), y_int, n_pos, y_int.size - n_pos))


def auc_with_ci(
    y: ArrayLike,
    scores: ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> AUCResult:
    """ROC AUC with a class-stratified percentile bootstrap interval.

    Args:
        y: binary labels (0/1), both classes present.
        scores: one score per item, higher meaning label 1.
        n_boot: bootstrap resamples (0 gives ``lo == hi == auc``).
        seed: seed of the resampling.
        level: coverage of the interval.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.zeros(50), np.ones(50)]
    >>> r = auc_with_ci(y, y + rng.normal(size=100), n_boot=200)
    >>> r.lo < r.auc < r.hi, (r.n_pos, r.n_neg)
    (True, (50, 50))
    """
    y_int, s = _check_pair(y, scores)
    n_pos = int(y_int.sum())
    n_neg = y_int.size - n_pos
    point = float(_auc_from_ranks(rankdata(s), y_int, n_pos, n_neg))
    if n_boot <= 0:
        return AUCResult(point, point, point, n_pos, n_neg, level, 0)
    rng = np.random.default_rng(seed)
    pos, neg = s[y_int == 1], s[y_int == 0]
    sample = np.concatenate(
        [rng.choice(pos, size=(n_boot, n_pos)), rng.choice(neg, size=(n_boot, n_neg))], axis=1
    )
    y_boot = np.r_[np.ones(n_pos), np.zeros(n_neg)]
    aucs = _auc_from_ranks(rankdata(sample, axis=1), y_boot, n_pos, n_neg)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(aucs, [alpha, 1 - alpha])
    return AUCResult(point, float(lo), float(hi), n_pos, n_neg, level, n_boot)


def shuffled_labels(y: np.ndarray, n_perm: int, seed: int) -> np.ndarray:
    """``n_perm`` independent shuffles of ``y``, one per row."""
    rng = np.random.default_rng(seed)
    return rng.permuted(np.broadcast_to(y, (n_perm, y.size)), axis=1)


def permutation_summary(observed: float, null: np.ndarray) -> PermutationResult:
    """Summarise a null distribution (non-finite entries count as never extreme)."""
    n = null.size
    finite = null[np.isfinite(null)]
    mean = float(finite.mean()) if finite.size else float("nan")
    lo, hi = np.quantile(finite, [0.025, 0.975]) if finite.size else (np.nan, np.nan)
    return PermutationResult(
        observed=float(observed),
        null_mean=mean,
        null_lo=float(lo),
        null_hi=float(hi),
        p_above=float((1 + np.sum(null >= observed)) / (1 + n)),
        p_below=float((1 + np.sum(null <= observed)) / (1 + n)),
        n_perm=n,
    )


def label_permutation_null(
    y: ArrayLike, scores: ArrayLike, *, n_perm: int = 1000, seed: int = 0
) -> PermutationResult:
    """AUC of fixed ``scores`` against ``n_perm`` shuffles of ``y``.

    Measures chance at these class counts: ``null_lo``..``null_hi`` is the
    range a probe that knows nothing reaches, and ``p_above`` says how often a
    shuffle does at least as well as the real labels.

    >>> import numpy as np
    >>> y = np.r_[np.zeros(20), np.ones(20)]
    >>> label_permutation_null(y, y, n_perm=200).p_above < 0.01
    True
    """
    y_int, s = _check_pair(y, scores)
    n_pos = int(y_int.sum())
    ranks = rankdata(s)
    observed = float(_auc_from_ranks(ranks, y_int, n_pos, y_int.size - n_pos))
    if n_perm <= 0:
        return PermutationResult(observed, *(float("nan"),) * 3, float("nan"), float("nan"), 0)
    perms = shuffled_labels(y_int, n_perm, seed)
    null = _auc_from_ranks(ranks, perms, n_pos, y_int.size - n_pos)
    return permutation_summary(observed, null)
