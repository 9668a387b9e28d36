"""The study's figures, by name (the ``div`` id in ``report.html`` is ``fig-<name>``).

==========================  ==================================================
name                        what it shows
==========================  ==================================================
``truncation``              correct and truncated rates under both caps
``disposition_<split>``     the 2x2 of correct against the verbal label
``auc_collapse``            CV vs fresh AUC across the pipeline's trials
``roc``                     ROC of the main probe, CV and fresh
``axes``                    per-axis CV vs transfer AUC (when an axis ran)
``probe_disposition``       fresh: correct against "the probe asserts"
``pca``                     h_last, first two principal components
``confounds``               the probe against trivial baselines, and within groups
``confound_step``           step 6 on the main fresh set (what the probe adds to confounds)
``confound_step_<axis>...`` step 6 of another axis or control, or on a further set
``decision_axes``           CV and fresh AUC of every axis and control
``disposition_hedged_<s>``  the 2x2 on the hedge-licensing prompt
``depth_curve``             probe AUC by layer (CV and each fresh set)
``attribution``             layer x head Cohen d, clickable
``sweep``                   tempering: metric vs lambda, seeds as bands
``sidecar_baseline/gated``  the 2x2 before and after gating
``trace_<i>``               example responses token by token
==========================  ==================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go

from interventions import sidecar_figures, sweep_figure
from probes import disposition_figure, report_figures
from probes.baselines import ConfoundCheck
from probes.disposition import DispositionTable
from probes.metrics import AUCResult
from workbench.study.activation_plots import (
    depth_figure,
    head_attribution_heatmap,
    token_trace_figure,
)
from workbench.study.axis import AxisRun
from workbench.study.collect import H_LAST
from workbench.study.deciding import Deciding

if TYPE_CHECKING:
    from workbench.study.result import StudyResult

__all__ = ["axes_figure", "confound_figure", "deciding_figures", "study_figures",
           "truncation_figure"]  # fmt: skip


def truncation_figure(per_split: dict[str, Any], short_cap: int, main_cap: int) -> go.Figure:
    """Per split: share correct and share truncated, under the short and the main cap."""
    splits = list(per_split)
    fig = go.Figure()
    for key, cap, color in (("short", short_cap, "#F58518"), ("main", main_cap, "#4C78A8")):
        fig.add_bar(
            x=splits,
            y=[per_split[s][f"correct_{key}"] / per_split[s]["n"] for s in splits],
            name=f"correct, {cap} tokens",
            marker_color=color,
        )
        fig.add_bar(
            x=splits,
            y=[per_split[s][f"truncated_{key}"] / per_split[s]["n"] for s in splits],
            name=f"truncated, {cap} tokens",
            marker_color=color,
            marker_pattern_shape="/",
            opacity=0.6,
        )
    fig.update_layout(
        barmode="group",
        title=f"The truncation artifact: the same greedy answers cut at {short_cap} vs {main_cap} tokens",
        yaxis={"title": "share of items", "range": [0, 1]},
    )
    return fig


def confound_figure(check: ConfoundCheck) -> go.Figure:
    """Fresh AUC of the probe, of each one-feature baseline and of the probe within groups."""
    fig = go.Figure()
    for i, split in enumerate(check.probe):
        bars = {"probe (all items)": check.probe[split]}
        bars.update({f"baseline: {k}": v for k, v in check.baselines[split].items()})
        bars.update({f"probe within {k}": v for k, v in check.within[split].items()})
        names = list(bars)
        vals = [None if v is None else v.auc for v in bars.values()]
        fig.add_bar(
            x=names, y=vals, name=split, marker_color=("#E45756", "#B279A2", "#54A24B")[i % 3],
            error_y={
                "type": "data", "symmetric": False,
                "array": [0 if v is None else v.hi - v.auc for v in bars.values()],
                "arrayminus": [0 if v is None else v.auc - v.lo for v in bars.values()],
            },
        )  # fmt: skip
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", annotation_text="chance 0.5")
    fig.update_layout(
        barmode="group",
        title="Does the probe beat a trivial feature of the answer? (AUC on held-out sets)",
        yaxis={"range": [0, 1], "title": "ROC AUC"},
    )
    return fig


def axes_figure(runs: dict[str, AxisRun]) -> go.Figure:
    """CV and fresh AUC (with intervals) of every axis and control the decision rests on."""
    fig = go.Figure()
    names = [k for k, r in runs.items() if r.main is not None]
    for which, color in (("CV", "#4C78A8"), ("fresh", "#F58518")):
        res: list[AUCResult | None] = []
        for k in names:
            trial = runs[k].main
            assert trial is not None
            t = trial.best.transfer
            res.append(trial.best.cv.auc if which == "CV" else None if t is None else t.auc)
        fig.add_bar(
            x=names, y=[None if r is None else r.auc for r in res], name=which, marker_color=color,
            error_y={"type": "data", "symmetric": False,
                     "array": [0 if r is None else r.hi - r.auc for r in res],
                     "arrayminus": [0 if r is None else r.auc - r.lo for r in res]},
        )  # fmt: skip
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", annotation_text="chance 0.5")
    fig.update_layout(barmode="group", title="The axes and the machinery's controls: probe AUC",
                      yaxis={"range": [0, 1], "title": "ROC AUC"})  # fmt: skip
    return fig


def deciding_figures(d: Deciding) -> dict[str, go.Figure]:
    """The axes-and-controls bars, step 6 per axis and further set, the hedged 2x2s."""
    from probes.confound_figure import confound_figure as step6_figure

    runs = {**d.axes, **{f"{k} control": v for k, v in d.controls.items()}}
    figs = {"decision_axes": axes_figure(runs)}
    keys = {**{k: k for k in d.axes}, **{k: k for k in d.controls}}
    for key, run in {**d.axes, **d.controls}.items():
        name = keys[key]
        step6 = None if run.report is None else run.report.confounds
        if step6 is not None and name != "correct" and any(r.incremental for r in step6.results):
            figs[f"confound_step_{name}"] = step6_figure(step6)
        for split, step in run.extra.items():
            if step is not None and any(r.incremental for r in step.results):
                fig = step6_figure(step)
                fig.update_layout(title=f"{name}, {split}: {fig.layout.title.text}")
                figs[f"confound_step_{name}_{split}"] = fig
    for split, summary in d.conditions.get("hedged", {}).items():
        figs[f"disposition_hedged_{split}"] = disposition_figure(
            summary.table, title=f"{split}, hedge-licensing prompt: correct vs verbal"
        )
    return figs


def study_figures(result: StudyResult, truncation: dict[str, Any]) -> dict[str, go.Figure]:
    """Every figure the study's data supports (a skipped step has none)."""
    figs: dict[str, go.Figure] = {
        "truncation": truncation_figure(
            truncation["per_split"],
            result.config.generation.short_max_new_tokens,
            result.config.generation.max_new_tokens,
        )
    }
    for split, table in result.dispositions.items():
        figs[f"disposition_{split}"] = disposition_figure(
            DispositionTable(**table), title=f"{split}: correct vs verbal (lexicon)"
        )
    report = result.falsification.report
    if report is not None:
        tr, fr = result.data["train"], result.data["fresh"]
        extra = report_figures(
            report,
            train_X=tr.site(H_LAST),
            train_y=result.labels["train"].array("correct"),
            fresh_X=fr.site(H_LAST),
            fresh_y=result.labels["fresh"].array("correct"),
        )
        extra["probe_disposition"] = extra.pop("disposition", None)
        extra["confound_step"] = extra.pop("confounds", None)
        figs.update({k: v for k, v in extra.items() if v is not None})
        figs["pca"].update_layout(title="h_last, first two principal components (label: correct)")
    if result.confounds is not None:
        figs["confounds"] = confound_figure(result.confounds)
    if result.deciding is not None:
        figs.update(deciding_figures(result.deciding))
    if result.depth is not None:
        d = result.depth
        figs["depth_curve"] = depth_figure(
            d.layers,
            d.cv,
            dict(d.transfer),
            title=f"Probe AUC by layer (resid(L) at the final response token, C={d.C:g})",
        )
    if result.attribution.attribution is not None:
        figs["attribution"] = head_attribution_heatmap(result.attribution.attribution)
    if result.sweep is not None:
        figs["sweep"] = sweep_figure(result.sweep)
    if result.sidecar is not None:
        side = sidecar_figures(result.sidecar)
        figs["sidecar_baseline"], figs["sidecar_gated"] = side["baseline"], side["gated"]
    probe = result.falsification.probe
    if probe is not None:
        head = result.trace_head
        for i, t in enumerate(result.traces):
            scores = probe.predict_proba(t.hidden)[:, 1]
            figs[f"trace_{i}"] = token_trace_figure(
                t.tokens,
                scores.tolist(),
                head_norm=None if head is None else t.head(*head).tolist(),
                head_label="head" if head is None else f"L{head[0]}.H{head[1]}",
                title=f"{t.id} ({t.kind}): probe p(correct) at every token",
            )
    return figs
