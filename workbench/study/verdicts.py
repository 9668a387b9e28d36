"""Plain-language verdicts: one short paragraph per step, saying what the numbers mean.

A pass reads as a pass, a null as a null, and a step that could not run says
why. The numbers come from the result objects; nothing here decides a
verdict, it only words the one the pipeline reached.

>>> disposition_plain("fresh", {"confident_right": 40, "hedged_right": 0, "confident_wrong": 58,
...                             "hedged_wrong": 2, "assertion_asymmetry": -0.033})
'fresh: asserts 58 of 60 wrong answers and 40 of 40 right ones (assertion asymmetry -0.033): its verbal confidence is decoupled from correctness.'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from interventions import SidecarResult, SweepResult
from probes import FalsificationReport, StepResult
from probes.baselines import ConfoundCheck
from probes.depth import DepthCurve
from workbench.study.heads import AttributionOutcome

__all__ = [
    "attribution_plain",
    "confound_plain",
    "depth_plain",
    "disposition_plain",
    "hard_plain",
    "overall_plain",
    "sidecar_plain",
    "step_plain",
    "sweep_plain",
    "truncation_plain",
]

_LEAD = {
    ("cv", "pass"): "A linear probe on h_last separates correct from wrong answers on held-out "
    "folds of the training distribution.",
    ("cv", "fail"): "Even on held-out folds of the training distribution the probe cannot separate "
    "correct from wrong answers well enough: there is no handle to carry further.",
    ("fresh", "pass"): "The probe keeps its signal on fresh items from an independent generator "
    "and passes the gate.",
    ("fresh", "fail"): "The probe does not survive the fresh set from an independent generator "
    "(the gate needs fresh AUC >= 0.63 above shuffled-label chance and asymmetry <= -0.15).",
    ("axes", "pass"): "At least one label axis has a probe that transfers to the fresh set.",
    ("axes", "fail"): "No label axis has a probe that transfers to the fresh set.",
    ("layers", "pass"): "The mean of the last layers gives a read-out that passes the gate on "
    "fresh items.",
    ("layers", "fail"): "Pooling the last layers does not rescue it: the pooled read-out fails "
    "on fresh items too.",
    ("second_model", "pass"): "The same recipe passes the gate on the second model.",
    ("second_model", "fail"): "On the second model the probe fails too.",
}


def step_plain(
    step: StepResult, report: FalsificationReport | None, skipped: Mapping[str, str]
) -> str:
    """One step's verdict in words, with the numbers behind it."""
    if step.name == "confounds" and step.verdict != "not run":
        return step.summary
    if step.verdict == "not run":
        reasons = [r for k, r in skipped.items() if k == step.name or k == "main"]
        return "Not run: " + ("; ".join(reasons) or step.summary)
    text = f"{_LEAD.get((step.name, step.verdict), step.verdict)} {step.summary}."
    if step.name == "fresh" and report is not None and report.diagnosis is not None:
        text += f" Diagnosis: {report.diagnosis.verdict.replace('_', ' ')}. "
        text += report.diagnosis.explanation
    if step.name == "axes":
        extra = [r for k, r in skipped.items() if k.startswith("axis:")]
        if extra:
            text += " Axes not tested: " + "; ".join(extra) + "."
    return text


def overall_plain(
    report: FalsificationReport | None,
    skipped: Mapping[str, str],
    confounds: ConfoundCheck | None = None,
) -> str:
    """The pipeline's verdict in a few sentences: steps 1-5, then step 6 (the named confounds)."""
    if report is None:
        return (
            f"The pipeline could not run: {skipped.get('main', 'no usable labels')}. That is a "
            "property of the model's answers on these items, reported as found."
        )
    five = [s for s in report.steps if s.name != "confounds"]
    sixth = report.step("confounds")
    failed = [s for s in five if s.verdict == "fail"]
    if failed:
        first = failed[0]
        head = (
            f"Verdict: fail. {len(failed)} of 5 steps fail, the first at step {first.step} "
            f"({first.title.lower()}). A probe result is worth believing only if it passes all "
            "five; this one does not, so the honest reading is a null."
        )
        if sixth.verdict != "not run":
            head += f" Step 6, as context: {sixth.summary}"
        return head
    missing = [s for s in five if s.verdict == "not run"]
    ran = [str(s.step) for s in five if s.verdict == "pass"]
    lead = (
        "All five steps pass"
        if not missing
        else f"Steps {', '.join(ran)} pass ("
        + ", ".join(f"step {s.step}, {s.title.lower()}, did not run" for s in missing)
        + ")"
    )
    if sixth.verdict == "survives":
        return (
            f"{lead}, and step 6 says the probe carries correctness beyond response length, "
            f"truncation and task family: {sixth.summary}"
        )
    if sixth.verdict.startswith("explained by"):
        return (
            f"{lead}, but step 6 decides against it: the probe's reading is "
            f"{sixth.verdict}. {sixth.summary}"
        )
    return f"{lead}; step 6 (named confounds): {sixth.verdict}. {sixth.summary}"


def confound_plain(confounds: ConfoundCheck | None) -> str:
    """One-feature baselines and the probe within groups: context for step 6, not a verdict."""
    if confounds is None:
        return "Not run: no probe was fitted."
    parts = []
    for split, probe in confounds.probe.items():
        if probe is None:
            parts.append(f"{split}: one class only, AUC undefined.")
            continue
        best = confounds.best_baseline(split)
        within = ", ".join(
            f"{k} {v.auc:.3f}" if v is not None else f"{k} undefined"
            for k, v in confounds.within[split].items()
        )
        base = "" if best is None else f", best one-feature baseline {best[0]} {best[1].auc:.3f}"
        parts.append(f"{split}: probe AUC {probe.auc:.3f}{base}; probe within groups: {within}.")
    return (
        " ".join(parts)
        + " These are context; the verdict on confounds is step 6 (incremental validity and "
        "within-strata nulls)."
    )


def truncation_plain(trunc: Mapping[str, Any]) -> str:
    per = trunc["per_split"].values()
    n = sum(p["n"] for p in per)
    cut_s = sum(p["truncated_short"] for p in per)
    cut_m = sum(p["truncated_main"] for p in per)
    gained = sum(p["correct_gained_with_longer_cap"] for p in per)
    lost = sum(p["correct_lost_with_longer_cap"] for p in per)
    verbal = sum(p["verbal_changed"] for p in per)
    return (
        f"With max_new_tokens = {trunc['short_max_new_tokens']}, {cut_s} of {n} answers are cut; "
        f"with {trunc['max_new_tokens']}, {cut_m}. Between the two caps {trunc['correct_changed']} "
        f"answers change their correctness label ({gained} become correct with more room, {lost} "
        f"stop being correct) and {verbal} their verbal label. A comparison of conditions with "
        "different caps would count these as effects: the truncation artifact."
    )


def disposition_plain(split: str, table: Mapping[str, Any]) -> str:
    cr, hr = table["confident_right"], table["hedged_right"]
    cw, hw = table["confident_wrong"], table["hedged_wrong"]
    asym = table["assertion_asymmetry"]
    head = f"{split}: asserts {cw} of {cw + hw} wrong answers and {cr} of {cr + hr} right ones"
    if asym is None:
        return head + " (assertion asymmetry undefined: one kind of answer is missing)."
    if asym <= -0.15:
        tail = "it asserts less when wrong: verbal confidence tracks correctness."
    elif asym < 0.15:
        tail = "its verbal confidence is decoupled from correctness."
    else:
        tail = "it asserts more when wrong: confidence runs against correctness."
    return f"{head} (assertion asymmetry {asym:+.3f}): {tail}"


def hard_plain(hard: Mapping[str, Any]) -> str:
    if not hard:
        return "Not run: no fresh_hard items ([items] fresh_hard = 0)."
    d = hard["diagnosis"]
    auc = hard["transfer"]["auc"]["auc"] if hard["transfer"] else None
    cliff = "base_rate_collapse" in d.get("flags", []) or d["verdict"] == "capability_cliff"
    lead = "The capability cliff shows. " if cliff else ""
    head = lead + (
        f"On the harder fresh set {hard['n_pos']} of {hard['n']} answers are correct "
        f"({hard['pos_rate']:.3f}, against {hard['train_pos_rate']:.3f} on train)"
        + (f"; the probe's AUC there is {auc:.3f}" if auc is not None else "")
    )
    small = (
        f" With {min(hard['n_pos'], hard['n'] - hard['n_pos'])} items in the smaller class the "
        "AUC's interval is wide."
        if auc is not None and min(hard["n_pos"], hard["n"] - hard["n_pos"]) < 10
        else ""
    )
    return f"{head}.{small} Diagnosis: {d['verdict'].replace('_', ' ')}. {d['explanation']}"


def depth_plain(depth: DepthCurve | None, reason: str | None) -> str:
    if depth is None:
        return f"Not run: {reason or 'disabled'}."
    best = depth.best_layer()
    i = depth.layers.index(best)
    parts = [f"CV AUC peaks at layer {best} ({depth.cv[i].auc:.3f})"]
    for name, values in depth.transfer.items():
        ok = [(v.auc, layer) for v, layer in zip(values, depth.layers, strict=True) if v]
        if ok:
            top, at = max(ok)
            at_best = values[i]
            parts.append(
                f"{name} AUC at that layer {at_best.auc:.3f}" if at_best else f"{name} undefined"
            )
            parts.append(f"best {name} AUC over all layers {top:.3f} (layer {at})")
    for name, null in depth.nulls.items():
        k = null.best
        parts.append(
            f"family-wise: the best {name} layer, {depth.layers[k]} (AUC {null.observed[k]:.3f}), "
            f"has max-statistic adjusted p = {null.adjusted_p[k]:.3f} over {len(depth.layers)} "
            f"layers ({null.n_perm} label shuffles; chance's best "
            f"{float(np.quantile(null.null_max, 0.95)):.3f} at the 95th percentile)"
        )
    return (
        "; ".join(parts)
        + ". The best of many layers is an optimistic pick: read each layer against the "
        "family-wise null, not against 0.5."
    )


def attribution_plain(outcome: AttributionOutcome) -> str:
    a, b = outcome.cohorts
    if outcome.attribution is None:
        return f"Not run: {outcome.skipped}."
    attr = outcome.attribution
    se = math.sqrt(1 / attr.n_a + 1 / attr.n_b)
    top = attr.top(3, "magnitude")
    heads = ", ".join(
        f"L{h.layer}.H{h.head} (d {h.magnitude_d:+.2f}, cos {h.cos:.3f}"
        + (
            ""
            if h.directional_d_heldout is None
            else f", held-out directional d {h.directional_d_heldout:+.2f}"
        )
        + ")"
        for h in top
    )
    collinear = sum(h.collinear for h in top)
    if outcome.null is not None:
        null = outcome.null
        adj = dict(zip(null.names or (), null.adjusted_p or (), strict=False))
        per_head = ", ".join(
            f"L{h.layer}.H{h.head} {adj[f'L{h.layer}.H{h.head}']:.3f}"
            for h in top
            if f"L{h.layer}.H{h.head}" in adj
        )
        chance = (
            f"Shuffling the cohort labels {len(null.null)} times, the largest d of the "
            f"{len(attr.heads)} heads is {float(np.median(null.null)):.2f} at the median and "
            f"{null.quantile_95:.2f} at the 95th percentile; the observed top d "
            f"{null.observed:.2f} has p = {null.p_value:.3f}"
            + (" (above chance)." if null.p_value < 0.05 else ": within what chance gives.")
            + (f" Adjusted p (max-statistic) of the top heads: {per_head}." if per_head else "")
        )
    else:
        chance = (
            f"With these cohort sizes a single d has a standard error near {se:.2f}, and the "
            f"largest of {len(attr.heads)} heads reaches about {3 * se:.2f} by chance alone."
        )
    return (
        f"Comparing {attr.n_a} {a} with {attr.n_b} {b} items on {outcome.split}, the heads whose "
        f"o_proj input is louder in {a} are {heads}. {chance} {collinear} of the top 3 have "
        "collinear cohort means (cos >= 0.99): for those, d measures a louder head, not a direction."
    )


def sweep_plain(
    sweep: SweepResult | None,
    heads: Any,
    reason: str | None,
    causal: Mapping[str, Any] | None = None,
) -> str:
    """Tempering: the causal-rule verdict first (random heads), then the sweep's dose-response."""
    if sweep is None:
        return f"Not run: {reason}."
    parts = []
    for c in sweep.comparisons:
        if c.metric not in ("correct", "asserts"):
            continue
        verdict = "exceeds" if c.exceeds else "within"
        parts.append(
            f"lambda {c.value:g}: {c.metric} {c.delta:+.3f} ({verdict} the seed spread {c.spread:.3f})"
        )
    heads_text = ", ".join(f"L{h[0]}.H{h[1]}" for h in heads)
    warn = (" Caveats: " + " ".join(sweep.warnings)) if sweep.warnings else ""
    sweep_text = f"Sweep over lambdas x {len(sweep.seeds)} seeds: " + "; ".join(parts) + "."
    if causal is not None:
        counts = causal["settings"].get("controls_per_metric", {})
        target = causal["target"].get("name")
        again = sorted({n for m, n in counts.items() if m != target})
        k = again[0] if again else 0
        side = (
            f"side effects and the regenerated correct rate against {k} draws x "
            f"{len(causal['seeds'])} seeds, descriptive"
            if k
            else "side effects from the sweep below, against the seed spread"
        )
        lead = (
            f"By the causal rule (against {causal['n_random']} draws of as many random heads for "
            f"the teacher-forced {target}; {side}), tempering {causal['verdict']}."
        )
        return f"Tempering {heads_text}. {lead} {sweep_text}{_sweep_side(sweep)}{warn}"
    moved = [c for c in sweep.comparisons if c.metric in ("correct", "asserts") and c.exceeds]
    lead = (
        "No change in correctness or assertion rate exceeds the seed-to-seed spread: a null."
        if not moved
        else f"{len(moved)} change(s) exceed the seed-to-seed spread; with "
        f"{len(sweep.seeds)} seeds that is a lead to replicate, not a result."
    )
    lead += _sweep_side(sweep)
    return f"Tempering {heads_text}. {lead} " + "; ".join(parts) + "." + warn


def _sweep_side(sweep: SweepResult) -> str:
    """The side effects (length, truncation) whose change exceeds the seed spread, or ''."""
    side = [
        f"{c.metric} {c.delta:+.2f} at lambda {c.value:g} (spread {c.spread:.2f})"
        for c in sweep.comparisons
        if c.metric not in ("correct", "asserts") and c.exceeds
    ]
    if not side:
        return ""
    return (" It does move " + ", ".join(side) + " beyond the seed spread: the heads change how "
            "the model writes, a side effect, not whether it is right or how sure it sounds.")  # fmt: skip


def sidecar_plain(sidecar: SidecarResult | None, reason: str | None) -> str:
    if sidecar is None:
        return f"Not run: {reason}."
    base, gated = sidecar.baseline_table, sidecar.gated_table
    hit = sum(g and not c for g, c in zip(sidecar.gated, sidecar.correct, strict=True))

    def f(x: float | None) -> str:
        return "undefined" if x is None else f"{x:.3f}"

    return (
        f"The probe read h_last {'after each draft response' if sidecar.read == 'draft' else 'at the end of each prompt'} "
        f"and the gate prefixed {sidecar.n_gated} of {len(sidecar.gated)} responses ({hit} of them "
        f"wrong). Assertion asymmetry {f(base.assertion_asymmetry)} -> "
        f"{f(gated.assertion_asymmetry)}; confident-wrong rate {f(base.hallucination_rate)} -> "
        f"{f(gated.hallucination_rate)}; over-hedging {f(base.over_hedging_rate)} -> "
        f"{f(gated.over_hedging_rate)}. Content is unchanged: the sidecar moves only what the "
        "response says about itself, and only as well as the probe ranks answers."
    )
