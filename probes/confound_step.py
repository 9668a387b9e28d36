"""The confound step: does the probe carry label information beyond named confounds?

Run after step 2, on one fresh set, for each confound and for all of them
together (when there are several):

* *incremental validity* (:mod:`probes.incremental`): confounds alone against
  confounds plus the probe's score, fitted on train, ΔAUC on fresh with a
  paired bootstrap interval and a likelihood-ratio p;
* *stratified AUC* (:mod:`probes.stratified`): the probe's fresh AUC within
  strata of the confound, with a within-strata label-shuffle null;
* *LEACE erasure* (:mod:`probes.erasure`): steps 1 and 2 again on features
  with the confound erased, and how decodable the confound still is.

Verdicts: ``survives`` when, for every confound and for all together, the
incremental test rejects at ``ALPHA`` with the ΔAUC interval above 0 *and*
the within-strata null rejects at ``ALPHA``; otherwise ``explained by
<confound>`` (the one whose ΔAUC is smallest); ``degenerate confound`` when a
confound separates the labels perfectly on both sets (it *is* the label, so
"beyond it" has no meaning); ``not run`` without confounds. Erasure is
evidence, not a veto (it also removes label information collinear with the
confound); where it disagrees with the verdict the step says so and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from probes.confound_inputs import Confound, encode
from probes.crossval import cross_validate
from probes.disposition import GATE_MIN_AUC
from probes.incremental import IncrementalResult, incremental_validity, logit
from probes.metrics import AUCResult, auc_score
from probes.stratified import StratifiedResult, combine_strata, strata_of, stratified_auc
from probes.taxonomy import ALPHA, CHANCE_AUC
from probes.transfer import fit_and_score

__all__ = ["ConfoundResult", "ConfoundStep", "ErasureResult", "confound_step"]

ESCAPE_HATCH = (
    "Rules out 'the probe reads a named confound (length, truncation, task family) that "
    "tracks the label': the probe must add to the confounds on fresh and hold within their strata."
)
TITLE = "Beyond named confounds"
_DROP_NOTE = 0.05
"""An erased fresh AUC this much under the original is explained even when the verdict holds."""


@dataclass(frozen=True)
class ErasureResult:
    """Steps 1 and 2 on LEACE-erased features, and the confounds' decodability.

    Attributes:
        cv: CV AUC on the erased training features.
        fresh: fresh AUC of a probe fitted on the erased training features.
        fresh_p: shuffled-label p of ``fresh``.
        r2_before: in-sample R² of a ridge read-out of the confounds from the features.
        r2_after: the same on the erased features (about 0: erasure worked).
    """

    cv: AUCResult
    fresh: AUCResult
    fresh_p: float
    r2_before: float
    r2_after: float

    @property
    def holds(self) -> bool:
        """The erased probe still transfers: fresh AUC at the gate's bar, interval above chance."""
        return self.fresh.auc >= GATE_MIN_AUC and self.fresh.lo > CHANCE_AUC

    def to_json(self) -> dict[str, Any]:
        return {
            "cv": self.cv.to_json(),
            "fresh": self.fresh.to_json(),
            "fresh_p": self.fresh_p,
            "holds": self.holds,
            "r2_before": self.r2_before,
            "r2_after": self.r2_after,
        }


@dataclass(frozen=True)
class ConfoundResult:
    """One confound (or ``all`` of them together): the three analyses and a verdict."""

    name: str
    kind: str
    verdict: str
    incremental: IncrementalResult | None
    stratified: StratifiedResult | None
    erasure: ErasureResult | None
    sentence: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "verdict": self.verdict,
            "incremental": None if self.incremental is None else self.incremental.to_json(),
            "stratified": None if self.stratified is None else self.stratified.to_json(),
            "erasure": None if self.erasure is None else self.erasure.to_json(),
            "sentence": self.sentence,
        }


@dataclass(frozen=True)
class ConfoundStep:
    """The step's verdict, its one quotable sentence, notes, and each confound's result."""

    verdict: str
    sentence: str
    notes: tuple[str, ...]
    results: tuple[ConfoundResult, ...]
    fresh_auc: float

    def result(self, name: str) -> ConfoundResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "sentence": self.sentence,
            "notes": list(self.notes),
            "alpha": ALPHA,
            "fresh_auc": self.fresh_auc,
            "results": {r.name: r.to_json() for r in self.results},
        }


def _separates(values: np.ndarray, kind: str, y: np.ndarray) -> bool:
    """The confound determines the label on this set (each level pure, or perfect ranking)."""
    if kind == "cat":
        return all(np.unique(y[values == lv]).size == 1 for lv in np.unique(values))
    return auc_score(y, values.astype(np.float64)) in (0.0, 1.0)


def _p(p: float | None) -> str:
    if p is None:
        return "undefined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _sentence(name: str, verdict: str, inc: IncrementalResult, st: StratifiedResult,
              er: ErasureResult | None, fresh_auc: float) -> str:  # fmt: skip
    strat = (
        "no stratum holds both classes"
        if st.auc is None
        else f"within its strata the probe's AUC is {st.auc:.3f} (within-strata shuffles "
        f"{_p(st.p_value)}; {st.n_dropped_strata} one-class strata, {st.n_dropped_items} items, "
        "left out)"
    )
    erased = "" if er is None else f"; after LEACE erasure the fresh AUC is {er.fresh.auc:.3f}"
    lead = "Survives" if verdict == "survives" else verdict[0].upper() + verdict[1:]
    return (
        f"{lead}: on fresh, {name} alone reaches AUC {inc.auc_confounds:.3f} and adding the "
        f"probe's score {inc.auc_combined:.3f} (ΔAUC {inc.delta:+.3f} [{inc.delta_lo:+.3f}, "
        f"{inc.delta_hi:+.3f}], likelihood-ratio {_p(inc.p_value)}); {strat}{erased} "
        f"(probe alone {fresh_auc:.3f})."
    )


def _one(
    name: str,
    kind: str,
    Z: tuple[np.ndarray, np.ndarray],
    strata: np.ndarray,
    data: dict[str, Any],
    opts: dict[str, Any],
) -> ConfoundResult:
    inc = incremental_validity(
        Z[0], data["y"], data["s"], Z[1], data["yf"], data["sf"],
        n_boot=opts["n_boot"], seed=opts["seed"],
    )  # fmt: skip
    st = stratified_auc(data["yf"], data["sf"], strata, n_perm=opts["n_perm"], seed=opts["seed"])
    survives = inc.p_value < ALPHA and inc.delta_lo > 0
    survives = survives and st.p_value is not None and st.p_value < ALPHA
    er = _erase(Z[0], data, opts) if opts["erase"] else None
    verdict = "survives" if survives else f"explained by {name}"
    sentence = _sentence(name, verdict, inc, st, er, data["fresh_auc"])
    return ConfoundResult(name, kind, verdict, inc, st, er, sentence)


def _erase(Z: np.ndarray, data: dict[str, Any], opts: dict[str, Any]) -> ErasureResult:
    from probes.erasure import decodability, leace_erase

    Xe, Xfe = leace_erase(data["X"], data["Xf"], Z)
    est, y, yf = opts["estimator"], data["y"], data["yf"]
    cv = cross_validate(
        est, Xe, y, folds=opts["folds"], seed=opts["seed"], n_boot=opts["n_boot"],
        n_perm=0, n_control=0,
    )  # fmt: skip
    tr = fit_and_score(est, Xe, y, Xfe, yf, n_boot=opts["n_boot"], n_perm=opts["n_perm"],
                       seed=opts["seed"])  # fmt: skip
    return ErasureResult(
        cv.auc, tr.auc, tr.null.p_above, decodability(data["X"], Z), decodability(Xe, Z)
    )


def _erasure_note(r: ConfoundResult, fresh_auc: float) -> str | None:
    er = r.erasure
    if er is None:
        return None
    drop = fresh_auc - er.fresh.auc
    if r.verdict == "survives" and (not er.holds or drop > _DROP_NOTE):
        return (
            f"Erasure of {r.name} lowers the fresh AUC from {fresh_auc:.3f} to "
            f"{er.fresh.auc:.3f}, yet the verdict is 'survives': LEACE removes every direction "
            f"linearly correlated with {r.name}, including label information collinear with "
            "it, while the incremental and within-strata tests ask only whether the probe adds "
            "to it; erasure is evidence, not a veto."
        )
    if r.verdict != "survives" and er.holds:
        return (
            f"Erasure of {r.name} leaves a fresh AUC of {er.fresh.auc:.3f}, yet the verdict is "
            f"'{r.verdict}': the features keep label information linearly independent of "
            f"{r.name}, but the probe's score adds nothing significant to {r.name} on fresh, "
            "or does not hold within its strata."
        )
    return None


def confound_step(
    data: Mapping[str, Any],
    confounds: Mapping[str, Confound],
    *,
    estimator: BaseEstimator,
    train_keep: np.ndarray,
    fresh_keep: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    n_boot: int = 1000,
    n_perm: int = 1000,
    erase: bool = True,
) -> ConfoundStep:
    """Run the confound step on checked inputs (:func:`probes.falsify` checks them).

    Args:
        data: ``X``/``y`` (labelled training items), ``Xf``/``yf`` (labelled fresh
            items), ``oof`` (the probe's out-of-fold p on train), ``pf`` (its p on fresh).
        confounds: checked confounds (:func:`probes.confound_inputs.check_confounds`),
            values for every item (``train_keep``/``fresh_keep`` pick the labelled ones).
        estimator: the probe setting the verdict rests on (refitted after erasure).
        train_keep: which training items are labelled.
        fresh_keep: which fresh items are labelled.
        folds: CV folds for step 1 on erased features.
        seed: seed of folds, bootstrap, shuffles.
        n_boot: bootstrap resamples.
        n_perm: label shuffles (within-strata null, erased fresh null).
        erase: run LEACE erasure (needs torch).
    """
    y, yf = np.asarray(data["y"]).astype(int), np.asarray(data["yf"]).astype(int)
    d = {
        "X": data["X"], "Xf": data["Xf"], "y": y, "yf": yf,
        "s": logit(data["oof"]), "sf": logit(data["pf"]),
        "fresh_auc": auc_score(yf, np.asarray(data["pf"], dtype=np.float64)),
    }  # fmt: skip
    opts = {"estimator": estimator, "folds": folds, "seed": seed, "n_boot": n_boot,
            "n_perm": n_perm, "erase": erase}  # fmt: skip
    results, strata, usable = [], {}, {}
    for name, c in confounds.items():
        tv, fv = c.values("train")[train_keep], c.values("fresh")[fresh_keep]
        if _separates(tv, str(c.kind), y) and _separates(fv, str(c.kind), yf):
            msg = (f"Degenerate confound: {name} separates the labels perfectly on train and "
                   "fresh (it is the label), so 'beyond it' has no meaning; drop it or pick "
                   "another confound.")  # fmt: skip
            results.append(ConfoundResult(name, str(c.kind), "degenerate confound", None, None,
                                          None, msg))  # fmt: skip
            continue
        usable[name] = c
        strata[name] = strata_of(fv, str(c.kind))
        Z = encode({name: c}, train_keep=train_keep, fresh_keep=fresh_keep)
        results.append(_one(name, str(c.kind), Z, strata[name], d, opts))
    if len(usable) > 1:
        Z = encode(usable, train_keep=train_keep, fresh_keep=fresh_keep)
        joint = "+".join(usable)
        results.append(_one(joint, "all", Z, combine_strata(*strata.values()), d, opts))
    notes = tuple(n for r in results if (n := _erasure_note(r, d["fresh_auc"])) is not None)
    degenerate = [r for r in results if r.verdict == "degenerate confound"]
    failing = [r for r in results if r.verdict.startswith("explained by")]
    if degenerate:
        return ConfoundStep("degenerate confound", degenerate[0].sentence, notes,
                            tuple(results), d["fresh_auc"])  # fmt: skip
    if failing:
        single = [r for r in failing if r.kind != "all"] or failing
        worst = min(single, key=lambda r: r.incremental.delta if r.incremental else 0.0)
        return ConfoundStep(worst.verdict, worst.sentence, notes, tuple(results), d["fresh_auc"])
    deciding = results[-1]  # all together when several, else the one
    return ConfoundStep("survives", deciding.sentence, notes, tuple(results), d["fresh_auc"])
