"""The falsification report: frozen results with ``to_json`` and ``to_markdown``.

JSON layout of :meth:`FalsificationReport.to_json` (``schema`` names it):

``schema``
    ``"probes.falsification/1"``.
``verdict``
    ``"pass"`` (all five steps ran and passed, and the confound step, where it
    ran, says ``survives``), ``"fail"`` (a step that ran failed, or the
    confound step says ``explained by <confound>``) or ``"incomplete"``
    (nothing failed, some of steps 1-5 not run, or a degenerate confound).
``gate``
    ``{"min_auc": 0.63, "max_asymmetry": -0.15}``.
``config``
    ``probe`` (class name), ``probe_params``, ``Cs``, ``folds``, ``seed``,
    ``n_boot``, ``n_perm``, ``n_control``, ``n_last_layers``, ``confounds`` (name ->
    ``num``/``cat``, or null) and ``erase_confounds``.
``steps``
    six objects: ``step`` (1-6), ``name`` (``cv``, ``fresh``, ``axes``,
    ``layers``, ``second_model``, ``confounds``), ``title``, ``verdict``
    (``pass``/``fail``/``not run``; step 6: ``survives``, ``explained by
    <confound>``, ``degenerate confound`` or ``not run``), ``escape_hatch`` (what the step rules out), ``summary`` (a
    sentence with the numbers behind the verdict), ``trials`` (names of the
    trials it rests on).
``trials``
    name -> trial (``main``, ``axis:<name>``, ``layers``, ``second_model``):
    ``features`` (description), ``criterion`` (``gate`` or ``auc``), ``train``
    and ``fresh`` data summaries (``n``, ``n_labelled``, ``n_pos``, ``n_neg``,
    ``pos_rate``, ``width``), ``selected`` (label of the run chosen by CV AUC),
    ``verdict``, and ``runs``: per probe setting (e.g. ``C=1.0``) ``label``,
    ``params``, ``cv_passed``, ``transfer_passed``, ``cv`` (pooled out-of-fold
    ``auc`` with ``lo``/``hi``/``n_pos``/``n_neg``, ``fold_aucs``, ``control``
    task, ``selectivity``, ``scores``, ``labels``), ``transfer`` (fresh ``auc``,
    ``null`` from shuffled labels, ``asymmetry``, ``gate``, ``disposition``,
    ``assert_threshold``, ``scores``, ``labels``; null without fresh data) and
    ``diagnosis`` (see below; null without fresh data).
``diagnosis``
    the main trial's selected run: ``verdict``, ``flags``, ``explanation``,
    ``evidence`` (class counts, positive rates and their ratios, CV and fresh
    AUC with intervals, asymmetry).
``confounds``
    null when the confound step did not run; else ``verdict``, ``sentence``,
    ``notes`` (where erasure disagrees, and why), ``alpha``, ``fresh_auc`` and
    ``results``: per confound and for all together (``a+b``) its ``kind``,
    ``verdict``, ``incremental`` (``auc_confounds``, ``auc_combined``,
    ``delta`` with ``delta_lo``/``delta_hi``, ``lr_stat``, ``p_value``,
    ``score_coef``), ``stratified`` (``auc``, ``p_value``, ``null_mean``,
    ``n_pairs``, strata used and dropped) and ``erasure`` (erased ``cv`` and
    ``fresh`` AUCs, ``fresh_p``, ``holds``, the confounds' in-sample
    ``r2_before``/``r2_after``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from probes.confound_step import ConfoundStep
from probes.crossval import CVResult
from probes.disposition import GATE_MAX_ASYMMETRY, GATE_MIN_AUC
from probes.taxonomy import Diagnosis
from probes.transfer import TransferResult
from workbench.core.errors import WorkbenchError

__all__ = ["SCHEMA", "DataSummary", "FalsificationReport", "ProbeRun", "StepResult", "Trial"]

SCHEMA = "probes.falsification/1"


@dataclass(frozen=True)
class DataSummary:
    """Size and class balance of one labelled feature set."""

    n: int
    n_labelled: int
    n_pos: int
    n_neg: int
    width: int

    @property
    def pos_rate(self) -> float:
        return self.n_pos / self.n_labelled

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "n_labelled": self.n_labelled,
            "n_pos": self.n_pos,
            "n_neg": self.n_neg,
            "pos_rate": self.pos_rate,
            "width": self.width,
        }


@dataclass(frozen=True)
class ProbeRun:
    """One probe setting (e.g. ``C=0.1``) evaluated on one trial."""

    label: str
    params: dict[str, Any]
    cv: CVResult
    cv_passed: bool
    transfer: TransferResult | None = None
    transfer_passed: bool | None = None
    diagnosis: Diagnosis | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "params": dict(self.params),
            "cv_passed": self.cv_passed,
            "transfer_passed": self.transfer_passed,
            "cv": self.cv.to_json(),
            "transfer": None if self.transfer is None else self.transfer.to_json(),
            "diagnosis": None if self.diagnosis is None else self.diagnosis.to_json(),
        }


@dataclass(frozen=True)
class Trial:
    """One (features, labels) pair, run for every probe setting."""

    name: str
    features: str
    criterion: str
    train: DataSummary
    fresh: DataSummary | None
    runs: tuple[ProbeRun, ...]
    selected: int

    @property
    def best(self) -> ProbeRun:
        """The run chosen by CV AUC (never by fresh AUC)."""
        return self.runs[self.selected]

    @property
    def verdict(self) -> str:
        run = self.best
        ok = run.cv_passed if run.transfer_passed is None else run.transfer_passed
        return "pass" if ok else "fail"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "features": self.features,
            "criterion": self.criterion,
            "train": self.train.to_json(),
            "fresh": None if self.fresh is None else self.fresh.to_json(),
            "selected": self.best.label,
            "verdict": self.verdict,
            "runs": [r.to_json() for r in self.runs],
        }


@dataclass(frozen=True)
class StepResult:
    """One of the five steps: verdict, the escape hatch it closes, the numbers."""

    step: int
    name: str
    title: str
    verdict: str
    escape_hatch: str
    summary: str
    trials: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "name": self.name,
            "title": self.title,
            "verdict": self.verdict,
            "escape_hatch": self.escape_hatch,
            "summary": self.summary,
            "trials": list(self.trials),
        }


def _counts(d: DataSummary | None) -> str:
    return "-" if d is None else f"{d.n_pos} / {d.n_labelled} ({d.n})"


@dataclass(frozen=True)
class FalsificationReport:
    """Everything :func:`probes.falsify` found; see the module docstring for the JSON keys."""

    steps: tuple[StepResult, ...]
    trials: tuple[Trial, ...]
    diagnosis: Diagnosis | None
    config: dict[str, Any] = field(default_factory=dict)
    confounds: ConfoundStep | None = None

    @property
    def verdict(self) -> str:
        five = [s.verdict for s in self.steps if s.name != "confounds"]
        sixth = next((s.verdict for s in self.steps if s.name == "confounds"), "not run")
        if "fail" in five or sixth.startswith("explained by"):
            return "fail"
        if five and all(v == "pass" for v in five) and sixth in ("survives", "not run"):
            return "pass"
        return "incomplete"

    def step(self, name: str | int) -> StepResult:
        for s in self.steps:
            if name in (s.step, s.name):
                return s
        names = ", ".join(s.name for s in self.steps)
        raise WorkbenchError(f"unknown step {name!r}: pass 1-{len(self.steps)} or one of {names}")

    def trial(self, name: str) -> Trial:
        for t in self.trials:
            if t.name == name:
                return t
        names = ", ".join(t.name for t in self.trials)
        raise WorkbenchError(f"unknown trial {name!r}: this report holds {names}")

    @property
    def axes(self) -> tuple[str, ...]:
        return tuple(
            t.name.removeprefix("axis:") for t in self.trials if t.name.startswith("axis:")
        )

    def axis(self, name: str) -> Trial:
        """The step-3 trial of one label axis."""
        if name not in self.axes:
            raise WorkbenchError(
                f"unknown axis {name!r}: this report swept {', '.join(self.axes) or 'no axes'}"
            )
        return self.trial(f"axis:{name}")

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "verdict": self.verdict,
            "gate": {"min_auc": GATE_MIN_AUC, "max_asymmetry": GATE_MAX_ASYMMETRY},
            "config": dict(self.config),
            "steps": [s.to_json() for s in self.steps],
            "trials": {t.name: t.to_json() for t in self.trials},
            "diagnosis": None if self.diagnosis is None else self.diagnosis.to_json(),
            "confounds": None if self.confounds is None else self.confounds.to_json(),
        }

    def to_markdown(self) -> str:
        cfg = self.config
        lines = [
            "# Falsification report",
            "",
            f"**Verdict: {self.verdict}**: a result is worth believing only if it passes all "
            "five steps and, where confounds are named, survives them.",
            "",
            f"Probe {cfg.get('probe', '?')}, settings {', '.join(r.label for r in self.trials[0].runs)}"
            f" (chosen per trial by CV AUC); {cfg.get('folds', '?')}-fold stratified CV; gate: "
            f"fresh AUC >= {GATE_MIN_AUC} and best balanced asymmetry <= {GATE_MAX_ASYMMETRY}.",
            "",
            "| step | verdict | result | escape hatch |",
            "| --- | --- | --- | --- |",
        ]
        for s in self.steps:
            lines.append(f"| {s.step}. {s.title} | {s.verdict} | {s.summary} | {s.escape_hatch} |")
        if self.diagnosis is not None:
            d = self.diagnosis
            lines += [
                "",
                f"## Diagnosis: {d.verdict}",
                "",
                f"Flags: {', '.join(d.flags) or 'none'}.",
                "",
                d.explanation,
            ]
        if self.confounds is not None:
            lines += ["", f"## Confounds: {self.confounds.verdict}", ""]
            lines += [f"- **{r.name}** ({r.kind}): {r.sentence}" for r in self.confounds.results]
            lines += [f"- Note: {n}" for n in self.confounds.notes]
        lines += [
            "",
            "## Data",
            "",
            "| trial | features | train: positive / labelled (items) | fresh: positive / labelled (items) |",
            "| --- | --- | --- | --- |",
        ]
        for t in self.trials:
            sets = [_counts(d) for d in (t.train, t.fresh)]
            lines.append(f"| {t.name} | {t.features} | {sets[0]} | {sets[1]} |")
        lines += [
            "",
            "## Trials",
            "",
            "Chance is measured, not assumed: p is the share of label shuffles scoring at "
            "least the observed AUC; the control task refits the chosen setting on shuffled labels.",
            "",
            "| trial | run | CV AUC [95% CI] (p) | control AUC | fresh AUC [95% CI] | fresh chance (95% of shuffles, p) | asymmetry @ threshold | gate |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for t in self.trials:
            for i, r in enumerate(t.runs):
                mark = " *" if i == t.selected else ""
                cv = f"{r.cv.auc}" + (f" (p={r.cv.null.p_above:.3f})" if r.cv.null else "")
                ctrl = f"{r.cv.control.mean:.3f}" if r.cv.control else "-"
                fresh = chance = asym = gate = "-"
                if r.transfer is not None:
                    tr = r.transfer
                    fresh = str(tr.auc)
                    chance = (
                        f"{tr.null.null_lo:.3f}-{tr.null.null_hi:.3f} (p={tr.null.p_above:.3f})"
                    )
                    a = tr.asymmetry
                    asym = "undefined" if a.value is None else f"{a.value:.3f} @ {a.threshold:.2f}"
                    gate = "pass" if tr.gate.passed else "fail"
                lines.append(
                    f"| {t.name} | {r.label}{mark} | {cv} | {ctrl} | {fresh} | {chance} "
                    f"| {asym} | {gate} |"
                )
        lines += ["", "\\* the run chosen by CV AUC.", ""]
        return "\n".join(lines)
