"""What every task family shares: pool and template names, stable hashing, label access.

Randomness here is a SHA-256 of the parts that identify a draw (split name,
family, seed, index...), not a library RNG: the same seed gives the same items on
every platform, Python and NumPy version.

>>> stable_int("train", "capitals", 0) == stable_int("train", "capitals", 0)
True
>>> item_id("train", "capitals", 7)
'train-capitals-0007'
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Literal, TypeVar, get_args

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item

__all__ = [
    "Pool",
    "TemplateSet",
    "POOLS",
    "TEMPLATE_SETS",
    "stable_int",
    "stable_order",
    "item_id",
    "require_label",
    "check_pool",
    "check_templates",
    "pick_template",
    "draw_rows",
]

Pool = Literal["train", "fresh", "hard"]
"""Which entities (or operand space) a generator draws from; pools never overlap."""

TemplateSet = Literal["train", "fresh"]
"""Which prompt wordings a generator uses; the two sets share no template."""

POOLS: tuple[Pool, ...] = get_args(Pool)
TEMPLATE_SETS: tuple[TemplateSet, ...] = get_args(TemplateSet)

T = TypeVar("T")


def stable_int(*parts: object) -> int:
    """A 64-bit integer determined only by ``repr`` of the parts."""
    digest = hashlib.sha256("\x1f".join(repr(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def stable_order(values: Iterable[T], key: Callable[[T], Hashable], *parts: object) -> list[T]:
    """``values`` sorted by a stable hash of ``(*parts, key(value))``: a seeded shuffle.

    Taking the first ``k`` of the result gives a prefix-stable sample: asking for more
    items never changes the ones already drawn.
    """
    return sorted(values, key=lambda v: stable_int(*parts, key(v)))


def item_id(split: str, family: str, index: int) -> str:
    """The id of the ``index``-th item of ``family`` in ``split``."""
    return f"{split}-{family}-{index:04d}"


def require_label(item: Item, key: str, family: str) -> Any:
    """``item.labels[key]``, or an error that names the item, the label and the fix."""
    if key not in item.labels:
        raise WorkbenchError(
            f"item {item.id!r} has no label {key!r}, which the {family!r} checker needs: "
            f"generate items with workbench.labels.domains or add {key!r} to its labels"
        )
    return item.labels[key]


def check_pool(pool: str) -> Pool:
    if pool not in POOLS:
        raise WorkbenchError(f"unknown pool {pool!r}: use one of {', '.join(POOLS)}")
    return pool


def check_templates(templates: str) -> TemplateSet:
    if templates not in TEMPLATE_SETS:
        raise WorkbenchError(
            f"unknown template set {templates!r}: use one of {', '.join(TEMPLATE_SETS)}"
        )
    return templates


def pick_template(
    templates: Sequence[str], split: str, family: str, seed: int, index: int
) -> tuple[int, str]:
    """The (index, text) of the template used for one item, chosen by a stable hash."""
    k = stable_int(split, family, seed, "template", index) % len(templates)
    return k, templates[k]


def draw_rows(
    rows: Sequence[T], n: int, key: Callable[[T], Hashable], *, split: str, family: str, seed: int
) -> list[T]:
    """The first ``n`` of ``rows`` in a seeded stable order, or an error naming the pool size."""
    if n < 0:
        raise WorkbenchError(f"n={n} is negative: ask for zero or more items")
    if n > len(rows):
        raise WorkbenchError(
            f"{family}: asked for {n} items in split {split!r}, but its pool holds only "
            f"{len(rows)} distinct entities: ask for at most {len(rows)}"
        )
    return stable_order(rows, key, split, family, seed)[:n]
