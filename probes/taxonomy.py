"""Why a probe failed to transfer: the two-failure-mode taxonomy, and more.

A probe fitted on a training set and scored on a fresh one ends in one of
these verdicts (checked in this order):

``cv_fail``
    Within-distribution CV finds no handle: there was nothing to transfer.
    Checked first, because every failure mode below presumes a signal in
    training (a base-rate collapse on fresh is still flagged, as context).
``pass``
    Fresh AUC reaches the gate's bar and its interval excludes chance.
``below_chance``
    Fresh AUC is *significantly below* chance (interval entirely under 0.5):
    the probe reads something that flips between the sets, a confound such as
    topic, length or style, not the behaviour.
``capability_cliff``
    The rate of one class collapses on fresh (under ``CLIFF_RATE_RATIO`` of
    its training rate): the generator lost the capability the label measures,
    so the fresh set cannot test the probe, and threshold metrics such as the
    assertion asymmetry become class-imbalance artifacts.
``weak_transfer``
    Fresh AUC is above chance (interval excludes 0.5) but under the gate's bar.
``single_output_distribution``
    CV finds a handle, the fresh base rate is comparable, yet the fresh AUC
    cannot be told from chance: the classes are not separable in the features
    of the fresh outputs, though the labels separate them.

Flags add what the verdict alone hides: ``base_rate_collapse``,
``below_chance``, ``cv_not_passed``, ``degenerate_asymmetry`` and
``asymmetry_undefined``. Every verdict comes with its evidence.

Thresholds, and why:

* ``CHANCE_AUC = 0.5``; "distinguishable from chance" uses the AUC's bootstrap
  interval (95%), so it widens by itself when a class is small.
* ``CV_MIN_AUC = GATE_MIN_AUC`` (0.63): a within-distribution handle weaker
  than the bar the gate sets on fresh data cannot pass the gate, so calling it
  a handle would promise what step 2 cannot deliver.
* ``CLIFF_RATE_RATIO = 1/3``: a class keeping under a third of its training
  share. At the sizes probes are run on (about 100 items per set, a class
  rate near one half) the 95% sampling interval of a rate is about +-0.1, so
  a drop to a third (0.5 -> 0.17) is far outside sampling noise and changes
  the odds by about 5x; a drop to one half leaves tens of items in the class
  and is still treated as "comparable".
* ``ALPHA = 0.05`` and ``DEGENERATE_NULL_RATE = 0.20``: the asymmetry is
  flagged *degenerate* when it cannot be told from shuffled labels at the same
  class counts (permutation p > ``ALPHA``, or no balanced threshold at all)
  and either it clears the gate's bar anyway or shuffles clear that bar at
  least one time in five: a bar that chance clears that often carries no
  evidence at these class counts. (With a balanced 96/97 split and scores
  unrelated to the labels, shuffles clear it about 4% of the time; with 9
  positives among 193, about 40%.) Needs the asymmetry's label shuffles
  (``n_perm > 0``).

>>> import numpy as np
>>> from probes.metrics import AUCResult
>>> d = diagnose(
...     train_y=np.r_[np.ones(56), np.zeros(44)],
...     fresh_y=np.r_[np.ones(9), np.zeros(184)],
...     cv_auc=AUCResult(0.80, 0.70, 0.88, 56, 44),
...     fresh_auc=AUCResult(0.52, 0.34, 0.71, 9, 184),
... )
>>> d.verdict, d.flags
('capability_cliff', ('base_rate_collapse',))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from probes.disposition import GATE_MAX_ASYMMETRY, GATE_MIN_AUC, AsymmetryResult
from probes.metrics import AUCResult
from workbench.core.errors import WorkbenchError

__all__ = [
    "ALPHA",
    "CHANCE_AUC",
    "CLIFF_RATE_RATIO",
    "CV_MIN_AUC",
    "DEGENERATE_NULL_RATE",
    "VERDICTS",
    "Diagnosis",
    "Evidence",
    "diagnose",
]

CHANCE_AUC = 0.5
CV_MIN_AUC = GATE_MIN_AUC
CLIFF_RATE_RATIO = 1 / 3
ALPHA = 0.05
DEGENERATE_NULL_RATE = 0.20
VERDICTS = (
    "cv_fail",
    "pass",
    "below_chance",
    "capability_cliff",
    "weak_transfer",
    "single_output_distribution",
)


@dataclass(frozen=True)
class Evidence:
    """The numbers a diagnosis rests on.

    Attributes:
        train_n_pos: training items labelled 1.
        train_n_neg: training items labelled 0.
        fresh_n_pos: fresh items labelled 1.
        fresh_n_neg: fresh items labelled 0.
        train_pos_rate: share of 1s in training.
        fresh_pos_rate: share of 1s in fresh.
        pos_rate_ratio: fresh_pos_rate / train_pos_rate.
        neg_rate_ratio: the same for the 0s.
        cv_auc: within-distribution CV AUC (None when not run).
        fresh_auc: transfer AUC.
        asymmetry: best balanced asymmetry on fresh (None when not computed).
    """

    train_n_pos: int
    train_n_neg: int
    fresh_n_pos: int
    fresh_n_neg: int
    train_pos_rate: float
    fresh_pos_rate: float
    pos_rate_ratio: float
    neg_rate_ratio: float
    cv_auc: AUCResult | None
    fresh_auc: AUCResult
    asymmetry: AsymmetryResult | None

    def to_json(self) -> dict[str, Any]:
        return {
            "train_n_pos": self.train_n_pos,
            "train_n_neg": self.train_n_neg,
            "fresh_n_pos": self.fresh_n_pos,
            "fresh_n_neg": self.fresh_n_neg,
            "train_pos_rate": self.train_pos_rate,
            "fresh_pos_rate": self.fresh_pos_rate,
            "pos_rate_ratio": self.pos_rate_ratio,
            "neg_rate_ratio": self.neg_rate_ratio,
            "cv_auc": None if self.cv_auc is None else self.cv_auc.to_json(),
            "fresh_auc": self.fresh_auc.to_json(),
            "asymmetry": None if self.asymmetry is None else self.asymmetry.to_json(),
        }


@dataclass(frozen=True)
class Diagnosis:
    """A verdict from :data:`VERDICTS`, flags, a plain-language explanation, evidence."""

    verdict: str
    flags: tuple[str, ...]
    explanation: str
    evidence: Evidence

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "flags": list(self.flags),
            "explanation": self.explanation,
            "evidence": self.evidence.to_json(),
        }


def _counts(y: ArrayLike, which: str) -> tuple[int, int]:
    arr = np.asarray(y, dtype=np.float64).ravel()
    arr = arr[~np.isnan(arr)]
    if not np.isin(arr, (0, 1)).all():
        raise WorkbenchError(f"{which} must be 0/1 labels, got {np.unique(arr)[:5].tolist()}")
    n_pos = int(arr.sum())
    if n_pos == 0 or n_pos == arr.size:
        raise WorkbenchError(
            f"{which} have one class (all {int(n_pos > 0)}, {arr.size} items): "
            "a diagnosis needs both classes; pass a set with both"
        )
    return n_pos, arr.size - n_pos


def _degenerate(asym: AsymmetryResult | None) -> bool:
    if asym is None or asym.null_bar_rate is None:
        return False
    if asym.p_value is not None and asym.p_value <= ALPHA:
        return False  # better than shuffled labels at these counts: real evidence
    clears = asym.value is not None and asym.value <= GATE_MAX_ASYMMETRY + 1e-12
    return clears or asym.null_bar_rate >= DEGENERATE_NULL_RATE


def diagnose(
    *,
    train_y: ArrayLike,
    fresh_y: ArrayLike,
    cv_auc: AUCResult | None,
    fresh_auc: AUCResult,
    asymmetry: AsymmetryResult | None = None,
) -> Diagnosis:
    """Classify a transfer result (see the module docstring for the verdicts).

    Args:
        train_y: training labels (0/1; NaN marks an unlabelled item).
        fresh_y: fresh labels.
        cv_auc: the within-distribution CV AUC with its interval (None if not run).
        fresh_auc: the transfer AUC with its interval.
        asymmetry: the fresh best balanced asymmetry, ideally with label
            shuffles (``n_perm > 0``) so a degenerate one can be recognised.

    >>> from probes.metrics import AUCResult
    >>> diagnose(train_y=[0, 1] * 50, fresh_y=[0, 1] * 50,
    ...          cv_auc=AUCResult(0.9, 0.85, 0.95, 50, 50),
    ...          fresh_auc=AUCResult(0.88, 0.8, 0.94, 50, 50)).verdict
    'pass'
    """
    tp, tn = _counts(train_y, "train labels")
    fp, fn = _counts(fresh_y, "fresh labels")
    t_rate, f_rate = tp / (tp + tn), fp / (fp + fn)
    pos_ratio, neg_ratio = f_rate / t_rate, (1 - f_rate) / (1 - t_rate)
    ev = Evidence(
        tp, tn, fp, fn, t_rate, f_rate, pos_ratio, neg_ratio, cv_auc, fresh_auc, asymmetry
    )

    cv_ok = cv_auc is not None and cv_auc.auc >= CV_MIN_AUC and cv_auc.lo > CHANCE_AUC
    collapse = min(pos_ratio, neg_ratio) < CLIFF_RATE_RATIO
    below = fresh_auc.hi < CHANCE_AUC
    transfers = fresh_auc.auc >= GATE_MIN_AUC and fresh_auc.lo > CHANCE_AUC

    flags = []
    if collapse:
        flags.append("base_rate_collapse")
    if below:
        flags.append("below_chance")
    if cv_auc is not None and not cv_ok:
        flags.append("cv_not_passed")
    if _degenerate(asymmetry):
        flags.append("degenerate_asymmetry")
    if asymmetry is not None and asymmetry.value is None:
        flags.append("asymmetry_undefined")

    if cv_auc is not None and not cv_ok:
        verdict = "cv_fail"
    elif transfers:
        verdict = "pass"
    elif below:
        verdict = "below_chance"
    elif collapse:
        verdict = "capability_cliff"
    elif fresh_auc.lo > CHANCE_AUC:
        verdict = "weak_transfer"
    else:
        verdict = "single_output_distribution"
    return Diagnosis(verdict, tuple(flags), _explain(verdict, flags, ev), ev)


def _rate(n_pos: int, n_neg: int) -> str:
    return f"{n_pos / (n_pos + n_neg):.3f} ({n_pos}/{n_pos + n_neg})"


def _explain(verdict: str, flags: list[str], ev: Evidence) -> str:
    fresh = f"fresh AUC {ev.fresh_auc}"
    rates = (
        f"the positive rate goes from {_rate(ev.train_n_pos, ev.train_n_neg)} on train to "
        f"{_rate(ev.fresh_n_pos, ev.fresh_n_neg)} on fresh"
    )
    handle = (
        "no CV AUC was given (the handle in training is assumed)"
        if ev.cv_auc is None
        else f"CV finds a handle (AUC {ev.cv_auc})"
    )
    lead = {
        "pass": f"The probe transfers: {fresh} reaches the bar of {GATE_MIN_AUC} and excludes chance.",
        "below_chance": (
            f"The probe scores fresh items below chance ({fresh}): it reads a feature that "
            "flips between the sets (a confound such as topic, length or style), not the behaviour."
        ),
        "capability_cliff": (
            f"Capability cliff: {rates} (ratio {ev.pos_rate_ratio:.3f}; a class fell under "
            f"{CLIFF_RATE_RATIO:.2f} of its training share). The generator lost the capability "
            f"the label measures, so the fresh set cannot test the probe ({fresh})."
        ),
        "cv_fail": (
            f"No handle within the training distribution (CV AUC {ev.cv_auc}), so there was "
            f"nothing to transfer ({fresh})."
        ),
        "weak_transfer": (
            f"The probe transfers weakly: {fresh} is above chance but under the bar of "
            f"{GATE_MIN_AUC}."
        ),
        "single_output_distribution": (
            f"Single output distribution: {handle} and {rates} "
            f"(comparable), yet {fresh} cannot be told from chance: the fresh outputs are not "
            "separable in these features though their labels differ."
        ),
    }[verdict]
    notes = []
    if "base_rate_collapse" in flags and verdict != "capability_cliff":
        notes.append(
            f"Note: {rates}, a collapse that makes threshold metrics unreliable"
            + (" (a capability cliff on top)." if verdict == "cv_fail" else ".")
        )
    if "cv_not_passed" in flags and verdict != "cv_fail":
        notes.append(f"CV itself finds no handle (AUC {ev.cv_auc}).")
    a = ev.asymmetry
    if "degenerate_asymmetry" in flags and a is not None and a.null_bar_rate is not None:
        counts = f"{a.n_pos} correct vs {a.n_neg} wrong items"
        chance = (
            f"shuffled labels at these counts clear that bar in {a.null_bar_rate:.0%} of shuffles"
        )
        if a.value is None or a.threshold is None or a.p_value is None:
            notes.append(
                f"Degenerate asymmetry: with {counts}, {chance}; the gate's asymmetry bar of "
                f"{GATE_MAX_ASYMMETRY} carries no evidence on this set."
            )
        else:
            verb = "clears" if a.value <= GATE_MAX_ASYMMETRY + 1e-12 else "does not clear"
            notes.append(
                f"Degenerate asymmetry: {a.value:.3f} at threshold {a.threshold:.2f} {verb} the "
                f"gate's bar of {GATE_MAX_ASYMMETRY} with {counts}, but {chance} and reach "
                f"{a.value:.3f} with p = {a.p_value:.2f}: a class-imbalance artifact, not a "
                "disposition."
            )
    if "asymmetry_undefined" in flags:
        notes.append("No threshold asserts on 70% of correct items, so the asymmetry is undefined.")
    return " ".join([lead, *notes])
