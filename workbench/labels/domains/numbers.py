"""Reading numbers out of free text, and removing restated arithmetic expressions.

A number (:func:`find_numbers`) is a run of digits not preceded by a letter,
digit or period and not followed by a letter (so ``3rd``, ``x2`` and ``v1.2``
are not read; ``17.`` at the end of a sentence is 17), with optionally:

- thousands separators: commas followed by exactly three digits (``1,024`` is
  1024; ``12,5`` is 12 then 5);
- a decimal part (``17.0`` is 17.0, which equals 17; a sentence-final period is
  not a decimal point);
- a minus sign (``-`` or ``−``) attached to the digits and not preceded by a
  letter or digit: ``-7`` and ``= −7`` are negative, ``7 - 2`` and ``12-5``
  are subtractions.

Number words ("seventeen") are not read.

>>> find_numbers("12 + 5 = 17, so 1,024 - 7 is -3?")
[12, 5, 17, 1024, 7, -3]
>>> strip_expression("So 12 plus 5 makes 17.", [12, 5], ["+"])
'So   makes 17.'
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from workbench.core.errors import WorkbenchError

__all__ = ["find_numbers", "strip_expression", "CONNECTORS"]

CONNECTORS: dict[str, str] = {
    "+": r"(?:\+|plus|and)",
    "-": r"(?:-|−|–|minus)",
    "*": r"(?:\*|×|x|times|multiplied\s+by)",
}
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-−])?"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?(?![^\W_]|,\d{3}|\.\d)"
)


def _operand_regex(x: int) -> str:
    forms = {str(x), f"{x:,}"}
    return "(?:" + "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)) + ")"


def strip_expression(text: str, operands: Sequence[int], ops: Sequence[str]) -> str:
    """``text`` with every restatement of ``operands`` joined by ``ops`` replaced by a space.

    The operands must appear in order, each optionally with thousands commas, joined
    by the operator as a symbol or a word (:data:`CONNECTORS`; ``and`` counts as
    ``+``), case-insensitively, with any spacing.
    """
    unknown = [op for op in ops if op not in CONNECTORS]
    if unknown:
        raise WorkbenchError(
            f"operator {unknown[0]!r} is not one of {', '.join(CONNECTORS)}: "
            "arithmetic items use +, - and *"
        )
    pattern = _operand_regex(operands[0])
    for op, x in zip(ops, operands[1:], strict=True):
        pattern += rf"\s*{CONNECTORS[op]}\s*{_operand_regex(x)}"
    regex = re.compile(rf"(?<![\w.,]){pattern}(?![\w]|[.,]\d)", re.IGNORECASE)
    return regex.sub(" ", text)


def find_numbers(text: str) -> list[int | float]:
    """Every number in ``text``, in order (ints unless written with a decimal part)."""
    out: list[int | float] = []
    for m in _NUMBER.finditer(text):
        value: int | float = int(m["int"].replace(",", ""))
        if m["frac"]:
            value = float(f"{value}{m['frac']}")
        out.append(-value if m["sign"] else value)
    return out
