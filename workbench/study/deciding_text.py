"""Plain-language text of the deciding stages: conditions, controls, the head screen, an axis.

Wording only: every verdict comes from the result objects.

>>> head_screen_plain(None, "[probe] head_n_null = 0")
'Not run: [probe] head_n_null = 0.'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from interventions import HeadProbes
from probes import DispositionSummary
from workbench.study.axis import AxisRun, axis_reads

__all__ = ["axis_plain", "conditions_plain", "controls_plain", "head_screen_plain"]


def conditions_plain(
    conditions: Mapping[str, Mapping[str, DispositionSummary]], instruction: str | None
) -> str:
    """The 2x2 and the assertion asymmetry with its interval, per condition and split."""
    parts = []
    for cond, per in conditions.items():
        what = {"plain": "plain prompt", "second model": "second model in its own words"}.get(
            cond, f'hedge-licensing prompt ("{instruction}")'
        )
        for split, d in per.items():
            parts.append(f"{what}, {split}: {d.sentence()}")
    return " ".join(parts) or "Not run."


def axis_plain(run: AxisRun) -> str:
    """One axis or control through the steps, in a sentence or two."""
    if run.report is None or run.main is None:
        return f"{run.axis} ({run.condition}): not run: {run.skipped}."
    best = run.main.best
    reads = axis_reads(run)
    t = best.transfer
    fresh = "" if t is None else f", fresh AUC {t.auc} (shuffled-label p = {t.null.p_above:.3f})"
    step6 = run.report.step("confounds")
    left = "; ".join(f"{k} left out ({v.split(':')[-1].strip()})" for k, v in run.dropped.items())
    return (
        f"{run.axis} ({run.condition} condition; {best.label}): CV AUC {best.cv.auc}{fresh}; "
        f"step 1 {'passes' if reads['cv'] else 'fails'}, the fresh read-out "
        f"{'passes' if reads['fresh'] else 'fails'}; step 6: {step6.verdict}. {step6.summary}"
        + (f" Confounds {left}." if left else "")
    )


def controls_plain(decision: Mapping[str, Any], controls: Mapping[str, AxisRun]) -> str:
    """The controls beside the real axes, and whether the machinery can be trusted."""
    if not controls:
        return "No controls ran ([controls] positive and negative are false)."
    parts = [axis_plain(r) for r in controls.values()]
    if decision.get("warnings"):
        parts.insert(0, "The decision on the real axes cannot be trusted: "
                     + "; ".join(decision["warnings"]) + ".")  # fmt: skip
    else:
        parts.insert(0, "Both controls came out as they must (the positive one survives, the "
                     "negative one fails), so the machinery found what is there and nothing "
                     "where nothing is.")  # fmt: skip
    return " ".join(parts)


def head_screen_plain(screen: HeadProbes | None, reason: str | None) -> str:
    """The best per-head probe with its family-wise adjusted p."""
    if screen is None:
        return f"Not run: {reason or 'disabled'}."
    best = screen.ranked()[0]
    null = screen.null
    adj = "" if best.adjusted_p is None else f", max-statistic adjusted p = {best.adjusted_p:.3f}"
    chance = (
        ""
        if null is None
        else f"; over {null.n_perm} label shuffles the best of {len(screen.probes)} heads reaches "
        f"{float(np.median(null.null_max)):.3f} at the median and "
        f"{float(np.quantile(null.null_max, 0.95)):.3f} at the 95th percentile"
    )
    n_sig = sum(1 for p in screen.probes if p.adjusted_p is not None and p.adjusted_p < 0.05)
    return (
        f"A probe per head (o_proj input, correct on train -> fresh): the best is "
        f"L{best.layer}.H{best.head} with fresh AUC {best.auc:.3f}{adj}{chance}. {n_sig} of "
        f"{len(screen.probes)} heads have an adjusted p below 0.05. The screen asks about "
        "correctness alone, not beyond the named confounds: a head that reads response length "
        "passes it too."
    )
