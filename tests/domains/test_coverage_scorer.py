"""Gold-checklist coverage with each matcher."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import numpy as np
import pytest

from workbench.core.errors import WorkbenchError
from workbench.labels.coverage import CoverageResult, coverage

RESPONSE = "Canberra is Australia's capital; Sydney (pop. 5 million) is larger. São Paulo!"


def test_normalized_matcher_is_the_default() -> None:
    result = coverage(RESPONSE, ["canberra", "SYDNEY", "sao paulo", "Melbourne"])
    assert result.hits == (True, True, True, False)
    assert result.score == 0.75
    assert result.matcher == "normalized"
    assert result.missing == (("Melbourne",),)
    assert result.passed() and not result.passed(0.8)


def test_normalized_matches_whole_words_only() -> None:
    assert coverage("The start of it.", ["art"]).score == 0.0
    assert coverage("It's the U.S. capital", ["US capital"]).score == 1.0
    assert coverage("5 million", ["5  Million"]).score == 1.0


def test_exact_matcher_is_case_and_accent_sensitive() -> None:
    result = coverage(RESPONSE, ["Canberra", "canberra", "São Paulo", "Sao Paulo"], matcher="exact")
    assert result.hits == (True, False, True, False)
    assert coverage("Start", ["tar"], matcher="exact").score == 1.0  # plain substring


def test_alternatives_and_matched_record() -> None:
    result = coverage(RESPONSE, [["Melbourne", "Sydney"], ("Perth",)])
    assert result.hits == (True, False)
    assert result.matched == ("Sydney", None)
    assert result.claims == (("Melbourne", "Sydney"), ("Perth",))
    assert result.to_json()["claims"][0] == {
        "claim": ["Melbourne", "Sydney"],
        "hit": True,
        "matched": "Sydney",
    }


def test_callable_matcher_like_a_judge() -> None:
    calls: list[tuple[str, str]] = []

    def judge(response: str, claim: str) -> bool:
        calls.append((response, claim))
        return claim.lower() in response.lower()

    result = coverage("Paris is the capital.", ["paris", ["Lyon", "capital"]], matcher=judge)
    assert result.hits == (True, True)
    assert result.matcher == "judge"
    assert calls == [
        ("Paris is the capital.", "paris"),
        ("Paris is the capital.", "Lyon"),
        ("Paris is the capital.", "capital"),
    ]
    assert coverage("x", ["a"], matcher=lambda r, c: np.bool_(True)).score == 1.0


def test_result_is_frozen() -> None:
    result = coverage("a", ["a"])
    assert isinstance(result, CoverageResult)
    with pytest.raises(FrozenInstanceError):
        result.score = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"checklist": []}, "checklist is empty"),
        ({"checklist": "Paris"}, "is a string"),
        ({"checklist": [""]}, "non-empty string"),
        ({"checklist": [[]]}, "non-empty"),
        ({"checklist": ["?!"]}, "only punctuation"),
        ({"checklist": ["a"], "matcher": "fuzzy"}, "unknown matcher 'fuzzy'"),
        ({"checklist": ["a"], "matcher": 3}, "neither a name nor a callable"),
        ({"checklist": ["a"], "matcher": lambda r, c: "yes"}, "must return True or False"),
    ],
)
def test_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(WorkbenchError, match=match):
        coverage("a response", **kwargs)
    with pytest.raises(WorkbenchError, match="response must be a string"):
        coverage(None, ["a"])  # type: ignore[arg-type]


def test_exact_matcher_accepts_punctuation_claims() -> None:
    assert coverage("Is it 5?!", ["?!"], matcher="exact").score == 1.0
