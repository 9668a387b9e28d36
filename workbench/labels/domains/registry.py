"""The task families by name, and :func:`check_item`, which dispatches on ``labels["family"]``.

>>> sorted(FAMILIES)
['arithmetic', 'capitals', 'elements']
>>> from workbench.labels.domains.splits import make_split
>>> item = make_split("train", 2, seed=0)[0]
>>> check_item(item, "I am not sure.")
False
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.labels.domains import arithmetic, capitals, elements
from workbench.labels.domains.base import Pool, TemplateSet

__all__ = ["TaskFamily", "FAMILIES", "get_family", "check_item", "extract_item_answer"]


class Generator(Protocol):
    def __call__(
        self, n: int, *, split: str, seed: int, pool: Pool, templates: TemplateSet
    ) -> list[Item]: ...


@dataclass(frozen=True)
class TaskFamily:
    """A family of generated questions with a deterministic checker.

    Attributes:
        name: the value of ``labels["family"]`` on its items.
        generate: ``generate(n, *, split, seed, pool, templates) -> list[Item]``.
        check: ``check(item, response) -> bool``; the rule is in the module docstring.
        extract_answer: what the checker read as the answer (None when nothing).
        capacity: ``capacity(pool)``: most items one split can draw (None: unlimited).
        description: one line for reports.
    """

    name: str
    generate: Generator
    check: Callable[[Item, str], bool]
    extract_answer: Callable[[Item, str], object]
    capacity: Callable[[Pool], int | None]
    description: str


FAMILIES: Mapping[str, TaskFamily] = MappingProxyType(
    {
        "capitals": TaskFamily(
            "capitals",
            capitals.generate,
            capitals.check,
            capitals.extract_answer,
            capitals.capacity,
            "country -> capital city; first city named is the answer",
        ),
        "arithmetic": TaskFamily(
            "arithmetic",
            arithmetic.generate,
            arithmetic.check,
            arithmetic.extract_answer,
            arithmetic.capacity,
            "+/- problems, difficulty = digits and operands; last number is the answer",
        ),
        "elements": TaskFamily(
            "elements",
            elements.generate,
            elements.check,
            elements.extract_answer,
            elements.capacity,
            "element -> chemical symbol; first symbol named is the answer",
        ),
    }
)


def get_family(name: str) -> TaskFamily:
    """The family called ``name``, or an error listing the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise WorkbenchError(
            f"unknown task family {name!r}: use one of {', '.join(sorted(FAMILIES))}"
        ) from None


def _family_and_response(item: Item, response: str | None) -> tuple[TaskFamily, str]:
    if "family" not in item.labels:
        raise WorkbenchError(
            f"item {item.id!r} has no 'family' label: generate it with "
            "workbench.labels.domains.make_split or set labels['family'] to one of "
            f"{', '.join(sorted(FAMILIES))}"
        )
    family = get_family(str(item.labels["family"]))
    text = item.response if response is None else response
    if text is None:
        raise WorkbenchError(
            f"item {item.id!r} has no response to check: pass one or set item.response"
        )
    return family, text


def check_item(item: Item, response: str | None = None) -> bool:
    """Whether ``response`` (default: ``item.response``) answers ``item`` correctly."""
    family, text = _family_and_response(item, response)
    return family.check(item, text)


def extract_item_answer(item: Item, response: str | None = None) -> object:
    """What the item's checker reads as the answer in ``response`` (None when nothing)."""
    family, text = _family_and_response(item, response)
    return family.extract_answer(item, text)
