"""check_item dispatches on labels['family'] with clear errors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, read_items, write_items
from workbench.labels.domains import (
    FAMILIES,
    check_item,
    extract_item_answer,
    get_family,
    make_split,
)


def test_dispatch_to_each_family() -> None:
    items = make_split("train", 30, seed=2, families=("capitals", "arithmetic", "elements"))
    for it in items:
        gold = str(it.labels["gold"])
        assert check_item(it, f"The answer is {gold}.")
        assert not check_item(it, "I don't know.")
        assert check_item(replace(it, response=gold))
        assert extract_item_answer(it, "I don't know.") is None


def test_roundtrip_through_jsonl_keeps_checkable_labels(tmp_path) -> None:
    items = make_split("fresh_hard", 12, seed=0, families=("capitals", "arithmetic", "elements"))
    write_items(tmp_path / "items.jsonl", items)
    back = read_items(tmp_path / "items.jsonl")
    assert [it.labels for it in back] == [dict(it.labels) for it in items]
    assert all(check_item(b, str(a.labels["gold"])) for a, b in zip(items, back, strict=True))


def test_unknown_or_missing_family_and_missing_response() -> None:
    with pytest.raises(WorkbenchError, match="unknown task family 'poetry'.*arithmetic, capitals"):
        check_item(Item("a", "q", labels={"family": "poetry"}), "x")
    with pytest.raises(WorkbenchError, match="no 'family' label"):
        check_item(Item("a", "q"), "x")
    with pytest.raises(WorkbenchError, match="no response to check"):
        check_item(Item("a", "q", labels={"family": "capitals", "gold": "Paris"}))
    with pytest.raises(WorkbenchError, match="unknown task family"):
        get_family("nope")
    assert set(FAMILIES) == {"capitals", "arithmetic", "elements"}
