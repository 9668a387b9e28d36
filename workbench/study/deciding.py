"""The deciding stages: the hedge-licensing condition, the asserts probe, the controls,
the 2x2 per condition with an interval, and the head-probe screen with its family-wise null.

Each stage takes its own config sections and the :class:`StageContext`; what
it cannot do with the data it got is recorded in ``skipped`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from interventions import HeadProbes, head_probes, layers_from_features
from probes import DispositionSummary, disposition
from workbench.labels.domains import make_split
from workbench.labels.verbal import classify_verbal
from workbench.study.axis import AxisRun, FreshSet, further_sets, run_axis
from workbench.study.collect import H_LAST, SplitData
from workbench.study.config import (
    CaptureConfig,
    GenerationConfig,
    ItemsConfig,
    ModelConfig,
    ProbeConfig,
)
from workbench.study.context import StageContext
from workbench.study.controls import positive_control, shuffled_within_family
from workbench.study.falsification import Falsification, usable_reason
from workbench.study.hedged import collect_hedged
from workbench.study.labels import SplitLabels, label_split
from workbench.study.second import SecondSplit
from workbench.study.sections import ControlsConfig, HedgedConfig

__all__ = [
    "Deciding",
    "run_deciding",
    "correct_axis",
    "dispositions_with_intervals",
    "hedged_condition",
    "run_controls",
    "run_head_screen",
]


@dataclass
class Deciding:
    """What the decision rests on besides the five steps."""

    axes: dict[str, AxisRun] = field(default_factory=dict)
    controls: dict[str, AxisRun] = field(default_factory=dict)
    conditions: dict[str, dict[str, DispositionSummary]] = field(default_factory=dict)
    hedged_labels: dict[str, SplitLabels] = field(default_factory=dict)
    head_screen: HeadProbes | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "axes": {k: v.to_json() for k, v in self.axes.items()},
            "controls": {k: v.to_json() for k, v in self.controls.items()},
            "conditions": {
                c: {s: summary_json(d) for s, d in per.items()}
                for c, per in self.conditions.items()
            },
            "hedged_rates": {k: v.rates() for k, v in self.hedged_labels.items()},
            "head_screen": None if self.head_screen is None else self.head_screen.to_json(),
        }


def summary_json(d: DispositionSummary) -> dict[str, Any]:
    return {
        **d.table.to_json(),
        "asymmetry_lo": d.asymmetry_lo,
        "asymmetry_hi": d.asymmetry_hi,
        "level": d.level,
        "n_boot": d.n_boot,
        "sentence": d.sentence(),
    }


def dispositions_with_intervals(
    labels: Mapping[str, SplitLabels], *, n_boot: int, seed: int
) -> dict[str, DispositionSummary]:
    """The 2x2 of correct x verbal per split, with a bootstrap interval on the asymmetry."""
    return {
        s: disposition(lab.array("correct"), lab.verbal, n_boot=n_boot, seed=seed)
        for s, lab in labels.items()
    }


def _sets(data: Mapping[str, SplitData], labels: Mapping[str, SplitLabels], axis: str,
          ys: Mapping[str, np.ndarray] | None = None) -> dict[str, FreshSet]:  # fmt: skip
    return {
        s: FreshSet(d.site(H_LAST), labels[s].array(axis) if ys is None else ys[s], labels[s].rows)
        for s, d in data.items()
    }


def correct_axis(
    fals: Falsification,
    data: Mapping[str, SplitData],
    labels: Mapping[str, SplitLabels],
    cfg: ProbeConfig,
    *,
    seed: int,
) -> AxisRun:
    """The ``correct`` axis: the main pipeline run (steps 1-6) plus step 6 on fresh_hard."""
    if fals.report is None:
        return AxisRun("correct", "plain", None, fals.skipped.get("main"), gate=True)
    sets = _sets(data, labels, "correct")
    fresh = {k: v for k, v in sets.items() if k != "train"}
    extra = further_sets(fals.report, sets["train"], fresh, cfg, seed=seed)
    return AxisRun("correct", "plain", fals.report, None, fals.dropped, extra, gate=True)


def hedged_condition(
    hedged: HedgedConfig,
    items: ItemsConfig,
    ctx: StageContext,
    *,
    model: ModelConfig,
    generation: GenerationConfig,
    capture: CaptureConfig,
    cache: dict[str, str],
    say: Callable[[str], None],
) -> tuple[dict[str, SplitData], dict[str, SplitLabels]]:
    """Answer the hedged condition's splits (cached stage per split) and label them."""
    data: dict[str, SplitData] = {}
    for split in hedged.splits:
        n = items.count(split)
        if n == 0:
            continue
        say(f"[bold]collect[/] {split} (hedge-licensing prompt): {n} items")
        its = make_split(split, n, items.seed, families=items.families)
        data[split] = collect_hedged(split, its, ctx, hedged=hedged, model=model,
                                     generation=generation, capture=capture)  # fmt: skip
        cache[f"conditions/hedged/{split}"] = "reused" if data[split].reused else "computed"
    return data, {s: label_split(d, ctx.checker) for s, d in data.items()}


def asserts_axis(
    data: Mapping[str, SplitData],
    labels: Mapping[str, SplitLabels],
    cfg: ProbeConfig,
    *,
    seed: int,
) -> AxisRun:
    """``asserts`` on the hedge-licensing condition, through the same steps."""
    sets = _sets(data, labels, "asserts")
    fresh = {k: v for k, v in sets.items() if k != "train"}
    return run_axis("asserts", "hedged", sets["train"], fresh, cfg, seed=seed)


def run_controls(
    controls: ControlsConfig,
    cfg: ProbeConfig,
    ctx: StageContext,
    *,
    model: ModelConfig,
    data: Mapping[str, SplitData],
    labels: Mapping[str, SplitLabels],
    seed: int,
    cache: dict[str, str],
) -> dict[str, AxisRun]:
    """The positive and the negative control, each through :func:`run_axis`."""
    out: dict[str, AxisRun] = {}
    if controls.positive:
        sets, reused = positive_control(ctx, model)
        cache["controls/positive"] = "reused" if reused else "computed"
        fs = {s: FreshSet(c.X, c.y, c.rows) for s, c in sets.items()}
        out["positive"] = run_axis("statement truth (positive control)", "teacher-forced",
                                   fs["train"], {"fresh": fs["fresh"]}, cfg, seed=seed)  # fmt: skip
    if controls.negative:
        ys = {s: shuffled_within_family(lab, controls.seed) for s, lab in labels.items()}
        sets_n = _sets(data, labels, "correct", ys)
        fresh = {k: v for k, v in sets_n.items() if k != "train"}
        out["negative"] = run_axis("correct shuffled within family (negative control)",
                                   "plain", sets_n["train"], fresh, cfg, seed=seed)  # fmt: skip
    return out


def run_head_screen(
    cfg: ProbeConfig,
    data: Mapping[str, SplitData],
    labels: Mapping[str, SplitLabels],
    n_layers: int,
    C: float | None,
    *,
    seed: int,
    skipped: dict[str, str],
) -> HeadProbes | None:
    """A probe per head (correct, train -> fresh) with the max-statistic null over all heads."""
    if cfg.head_n_null == 0:
        skipped["head_screen"] = "[probe] head_n_null = 0"
        return None
    y, yf = labels["train"].array("correct"), labels["fresh"].array("correct")
    reason = C is None and "no main probe" or usable_reason(y, yf, folds=cfg.folds, what="correct")
    if reason:
        skipped["head_screen"] = str(reason)
        return None
    tr = layers_from_features(data["train"].features, n_layers=n_layers)
    fr = layers_from_features(data["fresh"].features, n_layers=n_layers)
    return head_probes(tr, y, fresh=fr, fresh_labels=yf, C=float(C or 1.0), folds=cfg.folds,
                       seed=seed, n_boot=cfg.depth_n_boot, n_null=cfg.head_n_null)  # fmt: skip


def run_deciding(
    probe: ProbeConfig,
    controls: ControlsConfig,
    model: ModelConfig,
    ctx: StageContext,
    *,
    data: Mapping[str, SplitData],
    labels: Mapping[str, SplitLabels],
    hedged: tuple[Mapping[str, SplitData], Mapping[str, SplitLabels]],
    fals: Falsification,
    n_layers: int,
    seed: int,
    stage: Callable[[str], AbstractContextManager[None]],
    cache: dict[str, str],
    skipped: dict[str, str],
    second: Mapping[str, SecondSplit] | None = None,
) -> tuple[Deciding, dict[str, DispositionSummary | None]]:
    """Every axis and control through the steps, the 2x2s, the head screen; and each axis's
    2x2 (the decision's closing numbers)."""
    h_data, h_labels = hedged
    d = Deciding(hedged_labels=dict(h_labels))
    with stage("axes and confounds"):
        d.axes["correct"] = correct_axis(fals, data, labels, probe, seed=seed)
        if h_data:
            d.axes["asserts"] = asserts_axis(h_data, h_labels, probe, seed=seed)
    with stage("controls"):
        d.controls = run_controls(controls, probe, ctx, model=model, data=data,
                                  labels=labels, seed=seed, cache=cache)  # fmt: skip
    with stage("head screen"):
        d.head_screen = run_head_screen(probe, data, labels, n_layers, fals.C, seed=seed,
                                        skipped=skipped)  # fmt: skip
    d.conditions["plain"] = dispositions_with_intervals(labels, n_boot=probe.n_boot, seed=seed)
    if h_labels:
        d.conditions["hedged"] = dispositions_with_intervals(h_labels, n_boot=probe.n_boot,
                                                             seed=seed)  # fmt: skip
    if second is not None and any(v.own for v in second.values()):
        # the second model answered in its own words: its own 2x2 (correct x verbal label)
        d.conditions["second model"] = {
            split: disposition(v.correct, [classify_verbal(r) for r in v.responses],
                               n_boot=probe.n_boot, seed=seed)
            for split, v in second.items()
        }  # fmt: skip
    tables = {"correct": d.conditions["plain"].get("fresh"),
              "asserts": d.conditions.get("hedged", {}).get("fresh")}  # fmt: skip
    return d, tables
