"""One probed axis through the same steps: fit on train, test on fresh, step 6 per fresh set.

Used for every probe the decision rests on besides the main pipeline run
(which adds steps 3-5 for ``correct``): ``asserts`` on the hedge-licensing
condition, and the machinery's positive and negative controls. Each is a
:func:`probes.falsify` run with the named confounds (step 6 on the main fresh
set) plus :func:`~workbench.study.confounds.extra_confound_step` on every
further fresh set.

Reading on fresh (``reads``): the gate for ``correct`` (step 2: fresh AUC >=
0.63 and asymmetry <= -0.15, above shuffled-label chance); for any other
label the asymmetry is not defined (it is a correctness notion), so fresh AUC
>= 0.63 above shuffled-label chance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from probes import Confound, ConfoundStep, FalsificationReport, Trial, falsify
from probes.disposition import GATE_MIN_AUC
from probes.taxonomy import ALPHA
from workbench.study.config import ProbeConfig
from workbench.study.confounds import extra_confound_step, study_confounds
from workbench.study.falsification import usable_reason

__all__ = ["AxisRun", "FreshSet", "axis_reads", "run_axis"]


@dataclass(frozen=True)
class FreshSet:
    """A held-out set: features, 0/1 labels and the label rows the confounds come from."""

    X: np.ndarray
    y: np.ndarray
    rows: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class AxisRun:
    """One axis: its pipeline report (None when it could not run), step 6 on further sets."""

    axis: str
    condition: str
    report: FalsificationReport | None
    skipped: str | None = None
    dropped: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, ConfoundStep | None] = field(default_factory=dict)
    gate: bool = False

    @property
    def main(self) -> Trial | None:
        return None if self.report is None else self.report.trial("main")

    @property
    def confound_verdict(self) -> str:
        if self.report is None:
            return "not run"
        return self.report.step("confounds").verdict

    def to_json(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "condition": self.condition,
            "skipped": self.skipped,
            "criterion": "gate" if self.gate else "fresh AUC >= 0.63 above chance",
            "reads": axis_reads(self),
            "confound_verdict": self.confound_verdict,
            "confounds_left_out": dict(self.dropped),
            "report": None if self.report is None else self.report.to_json(),
            "confounds_further_sets": {
                k: None if v is None else v.to_json() for k, v in self.extra.items()
            },
        }


def axis_reads(run: AxisRun) -> dict[str, bool | None]:
    """Step 1 and the fresh read-out (the gate for correct, AUC above chance otherwise)."""
    if run.report is None or run.main is None:
        return {"cv": None, "fresh": None}
    best = run.main.best
    cv = run.report.step("cv").verdict == "pass"
    if run.gate:
        fresh = run.report.step("fresh").verdict == "pass"
    else:
        t = best.transfer
        fresh = t is not None and t.auc.auc >= GATE_MIN_AUC and t.null.p_above < ALPHA
    return {"cv": cv, "fresh": bool(fresh)}


def run_axis(
    axis: str,
    condition: str,
    train: FreshSet,
    fresh: Mapping[str, FreshSet],
    cfg: ProbeConfig,
    *,
    seed: int,
) -> AxisRun:
    """Fit on ``train``, test on ``fresh["fresh"]`` with step 6, then step 6 on the other sets."""
    main = fresh["fresh"]
    reason = usable_reason(train.y, main.y, folds=cfg.folds, what=axis)
    if reason:
        return AxisRun(axis, condition, None, reason)
    confounds: dict[str, Confound] = {}
    dropped: dict[str, str] = {}
    if cfg.confounds:
        confounds, dropped = study_confounds(train.rows, main.rows)
    report = falsify(
        train.X, train.y, fresh_X=main.X, fresh_y=main.y, confounds=confounds or None,
        erase_confounds=cfg.erase_confounds, Cs=cfg.Cs, folds=cfg.folds, seed=seed,
        n_boot=cfg.n_boot, n_perm=cfg.n_perm, n_control=cfg.n_control,
    )  # fmt: skip
    extra = further_sets(report, train, fresh, cfg, seed=seed)
    return AxisRun(axis, condition, report, None, dropped, extra)


def further_sets(
    report: FalsificationReport,
    train: FreshSet,
    fresh: Mapping[str, FreshSet],
    cfg: ProbeConfig,
    *,
    seed: int,
) -> dict[str, ConfoundStep | None]:
    """Step 6 on every fresh set but the main one, with the main trial's chosen probe."""
    from probes import LinearProbe

    best = report.trial("main").best
    C = float(best.params["C"])
    out: dict[str, ConfoundStep | None] = {}
    for name, fs in fresh.items():
        if name == "fresh" or not cfg.confounds:
            continue
        confounds, _ = study_confounds(train.rows, fs.rows)
        probe = LinearProbe(C=C).fit(train.X, train.y.astype(int))
        scores = probe.predict_proba(fs.X)[:, 1]
        out[name] = extra_confound_step(
            train.X, train.y.astype(int), best.cv.scores, fs.X, fs.y, scores, confounds,
            C=C, folds=cfg.folds, seed=seed, n_boot=cfg.n_boot, n_perm=cfg.n_perm,
            erase=cfg.erase_confounds,
        )  # fmt: skip
    return out
