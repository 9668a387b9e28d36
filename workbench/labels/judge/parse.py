"""Read a judge's reply into per-axis integer scores, or say exactly why not.

Judges wrap JSON in ```json fences, add a sentence before or after it, nest it
under ``"scores"``, write ``"4"`` or ``4.0``, or spell an axis ``Factual
Accuracy``. All of that is accepted. A reply with no JSON object, a missing axis,
a score that is not an integer or one outside 1..5 raises
:class:`~workbench.labels.judge.failure.JudgeCallError` with the reply attached.

>>> parse_scores('Sure! ```json\\n{"factual_accuracy": 4}\\n```', ["factual_accuracy"])
{'factual_accuracy': 4}
>>> high({"factual_accuracy": 4}, "factual_accuracy")
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.labels.judge.failure import JudgeCallError
from workbench.labels.judge.rubric import SCORE_MAX, SCORE_MIN

__all__ = ["parse_scores", "high"]

_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_SNIPPET = 120


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET else flat[: _SNIPPET - 3] + "..."


def _objects(text: str) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``text``: fenced blocks first, then anywhere in the text."""
    decoder = json.JSONDecoder()
    for chunk in [*(m.group(1) for m in _FENCE.finditer(text)), text]:
        pos = chunk.find("{")
        while pos != -1:
            try:
                obj, end = decoder.raw_decode(chunk, pos)
            except json.JSONDecodeError:
                pos = chunk.find("{", pos + 1)
                continue
            if isinstance(obj, dict):
                yield obj
                nested = obj.get("scores")
                if isinstance(nested, dict):
                    yield nested
            pos = chunk.find("{", end)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def parse_scores(text: str, axes: Sequence[str]) -> dict[str, int]:
    """The scores in a judge reply, one integer in 1..5 per axis, in ``axes`` order.

    Of the JSON objects in the reply, the one naming the most axes is used; keys
    that are not axes are ignored.

    Raises:
        JudgeCallError: kind ``no_json``, ``missing_axes``, ``not_integer`` or
            ``out_of_range``; its ``reply`` holds ``text``.
    """
    wanted = {_norm(a): a for a in axes}
    best: dict[str, Any] | None = None
    best_hits = -1
    for obj in _objects(text):
        found = {wanted[_norm(k)]: v for k, v in obj.items() if _norm(str(k)) in wanted}
        if len(found) > best_hits:
            best, best_hits = found, len(found)
    if best is None:
        raise JudgeCallError(
            "no_json", f"the judge's reply holds no JSON object: {_snippet(text)!r}", reply=text
        )
    missing = [a for a in axes if a not in best]
    if missing:
        raise JudgeCallError(
            "missing_axes",
            f"the judge's reply lacks the axes {', '.join(missing)} "
            f"(it gave {', '.join(best) or 'none of them'}): {_snippet(text)!r}",
            reply=text,
        )
    scores: dict[str, int] = {}
    for axis in axes:
        value = _as_int(best[axis])
        if value is None:
            raise JudgeCallError(
                "not_integer",
                f"the judge scored {axis} as {best[axis]!r}, not an integer "
                f"{SCORE_MIN}..{SCORE_MAX}",
                reply=text,
            )
        if not SCORE_MIN <= value <= SCORE_MAX:
            raise JudgeCallError(
                "out_of_range",
                f"the judge scored {axis} as {value}, outside {SCORE_MIN}..{SCORE_MAX}",
                reply=text,
            )
        scores[axis] = value
    return scores


def high(scores: Mapping[str, int], axis: str, threshold: int = 4) -> bool:
    """Whether ``axis`` scored at least ``threshold`` (the paper's "high" = score >= 4).

    >>> high({"completeness": 3}, "completeness")
    False
    """
    if axis not in scores:
        raise WorkbenchError(
            f"axis {axis!r} is not among the scores ({', '.join(scores) or 'none'}): "
            "pass one of those axes"
        )
    return scores[axis] >= threshold
