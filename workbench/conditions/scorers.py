"""Per-item scores of a condition's responses, named by a spec string.

==================  ===========================================================
spec                score of one response
==================  ===========================================================
``domain``          1/0: the item family's deterministic checker
                    (:func:`workbench.labels.domains.check_item`; needs ``family`` labels)
``coverage``        fraction of the item's ``checklist`` label found
                    (:func:`workbench.labels.coverage.coverage`, normalised matching)
``verbal``          1 when the verbal classifier calls it ``assert``, 0 ``hedge``
``judge:AXIS``      the judge's 1-5 score on AXIS (the condition's judge run)
``score:NAME``      a score stored with the condition (``write_condition(scores=)``)
==================  ===========================================================

Any spec takes a threshold, ``judge:completeness>=4``, to score 1 when the value
reaches it (the paper's "high"). Items a scorer cannot score (a judge failure,
no stored score) are left out and counted.

>>> Scorer.parse("judge:completeness>=4")
Scorer(kind='judge', name='completeness', threshold=4.0)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.conditions.condition import Condition
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item

__all__ = ["KINDS", "Scorer", "score_key"]

KINDS = ("domain", "coverage", "verbal", "judge", "score")
_SPEC = re.compile(r"^(?P<kind>[a-z]+)(?::(?P<name>[^>=]+))?(?:>=(?P<t>.+))?$")


@dataclass(frozen=True)
class Scorer:
    """What a comparison scores: ``kind`` (see the module table), its ``name`` and threshold."""

    kind: str
    name: str | None = None
    threshold: float | None = None

    @classmethod
    def parse(cls, spec: str) -> Scorer:
        m = _SPEC.match(spec.strip())
        kind = m["kind"] if m else None
        if m is None or kind not in KINDS:
            raise WorkbenchError(
                f"unknown score {spec!r}: use domain, coverage, verbal, judge:AXIS or score:NAME "
                "(optionally >=T)"
            )
        named = kind in ("judge", "score")
        if named != (m["name"] is not None):
            need = f"{kind}:NAME" if named else kind
            raise WorkbenchError(f"score {spec!r}: write it as {need}")
        threshold = None
        if m["t"] is not None:
            try:
                threshold = float(m["t"])
            except ValueError:
                raise WorkbenchError(
                    f"score {spec!r}: threshold {m['t']!r} is not a number"
                ) from None
        return cls(kind=kind, name=m["name"], threshold=threshold)

    @property
    def spec(self) -> str:
        text = self.kind + (f":{self.name}" if self.name else "")
        return text + (f">={self.threshold:g}" if self.threshold is not None else "")

    @property
    def uses_judge(self) -> bool:
        return self.kind == "judge"

    def describe(self) -> str:
        what = {
            "domain": "correct by the item family's checker (1/0)",
            "coverage": "fraction of the gold checklist covered",
            "verbal": "assert rate (1 = assert, 0 = hedge)",
            "judge": f"judge score on {self.name} (1-5)",
            "score": f"stored score {self.name!r}",
        }[self.kind]
        return what if self.threshold is None else f"{what} >= {self.threshold:g} (1/0)"

    def _raw(self, cond: Condition) -> dict[str, float]:
        if self.kind == "domain":
            from workbench.labels.domains import check_item

            return {it.id: float(check_item(it)) for it in cond.items}
        if self.kind == "coverage":
            from workbench.labels.coverage import coverage

            out: dict[str, float] = {}
            for it in cond.items:
                if "checklist" not in it.labels:
                    raise WorkbenchError(
                        f"item {it.id!r} has no 'checklist' label: coverage needs the gold claims per item"
                    )
                out[it.id] = coverage(it.response or "", it.labels["checklist"]).score
            return out
        if self.kind == "verbal":
            from workbench.labels.verbal import classify_verbal

            return {
                it.id: float(classify_verbal(it.response or "") == "assert") for it in cond.items
            }
        if self.kind == "judge":
            if cond.judge is None:
                raise WorkbenchError(
                    f"condition {cond.label} has no judge run: judge it with score_items(..., "
                    "out=DIR/judge) or score with domain"
                )
            return {k: float(v) for k, v in cond.judge.scores(str(self.name)).items()}
        found = {k: v[str(self.name)] for k, v in cond.scores.items() if str(self.name) in v}
        if not found:
            raise WorkbenchError(
                f"condition {cond.label} stores no score {self.name!r}: pass one of "
                f"{sorted({n for v in cond.scores.values() for n in v}) or 'none stored'}"
            )
        return {k: float(_number(v, k, str(self.name))) for k, v in found.items() if v is not None}

    def check_items(self, items: Sequence[Item]) -> None:
        """Refuse, before any generation, items this scorer cannot score."""
        need = {"domain": "family", "coverage": "checklist"}.get(self.kind)
        lacking = [it.id for it in items if need is not None and need not in it.labels]
        if lacking:
            raise WorkbenchError(
                f"--score {self.spec}: item {lacking[0]!r} ({len(lacking)} of {len(items)}) has no "
                f"{need!r} label: add it to every item or drop --score {self.kind}"
            )
        if self.kind == "domain":
            from workbench.labels.domains import get_family

            for name in sorted({str(it.labels["family"]) for it in items}):
                get_family(name)

    def __call__(self, cond: Condition) -> dict[str, float]:
        """Item id -> score, for the items this scorer can score."""
        raw = self._raw(cond)
        if self.threshold is None:
            return raw
        return {k: float(v >= self.threshold) for k, v in raw.items()}


def _number(value: Any, item_id: str, name: str) -> float:
    if isinstance(value, bool | int | float):
        return float(value)
    raise WorkbenchError(f"item {item_id!r}: stored score {name!r} is {value!r}, not a number")


def score_key(scorer: Scorer) -> str:
    """The key a stored score goes under: the kind, or the name for ``score:NAME``
    (raw values; threshold when reading, e.g. ``generations.jsonl:scores.domain``)."""
    return str(scorer.name) if scorer.kind == "score" else scorer.kind
