"""Stratified AUC: the probe's AUC with a confound held fixed, and a within-strata null.

Items are grouped by the confound (its levels for ``cat``; quantile bins for
``num``, or its distinct values when it has few). The pooled within-strata
AUC counts only (positive, negative) pairs from the same stratum: it is the
share of such pairs the probe orders correctly, so a confound that differs
between strata cannot lift it. Chance is measured by shuffling the labels
*inside* each stratum (the class counts of every stratum kept). Strata with
a single class have no pair; they are left out and counted.

>>> import numpy as np
>>> strata = np.array([0, 0, 0, 0, 1, 1, 1, 1])
>>> y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
>>> r = stratified_auc(y, np.array([1, 2, 3, 4, 0, 1, 2, 3.0]), strata, n_perm=100)
>>> r.auc, r.n_strata_used
(1.0, 2)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from probes.metrics import shuffled_labels

__all__ = ["N_BINS", "StratifiedResult", "combine_strata", "strata_of", "stratified_auc"]

N_BINS = 5
"""Quantile bins of a numeric confound (fewer when it has at most this many values)."""


@dataclass(frozen=True)
class StratifiedResult:
    """Pooled within-strata AUC and its within-strata label-shuffle null.

    Attributes:
        auc: share of same-stratum (positive, negative) pairs ordered correctly
            (ties one half); None when no stratum holds both classes.
        p_value: ``(1 + #null >= auc) / (1 + n_perm)``; None with ``auc``.
        null_mean: mean pooled AUC under within-strata shuffles.
        n_pairs: same-stratum (positive, negative) pairs.
        n_strata: strata found.
        n_strata_used: strata with both classes.
        n_dropped_strata: strata left out (one class).
        n_dropped_items: items in those strata.
        n_perm: within-strata shuffles.
    """

    auc: float | None
    p_value: float | None
    null_mean: float | None
    n_pairs: int
    n_strata: int
    n_strata_used: int
    n_dropped_strata: int
    n_dropped_items: int
    n_perm: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def strata_of(values: np.ndarray, kind: str, n_bins: int = N_BINS) -> np.ndarray:
    """An integer stratum per item: levels for ``cat``, quantile bins for ``num``."""
    if kind == "cat":
        return np.unique(np.asarray(values, dtype=str), return_inverse=True)[1]
    v = np.asarray(values, dtype=np.float64)
    distinct = np.unique(v)
    if distinct.size <= n_bins:
        return np.searchsorted(distinct, v)
    edges = np.unique(np.quantile(v, np.linspace(0, 1, n_bins + 1))[1:-1])
    return np.searchsorted(edges, v, side="right")


def combine_strata(*strata: np.ndarray) -> np.ndarray:
    """One stratum per distinct combination of several stratifications."""
    return np.unique(np.stack(strata, axis=1), axis=0, return_inverse=True)[1].ravel()


def stratified_auc(
    y: np.ndarray, scores: np.ndarray, strata: np.ndarray, *, n_perm: int = 1000, seed: int = 0
) -> StratifiedResult:
    """Pooled within-strata AUC of ``scores`` with a null that shuffles labels inside strata.

    Args:
        y: 0/1 labels.
        scores: one score per item.
        strata: one integer stratum per item (:func:`strata_of`).
        n_perm: within-strata shuffles (0: no null).
        seed: seed of the shuffles.
    """
    y = np.asarray(y).astype(np.int8)
    scores = np.asarray(scores, dtype=np.float64)
    groups = np.unique(strata)
    used, dropped_items = [], 0
    for g in groups:
        idx = np.flatnonzero(strata == g)
        n_pos = int(y[idx].sum())
        if 0 < n_pos < idx.size:
            used.append((idx, n_pos))
        else:
            dropped_items += idx.size
    n_perm = max(n_perm, 0)
    if not used:
        return StratifiedResult(
            None, None, None, 0, groups.size, 0, groups.size, dropped_items, n_perm
        )
    pairs = sum(n_pos * (idx.size - n_pos) for idx, n_pos in used)
    correct = 0.0
    null = np.zeros(n_perm)
    for k, (idx, n_pos) in enumerate(used):
        ranks = rankdata(scores[idx])
        offset = n_pos * (n_pos + 1) / 2
        correct += float(ranks @ y[idx]) - offset
        if n_perm:
            perms = shuffled_labels(y[idx], n_perm, seed + 7919 * k)
            null += perms @ ranks - offset
    auc = correct / pairs
    if not n_perm:
        return StratifiedResult(
            auc, None, None, pairs, groups.size, len(used), groups.size - len(used),
            dropped_items, 0,
        )  # fmt: skip
    null /= pairs
    p = float((1 + np.sum(null >= auc - 1e-12)) / (1 + n_perm))
    return StratifiedResult(
        auc, p, float(null.mean()), pairs, groups.size, len(used), groups.size - len(used),
        dropped_items, n_perm,
    )  # fmt: skip
