"""The study's decision: one sentence per label axis that follows from the verdicts.

Per axis (``correct`` on the plain prompt, ``asserts`` on the hedge-licensing
prompt) the statement is built from, in order: whether the axis could be
probed at all; step 1 (CV) and the fresh read-out; step 6 (the named
confounds) on the main fresh set and on each further one; the 2x2 of the
condition; and the causal step (the probe direction at each position, and
the top heads tempered against random heads), each with its verdict and the
metric it uses; without it "a handle" is never claimed. The machinery's controls come first: when the
positive control does not come out ``survives`` or the negative control
passes, every statement opens by saying that the decision cannot be trusted.
Every number comes from the result objects.

>>> control_warnings({"positive": ("survives", True), "negative": ("fails", True)})
[]
>>> control_warnings({"negative": ("reads", False)})[0][:40]
'the negative control (labels shuffled wi'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from probes import ConfoundStep, DispositionSummary
from workbench.study.axis import AxisRun, axis_reads

__all__ = ["axis_decision", "control_outcome", "control_warnings", "decide"]

_WHAT = {"correct": "correctness", "asserts": "asserting (vs hedging)"}
_CONDITION = {
    "plain": "on the plain prompt",
    "hedged": "on the hedge-licensing prompt",
    "teacher-forced": "on teacher-forced statements",
}
_CONTROL_TEXT = {
    "positive": "the positive control (truth of a capitals statement)",
    "negative": "the negative control (labels shuffled within family)",
    "causal_positive": "the causal step's positive control (the gold answers' logit direction)",
}


def _p(p: float | None) -> str:
    if p is None:
        return "p undefined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _confound_clause(step: ConfoundStep | None, where: str) -> tuple[str, dict[str, Any]]:
    if step is None:
        return f"the confound step did not run on {where}", {}
    if step.verdict == "survives":
        r = step.results[-1]
    else:
        r = next((x for x in step.results if x.verdict == step.verdict and x.kind != "all"),
                 step.results[-1])  # fmt: skip
    inc, st = r.incremental, r.stratified
    nums: dict[str, Any] = {"verdict": step.verdict, "confound": r.name}
    if inc is None:
        return f"on {where} it is a degenerate confound ({r.name} is the label)", nums
    nums.update(auc_confounds=inc.auc_confounds, auc_combined=inc.auc_combined,
                delta_auc=inc.delta, delta_lo=inc.delta_lo, delta_hi=inc.delta_hi,
                lr_p=inc.p_value, within_strata_auc=None if st is None else st.auc,
                within_strata_p=None if st is None else st.p_value)  # fmt: skip
    strata = "" if st is None or st.auc is None else (
        f", within its strata AUC {st.auc:.3f} ({_p(st.p_value)})")  # fmt: skip
    detail = (f"{r.name} alone reaches AUC {inc.auc_confounds:.3f}, adding the probe gives "
              f"ΔAUC {inc.delta:+.3f} [{inc.delta_lo:+.3f}, {inc.delta_hi:+.3f}] "
              f"(likelihood-ratio {_p(inc.p_value)}){strata}")  # fmt: skip
    if step.verdict == "survives":
        return f"it survives the named confounds on {where} ({detail})", nums
    joint = next((x for x in step.results if x.kind == "all"), None)
    if joint is not None and joint.verdict == "survives" and joint.incremental is not None:
        j = joint.incremental
        detail += (f"; against all of them together it would survive (ΔAUC {j.delta:+.3f} "
                   f"[{j.delta_lo:+.3f}, {j.delta_hi:+.3f}]), but the rule needs every one")  # fmt: skip
    return f"on {where} it is {step.verdict} ({detail})", nums


_WHERE = {"last": "at the final token", "response": "at the response tokens",
          "prompt": "at the prompt tokens", "all": "at every token"}  # fmt: skip
_ORDER = ("moves the target", "moves only", "moves nothing")


def _head(verdict: str) -> str:
    return verdict.split(":")[0]


def causal_clause(causal: Mapping[str, Any] | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The causal step as a sentence, its verdicts (per position, and ``heads``), its numbers."""
    if causal is None or not (causal.get("direction") or causal.get("heads")):
        return (" No causal test ran, so whether an intervention on it moves the behaviour "
                "is untested."), {}, {}  # fmt: skip
    verdicts: dict[str, str] = {}
    numbers: dict[str, Any] = {}
    parts = []
    for pos, r in causal.get("direction", {}).items():
        verdicts[f"direction_{pos}"] = _head(r["verdict"])
        numbers[f"direction_{pos}"] = _effect_numbers(r)
        parts.append(f"{_WHERE.get(pos, 'at ' + pos)} it {r['verdict']}")
    text = ""
    if parts:
        first = next(iter(causal["direction"].values()))
        counts = first["settings"].get("controls_per_metric", {})
        target = first["target"].get("name")
        side = sorted({n for m, n in counts.items() if m != target})
        text = (f" Causal test of the probe direction at {causal['site']} (target: {target}, "
                f"teacher-forced, against {counts.get(target, first['n_random'])} random "
                f"directions; side effects regenerated against {side[0] if side else 0}, "
                f"descriptive): " + "; ".join(parts) + ".")  # fmt: skip
    heads = causal.get("heads")
    if heads is not None:
        verdicts["heads"] = _head(heads["verdict"])
        numbers["heads"] = _effect_numbers(heads)
        text += (f" Tempering the top attributed heads ({heads['subject'].removeprefix('heads ')}, "
                 f"{len(heads['seeds'])} sampling seeds) against random heads: "
                 f"{heads['verdict']}.")  # fmt: skip
    rank = min(_ORDER.index(next(o for o in _ORDER if v.startswith(o))) for v in verdicts.values())
    verdicts["overall"] = _ORDER[rank]
    return text, verdicts, numbers


def _effect_numbers(r: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{e['test']} / {e['metric']}": {"change": e["change"], "p": e["p"],
            "n_controls": len(e["controls"]), "descriptive": e["descriptive"]}
            for e in r["effects"]}  # fmt: skip


def axis_decision(
    run: AxisRun,
    table: DispositionSummary | None,
    *,
    hatch: str = "",
    causal: Mapping[str, Any] | None = None,
    elsewhere: bool = False,
) -> dict[str, Any]:
    """The decision entry of one axis: ``statement``, ``verdicts``, ``numbers``
    (``elsewhere``: the causal step ran, on another axis)."""
    what = _WHAT.get(run.axis, run.axis)
    reads = axis_reads(run)
    verdicts: dict[str, Any] = {"cv": reads["cv"], "fresh": reads["fresh"],
                                "confounds": run.confound_verdict, "causal": "not run"}  # fmt: skip
    numbers: dict[str, Any] = {}
    cond = _CONDITION.get(run.condition, f"on the {run.condition} condition")
    tail = f" {table.sentence()[0].upper()}{table.sentence()[1:]}" if table is not None else ""
    causal_text, causal_verdicts, causal_numbers = causal_clause(causal)
    if elsewhere:
        causal_text = (" No causal test ran on this axis (the causal step tests the correctness "
                       "direction and the tempered heads), so whether an intervention on it moves "
                       "the behaviour is untested.")  # fmt: skip
    if causal_verdicts:
        verdicts["causal"] = causal_verdicts
        numbers["causal"] = causal_numbers
    direction = causal_verdicts or None
    if run.report is None or run.main is None:
        verdicts["outcome"] = "untestable"
        text = f"{what.capitalize()} {cond} is untestable: {run.skipped}."
        return {"statement": hatch + text + tail, "verdicts": verdicts, "numbers": numbers}
    best = run.main.best
    cv = best.cv.auc
    numbers.update(cv_auc=cv.auc, cv_lo=cv.lo, cv_hi=cv.hi)
    t = best.transfer
    if t is not None:
        numbers.update(fresh_auc=t.auc.auc, fresh_lo=t.auc.lo, fresh_hi=t.auc.hi,
                       fresh_p=t.null.p_above)  # fmt: skip
    read = f"CV AUC {cv.auc:.3f} [{cv.lo:.3f}, {cv.hi:.3f}]"
    if t is not None:
        read += f", fresh AUC {t.auc.auc:.3f} [{t.auc.lo:.3f}, {t.auc.hi:.3f}]"
    if not reads["cv"] or not reads["fresh"]:
        verdicts["outcome"] = "no read-out"
        where = "within the training distribution" if not reads["cv"] else "on a fresh set"
        text = (f"No: a linear probe on h_last {cond} does not read {what} {where} ({read}); "
                "there is nothing for the confound step to decide.")  # fmt: skip
        if direction is not None:
            text += causal_text
        return {"statement": hatch + text + tail, "verdicts": verdicts, "numbers": numbers}
    clause, nums = _confound_clause(run.report.confounds, "the fresh set")
    numbers["confounds_fresh"] = nums
    extra = []
    for name, step in run.extra.items():
        c, n = _confound_clause(step, f"the {name.replace('_', ' ')} set")
        numbers[f"confounds_{name}"], verdicts[f"confounds_{name}"] = n, n.get("verdict")
        extra.append(c)
    survives = run.confound_verdict == "survives"
    handle = causal_verdicts.get("overall") == "moves the target"
    verdicts["outcome"] = (
        (
            "read-out beyond confounds, and a causal handle"
            if handle
            else "read-out beyond confounds"
        )
        if survives
        else "explained by a confound"
    )
    lead = ("Yes, as a read-out and a handle" if handle else "Yes, as a read-out") if survives else (
        "Not beyond a confound")  # fmt: skip
    text = (f"{lead}: a linear probe on h_last {cond} reads {what} ({read}), and {clause}"
            + ("; " + "; ".join(extra) if extra else "") + "." + causal_text)  # fmt: skip
    return {"statement": hatch + text + tail, "verdicts": verdicts, "numbers": numbers}


def control_outcome(run: AxisRun, kind: str) -> tuple[str, bool]:
    """(outcome, as expected): positive must read and survive; negative must not read."""
    reads = axis_reads(run)
    read = bool(reads["cv"]) and bool(reads["fresh"])
    if kind == "positive":
        ok = read and run.confound_verdict == "survives"
        return (
            "survives" if ok else ("reads, " + run.confound_verdict) if read else "no read-out"
        ), ok
    return ("reads" if read else "fails"), not read


def control_warnings(outcomes: Mapping[str, tuple[str, bool]]) -> list[str]:
    """One phrase per control that came out otherwise than it must."""
    expected = {"positive": "survives", "negative": "fails", "causal_positive": "moves the target"}
    return [f"{_CONTROL_TEXT[k]} came out '{o}' where it must be '{expected[k]}'"
            for k, (o, ok) in outcomes.items() if not ok]  # fmt: skip


def decide(
    axes: Mapping[str, AxisRun],
    controls: Mapping[str, AxisRun],
    tables: Mapping[str, DispositionSummary | None],
    *,
    causal: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``report.json``'s ``decision``: per axis, and the controls' outcomes."""
    outcomes = {k: control_outcome(r, k) for k, r in controls.items()}
    causal_control = None if causal is None else causal.get("positive_control")
    if causal_control is not None:
        head = _head(causal_control["verdict"])
        outcomes["causal_positive"] = (head, head == "moves the target")
    warnings = control_warnings(outcomes)
    hatch = ""
    if warnings:
        hatch = ("The decision cannot be trusted: " + "; ".join(warnings)
                 + ". Read what follows as the machinery's output only. ")  # fmt: skip
    entries = {
        k: axis_decision(
            r,
            tables.get(k),
            hatch=hatch,
            causal=causal if k == "correct" else None,
            elsewhere=causal is not None and k != "correct",
        )  # fmt: skip
        for k, r in axes.items()
    }
    for e in entries.values():
        e["trusted"] = not warnings
    return {
        **entries,
        "controls": {
            k: {
                "outcome": o,
                "as_expected": ok,
                **(
                    {
                        "axis": controls[k].axis,
                        "reads": axis_reads(controls[k]),
                        "confound_verdict": controls[k].confound_verdict,
                    }
                    if k in controls
                    else {"verdict": causal_control["verdict"] if causal_control else None}
                ),
            }
            for k, (o, ok) in outcomes.items()
        },  # fmt: skip
        "warnings": warnings,
        "trusted": not warnings,
    }
