"""Analyses that need labels only: a disposition, a diagnosis, a continuous label's summary.

For users who have a model's labels and no features (as for the paper's Gemma
4 E2B, released without features): the 2x2 of correct x assert with the
assertion asymmetry and its bootstrap interval (:func:`disposition`); the
failure-mode taxonomy from train and fresh labels plus AUCs given as numbers
or computed from per-item scores (:func:`diagnose_labels`); and a continuous
label (a mean coverage, a 1-5 judge score) summarised without thresholding
(:func:`summarise_values`).

>>> r = disposition([1, 1, 1, 0, 0], ["assert", "assert", "hedge", "assert", "hedge"], n_boot=0)
>>> (r.table.confident_right, r.table.hedged_right, r.table.confident_wrong, r.table.hedged_wrong)
(2, 1, 1, 1)
>>> round(r.table.assertion_asymmetry, 3)
-0.167
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from probes.disposition import DispositionTable, _as_assert, _as_binary, disposition_table
from probes.metrics import AUCResult, auc_with_ci
from probes.taxonomy import Diagnosis, diagnose
from workbench.core.errors import WorkbenchError

__all__ = [
    "DispositionSummary",
    "ValueSummary",
    "auc_from_number",
    "diagnose_labels",
    "disposition",
    "summarise_values",
]


@dataclass(frozen=True)
class DispositionSummary:
    """A 2x2 disposition with the assertion asymmetry's bootstrap interval.

    Attributes:
        table: the counts and rates (:class:`~probes.disposition.DispositionTable`).
        asymmetry_lo: lower end of the percentile bootstrap interval of the
            asymmetry (resampling correct and wrong items separately, so each
            resample keeps the class counts); None without resamples.
        asymmetry_hi: upper end.
        level: the interval's coverage.
        n_boot: bootstrap resamples.
        n_unlabelled: items left out because ``correct`` or ``verbal`` was missing.
    """

    table: DispositionTable
    asymmetry_lo: float | None
    asymmetry_hi: float | None
    level: float
    n_boot: int
    n_unlabelled: int = 0

    def sentence(self) -> str:
        """One quotable sentence with the numbers."""
        t = self.table
        ci = (
            ""
            if self.asymmetry_lo is None
            else f" [{self.asymmetry_lo:.3f}, {self.asymmetry_hi:.3f}]"
        )
        asym = "undefined" if t.assertion_asymmetry is None else f"{t.assertion_asymmetry:.3f}"
        rate = "-" if t.assertion_rate is None else f"{t.assertion_rate:.0%}"
        return (
            f"{t.confident_right} confident-right, {t.hedged_right} hedged-right, "
            f"{t.confident_wrong} confident-wrong, {t.hedged_wrong} hedged-wrong of {t.n} items; "
            f"{rate} asserted; assertion asymmetry {asym}{ci}."
        )

    @property
    def p_assert_correct(self) -> float | None:
        """Share of correct items asserted."""
        t = self.table
        n = t.confident_right + t.hedged_right
        return t.confident_right / n if n else None

    @property
    def p_assert_wrong(self) -> float | None:
        """Share of wrong items asserted (the hallucination rate)."""
        return self.table.hallucination_rate

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "probes.disposition/1",
            **self.table.to_json(),
            "p_assert_correct": self.p_assert_correct,
            "p_assert_wrong": self.p_assert_wrong,
            "n": self.table.n,
            "asymmetry_ci": {
                "lo": self.asymmetry_lo,
                "hi": self.asymmetry_hi,
                "level": self.level,
                "n_boot": self.n_boot,
            },
            "n_unlabelled": self.n_unlabelled,
            "sentence": self.sentence(),
        }


def disposition(
    correct: ArrayLike,
    verbal: ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> DispositionSummary:
    """The 2x2 of correctness x asserting, with a bootstrap interval on the asymmetry.

    Items where either label is missing (NaN or None) are left out and counted.

    Args:
        correct: 1/True for a correct answer (NaN: unlabelled).
        verbal: ``"assert"``/``"hedge"`` or 1/0 (NaN or None: unlabelled).
        n_boot: bootstrap resamples of the asymmetry interval (0: none).
        seed: seed of the resampling.
        level: coverage of the interval.

    >>> r = disposition([1] * 58 + [0] * 42, [1] * 53 + [0] * 5 + [1] * 38 + [0] * 4)
    >>> round(r.table.assertion_asymmetry, 3), r.asymmetry_lo < -0.009 < r.asymmetry_hi
    (-0.009, True)
    """
    c_raw = np.asarray(correct, dtype=object).ravel()
    v_raw = np.asarray(verbal, dtype=object).ravel()
    if c_raw.size != v_raw.size:
        raise WorkbenchError(
            f"correct has {c_raw.size} items but verbal has {v_raw.size}: pass both for the "
            "same items (label files with ids are matched by id)"
        )
    keep = np.array(
        [not _missing(a) and not _missing(b) for a, b in zip(c_raw, v_raw, strict=True)], bool
    )
    c = _as_binary(np.array([float(x) for x in c_raw[keep]]), "correct")
    a = _as_assert(v_raw[keep])
    table = disposition_table(c, a)
    lo = hi = None
    if n_boot > 0 and table.assertion_asymmetry is not None:
        rng = np.random.default_rng(seed)
        right, wrong = a[c].astype(float), a[~c].astype(float)
        p_right = rng.choice(right, size=(n_boot, right.size)).mean(axis=1)
        p_wrong = rng.choice(wrong, size=(n_boot, wrong.size)).mean(axis=1)
        alpha = (1 - level) / 2
        lo, hi = (float(q) for q in np.quantile(p_wrong - p_right, [alpha, 1 - alpha]))
    return DispositionSummary(table, lo, hi, level, max(n_boot, 0), int((~keep).sum()))


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float | np.floating) and math.isnan(v))


def auc_from_number(auc: float, n_pos: int, n_neg: int, *, level: float = 0.95) -> AUCResult:
    """An AUC given as a number, with the Hanley-McNeil (1982) normal interval.

    For an AUC reported without its scores: the interval comes from its
    standard error at these class counts, so a small class widens it.

    >>> r = auc_from_number(0.5187, 9, 184)
    >>> round(r.lo, 3), round(r.hi, 3)
    (0.323, 0.714)
    """
    if not 0.0 <= auc <= 1.0:
        raise WorkbenchError(f"AUC {auc!r} is not in [0, 1]: pass the AUC, e.g. 0.52")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    from scipy.stats import norm

    half = float(norm.ppf(0.5 + level / 2)) * math.sqrt(max(var, 0.0))
    return AUCResult(auc, max(0.0, auc - half), min(1.0, auc + half), n_pos, n_neg, level, 0)


def _auc(
    value: float | AUCResult | None,
    scores: ArrayLike | None,
    y: np.ndarray,
    what: str,
    n_boot: int,
    seed: int,
) -> AUCResult | None:
    if value is not None and scores is not None:
        raise WorkbenchError(f"{what} AUC was given both as a number and as scores: pass one")
    known = ~np.isnan(y)
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64).ravel()
        if s.size != y.size:
            raise WorkbenchError(
                f"{what} scores have {s.size} values for {y.size} labels: pass one score per item"
            )
        keep = known & ~np.isnan(s)
        return auc_with_ci(y[keep].astype(int), s[keep], n_boot=n_boot, seed=seed)
    if value is None or isinstance(value, AUCResult):
        return value
    n_pos = int(y[known].sum())
    return auc_from_number(float(value), n_pos, int(known.sum()) - n_pos)


def diagnose_labels(
    train_y: ArrayLike,
    fresh_y: ArrayLike,
    *,
    fresh_auc: float | AUCResult | None = None,
    cv_auc: float | AUCResult | None = None,
    fresh_scores: ArrayLike | None = None,
    train_scores: ArrayLike | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Diagnosis:
    """The taxonomy from labels plus AUCs (numbers, or computed from per-item scores).

    Args:
        train_y: training labels (0/1, NaN = unlabelled).
        fresh_y: fresh labels.
        fresh_auc: the transfer AUC as a number (interval from Hanley-McNeil).
        cv_auc: the within-distribution CV AUC as a number (None: not known).
        fresh_scores: per-item fresh scores instead of ``fresh_auc``.
        train_scores: per-item out-of-fold training scores instead of ``cv_auc``.
        n_boot: bootstrap resamples for AUCs computed from scores.
        seed: bootstrap seed.

    >>> d = diagnose_labels([1] * 58 + [0] * 42, [1] * 55 + [0] * 138, fresh_auc=0.51)
    >>> d.verdict
    'single_output_distribution'
    """
    ty = np.asarray(train_y, dtype=np.float64).ravel()
    fy = np.asarray(fresh_y, dtype=np.float64).ravel()
    fresh = _auc(fresh_auc, fresh_scores, fy, "fresh", n_boot, seed)
    if fresh is None:
        raise WorkbenchError(
            "diagnose needs the fresh AUC: pass it as a number (--fresh-auc) or per-item "
            "fresh scores (--fresh-scores)"
        )
    cv = _auc(cv_auc, train_scores, ty, "train", n_boot, seed)
    return diagnose(train_y=ty, fresh_y=fy, cv_auc=cv, fresh_auc=fresh)


@dataclass(frozen=True)
class ValueSummary:
    """A continuous label summarised without thresholding.

    Attributes:
        n: items with a value.
        n_missing: items without one.
        mean: the mean, with ``mean_lo``/``mean_hi`` its percentile bootstrap interval.
        sd: standard deviation (ddof 1; 0 for one item).
        quantiles: min, 25%, median, 75%, max.
    """

    n: int
    n_missing: int
    mean: float
    mean_lo: float
    mean_hi: float
    sd: float
    quantiles: tuple[float, float, float, float, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "n_missing": self.n_missing,
            "mean": self.mean,
            "mean_ci": [self.mean_lo, self.mean_hi],
            "sd": self.sd,
            "min": self.quantiles[0],
            "q25": self.quantiles[1],
            "median": self.quantiles[2],
            "q75": self.quantiles[3],
            "max": self.quantiles[4],
        }


def summarise_values(values: ArrayLike, *, n_boot: int = 1000, seed: int = 0) -> ValueSummary:
    """Mean (bootstrap interval), spread and quantiles of a continuous label (NaN = missing).

    >>> s = summarise_values([0.2, 0.4, 0.6, float("nan")], n_boot=0)
    >>> s.n, s.n_missing, round(s.mean, 2), s.quantiles[2]
    (3, 1, 0.4, 0.4)
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    known = v[~np.isnan(v)]
    if known.size == 0:
        raise WorkbenchError("no item has a value: pass a field that the items carry")
    lo = hi = float(known.mean())
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        means = rng.choice(known, size=(n_boot, known.size)).mean(axis=1)
        lo, hi = (float(q) for q in np.quantile(means, [0.025, 0.975]))
    q = tuple(float(x) for x in np.quantile(known, [0, 0.25, 0.5, 0.75, 1]))
    return ValueSummary(
        n=int(known.size),
        n_missing=int(v.size - known.size),
        mean=float(known.mean()),
        mean_lo=lo,
        mean_hi=hi,
        sd=float(known.std(ddof=1)) if known.size > 1 else 0.0,
        quantiles=q,  # type: ignore[arg-type]
    )
