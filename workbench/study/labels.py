"""Labels per item: correct (the checker), verbal (the lexicon), truncated (generation).

Both caps are labelled: the main answer (``max_new_tokens``) and the short-cap
answer, so the report can count the answers whose label a cap changes (the
truncation artifact behind the paper's false HumanEval gain).

>>> from workbench.labels.domains import make_split
>>> item = make_split("train", 1)[0]
>>> row = label_row(item, "Luanda.", False, 3, short=("Lua", True))
>>> row["correct"], row["verbal"], row["short_correct"], row["short_truncated"]
(True, 'assert', False, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.items import Item
from workbench.labels.verbal import VerbalClassifier, verbal_agreement
from workbench.study.collect import SplitData

__all__ = ["Checker", "SplitLabels", "label_row", "label_split", "lexicon_json", "truncation_json"]

Checker = Callable[[Item, str], bool]


def label_row(
    item: Item,
    response: str,
    truncated: bool,
    n_tokens: int,
    *,
    short: tuple[str, bool],
    checker: Checker | None = None,
    classifier: VerbalClassifier | None = None,
) -> dict[str, Any]:
    """One item's labels under both caps."""
    from workbench.labels.domains import check_item

    check = checker or check_item
    clf = classifier or VerbalClassifier()
    verbal = clf.classify(response)
    short_text, short_cut = short
    return {
        "id": item.id,
        "family": item.labels.get("family"),
        "difficulty": item.labels.get("difficulty"),
        "response": response,
        "n_tokens": n_tokens,
        "correct": bool(check(item, response)),
        "verbal": verbal,
        "cues": list(clf.cues(response)),
        "truncated": bool(truncated),
        "short_response": short_text,
        "short_correct": bool(check(item, short_text)),
        "short_verbal": clf.classify(short_text),
        "short_truncated": bool(short_cut),
    }


@dataclass(frozen=True)
class SplitLabels:
    """The labels of one split, as rows and as 0/1 arrays."""

    name: str
    rows: tuple[dict[str, Any], ...]

    def array(self, axis: str) -> np.ndarray:
        """``correct``, ``asserts`` or ``truncated`` as a 0/1 float array."""
        if axis == "asserts":
            return np.array([r["verbal"] == "assert" for r in self.rows], dtype=np.float64)
        return np.array([bool(r[axis]) for r in self.rows], dtype=np.float64)

    @property
    def verbal(self) -> list[str]:
        return [r["verbal"] for r in self.rows]

    def rates(self) -> dict[str, Any]:
        n = len(self.rows)
        return {
            "n": n,
            "correct": int(self.array("correct").sum()),
            "asserts": int(self.array("asserts").sum()),
            "truncated": int(self.array("truncated").sum()),
            "correct_rate": float(self.array("correct").mean()),
            "assert_rate": float(self.array("asserts").mean()),
            "truncated_rate": float(self.array("truncated").mean()),
        }


def label_split(
    data: SplitData, checker: Checker | None = None, classifier: VerbalClassifier | None = None
) -> SplitLabels:
    rows = [
        label_row(
            item,
            g.response,
            g.truncated,
            g.n_tokens,
            short=(s.response, s.truncated),
            checker=checker,
            classifier=classifier,
        )
        for item, g, s in zip(data.items, data.generations, data.short, strict=True)
    ]
    return SplitLabels(data.name, tuple(rows))


def truncation_json(
    labels: Sequence[SplitLabels], main_cap: int, short_cap: int, n_examples: int = 3
) -> dict[str, Any]:
    """Per split: truncation under both caps and the answers whose labels change."""
    per_split = {}
    total_changed = total = 0
    for lab in labels:
        rows = lab.rows
        changed = [r for r in rows if r["correct"] != r["short_correct"]]
        verbal_changed = [r for r in rows if r["verbal"] != r["short_verbal"]]
        total_changed += len(changed)
        total += len(rows)
        per_split[lab.name] = {
            "n": len(rows),
            "truncated_main": sum(r["truncated"] for r in rows),
            "truncated_short": sum(r["short_truncated"] for r in rows),
            "correct_main": sum(r["correct"] for r in rows),
            "correct_short": sum(r["short_correct"] for r in rows),
            "correct_changed": len(changed),
            "correct_gained_with_longer_cap": sum(
                r["correct"] and not r["short_correct"] for r in rows
            ),
            "correct_lost_with_longer_cap": sum(
                r["short_correct"] and not r["correct"] for r in rows
            ),
            "verbal_changed": len(verbal_changed),
            "examples": [
                {k: r[k] for k in ("id", "short_response", "short_correct", "response", "correct")}
                for r in changed[:n_examples]
            ],
        }
    return {
        "max_new_tokens": main_cap,
        "short_max_new_tokens": short_cap,
        "method": (
            f"the short-cap answers are the first {short_cap} tokens of the greedy answers; "
            "greedy decoding over the same batches makes them what a max_new_tokens = "
            f"{short_cap} run returns"
        ),
        "correct_changed": total_changed,
        "n": total,
        "per_split": per_split,
    }


def lexicon_json(classifier: VerbalClassifier | None = None) -> dict[str, Any]:
    """The verbal classifier's word lists, rule and agreement on the hand-labelled sample."""
    clf = classifier or VerbalClassifier()
    return {
        "rule": (
            "hedge when a hedge phrase occurs as whole words, a confidence word has a negator "
            f"among the {clf.negation_window} words before it, or the response is empty; "
            "otherwise assert"
        ),
        "hedge_phrases": list(clf.hedge_phrases),
        "confidence_words": list(clf.confidence_words),
        "negators": list(clf.negators),
        "negation_window": clf.negation_window,
        "agreement": verbal_agreement(classifier=clf).to_json(),
    }
