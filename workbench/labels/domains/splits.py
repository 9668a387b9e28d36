"""Named splits that mix the task families: ``train``, ``fresh`` and ``fresh_hard``.

The training set and the fresh sets come from independent generators:

============  ===========  =========  ==============================================
split         entities     templates  what it tests
============  ===========  =========  ==============================================
train         ``train``    ``train``  what a probe is fitted on
fresh         ``fresh``    ``fresh``  same difficulty, new items and new wordings
fresh_hard    ``hard``     ``fresh``  harder items: trap/rare capitals, heavy
                                      elements, 3-digit or 3-operand arithmetic
============  ===========  =========  ==============================================

Pools share no country, element or arithmetic problem, template sets share no
wording, and every draw is seeded by ``(split name, family, seed)``, so train and
fresh differ even at the same seed. Families are interleaved round-robin with equal
counts (the first families get one more when ``n`` does not divide), and draws are
prefix-stable: ``make_split(s, m, seed)`` is the first ``m`` items of
``make_split(s, n, seed)`` for ``m <= n``. Ids look like ``train-capitals-0007``.

>>> items = make_split("fresh", 4, seed=0)
>>> [it.id for it in items]
['fresh-capitals-0000', 'fresh-arithmetic-0000', 'fresh-capitals-0001', 'fresh-arithmetic-0001']
>>> split_capacity("train")
110
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.labels.domains.base import Pool, TemplateSet
from workbench.labels.domains.registry import get_family

__all__ = ["SplitSpec", "SPLITS", "DEFAULT_FAMILIES", "make_split", "split_capacity"]

DEFAULT_FAMILIES: tuple[str, ...] = ("capitals", "arithmetic")
"""Families mixed when none are named. ``elements`` is opt-in: its common pool (25
or 26 elements per split) would cap a balanced three-family split at 77 to 80 items."""


@dataclass(frozen=True)
class SplitSpec:
    """Which entity pool and which template set a named split draws from."""

    name: str
    pool: Pool
    templates: TemplateSet
    description: str


SPLITS: Mapping[str, SplitSpec] = MappingProxyType(
    {
        "train": SplitSpec("train", "train", "train", "training items, training templates"),
        "fresh": SplitSpec("fresh", "fresh", "fresh", "new items, same difficulty, new templates"),
        "fresh_hard": SplitSpec("fresh_hard", "hard", "fresh", "harder items, new templates"),
    }
)


def _spec(name: str) -> SplitSpec:
    try:
        return SPLITS[name]
    except KeyError:
        raise WorkbenchError(f"unknown split {name!r}: use one of {', '.join(SPLITS)}") from None


def _families(families: Sequence[str] | None) -> tuple[str, ...]:
    if isinstance(families, str):
        raise WorkbenchError(
            f"families={families!r} is a string: pass a sequence such as ({families!r},)"
        )
    names = tuple(DEFAULT_FAMILIES if families is None else families)
    if not names:
        raise WorkbenchError("families is empty: name at least one task family")
    if len(set(names)) != len(names):
        raise WorkbenchError(f"families {names} repeat a name: list each family once")
    for name in names:
        get_family(name)
    return names


def split_capacity(name: str, families: Sequence[str] | None = None) -> int | None:
    """The largest ``n`` that :func:`make_split` accepts (None: effectively unlimited).

    >>> split_capacity("fresh_hard", families=["capitals", "elements"])
    117
    """
    spec, names = _spec(name), _families(families)
    best: int | None = None
    for j, fam in enumerate(names):
        cap = get_family(fam).capacity(spec.pool)
        if cap is not None:  # family j gets items j, j + k, j + 2k, ... of the mix
            total = cap * len(names) + j
            best = total if best is None else min(best, total)
    return best


def make_split(
    name: str, n: int, seed: int = 0, *, families: Sequence[str] | None = None
) -> list[Item]:
    """``n`` items of the named split, families interleaved and balanced.

    Args:
        name: ``train``, ``fresh`` or ``fresh_hard`` (see :data:`SPLITS`).
        n: number of items; at most :func:`split_capacity`.
        seed: fixes the draw; the same arguments always give the same items.
        families: task families to mix (default :data:`DEFAULT_FAMILIES`);
            one family gives that family alone.

    >>> make_split("train", 1, seed=3)[0].prompt
    'Name the capital city of Libya.'
    """
    spec, names = _spec(name), _families(families)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise WorkbenchError(f"n={n!r}: ask for a positive whole number of items")
    cap = split_capacity(name, names)
    if cap is not None and n > cap:
        raise WorkbenchError(
            f"split {name!r} with families {list(names)} holds at most {cap} balanced items, "
            f"asked for {n}: ask for fewer or mix other families"
        )
    k = len(names)
    per_family = [
        get_family(fam).generate(
            len(range(j, n, k)), split=name, seed=seed, pool=spec.pool, templates=spec.templates
        )
        for j, fam in enumerate(names)
    ]
    return [per_family[i % k][i // k] for i in range(n)]
