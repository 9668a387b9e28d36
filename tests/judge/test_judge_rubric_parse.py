from __future__ import annotations

import pytest

from workbench.core.errors import WorkbenchError
from workbench.labels.judge import JudgeCallError, Rubric, high, parse_scores

AXES = ["factual_accuracy", "completeness"]


def test_reference_pass_never_sees_the_response() -> None:
    rubric = Rubric()
    ref = rubric.reference_messages("What is 2+2?")
    assert "What is 2+2?" in ref[-1]["content"]
    assert "{response}" not in ref[-1]["content"]
    score = rubric.score_messages("What is 2+2?", "REF-TEXT", "RESPONSE-TEXT")
    assert all(s in score[-1]["content"] for s in ("REF-TEXT", "RESPONSE-TEXT", "factual_accuracy"))


def test_scoring_prompt_is_identical_across_conditions_but_for_the_response() -> None:
    rubric = Rubric()
    a = rubric.score_messages("Q", "REF", "answer of the base model")
    b = rubric.score_messages("Q", "REF", "answer of the adapter")
    assert a[0] == b[0]
    assert a[1]["content"].replace("answer of the base model", "X") == b[1]["content"].replace(
        "answer of the adapter", "X"
    )


def test_braces_in_texts_are_not_substituted_again() -> None:
    msgs = Rubric().direct_messages("Explain {response} and {x}", "my {prompt} reply")
    text = msgs[-1]["content"]
    assert "Explain {response} and {x}" in text and "my {prompt} reply" in text


def test_prompt_hash_tracks_templates_axes_and_mode() -> None:
    base = Rubric()
    assert base.prompt_sha256("two_pass") == Rubric().prompt_sha256("two_pass")
    assert base.prompt_sha256("two_pass") != base.prompt_sha256("direct")
    other = Rubric(score_template=base.score_template.replace("strict", "lenient") + " Be kind.")
    assert other.prompt_sha256("two_pass") != base.prompt_sha256("two_pass")
    # the direct prompt does not use the score template
    assert other.prompt_sha256("direct") == base.prompt_sha256("direct")
    assert Rubric.from_axes(AXES).prompt_sha256("direct") != base.prompt_sha256("direct")


def test_rubric_validation() -> None:
    with pytest.raises(WorkbenchError, match="listed twice"):
        Rubric.from_axes(["a", "a"])
    with pytest.raises(WorkbenchError, match="not a valid name"):
        Rubric.from_axes(["factual accuracy"])
    with pytest.raises(WorkbenchError, match="no axes"):
        Rubric.from_axes([])
    with pytest.raises(WorkbenchError, match=r"lacks the placeholder \{response\}"):
        Rubric(direct_template="Score {prompt} on {axes}")
    with pytest.raises(WorkbenchError, match="unknown rubric key 'axis'"):
        Rubric.from_json({"axis": ["a"]})
    with pytest.raises(WorkbenchError, match="one string"):
        Rubric.from_axes("factual_accuracy")


@pytest.mark.parametrize(
    "reply",
    [
        '{"factual_accuracy": 4, "completeness": 2}',
        'Here are my scores:\n```json\n{"factual_accuracy": 4, "completeness": 2}\n```\nThanks.',
        'Reasoning... final: {"factual_accuracy": 4, "completeness": 2} done',
        '{"scores": {"factual_accuracy": 4, "completeness": 2}, "notes": "x"}',
        '{"Factual Accuracy": "4", "completeness": 2.0, "extra": 9}',
        'I think {this} is good. {"factual_accuracy": 4, "completeness": 2}',
        '{"factual_accuracy": 1}\n{"factual_accuracy": 4, "completeness": 2}',
    ],
)
def test_parser_accepts_common_shapes(reply: str) -> None:
    assert parse_scores(reply, AXES) == {"factual_accuracy": 4, "completeness": 2}


@pytest.mark.parametrize(
    ("reply", "kind", "needle"),
    [
        ("The answer is quite good overall.", "no_json", "no JSON object"),
        ('{"factual_accuracy": 4}', "missing_axes", "lacks the axes completeness"),
        ('{"verdict": "good"}', "missing_axes", "none of them"),
        ('{"factual_accuracy": 6, "completeness": 2}', "out_of_range", "as 6, outside 1..5"),
        ('{"factual_accuracy": 0, "completeness": 2}', "out_of_range", "as 0"),
        ('{"factual_accuracy": 3.5, "completeness": 2}', "not_integer", "3.5"),
        ('{"factual_accuracy": true, "completeness": 2}', "not_integer", "True"),
        ('{"factual_accuracy": "high", "completeness": 2}', "not_integer", "'high'"),
        ('```json\n{"factual_accuracy": 4, "completeness": \n```', "no_json", "no JSON"),
    ],
)
def test_parser_failures_name_kind_and_value(reply: str, kind: str, needle: str) -> None:
    with pytest.raises(JudgeCallError) as info:
        parse_scores(reply, AXES)
    assert info.value.kind == kind
    assert needle in info.value.message
    assert info.value.reply == reply


def test_high_is_score_at_least_four() -> None:
    scores = {"factual_accuracy": 4, "completeness": 3}
    assert high(scores, "factual_accuracy")
    assert not high(scores, "completeness")
    assert high(scores, "completeness", threshold=3)
    with pytest.raises(WorkbenchError, match="axis 'hedging' is not among the scores"):
        high(scores, "hedging")
