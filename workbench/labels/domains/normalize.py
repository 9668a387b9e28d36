"""Text normalisation and whole-phrase search shared by the checkers and the coverage scorer.

The rule, applied in this order:

1. Unicode NFKC, then NFKD with combining marks dropped: accents go
   (``"Brasília"`` -> ``"Brasilia"``, ``"Chișinău"`` -> ``"Chisinau"``).
   Letters that do not decompose (``ø``, ``ß``) are kept as they are.
2. Casefold.
3. Apostrophes (``'`` ``’`` ``‘`` ``ʻ`` ``ʼ`` and the backtick) and periods
   that are not between two digits are deleted, so that
   ``"Washington, D.C."`` -> ``"washington dc"`` and ``"N'Djamena"`` -> ``"ndjamena"``,
   while ``"3.5"`` stays ``"3.5"``.
4. Every other character that is not a letter or a digit becomes a space
   (``"Port-au-Prince"`` -> ``"port au prince"``).
5. Runs of whitespace collapse to one space; the ends are stripped.

A phrase is *present* in a text when its normalised form occurs in the normalised
text on word boundaries (``"rome"`` is not found in ``"romeo"``).

>>> normalize_text("  Washington, D.C.! ")
'washington dc'
>>> find_phrase("The capital is Brasília.", "Brasilia")
15
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["normalize_text", "find_phrase", "contains_phrase"]

_APOSTROPHES = re.compile(r"['’‘ʻʼ`]")
_PERIOD_NOT_DECIMAL = re.compile(r"(?<!\d)\.|\.(?!\d)")
_NON_WORD = re.compile(r"[^\w.]|_")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Normalise text for matching (see the module docstring for the rule).

    >>> normalize_text("Côte d'Ivoire")
    'cote divoire'
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = text.casefold()
    text = _APOSTROPHES.sub("", text)
    text = _PERIOD_NOT_DECIMAL.sub("", text)
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


@lru_cache(maxsize=4096)
def _phrase_regex(normalized_phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<![^\W_])" + re.escape(normalized_phrase) + r"(?![^\W_])")


def find_phrase(text: str, phrase: str) -> int | None:
    """Position of the first whole-phrase occurrence of ``phrase`` in the normalised ``text``.

    Returns the index into ``normalize_text(text)``, or ``None`` when absent or when the
    phrase normalises to nothing.
    """
    needle = normalize_text(phrase)
    if not needle:
        return None
    match = _phrase_regex(needle).search(normalize_text(text))
    return None if match is None else match.start()


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as a whole phrase after normalisation.

    >>> contains_phrase("It is Port-au-Prince.", "port au prince")
    True
    """
    return find_phrase(text, phrase) is not None
