"""The capitals checker on tricky responses, and the capitals table's integrity."""

from __future__ import annotations

import pytest

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.labels.domains import capitals
from workbench.labels.domains.normalize import contains_phrase, normalize_text
from workbench.labels.domains.tables import capitals_table


def _item(country: str) -> Item:
    row = next(r for r in capitals_table() if r.country == country)
    return Item(
        "t",
        f"What is the capital of {country}?",
        labels={
            "family": "capitals",
            "gold": row.capital,
            "aliases": list(row.aliases),
            "distractors": list(row.distractors),
        },
    )


@pytest.mark.parametrize(
    ("country", "response", "expected"),
    [
        ("France", "The capital of France is Paris.", True),
        ("France", "paris", True),
        ("France", "PARIS!!!", True),
        ("France", "Lyon.", False),
        ("France", "I don't know.", False),
        ("France", "", False),
        ("the United States", "Washington, D.C.", True),
        ("the United States", "It's Washington DC.", True),
        ("the United States", "washington", True),
        ("the United States", "The capital is the District of Columbia.", True),
        ("the United States", "New York City, not Washington.", False),
        ("Brazil", "Brasilia", True),
        ("Brazil", "Brasília is the capital.", True),
        ("Brazil", "Rio de Janeiro", False),
        ("Brazil", "São Paulo, though Brasília is the seat of government.", False),
        ("Australia", "The capital of Australia is Canberra, not Sydney.", True),
        ("Australia", "Sydney. Wait, no: Canberra.", False),
        ("Australia", "The capital of Australia is Sydney.", False),
        ("Australia", "Melbourne", False),
        ("Australia", "canberra", True),
        ("Haiti", "Port au Prince", True),
        ("Haiti", "Port-au-Prince.", True),
        ("Chad", "Ndjamena", True),
        ("Chad", "N’Djamena", True),
        ("Grenada", "St Georges", True),
        ("Grenada", "Saint George's", True),
        ("Mexico", "The capital of Mexico is Mexico City.", True),
        ("Mexico", "The capital of Mexico is Guadalajara.", False),
        ("Kazakhstan", "Nur-Sultan", True),
        ("Kazakhstan", "Almaty", False),
        ("Moldova", "Chisinau", True),
        ("Tonga", "Nuku'alofa", True),
        ("Switzerland", "Bern (Berne), not Zurich", True),
        ("Switzerland", "Bernese", False),
        ("Italy", "Romeo and Juliet were in Verona.", False),
        ("Italy", "The capital of Italy is Paris.", False),
        ("Kiribati", "Tarawa", True),
        ("Kiribati", "South Tarawa", True),
    ],
)
def test_check_tricky_responses(country: str, response: str, expected: bool) -> None:
    assert capitals.check(_item(country), response) is expected


def test_extract_answer_returns_first_named_city() -> None:
    item = _item("Australia")
    assert capitals.extract_answer(item, "Sydney? No: Canberra.") == "Sydney"
    assert capitals.extract_answer(item, "Canberra, not Sydney") == "Canberra"
    assert capitals.extract_answer(item, "no city here") is None


def test_custom_item_without_table_row() -> None:
    item = Item("x", "q", labels={"gold": "Atlantis City", "aliases": ["Atlantis"]})
    assert capitals.check(item, "It is Atlantis.")
    assert not capitals.check(item, "It is Paris, then Atlantis.")


def test_missing_or_bad_gold_label_is_a_clear_error() -> None:
    with pytest.raises(WorkbenchError, match="no label 'gold'"):
        capitals.check(Item("x", "q", labels={}), "Paris")
    with pytest.raises(WorkbenchError, match="'aliases' a list"):
        capitals.check(Item("x", "q", labels={"gold": "Paris", "aliases": "Paname"}), "Paris")


def test_table_is_consistent() -> None:
    rows = capitals_table()
    assert len({r.country for r in rows}) == len(rows)
    answers = {normalize_text(a) for r in rows for a in r.accepted}
    for row in rows:
        if row.pool == "hard":
            assert row.hard_reason in ("trap", "rare")
        if row.hard_reason == "trap":
            assert row.distractors, f"trap row {row.country} needs the famous wrong city"
        for d in row.distractors:
            assert normalize_text(d) not in answers, f"distractor {d} is some country's capital"
        assert not set(map(normalize_text, row.distractors)) & set(
            map(normalize_text, row.accepted)
        )
    # No candidate city hides inside a country's name (a restated question would
    # otherwise name a city), so "capital of Guinea-Bissau" cannot count as "Bissau".
    candidates = {a for r in rows for a in (*r.accepted, *r.distractors)}
    for row in rows:
        for cand in candidates:
            assert not contains_phrase(row.country, cand), (row.country, cand)


def test_pools_are_balanced_and_disjoint() -> None:
    rows = capitals_table()
    train = [r for r in rows if r.pool == "train"]
    fresh = [r for r in rows if r.pool == "fresh"]
    hard = [r for r in rows if r.pool == "hard"]
    assert abs(len(train) - len(fresh)) <= 1
    assert len(hard) >= 40
    assert capitals.capacity("train") == len(train)
    # Famous ones land on both sides (alternation in fame order).
    assert {"France", "Italy"} <= {r.country for r in train}
    assert {"Japan", "Germany"} <= {r.country for r in fresh}
