"""Task family ``arithmetic``: "What is 47 + 38?" with difficulty as a parameter.

Difficulty (:class:`Difficulty`) is the number of digits of every operand, the
number of operands and the operators allowed. The pools:

- ``train`` and ``fresh``: 1-digit and 2-digit operands, two of them, ``+`` or
  ``-``, alternating. The operand space is split in two by a stable hash of the
  expression (``3 + 7`` and ``7 + 3`` count as one), so train and fresh never
  share a problem while having the same difficulty mix.
- ``hard``: 3-digit operands (two of them) and 2-digit operands (three of them),
  alternating: every hard item has at least as many digits *and* operands as any
  train item, and more of one of them.

Results are never negative unless ``allow_negative=True``; ``*`` binds tighter
than ``+`` and ``-``, which apply left to right.

Checker rule (:func:`extract_answer`). The response is NFKC-normalised; every
restatement of the question's expression (its operands in order, joined by the
question's operators written as symbols or words, with ``and`` accepted for ``+``;
thousands commas allowed) is removed; the answer is the **last number** left.
Numbers may carry thousands commas (``1,024``), a leading minus sign attached to
the digits and not following a letter or digit (``-7``, ``= −7``; ``7 - 2`` is a
subtraction) and a decimal part (``17.0`` equals 17). Digits glued to letters
(``3rd``, ``x2``) and number words ("seventeen") are not read. The response is
correct when the answer equals ``gold``. So, for "What is 12 + 5?":

- "12 + 5 = 17", "The answer is 17 (12 + 5)." and "17." are correct;
- "The answer is 16. Wait, 17." is correct (the last number wins) and
  "17? No, 16." is wrong;
- "I don't know." is wrong.

>>> item = generate(1, split="train", seed=0, pool="train", templates="train")[0]
>>> item.labels["digits"], item.labels["n_operands"]
(1, 2)
>>> check(Item("x", "What is 12 + 5?", labels={"gold": 17, "operands": [12, 5], "ops": ["+"]}),
...       "12 + 5 = 17. Hope this helps!")
True
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.labels.domains.base import (
    Pool,
    TemplateSet,
    check_pool,
    check_templates,
    item_id,
    pick_template,
    require_label,
    stable_int,
)
from workbench.labels.domains.numbers import find_numbers, strip_expression

__all__ = [
    "FAMILY",
    "TEMPLATES",
    "LEVELS",
    "Difficulty",
    "generate",
    "capacity",
    "extract_answer",
    "check",
]

FAMILY = "arithmetic"
OPERATORS = ("+", "-", "*")
_SHOWN = {"+": "+", "-": "-", "*": "×"}
_ENUMERATE_LIMIT = 200_000
_Problem = tuple[tuple[int, ...], tuple[str, ...]]  # (operands, operators)

TEMPLATES: Mapping[TemplateSet, tuple[str, ...]] = {
    "train": ("What is {expr}?", "Calculate {expr}.", "What is the value of {expr}?"),
    "fresh": ("Compute {expr}.", "What does {expr} equal?", "Work out {expr}."),
}


@dataclass(frozen=True)
class Difficulty:
    """How hard one arithmetic problem is.

    >>> Difficulty(digits=3).name
    '3-digit x2 (+-)'
    """

    digits: int
    n_operands: int = 2
    ops: tuple[str, ...] = ("+", "-")
    allow_negative: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.digits <= 9:
            raise WorkbenchError(f"digits={self.digits}: use 1 to 9 digits per operand")
        if self.n_operands < 2:
            raise WorkbenchError(f"n_operands={self.n_operands}: a problem needs at least 2")
        bad = [op for op in self.ops if op not in OPERATORS]
        if bad or not self.ops:
            raise WorkbenchError(f"ops={self.ops!r}: use a non-empty subset of {OPERATORS}")

    @property
    def name(self) -> str:
        return f"{self.digits}-digit x{self.n_operands} ({''.join(self.ops)})"

    def space_size(self) -> int:
        """Number of (operands, operators) tuples before de-duplication."""
        width = 9 * 10 ** (self.digits - 1)
        return int(width**self.n_operands * len(self.ops) ** (self.n_operands - 1))


LEVELS: Mapping[Pool, tuple[Difficulty, ...]] = {
    "train": (Difficulty(1), Difficulty(2)),
    "fresh": (Difficulty(1), Difficulty(2)),
    "hard": (Difficulty(3), Difficulty(2, n_operands=3)),
}


def _evaluate(operands: Sequence[int], ops: Sequence[str]) -> int:
    terms, signs = [operands[0]], []
    for op, x in zip(ops, operands[1:], strict=True):
        if op == "*":
            terms[-1] *= x
        else:
            terms.append(x)
            signs.append(op)
    total = terms[0]
    for sign, x in zip(signs, terms[1:], strict=True):
        total = total + x if sign == "+" else total - x
    return total


def _canonical(
    operands: tuple[int, ...], ops: tuple[str, ...], level: Difficulty
) -> _Problem | None:
    """The problem as shown (or None when rejected) with its de-duplication key."""
    if ops == ("-",) and not level.allow_negative:
        operands = tuple(sorted(operands, reverse=True))
    if not level.allow_negative and _evaluate(operands, ops) < 0:
        return None
    return operands, ops


def _key(operands: tuple[int, ...], ops: tuple[str, ...]) -> tuple[object, ...]:
    if len(set(ops)) == 1 and ops[0] in "+*":
        return (ops, tuple(sorted(operands)))
    return (ops, operands)


def _side(key: tuple[object, ...]) -> int:
    return stable_int(FAMILY, "partition", key) % 2


def _wanted_side(pool: Pool) -> int | None:
    return {"train": 0, "fresh": 1, "hard": None}[pool]


@lru_cache(maxsize=64)
def _level_capacity(level: Difficulty, side: int | None) -> int | None:
    """Distinct problems a level offers on one side of the partition (None: too many to count)."""
    if level.space_size() > _ENUMERATE_LIMIT:
        return None
    lo, hi = 10 ** (level.digits - 1), 10**level.digits
    keys = set()
    for operands in product(range(max(lo, 1), hi), repeat=level.n_operands):
        for ops in product(level.ops, repeat=level.n_operands - 1):
            shown = _canonical(operands, ops, level)
            if shown is not None:
                key = _key(*shown)
                if side is None or _side(key) == side:
                    keys.add(key)
    return len(keys)


def capacity(pool: Pool, levels: Sequence[Difficulty] | None = None) -> int | None:
    """Most items one split can draw from ``pool`` (None: effectively unlimited)."""
    levels = tuple(levels or LEVELS[check_pool(pool)])
    best: int | None = None
    for j, level in enumerate(levels):
        cap = _level_capacity(level, _wanted_side(pool))
        if cap is not None:  # level j serves items j, j + L, j + 2L, ...
            total = cap * len(levels) + j
            best = total if best is None else min(best, total)
    return best


def _draw(
    level: Difficulty, count: int, *, split: str, seed: int, pool: Pool, tag: int
) -> list[_Problem]:
    lo, hi = max(10 ** (level.digits - 1), 1), 10**level.digits - 1
    seen: set[tuple[object, ...]] = set()
    out: list[_Problem] = []
    attempts, max_attempts = 0, 50 * count + 5_000
    while len(out) < count:
        if attempts >= max_attempts:
            raise WorkbenchError(
                f"arithmetic: level {level.name} in pool {pool!r} offers only {len(out)} "
                f"distinct problems (asked for {count}): ask for fewer items or add levels"
            )
        parts = (split, FAMILY, seed, tag, level, attempts)
        attempts += 1
        operands = tuple(
            lo + stable_int(*parts, "x", k) % (hi - lo + 1) for k in range(level.n_operands)
        )
        ops = tuple(
            level.ops[stable_int(*parts, "op", k) % len(level.ops)]
            for k in range(level.n_operands - 1)
        )
        shown = _canonical(operands, ops, level)
        if shown is None:
            continue
        key = _key(*shown)
        side = _wanted_side(pool)
        if key in seen or (side is not None and _side(key) != side):
            continue
        seen.add(key)
        out.append(shown)
    return out


def expression(operands: Sequence[int], ops: Sequence[str]) -> str:
    """The problem as shown in prompts: ``"12 + 5"``, ``"7 × 8"``."""
    text = str(operands[0])
    for op, x in zip(ops, operands[1:], strict=True):
        text += f" {_SHOWN[op]} {x}"
    return text


def generate(
    n: int,
    *,
    split: str,
    seed: int,
    pool: Pool,
    templates: TemplateSet,
    levels: Sequence[Difficulty] | None = None,
) -> list[Item]:
    """``n`` distinct arithmetic problems, cycling through the difficulty ``levels``.

    Args:
        n: number of items.
        split: the split name, used in ids and in the seeded draw.
        seed: with ``split``, fixes the problems and templates.
        pool: ``train`` or ``fresh`` (disjoint halves of the same levels) or ``hard``.
        templates: ``train`` or ``fresh`` wordings.
        levels: override the pool's :data:`LEVELS` (item ``i`` uses ``levels[i % len]``).

    >>> [it.prompt for it in generate(2, split="x", seed=0, pool="hard", templates="fresh")]
    ['What does 748 - 541 equal?', 'What does 68 + 17 + 10 equal?']
    """
    if n < 0:
        raise WorkbenchError(f"n={n} is negative: ask for zero or more items")
    pool, wordings = check_pool(pool), TEMPLATES[check_templates(templates)]
    levels = tuple(levels or LEVELS[pool])
    if not levels:
        raise WorkbenchError("levels is empty: pass at least one Difficulty")
    per_level = [len(range(j, n, len(levels))) for j in range(len(levels))]
    drawn = [
        _draw(level, count, split=split, seed=seed, pool=pool, tag=j)
        for j, (level, count) in enumerate(zip(levels, per_level, strict=True))
    ]
    items = []
    for i in range(n):
        level = levels[i % len(levels)]
        operands, ops = drawn[i % len(levels)][i // len(levels)]
        k, template = pick_template(wordings, split, FAMILY, seed, i)
        labels: dict[str, Any] = {
            "family": FAMILY,
            "split": split,
            "pool": pool,
            "template": f"{FAMILY}/{templates}/{k}",
            "gold": _evaluate(operands, ops),
            "operands": list(operands),
            "ops": list(ops),
            "expression": expression(operands, ops),
            "digits": level.digits,
            "n_operands": level.n_operands,
            "difficulty": level.name,
        }
        prompt = template.format(expr=labels["expression"])
        items.append(Item(id=item_id(split, FAMILY, i), prompt=prompt, labels=labels))
    return items


def extract_answer(item: Item, response: str) -> int | float | None:
    """The response's answer under the module's rule: the last number after restatements go.

    >>> item = Item("x", "What is 12 + 5?", labels={"gold": 17, "operands": [12, 5], "ops": ["+"]})
    >>> extract_answer(item, "The answer is 17 (12 + 5)."), extract_answer(item, "16. Wait, 17.")
    (17, 17)
    """
    text = unicodedata.normalize("NFKC", response)
    operands, ops = item.labels.get("operands"), item.labels.get("ops")
    if operands and ops and len(ops) == len(operands) - 1:
        text = strip_expression(text, [int(x) for x in operands], ops)
    numbers = find_numbers(text)
    return numbers[-1] if numbers else None


def check(item: Item, response: str) -> bool:
    """Whether the response's answer (see the module docstring) equals ``gold``.

    >>> item = Item("x", "What is 9 - 3?", labels={"gold": 6, "operands": [9, 3], "ops": ["-"]})
    >>> check(item, "9 - 3 = 6"), check(item, "6? No, 5.")
    (True, False)
    """
    gold = require_label(item, "gold", FAMILY)
    if isinstance(gold, bool) or not isinstance(gold, int | float):
        raise WorkbenchError(f"item {item.id!r}: 'gold' must be a number, got {gold!r}")
    answer = extract_answer(item, response)
    return answer is not None and math.isclose(answer, gold, rel_tol=0.0, abs_tol=1e-9)
