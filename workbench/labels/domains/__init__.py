"""Verifiable task families: generated questions with deterministic checkers.

Outcome-grounded labels instead of an LLM judge: every item carries in its
``labels`` what its family's checker needs, and :func:`check_item` says whether a
response is correct. The training set and the fresh sets come from independent
generators (:mod:`workbench.labels.domains.splits`).

>>> from workbench.labels.domains import make_split, check_item
>>> item = make_split("train", 1, seed=0)[0]
>>> item.prompt, check_item(item, "Luanda.")
('What is the capital of Angola?', True)
"""

from workbench.labels.domains.arithmetic import LEVELS, Difficulty
from workbench.labels.domains.normalize import contains_phrase, normalize_text
from workbench.labels.domains.registry import (
    FAMILIES,
    TaskFamily,
    check_item,
    extract_item_answer,
    get_family,
)
from workbench.labels.domains.splits import (
    DEFAULT_FAMILIES,
    SPLITS,
    SplitSpec,
    make_split,
    split_capacity,
)

__all__ = [
    "DEFAULT_FAMILIES",
    "FAMILIES",
    "LEVELS",
    "SPLITS",
    "Difficulty",
    "SplitSpec",
    "TaskFamily",
    "check_item",
    "contains_phrase",
    "extract_item_answer",
    "get_family",
    "make_split",
    "normalize_text",
    "split_capacity",
]
