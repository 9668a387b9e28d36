"""Task family ``capitals``: "What is the capital of France?" checked against a table.

Checker rule (:func:`check`). The response and every candidate name are normalised
(:mod:`workbench.labels.domains.normalize`: case, accents, apostrophes, periods and other
punctuation). The candidates are every capital, alias and distractor in
``capitals.csv`` plus the item's own ``gold``, ``aliases`` and ``distractors``
labels. The response's answer is the candidate mentioned *first* (the longest one
when two start at the same place); the response is correct when that answer is the
gold capital or one of its aliases. So:

- "Washington, D.C.", "Washington DC" and "washington" all count for the US;
  "Brasilia" counts for "Brasília";
- "The capital of Australia is Canberra, not Sydney." is correct;
- "Sydney. Wait, no: Canberra." and "It is Sydney, though Canberra is the
  seat of government" are wrong: the first-named city is the answer;
- a response that names no candidate ("I don't know") is wrong.

Train prompts and fresh prompts use disjoint templates (:data:`TEMPLATES`), and the
``train``, ``fresh`` and ``hard`` pools hold disjoint countries (see
:mod:`workbench.labels.domains.tables`).

>>> items = generate(2, split="train", seed=0, pool="train", templates="train")
>>> items[0].labels["family"], items[0].id
('capitals', 'train-capitals-0000')
>>> check(Item("x", "What is the capital of France?", labels={"gold": "Paris"}), "Paris.")
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
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
from workbench.labels.domains.normalize import normalize_text
from workbench.labels.domains.tables import CapitalRow, capitals_table

__all__ = ["FAMILY", "TEMPLATES", "generate", "capacity", "extract_answer", "check"]

FAMILY = "capitals"

TEMPLATES: Mapping[TemplateSet, tuple[str, ...]] = {
    "train": (
        "What is the capital of {country}?",
        "What is the capital city of {country}?",
        "Name the capital city of {country}.",
    ),
    "fresh": (
        "Which city is the capital of {country}?",
        "Tell me the capital of {country}.",
        "The capital of {country} is which city?",
    ),
}


def _rows(pool: Pool) -> list[CapitalRow]:
    return [r for r in capitals_table() if r.pool == pool]


def capacity(pool: Pool) -> int:
    """How many distinct countries the pool holds (the most items one split can have)."""
    return len(_rows(check_pool(pool)))


def generate(n: int, *, split: str, seed: int, pool: Pool, templates: TemplateSet) -> list[Item]:
    """``n`` capital questions about distinct countries of ``pool``.

    Args:
        n: number of items; at most :func:`capacity` of the pool.
        split: the split name, used in ids and in the seeded order.
        seed: with ``split``, fixes which countries and templates are drawn.
        pool: ``train``, ``fresh`` or ``hard`` countries.
        templates: ``train`` or ``fresh`` wordings.

    >>> [it.prompt for it in generate(1, split="demo", seed=1, pool="hard", templates="fresh")]
    ['Tell me the capital of Ecuador.']
    """
    wordings = TEMPLATES[check_templates(templates)]
    rows = draw_rows(
        _rows(check_pool(pool)), n, lambda r: r.country, split=split, family=FAMILY, seed=seed
    )
    items = []
    for i, row in enumerate(rows):
        k, template = pick_template(wordings, split, FAMILY, seed, i)
        labels: dict[str, Any] = {
            "family": FAMILY,
            "split": split,
            "pool": pool,
            "template": f"{FAMILY}/{templates}/{k}",
            "entity": row.country,
            "gold": row.capital,
            "aliases": list(row.aliases),
            "distractors": list(row.distractors),
            "difficulty": row.hard_reason or "common",
        }
        prompt = template.format(country=row.country)
        items.append(Item(id=item_id(split, FAMILY, i), prompt=prompt, labels=labels))
    return items


def _table_candidates() -> dict[str, str]:
    out: dict[str, str] = {}
    for row in capitals_table():
        for name in (*row.accepted, *row.distractors):
            out.setdefault(normalize_text(name), name)
    return out


@lru_cache(maxsize=1024)
def _candidate_regex(extra: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    names = _table_candidates()
    for name in extra:
        names.setdefault(normalize_text(name), name)
    names.pop("", None)
    alternation = "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternation})(?![^\W_])"), names


def _accepted(item: Item) -> list[str]:
    gold = require_label(item, "gold", FAMILY)
    aliases = item.labels.get("aliases", [])
    if not isinstance(gold, str) or not isinstance(aliases, Sequence) or isinstance(aliases, str):
        raise WorkbenchError(
            f"item {item.id!r}: 'gold' must be a string and 'aliases' a list of strings, "
            f"got {gold!r} and {aliases!r}"
        )
    return [gold, *aliases]


def extract_answer(item: Item, response: str) -> str | None:
    """The first candidate city named in ``response`` (as spelled in the table), or None.

    >>> extract_answer(Item("x", "q", labels={"gold": "Canberra"}), "Sydney? No, Canberra.")
    'Sydney'
    """
    extra = (*_accepted(item), *item.labels.get("distractors", []))
    regex, names = _candidate_regex(tuple(sorted(set(extra))))
    match = regex.search(normalize_text(response))
    return None if match is None else names[match.group(0)]


def check(item: Item, response: str) -> bool:
    """Whether the first city named in ``response`` is the gold capital or an alias.

    >>> item = Item("x", "q", labels={"gold": "Washington, D.C.", "aliases": ["Washington"]})
    >>> check(item, "It's washington dc!"), check(item, "New York, I think.")
    (True, False)
    """
    answer = extract_answer(item, response)
    if answer is None:
        return False
    return normalize_text(answer) in {normalize_text(a) for a in _accepted(item)}
