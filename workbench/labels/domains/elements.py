"""Task family ``elements``: "What is the chemical symbol for gold?" checked against a table.

Checker rule (:func:`check`). After Unicode NFKC, the response's answer is the
*first* token that is an element symbol from ``elements.csv`` (or the item's
``gold``), matched **case-sensitively** and standing alone: not touching another
letter or digit. So "Au", "(Au)", "'Au'" and "Symbol: Au." name gold; "AU", "au",
"Aurum" and the "H" of "H2O" name nothing. The response is correct when that first
symbol is the gold symbol:

- "The chemical symbol for gold is Au, not Ag." is correct;
- "Ag. Sorry, Au." is wrong (the first symbol is the answer);
- a response with no symbol ("It is aurum") is wrong.

Symbols that are English words when capitalised (He, Be, As, In, I, At, No, Am,
Er) are not in the table, so "I", "In" or "No" in an answer never count.

>>> check(Item("x", "q", labels={"gold": "Na"}), "The symbol for sodium is Na.")
True
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.labels.domains.base import (
    Pool,
    TemplateSet,
    check_pool,
    check_templates,
    draw_rows,
    item_id,
    pick_template,
    require_label,
)
from workbench.labels.domains.tables import ElementRow, elements_table

__all__ = ["FAMILY", "TEMPLATES", "generate", "capacity", "extract_answer", "check"]

FAMILY = "elements"

TEMPLATES: Mapping[TemplateSet, tuple[str, ...]] = {
    "train": (
        "What is the chemical symbol for {element}?",
        "Give the chemical symbol of {element}.",
        "What is the symbol of the element {element}?",
    ),
    "fresh": (
        "Which chemical symbol stands for {element}?",
        "Tell me the element symbol for {element}.",
        "How is {element} written as a chemical symbol?",
    ),
}


def _rows(pool: Pool) -> list[ElementRow]:
    return [r for r in elements_table() if r.pool == pool]


def capacity(pool: Pool) -> int:
    """How many distinct elements the pool holds (the most items one split can have)."""
    return len(_rows(check_pool(pool)))


def generate(n: int, *, split: str, seed: int, pool: Pool, templates: TemplateSet) -> list[Item]:
    """``n`` chemical-symbol questions about distinct elements of ``pool``.

    Args:
        n: number of items; at most :func:`capacity` of the pool.
        split: the split name, used in ids and in the seeded order.
        seed: with ``split``, fixes which elements and templates are drawn.
        pool: ``train`` or ``fresh`` (elements 1-56) or ``hard`` (57 and above).
        templates: ``train`` or ``fresh`` wordings.

    >>> generate(1, split="train", seed=0, pool="train", templates="train")[0].labels["gold"]
    'Mo'
    """
    wordings = TEMPLATES[check_templates(templates)]
    rows = draw_rows(
        _rows(check_pool(pool)), n, lambda r: r.symbol, split=split, family=FAMILY, seed=seed
    )
    items = []
    for i, row in enumerate(rows):
        k, template = pick_template(wordings, split, FAMILY, seed, i)
        labels: dict[str, Any] = {
            "family": FAMILY,
            "split": split,
            "pool": pool,
            "template": f"{FAMILY}/{templates}/{k}",
            "entity": row.name,
            "gold": row.symbol,
            "aliases": [],
            "number": row.number,
            "difficulty": "heavy" if row.number > 56 else "common",
        }
        prompt = template.format(element=row.name)
        items.append(Item(id=item_id(split, FAMILY, i), prompt=prompt, labels=labels))
    return items


@lru_cache(maxsize=256)
def _symbol_regex(gold: str) -> re.Pattern[str]:
    symbols = {r.symbol for r in elements_table()} | {gold}
    alternation = "|".join(re.escape(s) for s in sorted(symbols, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternation})(?![^\W_])")


def _gold(item: Item) -> str:
    gold = require_label(item, "gold", FAMILY)
    if not isinstance(gold, str) or not gold:
        raise WorkbenchError(f"item {item.id!r}: 'gold' must be a symbol string, got {gold!r}")
    return gold


def extract_answer(item: Item, response: str) -> str | None:
    """The first element symbol standing alone in ``response``, or None.

    >>> extract_answer(Item("x", "q", labels={"gold": "Fe"}), "Iron (Fe) is element 26.")
    'Fe'
    """
    match = _symbol_regex(_gold(item)).search(unicodedata.normalize("NFKC", response))
    return None if match is None else match.group(0)


def check(item: Item, response: str) -> bool:
    """Whether the first symbol in ``response`` is the gold symbol (case-sensitive).

    >>> item = Item("x", "q", labels={"gold": "Au"})
    >>> check(item, "Au, not Ag."), check(item, "Ag. Sorry, Au."), check(item, "AU")
    (True, False, False)
    """
    answer = extract_answer(item, response)
    return answer is not None and answer == _gold(item)
