"""The five-step pipeline on the study's features, the hard fresh set and the 2x2 tables.

Inputs that cannot support a trial (a class with fewer items than CV folds, a
fresh set with one class) are not passed to :func:`probes.falsify`; the trial is
listed in ``skipped`` with the counts that ruled it out, so the report says
why a step did not run instead of failing.

>>> usable_reason(np.array([1, 1, 0, 0, 0]), np.array([0, 1]), folds=2, what="correct")
>>> usable_reason(np.array([1, 0, 0, 0, 0]), np.array([0, 1]), folds=2, what="correct")
'correct: train has 1 positive and 4 negative items; 2-fold CV needs 2 of each'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from probes import Confound, FalsificationReport, LinearProbe, diagnose, disposition_table, falsify
from probes.transfer import fit_and_score
from workbench.study.collect import H_LAST, SplitData
from workbench.study.config import ProbeConfig
from workbench.study.confounds import study_confounds
from workbench.study.labels import SplitLabels
from workbench.study.second import SecondSplit

__all__ = [
    "Falsification",
    "dispositions_json",
    "hard_transfer",
    "run_falsification",
    "usable_reason",
]


def usable_reason(
    y_train: np.ndarray, y_fresh: np.ndarray | None, *, folds: int, what: str
) -> str | None:
    """Why these labels cannot support CV and a transfer test (None when they can)."""
    n_pos = int(np.sum(y_train == 1))
    n_neg = int(np.sum(y_train == 0))
    if min(n_pos, n_neg) < folds:
        return (
            f"{what}: train has {n_pos} positive and {n_neg} negative items; "
            f"{folds}-fold CV needs {folds} of each"
        )
    if y_fresh is not None:
        f_pos = int(np.sum(y_fresh == 1))
        if f_pos in (0, y_fresh.size):
            return (
                f"{what}: the fresh set has one class ({f_pos} positive of {y_fresh.size}): "
                "its AUC is undefined"
            )
    return None


@dataclass(frozen=True)
class Falsification:
    """The pipeline's report (None when the main trial could not run), what was skipped,
    and the main probe refitted on all training items with the C chosen by CV."""

    report: FalsificationReport | None
    skipped: Mapping[str, str]
    probe: LinearProbe | None = None
    C: float | None = None
    hard: Mapping[str, Any] = field(default_factory=dict)
    dropped: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "confounds_left_out": dict(self.dropped),
            "verdict": None if self.report is None else self.report.verdict,
            "report": None if self.report is None else self.report.to_json(),
            "skipped": dict(self.skipped),
            "selected_C": self.C,
            "fresh_hard": dict(self.hard),
        }


def run_falsification(
    data: Mapping[str, SplitData],
    labels: Mapping[str, SplitLabels],
    second: Mapping[str, SecondSplit] | None,
    cfg: ProbeConfig,
    *,
    pooled_last_n: int,
    seed: int,
    say: Callable[[str], None] | None = None,
) -> Falsification:
    """Steps 1-5 on h_last (correct), the axes, last-N pooled, the second model.

    ``pooled_last_n`` is the ``[capture]`` pooling step 4 reads; ``seed`` the run's seed.
    """
    folds = cfg.folds
    train, fresh = data["train"], data["fresh"]
    y_tr, y_fr = labels["train"].array("correct"), labels["fresh"].array("correct")
    skipped: dict[str, str] = {}
    main_reason = usable_reason(y_tr, y_fr, folds=folds, what="correct")
    if main_reason:
        skipped["main"] = main_reason
        return Falsification(None, skipped)
    axes = {}
    for axis in cfg.axes:
        a_tr, a_fr = labels["train"].array(axis), labels["fresh"].array(axis)
        reason = usable_reason(a_tr, a_fr, folds=folds, what=axis)
        if reason:
            skipped[f"axis:{axis}"] = reason
        else:
            axes[axis] = (a_tr, a_fr)
    pooled = f"mean_last_n({pooled_last_n})"
    confounds: dict[str, Confound] = {}
    dropped: dict[str, str] = {}
    if cfg.confounds:
        confounds, dropped = study_confounds(labels["train"].rows, labels["fresh"].rows)
    second_pair = second_labels = None
    if second is not None:
        s_tr, s_fr = second["train"], second["fresh"]
        reason = usable_reason(s_tr.correct, s_fr.correct, folds=folds, what="second model")
        if reason:
            skipped["second_model"] = reason
        else:
            second_pair = (s_tr.X, s_fr.X)
            second_labels = (s_tr.correct, s_fr.correct)
    else:
        skipped["second_model"] = "second model disabled in the config ([second_model] enabled)"
    report = falsify(
        train.site(H_LAST),
        y_tr,
        fresh_X=fresh.site(H_LAST),
        fresh_y=y_fr,
        axes=axes or None,
        layers=(train.site(pooled), fresh.site(pooled)),
        second_model=second_pair,
        second_model_labels=second_labels,
        confounds=confounds or None,
        erase_confounds=cfg.erase_confounds,
        Cs=cfg.Cs,
        folds=folds,
        seed=seed,
        n_boot=cfg.n_boot,
        n_perm=cfg.n_perm,
        n_control=cfg.n_control,
        progress=say,
    )
    C = float(report.trial("main").best.params["C"])
    probe = LinearProbe(C=C).fit(train.site(H_LAST), y_tr.astype(int))
    hard = {}
    if "fresh_hard" in data:
        hard = hard_transfer(
            report, data["train"], y_tr, data["fresh_hard"], labels, cfg, seed=seed
        )
    return Falsification(report, skipped, probe, C, hard, dropped)


def hard_transfer(
    report: FalsificationReport,
    train: SplitData,
    y_train: np.ndarray,
    hard: SplitData,
    labels: Mapping[str, SplitLabels],
    cfg: ProbeConfig,
    *,
    seed: int,
) -> dict[str, Any]:
    """Step 2 again on the harder fresh set: where a capability cliff would show."""
    y_h = labels["fresh_hard"].array("correct")
    n_pos, n = int(y_h.sum()), int(y_h.size)
    train_rate = float(y_train.mean())
    base = {"n": n, "n_pos": n_pos, "pos_rate": n_pos / n, "train_pos_rate": train_rate}
    if n_pos in (0, n):
        cliff = n_pos == 0 and train_rate > 0
        return {
            **base,
            "transfer": None,
            "diagnosis": {
                "verdict": "capability_cliff" if cliff else "undefined",
                "flags": ["base_rate_collapse"] if cliff else [],
                "explanation": (
                    f"The harder set has {n_pos} correct answers of {n} (train: "
                    f"{train_rate:.3f}): "
                    + (
                        "the model lost the capability entirely, so no probe can be tested on it "
                        "(AUC undefined)."
                        if cliff
                        else "one class only, so the AUC is undefined."
                    )
                ),
            },
        }
    C = float(report.trial("main").best.params["C"])
    result = fit_and_score(
        LinearProbe(C=C),
        train.site(H_LAST),
        y_train,
        hard.site(H_LAST),
        y_h,
        n_boot=cfg.n_boot,
        n_perm=cfg.n_perm,
        seed=seed,
    )
    diagnosis = diagnose(
        train_y=y_train,
        fresh_y=y_h,
        cv_auc=report.trial("main").best.cv.auc,
        fresh_auc=result.auc,
        asymmetry=result.asymmetry,
    )
    return {**base, "transfer": result.to_json(), "diagnosis": diagnosis.to_json()}


def dispositions_json(labels: Mapping[str, SplitLabels]) -> dict[str, Any]:
    """The 2x2 of correct against the verbal label, per split (the decoupling measurement)."""
    return {
        name: disposition_table(lab.array("correct").astype(int), lab.verbal).to_json()
        for name, lab in labels.items()
    }
