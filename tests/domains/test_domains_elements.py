"""The elements checker and table."""

from __future__ import annotations

import pytest

from workbench.core.items import Item
from workbench.labels.domains import elements
from workbench.labels.domains.tables import elements_table

ITEM = Item("t", "What is the chemical symbol for gold?", labels={"gold": "Au"})


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Au", True),
        ("The chemical symbol for gold is Au.", True),
        ("Gold (Au) is element 79.", True),
        ("Symbol: 'Au'", True),
        ("The chemical symbol for gold is Au, not Ag.", True),
        ("Ag. Sorry, Au.", False),
        ("AU", False),
        ("au", False),
        ("It is aurum.", False),
        ("Gold is Go.", False),
        ("In chemistry, I think it is Au.", True),  # "In" and "I" are not symbols here
        ("", False),
    ],
)
def test_check_tricky_responses(response: str, expected: bool) -> None:
    assert elements.check(ITEM, response) is expected


def test_symbols_inside_formulas_do_not_count() -> None:
    item = Item("t", "q", labels={"gold": "O"})
    assert not elements.check(item, "Water is H2O.")
    assert elements.check(item, "Oxygen is O; water is H2O.")
    assert elements.extract_answer(item, "H2O") is None


def test_table_excludes_word_like_symbols_and_splits_by_number() -> None:
    rows = elements_table()
    symbols = {r.symbol for r in rows}
    assert not symbols & {"He", "Be", "As", "In", "I", "At", "No", "Am", "Er"}
    assert len(symbols) == len(rows)
    assert all(r.pool == "hard" for r in rows if r.number > 56)
    assert all(r.pool in ("train", "fresh") for r in rows if r.number <= 56)
    train = [r for r in rows if r.pool == "train"]
    fresh = [r for r in rows if r.pool == "fresh"]
    assert abs(len(train) - len(fresh)) <= 1


def test_hard_elements_are_heavier_than_any_common_one() -> None:
    hard = elements.generate(20, split="fresh_hard", seed=0, pool="hard", templates="fresh")
    common = elements.generate(20, split="train", seed=0, pool="train", templates="train")
    assert min(it.labels["number"] for it in hard) > max(it.labels["number"] for it in common)
