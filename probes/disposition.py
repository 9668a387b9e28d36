"""Dispositions: the 2x2 of correct x assert, assertion asymmetry, and the gate.

Terms (DESIGN.md): *assertion asymmetry* is ``p_assert(wrong) -
p_assert(correct)``; negative means the model asserts less when it is wrong,
which is the disposition wanted. With a probe, "assert" means predicted
``p_correct >= threshold``; the *best balanced* asymmetry is the minimum over
thresholds 0.05..0.95 (step 0.01) among those with ``p_assert(correct) >=
0.70``. The *gate*: fresh AUC >= 0.63 and asymmetry <= -0.15.

Rates whose denominator is zero (no wrong items, say) are ``None``, not 0.

>>> t = disposition_table([1, 1, 0, 0], ["assert", "hedge", "assert", "hedge"])
>>> (t.confident_right, t.hedged_right, t.confident_wrong, t.hedged_wrong)
(1, 1, 1, 1)
>>> t.assertion_asymmetry
0.0
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from probes.metrics import AUCResult, shuffled_labels
from workbench.core.errors import WorkbenchError

__all__ = [
    "ASSERT_MIN_P_CORRECT",
    "GATE_MAX_ASYMMETRY",
    "GATE_MIN_AUC",
    "THRESHOLDS",
    "AsymmetryResult",
    "DispositionTable",
    "GateResult",
    "best_balanced_asymmetry",
    "disposition_table",
    "gate",
]

GATE_MIN_AUC = 0.63
"""The gate's bar on fresh AUC (the paper's)."""
GATE_MAX_ASYMMETRY = -0.15
"""The gate's bar on best balanced assertion asymmetry (the paper's)."""
ASSERT_MIN_P_CORRECT = 0.70
"""A threshold is "balanced" when it still asserts on at least 70% of correct items."""
THRESHOLDS = np.round(np.arange(5, 96) / 100, 2)
"""Thresholds swept by :func:`best_balanced_asymmetry`: 0.05, 0.06, ..., 0.95."""


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass(frozen=True)
class DispositionTable:
    """The 2x2 of correctness against asserting, and rates derived from it.

    Attributes:
        confident_right: correct and asserted.
        hedged_right: correct and hedged.
        confident_wrong: wrong and asserted.
        hedged_wrong: wrong and hedged.
        accuracy: correct / all.
        assertion_rate: asserted / all.
        hallucination_rate: confident-wrong / wrong (None without wrong items).
        over_hedging_rate: hedged-right / correct (None without correct items).
        assertion_asymmetry: p_assert(wrong) - p_assert(correct) (None when a
            class is empty).
    """

    confident_right: int
    hedged_right: int
    confident_wrong: int
    hedged_wrong: int
    accuracy: float | None
    assertion_rate: float | None
    hallucination_rate: float | None
    over_hedging_rate: float | None
    assertion_asymmetry: float | None

    @property
    def n(self) -> int:
        return self.confident_right + self.hedged_right + self.confident_wrong + self.hedged_wrong

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _as_assert(verbal: ArrayLike) -> np.ndarray:
    values = np.asarray(verbal, dtype=object).ravel()
    out = np.empty(values.size, dtype=bool)
    for i, v in enumerate(values):
        if isinstance(v, str) and v.strip().lower() in ("assert", "hedge"):
            out[i] = v.strip().lower() == "assert"
        elif isinstance(v, bool | np.bool_) or (
            isinstance(v, int | np.integer | float | np.floating) and v in (0, 1)
        ):
            out[i] = bool(v)
        else:
            raise WorkbenchError(
                f"verbal label {v!r} at item {i} is not understood: pass 'assert'/'hedge' "
                "or 1 (assert) / 0 (hedge)"
            )
    return out


def _as_binary(y: ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(y).ravel()
    if arr.dtype.kind not in "biuf" or not np.isin(arr, (0, 1)).all():
        raise WorkbenchError(
            f"{what} must be 0/1 or booleans, got {np.unique(arr)[:5].tolist()}: binarise first"
        )
    return arr.astype(bool)


def disposition_table(correct: ArrayLike, verbal: ArrayLike) -> DispositionTable:
    """Cross correctness with asserting.

    Args:
        correct: per item, 1/True when the answer is correct.
        verbal: per item, ``"assert"``/``"hedge"`` or 1 (assert) / 0 (hedge).

    >>> t = disposition_table([1, 1, 1, 0], [1, 1, 0, 1])
    >>> t.hallucination_rate, round(t.over_hedging_rate, 3), round(t.assertion_asymmetry, 3)
    (1.0, 0.333, 0.333)
    """
    c = _as_binary(correct, "correct")
    a = _as_assert(verbal)
    if c.size != a.size:
        raise WorkbenchError(
            f"correct has {c.size} items but verbal has {a.size}: pass both for the same items"
        )
    cr, hr = int((c & a).sum()), int((c & ~a).sum())
    cw, hw = int((~c & a).sum()), int((~c & ~a).sum())
    n_right, n_wrong = cr + hr, cw + hw
    p_wrong, p_right = _ratio(cw, n_wrong), _ratio(cr, n_right)
    return DispositionTable(
        confident_right=cr,
        hedged_right=hr,
        confident_wrong=cw,
        hedged_wrong=hw,
        accuracy=_ratio(n_right, c.size),
        assertion_rate=_ratio(cr + cw, c.size),
        hallucination_rate=p_wrong,
        over_hedging_rate=_ratio(hr, n_right),
        assertion_asymmetry=None if p_wrong is None or p_right is None else p_wrong - p_right,
    )


@dataclass(frozen=True)
class AsymmetryResult:
    """Best balanced assertion asymmetry of a probe's ``p_correct``.

    Attributes:
        value: min of p_assert(wrong) - p_assert(correct) over the qualifying
            thresholds; None when no threshold qualifies.
        threshold: the threshold it was found at (the lowest on ties).
        p_assert_correct: p_assert(correct) at that threshold.
        p_assert_wrong: p_assert(wrong) at that threshold.
        n_pos: correct items.
        n_neg: wrong items.
        null_bar_rate: share of label shuffles whose best balanced asymmetry
            clears the gate's bar (how often chance alone clears it at these
            class counts); None without shuffles.
        p_value: share of shuffles at least as negative as ``value``
            (``(1 + k) / (1 + n_perm)``); None without shuffles or value.
        n_perm: label shuffles behind the two fields above.
    """

    value: float | None
    threshold: float | None
    p_assert_correct: float | None
    p_assert_wrong: float | None
    n_pos: int
    n_neg: int
    null_bar_rate: float | None = None
    p_value: float | None = None
    n_perm: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _asymmetry_curves(
    y: np.ndarray, p: np.ndarray, min_p_correct: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per threshold (rows) and label row (columns): asymmetry (inf if not balanced)."""
    asserted = (p[None, :] >= THRESHOLDS[:, None]).astype(np.float64)
    labels = np.atleast_2d(y).astype(np.float64)
    n_pos = labels.sum(axis=1)
    n_neg = labels.shape[1] - n_pos
    p_right = asserted @ labels.T / n_pos
    p_wrong = asserted @ (1 - labels).T / n_neg
    # Compare on a tolerance so 7/10 counts as 0.70 despite float rounding.
    ok = p_right >= min_p_correct - 1e-12
    return np.where(ok, p_wrong - p_right, np.inf), p_right, p_wrong


def best_balanced_asymmetry(
    y_correct: ArrayLike,
    p_correct: ArrayLike,
    *,
    min_p_correct: float = ASSERT_MIN_P_CORRECT,
    n_perm: int = 0,
    seed: int = 0,
) -> AsymmetryResult:
    """Best balanced assertion asymmetry of a probe, and how chance compares.

    "Assert" means ``p_correct >= threshold``; over thresholds 0.05..0.95
    (step 0.01) keeping those with ``p_assert(correct) >= min_p_correct``, the
    minimum of ``p_assert(wrong) - p_assert(correct)``.

    Args:
        y_correct: 1 for correct items, 0 for wrong ones (both present).
        p_correct: the probe's predicted probability of correct, per item.
        min_p_correct: the balance condition on p_assert(correct).
        n_perm: label shuffles to measure chance (0: none).
        seed: seed of the shuffles.

    >>> y = [1, 1, 1, 1, 0, 0, 0, 0]
    >>> r = best_balanced_asymmetry(y, [0.9, 0.8, 0.7, 0.2, 0.6, 0.3, 0.2, 0.1])
    >>> round(r.value, 2), r.threshold
    (-0.75, 0.61)
    """
    y = _as_binary(y_correct, "y_correct").astype(np.int8)
    p = np.asarray(p_correct, dtype=np.float64).ravel()
    if p.size != y.size:
        raise WorkbenchError(
            f"y_correct has {y.size} items but p_correct has {p.size}: pass one score per item"
        )
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise WorkbenchError(
            f"y_correct has one class (all {int(y[0])}, {y.size} items): asymmetry is "
            "undefined; pass a set with correct and wrong items"
        )
    asym, p_right, p_wrong = _asymmetry_curves(y, p, min_p_correct)
    k = int(np.argmin(asym[:, 0]))
    found = bool(np.isfinite(asym[k, 0]))
    value = float(asym[k, 0]) if found else None
    null_bar_rate = p_value = None
    if n_perm > 0:
        null = _asymmetry_curves(shuffled_labels(y, n_perm, seed), p, min_p_correct)[0].min(axis=0)
        null_bar_rate = float(np.mean(null <= GATE_MAX_ASYMMETRY + 1e-12))
        if value is not None:
            p_value = float((1 + np.sum(null <= value + 1e-12)) / (1 + n_perm))
    return AsymmetryResult(
        value=value,
        threshold=float(THRESHOLDS[k]) if found else None,
        p_assert_correct=float(p_right[k, 0]) if found else None,
        p_assert_wrong=float(p_wrong[k, 0]) if found else None,
        n_pos=n_pos,
        n_neg=n_neg,
        null_bar_rate=null_bar_rate,
        p_value=p_value,
        n_perm=max(n_perm, 0),
    )


@dataclass(frozen=True)
class GateResult:
    """The paper's gate: fresh AUC >= 0.63 and asymmetry <= -0.15.

    Attributes:
        passed: both conditions hold.
        auc_ok: fresh AUC reaches ``min_auc``.
        asymmetry_ok: asymmetry exists and is at most ``max_asymmetry``.
        fresh_auc: the AUC tested.
        asymmetry: the asymmetry tested (None: no balanced threshold).
        min_auc: the AUC bar.
        max_asymmetry: the asymmetry bar.
    """

    passed: bool
    auc_ok: bool
    asymmetry_ok: bool
    fresh_auc: float
    asymmetry: float | None
    min_auc: float = GATE_MIN_AUC
    max_asymmetry: float = GATE_MAX_ASYMMETRY

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def gate(fresh_auc: float | AUCResult, asymmetry: float | AsymmetryResult | None) -> GateResult:
    """Apply the gate to a fresh AUC and a best balanced asymmetry.

    >>> gate(0.70, -0.20).passed, gate(0.5187, -0.161).passed
    (True, False)
    """
    auc = fresh_auc.auc if isinstance(fresh_auc, AUCResult) else float(fresh_auc)
    asym = asymmetry.value if isinstance(asymmetry, AsymmetryResult) else asymmetry
    auc_ok = auc >= GATE_MIN_AUC
    asym_ok = asym is not None and asym <= GATE_MAX_ASYMMETRY + 1e-12
    return GateResult(auc_ok and asym_ok, auc_ok, asym_ok, auc, asym)
