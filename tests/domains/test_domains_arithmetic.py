"""Arithmetic: number reading, the answer rule, difficulty by construction, disjoint pools."""

from __future__ import annotations

import pytest

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.labels.domains import arithmetic
from workbench.labels.domains.arithmetic import LEVELS, Difficulty
from workbench.labels.domains.numbers import find_numbers, strip_expression


def _item(operands: list[int], ops: list[str]) -> Item:
    gold = eval(arithmetic.expression(operands, ops).replace("×", "*"))  # reference
    return Item("t", "q", labels={"gold": gold, "operands": operands, "ops": ops})


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("1,024 and 12,5", [1024, 12, 5]),
        ("-7, = −7, 7 - 2, 12-5", [-7, -7, 7, 2, 12, 5]),
        ("17.0 and 17. and 3.5", [17.0, 17, 3.5]),
        ("3rd x2 v1.2 10", [10]),
        ("１７", [17]),
        ("no numbers", []),
    ],
)
def test_find_numbers(text: str, numbers: list[float]) -> None:
    import unicodedata

    assert find_numbers(unicodedata.normalize("NFKC", text)) == numbers


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("17", True),
        ("12 + 5 = 17", True),
        ("12+5=17", True),
        ("The answer is 17.", True),
        ("The answer is 17 (12 + 5).", True),
        ("12 plus 5 equals 17.", True),
        ("Adding 12 and 5 gives 17.", True),
        ("17 is the result of adding 12 and 5.", True),
        ("The answer is 16. Wait, 17.", True),
        ("The answer is 17. Wait, 16.", False),
        ("17? No, 16.", False),
        ("12 + 5 = 18", False),
        ("17.0", True),
        ("17.5", False),
        ("seventeen", False),
        ("I don't know.", False),
        ("12 + 5", False),
    ],
)
def test_check_tricky_responses(response: str, expected: bool) -> None:
    assert arithmetic.check(_item([12, 5], ["+"]), response) is expected


def test_subtraction_negative_and_commas() -> None:
    minus = _item([512, 600], ["-"])
    assert arithmetic.check(minus, "512 - 600 = -88")
    assert arithmetic.check(minus, "It is −88.")
    assert not arithmetic.check(minus, "512 - 600 = 88")
    big = _item([999, 25], ["+"])
    assert arithmetic.check(big, "999 + 25 = 1,024")
    assert arithmetic.check(big, "1024")
    three = _item([12, 5, 3], ["+", "-"])
    assert arithmetic.check(three, "12 + 5 - 3 = 14")
    assert arithmetic.check(three, "12 + 5 = 17, then 17 - 3 = 14.")
    times = _item([7, 8], ["*"])
    assert arithmetic.check(times, "7 × 8 = 56")
    assert arithmetic.check(times, "7 times 8 is 56")


def test_without_operand_labels_the_last_number_counts() -> None:
    item = Item("t", "q", labels={"gold": 17})
    assert arithmetic.check(item, "The answer is 17.")
    assert not arithmetic.check(item, "17 (12 + 5)")


def test_bad_labels_are_clear_errors() -> None:
    with pytest.raises(WorkbenchError, match="no label 'gold'"):
        arithmetic.check(Item("t", "q"), "1")
    with pytest.raises(WorkbenchError, match="must be a number"):
        arithmetic.check(Item("t", "q", labels={"gold": "17"}), "17")
    with pytest.raises(WorkbenchError, match="operator '/'"):
        strip_expression("1 / 2", [1, 2], ["/"])


def test_generated_gold_matches_the_expression() -> None:
    for pool in ("train", "fresh", "hard"):
        for it in arithmetic.generate(60, split=pool, seed=1, pool=pool, templates="fresh"):
            shown = it.labels["expression"].replace("×", "*")
            assert it.labels["gold"] == eval(shown)
            assert it.labels["gold"] >= 0
            assert it.labels["expression"] in it.prompt
            for x in it.labels["operands"]:
                assert len(str(x)) == it.labels["digits"]
            assert len(it.labels["operands"]) == it.labels["n_operands"]
            # the model's ideal answer passes its own checker
            assert arithmetic.check(it, f"{it.labels['expression']} = {it.labels['gold']}")


def test_hard_dominates_train_by_construction() -> None:
    train = arithmetic.generate(80, split="train", seed=0, pool="train", templates="train")
    hard = arithmetic.generate(80, split="fresh_hard", seed=0, pool="hard", templates="fresh")
    for h in hard:
        for t in train:
            assert h.labels["digits"] >= t.labels["digits"]
            assert h.labels["n_operands"] >= t.labels["n_operands"]
            assert (h.labels["digits"], h.labels["n_operands"]) != (
                t.labels["digits"],
                t.labels["n_operands"],
            )
    assert max(t.labels["digits"] for t in train) < max(h.labels["digits"] for h in hard)


def test_train_and_fresh_share_no_problem_even_reordered() -> None:
    def keys(pool: str) -> set[tuple[object, ...]]:
        items = arithmetic.generate(90, split=pool, seed=5, pool=pool, templates="train")  # type: ignore[arg-type]
        out = set()
        for it in items:
            ops, xs = tuple(it.labels["ops"]), tuple(it.labels["operands"])
            out.add((ops, tuple(sorted(xs)) if set(ops) == {"+"} else xs))
        return out

    train, fresh = keys("train"), keys("fresh")
    assert len(train) == 90 and len(fresh) == 90
    assert not train & fresh


def test_capacity_is_exact_and_exceeding_it_is_a_clear_error() -> None:
    cap = arithmetic.capacity("train")
    assert cap is not None
    assert len(arithmetic.generate(cap, split="s", seed=0, pool="train", templates="train")) == cap
    with pytest.raises(WorkbenchError, match="offers only"):
        arithmetic.generate(cap + 1, split="s", seed=0, pool="train", templates="train")
    assert arithmetic.capacity("hard") is None


def test_difficulty_validation_and_custom_levels() -> None:
    with pytest.raises(WorkbenchError, match="digits=0"):
        Difficulty(0)
    with pytest.raises(WorkbenchError, match="n_operands=1"):
        Difficulty(2, n_operands=1)
    with pytest.raises(WorkbenchError, match="ops="):
        Difficulty(2, ops=("/",))
    level = Difficulty(4, n_operands=2, ops=("*",))
    items = arithmetic.generate(
        5, split="s", seed=0, pool="hard", templates="fresh", levels=[level]
    )
    assert all(it.labels["difficulty"] == level.name for it in items)
    assert all("×" in it.prompt for it in items)
    assert LEVELS["train"] == LEVELS["fresh"]
