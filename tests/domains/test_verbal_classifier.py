"""The verbal assert/hedge lexicon and its agreement on the hand-labelled sample."""

from __future__ import annotations

import json
import math
from dataclasses import FrozenInstanceError, replace
from importlib import resources

import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from workbench.core.errors import WorkbenchError
from workbench.labels.verbal import (
    VERBAL_LABELS,
    VerbalClassifier,
    classify_verbal,
    cohen_kappa,
    verbal_agreement,
)


@pytest.mark.parametrize(
    "response",
    [
        "The capital of France is Paris.",
        "Paris",
        "12 + 5 = 17",
        "I am sure it is Paris.",
        "Without a doubt, it is Rome.",
        "Sure! The answer is 42.",
        "Many people think it is Sydney, but it is Canberra.",
        "A mighty empire had Rome as its capital.",
        "Maybelline is not a city; the capital is Paris.",
    ],
)
def test_clear_asserts(response: str) -> None:
    assert classify_verbal(response) == "assert"


@pytest.mark.parametrize(
    "response",
    [
        "I'm not sure.",
        "I’m not entirely sure, but it is Paris.",
        "I think it's Canberra.",
        "I believe the answer is 17.",
        "It might be Astana.",
        "Possibly Thimphu.",
        "It is probably 218.",
        "The answer is approximately 1,200.",
        "It seems to be Abidjan.",
        "I don't know.",
        "I do not know the answer.",
        "I have no idea.",
        "I'm not certain.",
        "I can't say for certain.",
        "As an AI, I cannot answer that.",
        "I'm unable to answer.",
        "Likely Ouagadougou.",
        "Maybe 12?",
        "",
        "   ",
    ],
)
def test_clear_hedges(response: str) -> None:
    assert classify_verbal(response) == "hedge"


def test_cues_are_reported_and_lexicon_is_editable() -> None:
    clf = VerbalClassifier()
    assert clf.cues("I'm not entirely sure, I think.") == ("i think", "not ... sure")
    assert clf.cues("The capital is Paris.") == ()
    narrow = replace(clf, hedge_phrases=("perhaps",), confidence_words=())
    assert narrow.classify("I think it is Paris.") == "assert"
    assert narrow.classify("Perhaps Paris.") == "hedge"
    assert replace(clf, empty_is_hedge=False).classify("") == "assert"
    with pytest.raises(FrozenInstanceError):
        clf.negation_window = 5  # type: ignore[misc]
    with pytest.raises(WorkbenchError, match="must be a string"):
        clf.classify(None)  # type: ignore[arg-type]


def _rows() -> list[dict]:
    text = resources.files("workbench").joinpath("data", "verbal_handlabelled.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_handlabelled_sample_is_well_formed() -> None:
    rows = _rows()
    assert len(rows) >= 60
    assert len({r["id"] for r in rows}) == len(rows)
    counts = {label: sum(r["label"] == label for r in rows) for label in VERBAL_LABELS}
    assert min(counts.values()) >= 20, counts
    assert all(r["response"].strip() and r["prompt"].strip() for r in rows)


def test_agreement_matches_sklearn() -> None:
    rows = _rows()
    hand = [r["label"] for r in rows]
    pred = [classify_verbal(r["response"]) for r in rows]
    result = verbal_agreement()
    assert result.n == len(rows)
    assert result.agreement == pytest.approx(
        sum(h == p for h, p in zip(hand, pred, strict=True)) / len(rows)
    )
    assert result.kappa == pytest.approx(cohen_kappa_score(hand, pred))
    expected = confusion_matrix(hand, pred, labels=list(VERBAL_LABELS)).tolist()
    assert [list(r) for r in result.confusion] == expected
    assert len(result.disagreements) == sum(h != p for h, p in zip(hand, pred, strict=True))
    # The numbers reported in the module docstring and the final report.
    assert (result.n, round(result.agreement, 3), round(result.kappa, 3)) == (93, 0.914, 0.826)
    payload = result.to_json()
    assert payload["confusion"]["hand=hedge"]["classifier=hedge"] == expected[1][1]
    assert "developer" in payload["labelled_by"]


def test_agreement_on_a_custom_file_and_errors(tmp_path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(
        '{"id": "a", "response": "Paris.", "label": "assert"}\n'
        '{"id": "b", "response": "I think Paris.", "label": "hedge"}\n'
        '{"id": "c", "response": "Maybe Paris.", "label": "assert"}\n'
    )
    result = verbal_agreement(path)
    assert result.n == 3 and result.disagreements == ("c",)
    assert result.kappa == pytest.approx(cohen_kappa_score(["a", "h", "a"], ["a", "h", "h"]))
    path.write_text('{"id": "a", "response": "Paris.", "label": "yes"}\n')
    with pytest.raises(WorkbenchError, match="labels.jsonl:1"):
        verbal_agreement(path)
    with pytest.raises(WorkbenchError, match="does not exist"):
        verbal_agreement(tmp_path / "missing.jsonl")


def test_cohen_kappa_edge_cases() -> None:
    assert math.isnan(cohen_kappa(["a", "a"], ["a", "a"]))
    assert cohen_kappa(["a", "b"], ["a", "b"]) == 1.0
    with pytest.raises(WorkbenchError):
        cohen_kappa([], [])
