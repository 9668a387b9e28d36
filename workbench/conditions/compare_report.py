"""Markdown for a :class:`~workbench.conditions.compare.Comparison` (``report.md`` of ``workbench compare``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.conditions.compare import Comparison, ConditionSummary, Delta

__all__ = ["comparison_markdown", "delta_line", "TRUNCATION_GAP"]

#: Truncated fractions further apart than this get a warning: the delta may be a cut-off artifact.
TRUNCATION_GAP = 0.05


def _score(s: ConditionSummary) -> str:
    return "n/a" if s.mean_score is None else f"{s.mean_score:.3f}"


def _row(tag: str, s: ConditionSummary, rescored: bool) -> str:
    cells = [f"{tag} `{s.label}`", s.model, str(s.max_new_tokens), str(s.n_items)]
    if rescored:
        cells.append(str(s.n_regenerated))
    cells += [f"{s.n_truncated} ({100 * s.truncated_fraction:.1f}%)", f"{s.n_scored}", _score(s)]
    return "| " + " | ".join(cells) + " |"


def _table(a: ConditionSummary, b: ConditionSummary, rescored: bool = False) -> list[str]:
    head = ["condition", "model", "max_new_tokens", "items"]
    head += ["regenerated"] if rescored else []
    head += ["truncated", "scored", "mean score"]
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        _row("A", a, rescored),
        _row("B", b, rescored),
    ]


def delta_line(d: Delta) -> str:
    """``B - A = +0.150 (+15.0 points), 95% CI [+0.020, +0.280], 40 paired items``."""
    return (
        f"B - A = {d.delta:+.3f} ({100 * d.delta:+.1f} points), 95% paired bootstrap CI "
        f"[{d.ci_low:+.3f}, {d.ci_high:+.3f}], {d.n_paired} paired items"
    )


def _truncation_warning(a: ConditionSummary, b: ConditionSummary) -> list[str]:
    gap = abs(a.truncated_fraction - b.truncated_fraction)
    if gap <= TRUNCATION_GAP and max(a.truncated_fraction, b.truncated_fraction) <= TRUNCATION_GAP:
        return []
    return [
        "",
        f"**Warning:** {100 * a.truncated_fraction:.1f}% of A and {100 * b.truncated_fraction:.1f}% "
        f"of B hit max_new_tokens = {a.max_new_tokens}. Cut responses are scored as they stand, so "
        "the delta may be a truncation artifact: rerun with `--rescore-max-new-tokens`.",
    ]


def comparison_markdown(c: Comparison) -> str:
    lines = [
        f"# Comparison: B `{c.b.label}` vs A `{c.a.label}`",
        "",
        f"Score: `{c.scorer}`, {c.scorer_description}. Items a scorer cannot score are left out.",
        "",
        *_table(c.a, c.b),
        "",
        delta_line(c.delta),
        *_truncation_warning(c.a, c.b),
    ]
    if c.allowed:
        lines += ["", "Differences accepted with `--allow`:", ""]
        lines += [f"- {k}: {v}" for k, v in c.allowed.items()]
    if c.rescored is not None:
        ra, rb, rd = c.rescored
        shift = rd.delta - c.delta.delta
        lines += [
            "",
            f"## Rescored at max_new_tokens = {ra.max_new_tokens}",
            "",
            "Only truncated responses were regenerated (same model, decoding and seeds).",
            "",
            *_table(ra, rb, rescored=True),
            "",
            delta_line(rd),
            "",
            f"The delta moved by {100 * shift:+.1f} points, from {100 * c.delta.delta:+.1f} at "
            f"max_new_tokens = {c.a.max_new_tokens} to {100 * rd.delta:+.1f} at {ra.max_new_tokens}"
            + (" (its sign flipped)." if c.delta.delta * rd.delta < 0 else "."),
        ]
    return "\n".join(lines) + "\n"
