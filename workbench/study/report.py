"""``report.json``: everything the study measured, with a plain-language verdict per step.

Top-level keys (``schema`` ``"workbench.study/1"``):

``schema``, ``title``, ``created``, ``workbench_version``, ``run_dir``
    identification.
``config``
    the resolved configuration, every section.
``models``
    what each model is (alias, package, quantisation, layers).
``items``
    per split: count, families, difficulties, the generator.
``labels``
    ``lexicon`` (the verbal classifier's word lists, rule, agreement on the
    hand-labelled sample) and per-split rates (correct, asserts, truncated).
``truncation``
    both caps per split and the answers whose labels change between them.
``decision``
    per axis (``correct``, ``asserts``): a one-sentence ``statement`` that
    follows from the verdicts, the ``verdicts`` it rests on, the ``numbers``
    and ``trusted``; ``controls`` (each control's outcome and whether it came
    out as it must) and ``warnings`` (see :mod:`workbench.study.decision`).
``deciding``
    the axes and controls through the steps (each a full pipeline report),
    the 2x2 per condition and split with the asymmetry's interval, the
    hedged condition's label rates, the head-probe screen with adjusted p.
``verdict``, ``steps``
    the pipeline's verdict and its six steps: ``step``, ``name``, ``title``,
    ``verdict`` (pass/fail/not run; step 6 survives/explained by ...),
    ``summary`` (numbers), ``plain``.
``falsification``
    the full ``probes`` report (``report``), skipped trials with reasons, the
    chosen C, and ``fresh_hard`` (transfer to the harder set, diagnosis).
``confounds``
    per fresh split: the probe's AUC, one-feature baselines (response length,
    truncated, task family) fitted on train, and the probe within each family
    and among untruncated answers.
``depth_curve``, ``dispositions``, ``attribution``, ``tempering``, ``sidecar``, ``traces``
    each step's results (``null`` with a reason in ``skipped`` when not run).
``plain``
    section name -> the plain-language verdict shown in ``report.html``.
``skipped``, ``figures``, ``cache``, ``timings``, ``environment``, ``files``
    what did not run and why; the figures in ``report.html``; which stages
    were reused; seconds per stage and in total (before the report is
    written); torch threads, CPU count, device and versions; the run
    directory's files.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import __version__
from workbench.core.store import atomic_write_bytes, atomic_write_json
from workbench.study.causal import causal_plain
from workbench.study.collect import write_jsonl
from workbench.study.deciding_text import (
    axis_plain,
    conditions_plain,
    controls_plain,
    head_screen_plain,
)
from workbench.study.figures import study_figures
from workbench.study.labels import lexicon_json, truncation_json
from workbench.study.verdicts import (
    attribution_plain,
    confound_plain,
    depth_plain,
    disposition_plain,
    hard_plain,
    overall_plain,
    sidecar_plain,
    step_plain,
    sweep_plain,
    truncation_plain,
)

if TYPE_CHECKING:
    from workbench.study.result import StudyResult

__all__ = ["SCHEMA", "build_report", "decision_lines", "markdown_summary", "write_report"]

SCHEMA = "workbench.study/1"
STEP_NAMES = ("cv", "fresh", "axes", "layers", "second_model", "confounds")


def _items(result: StudyResult) -> dict[str, Any]:
    return {
        split: {
            "n": len(d.items),
            "families": dict(Counter(str(it.labels.get("family")) for it in d.items)),
            "difficulty": dict(Counter(str(it.labels.get("difficulty")) for it in d.items)),
            "generator": f"workbench.labels.domains.make_split({split!r}, {len(d.items)}, "
            f"seed={result.config.items.seed}, families={list(result.config.items.families)})",
        }
        for split, d in result.data.items()
    }


def _steps(result: StudyResult) -> list[dict[str, Any]]:
    report = result.falsification.report
    skipped = dict(result.falsification.skipped)
    rows = []
    for i, name in enumerate(STEP_NAMES, start=1):
        if report is None:
            rows.append({
                "step": i, "name": name, "title": name, "verdict": "not run",
                "summary": "", "plain": "Not run: " + skipped.get("main", ""),
            })  # fmt: skip
            continue
        s = report.step(name)
        rows.append({**s.to_json(), "plain": step_plain(s, report, skipped)})
    if report is not None and result.second is not None:
        mode = result.config.second_model.responses
        what = (
            "reads the same prompts and the first model's responses (labels shared)"
            if mode == "shared"
            else "answers the prompts itself; its own answers are labelled"
        )
        rows[4]["plain"] = f"{result.config.second_model.name} {what}. {rows[4]['plain']}"
    return rows


def _traces(result: StudyResult) -> list[dict[str, Any]]:
    probe, head = result.falsification.probe, result.trace_head
    out = []
    for t in result.traces:
        out.append({
            "id": t.id, "kind": t.kind, "tokens": list(t.tokens),
            "p_correct": None if probe is None else probe.predict_proba(t.hidden)[:, 1].tolist(),
            "head": None if head is None else list(head),
            "head_norm": None if head is None else t.head(*head).tolist(),
        })  # fmt: skip
    return out


def _deciding_plain(result: StudyResult) -> dict[str, str]:
    d = result.deciding
    if d is None:
        return {}
    hedged = result.config.hedged
    return {
        "conditions": conditions_plain(
            d.conditions, hedged.instruction if hedged.enabled else None
        ),
        "axes_decided": " ".join(axis_plain(r) for r in d.axes.values()),
        "controls": controls_plain(result.decision or {}, d.controls),
        "head_screen": head_screen_plain(d.head_screen, result.skipped.get("head_screen")),
        "causal": causal_plain(result.causal, result.skipped.get("causal")),
    }


def decision_lines(decision: dict[str, Any] | None) -> list[str]:
    """The decision's sentences, one per axis (``correct`` first), for summary.md and the page."""
    if not decision:
        return []
    return [
        f"**{axis}:** {decision[axis]['statement']}"
        for axis in ("correct", "asserts")
        if axis in decision
    ]


def _environment(result: StudyResult) -> dict[str, Any]:
    import platform

    import torch

    return {
        "torch_threads": result.threads,
        "cpu_count": os.cpu_count(),
        "device": result.config.model.device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def build_report(
    result: StudyResult, truncation: dict[str, Any], figures: list[str]
) -> dict[str, Any]:
    """The ``report.json`` object (see the module docstring)."""
    fals = result.falsification
    skipped = {**{f"falsification:{k}": v for k, v in fals.skipped.items()}, **result.skipped}
    if result.attribution.skipped:
        skipped["attribution"] = result.attribution.skipped
    steps = _steps(result)
    plain = {
        "overall": overall_plain(fals.report, fals.skipped, result.confounds),
        "confounds": confound_plain(result.confounds),
        "truncation": truncation_plain(truncation),
        **{f"step{s['step']}": s["plain"] for s in steps},
        "fresh_hard": hard_plain(fals.hard) if fals.report is not None else "Not run.",
        "depth_curve": depth_plain(result.depth, result.skipped.get("depth_curve")),
        "dispositions": " ".join(disposition_plain(k, v) for k, v in result.dispositions.items()),
        "attribution": attribution_plain(result.attribution),
        "tempering": sweep_plain(
            result.sweep,
            result.attribution.heads,
            result.skipped.get("tempering"),
            causal=(result.causal or {}).get("heads"),
        ),
        "sidecar": sidecar_plain(result.sidecar, result.skipped.get("sidecar")),
        **_deciding_plain(result),
    }
    sweep = None
    if result.sweep is not None:
        sweep = {k: v for k, v in result.sweep.to_json().items() if k != "responses"}
        sweep["responses_file"] = "sweep/sweep.json"
    return {
        "schema": SCHEMA,
        "title": result.config.run.title,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "workbench_version": __version__,
        "run_dir": str(result.out),
        "config": result.config.to_json(),
        "models": result.models,
        "items": _items(result),
        "labels": {
            "lexicon": lexicon_json(),
            "per_split": {k: v.rates() for k, v in result.labels.items()},
        },
        "truncation": truncation,
        "verdict": "not run" if fals.report is None else fals.report.verdict,
        "steps": steps,
        "falsification": fals.to_json(),
        "confounds": None if result.confounds is None else result.confounds.to_json(),
        "depth_curve": None if result.depth is None else result.depth.to_json(),
        "dispositions": result.dispositions,
        "attribution": result.attribution.to_json(),
        "tempering": sweep,
        "sidecar": None if result.sidecar is None else result.sidecar.to_json(),
        "traces": _traces(result),
        "plain": plain,
        "decision": result.decision,
        "deciding": None if result.deciding is None else result.deciding.to_json(),
        "causal": result.causal,
        "skipped": skipped,
        "figures": figures,
        "cache": result.cache,
        "timings": {k: round(v, 2) for k, v in result.seconds.items()},
        "environment": _environment(result),
        "files": sorted(
            str(p.relative_to(result.out))
            for p in result.out.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        ),
    }


def markdown_summary(report: dict[str, Any]) -> str:
    """The five steps, the confound check and the timings as Markdown (``summary.md``)."""
    lines = [f"# {report['title']}", ""]
    for sentence in decision_lines(report.get("decision")):
        lines += [sentence, ""]
    lines += [
        f"**Pipeline verdict: {report['verdict']}.** {report['plain']['overall']}",
        "",
        "| step | verdict | result |",
        "| --- | --- | --- |",
    ]
    for s in report["steps"]:
        lines.append(
            f"| {s['step']}. {s['title']} | {s['verdict']} | {s['summary'] or s['plain']} |"
        )
    plain = report["plain"]
    lines += ["", f"Confounds (context): {plain['confounds']}", ""]
    for key, title in (("conditions", "Conditions (2x2)"), ("controls", "Controls"),
                       ("head_screen", "Head screen"), ("depth_curve", "Depth curve"),
                       ("causal", "Causal step")):  # fmt: skip
        if key in plain:
            lines += [f"{title}: {plain[key]}", ""]
    lines += [f"Harder fresh set: {report['plain']['fresh_hard']}", ""]
    lines += [f"Truncation: {report['plain']['truncation']}", ""]
    total = report["timings"].get("total")
    lines += [f"Wall time: {total:.0f} s (stages: " + ", ".join(
        f"{k} {v:.0f} s" for k, v in report["timings"].items() if k != "total"
    ) + ")." if total is not None else "", ""]  # fmt: skip
    return "\n".join(lines)


def write_report(result: StudyResult) -> Path:
    """Write ``labels/<split>.jsonl``, ``report.json`` and ``report.html``; return the HTML path."""
    from workbench.study.html import render_html

    out = result.out
    for split, lab in result.labels.items():
        write_jsonl(out / "labels" / f"{split}.jsonl", lab.rows)
    cfg = result.config.generation
    truncation = truncation_json(
        list(result.labels.values()), cfg.max_new_tokens, cfg.short_max_new_tokens
    )
    figures = study_figures(result, truncation)
    report = build_report(result, truncation, list(figures))
    report["files"] = sorted({*report["files"], "report.json", "report.html", "summary.md"})
    atomic_write_json(out / "report.json", report)
    atomic_write_bytes(out / "summary.md", markdown_summary(report).encode("utf-8"))
    path = out / "report.html"
    atomic_write_bytes(path, render_html(report, figures).encode("utf-8"))
    return path
