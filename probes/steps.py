"""The five steps: the escape hatch each closes, and its verdict from its trials.

Verdicts (the run each rests on is the trial's, chosen by CV AUC):

1. *CV*: pooled out-of-fold AUC >= ``CV_MIN_AUC`` (0.63), its interval above
   0.5 and the AUC above shuffled-label chance (p < 0.05).
2. *Fresh*: the gate (fresh AUC >= 0.63 and asymmetry <= -0.15) and fresh
   AUC above shuffled-label chance (p < 0.05).
3. *Axes*: per axis, fresh AUC >= 0.63 above chance (the asymmetry is a
   correctness notion, so not required); the step passes when at least one
   axis does (CV alone when an axis has no fresh labels). With a single
   testable axis the step is ``not run``: one axis cannot say whether
   correctness was the wrong target (on the default study it is the main
   label again, so it would repeat step 2); its trial is still reported.
4. *Layers* and 5. *Second model*: as step 2 on their own features (as step 1
   when no fresh set).
6. *Confounds* (:mod:`probes.confound_step`): ``survives``, ``explained by
   <confound>``, ``degenerate confound`` or ``not run``; it runs whenever
   confounds and a fresh set are given, also when step 2 fails (as context).
"""

from __future__ import annotations

from probes.confound_step import ESCAPE_HATCH as CONFOUND_HATCH
from probes.confound_step import TITLE as CONFOUND_TITLE
from probes.confound_step import ConfoundStep
from probes.report import StepResult, Trial

__all__ = ["ESCAPE_HATCHES", "TITLES", "confound_result", "step_result"]

ESCAPE_HATCHES = {
    "cv": "Rules out 'the signal is an artefact of scoring the items the probe was fitted on': "
    "held-out folds of the training distribution.",
    "fresh": "Rules out 'CV only learned quirks of one generator': a probe must score items "
    "from an independent generator it never saw.",
    "axes": "Rules out 'correctness was the wrong target': every other behaviour axis gets "
    "its own probe and its own transfer test.",
    "layers": "Rules out 'the last layer was the wrong read-out': the mean of the last N "
    "layers is probed instead.",
    "second_model": "Rules out 'one model's idiosyncrasy': the same items through a second "
    "model of another family.",
    "confounds": CONFOUND_HATCH,
}
TITLES = {
    "cv": "Within-distribution CV",
    "fresh": "Fresh held-out set",
    "axes": "Every label axis",
    "layers": "Mean of last N layers",
    "second_model": "Second model",
    "confounds": CONFOUND_TITLE,
}


def confound_result(step: ConfoundStep | None, reason: str, fresh: StepResult) -> StepResult:
    """Step 6 from the confound step's result (``reason`` says why it did not run)."""
    hatch, title = ESCAPE_HATCHES["confounds"], TITLES["confounds"]
    if step is None:
        return StepResult(6, "confounds", title, "not run", hatch, reason)
    summary = step.sentence
    if fresh.verdict == "fail":
        summary += " Step 2 failed too, so this is context: there is little signal to explain."
    if step.notes:
        summary += " " + " ".join(step.notes)
    return StepResult(6, "confounds", title, step.verdict, hatch, summary, ("main",))


def _numbers(trial: Trial, use_transfer: bool) -> str:
    r = trial.best
    if use_transfer and r.transfer is not None:
        t = r.transfer
        a = t.asymmetry
        asym = "undefined" if a.value is None else f"{a.value:.3f} at threshold {a.threshold:.2f}"
        return (
            f"fresh AUC {t.auc} ({r.label}; {t.auc.n_pos}/{t.auc.n_pos + t.auc.n_neg} positive), "
            f"shuffled-label chance {t.null.null_mean:.3f} (p = {t.null.p_above:.3f}); "
            f"asymmetry {asym}; gate {'passed' if t.gate.passed else 'failed'}"
        )
    ctrl = f", control task {r.cv.control.mean:.3f}" if r.cv.control else ""
    return f"CV AUC {r.cv.auc} ({r.label}{ctrl})"


def step_result(
    number: int, name: str, trials: list[Trial], use_transfer: bool = True
) -> StepResult:
    """A step's verdict and summary sentence from the trials it rests on."""
    hatch, title = ESCAPE_HATCHES[name], TITLES[name]
    if not trials:
        return StepResult(number, name, title, "not run", hatch, "Inputs not given.")
    if name == "cv":
        verdict = "pass" if trials[0].best.cv_passed else "fail"
        summary = _numbers(trials[0], use_transfer=False)
    elif name == "axes" and len(trials) == 1:
        only = trials[0].name.removeprefix("axis:")
        return StepResult(
            number, name, title, "not run", hatch,
            f"Only one testable axis ({only}: {_auc_pair(trials[0])}): one axis cannot rule "
            "out 'correctness was the wrong target'; give at least two axes with both classes.",
            (trials[0].name,),
        )  # fmt: skip
    elif name == "axes":
        passed = [t.name.removeprefix("axis:") for t in trials if t.verdict == "pass"]
        verdict = "pass" if passed else "fail"
        parts = [f"{t.name.removeprefix('axis:')}: {_auc_pair(t)}" for t in trials]
        summary = (
            f"{len(passed)} of {len(trials)} axes hold ({', '.join(passed) or 'none'}); "
            + "; ".join(parts)
        )
    else:
        verdict = trials[0].verdict
        summary = _numbers(trials[0], use_transfer)
    return StepResult(number, name, title, verdict, hatch, summary, tuple(t.name for t in trials))


def _auc_pair(t: Trial) -> str:
    r = t.best
    fresh = f", fresh {r.transfer.auc.auc:.3f}" if r.transfer is not None else ""
    return f"CV {r.cv.auc.auc:.3f}{fresh} ({t.verdict})"
