"""The fact tables behind the ``capitals`` and ``elements`` families.

Both live in ``workbench/data/`` as CSV, written by hand for this project:

``capitals.csv``: ``country, capital, aliases, distractors, pool, hard_reason``.
    ``aliases`` (``|``-separated) are other accepted spellings; ``distractors`` are
    well-known wrong answers (usually the country's most famous city). ``pool`` is
    ``train``/``fresh`` for *common* rows, where the capital is the country's
    best-known city: listed roughly from most to least mentioned, they alternate
    train, fresh, so both pools get the same mix. ``hard`` rows have a
    ``hard_reason``: ``trap`` (the capital is not the famous city: Canberra, not
    Sydney) or ``rare`` (a capital seldom written about: Funafuti). Left out on
    purpose: countries whose capital is disputed, split or moving (Israel, Bolivia,
    South Africa, Sri Lanka, Benin, Burundi, Indonesia, Yemen, Equatorial Guinea,
    Nauru, Kosovo, Taiwan), city-states and countries whose capital's name is
    inside the country's name (Singapore, Luxembourg, Monaco, Djibouti,
    Guinea-Bissau, São Tomé), Georgia (the prompt would be ambiguous with the US
    state) and the Maldives (Malé normalises to the English word "male").

``elements.csv``: ``number, symbol, name, pool``. Elements 1-56 alternate train,
    fresh by atomic number; 57 and above (lanthanides, actinides, superheavy
    elements) are ``hard``. Symbols that are English words when capitalised (He, Be,
    As, In, I, At, No, Am, Er) are left out: a checker could not tell them from
    ordinary words in an answer.

>>> capitals_table()[0].capital
'Paris'
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from workbench.core.errors import WorkbenchError
from workbench.labels.domains.base import POOLS, Pool

__all__ = ["CapitalRow", "ElementRow", "capitals_table", "elements_table", "read_table"]


@dataclass(frozen=True)
class CapitalRow:
    """One country and its capital."""

    country: str
    capital: str
    aliases: tuple[str, ...]
    distractors: tuple[str, ...]
    pool: Pool
    hard_reason: str

    @property
    def accepted(self) -> tuple[str, ...]:
        """Every answer the checker accepts: the capital and its aliases."""
        return (self.capital, *self.aliases)


@dataclass(frozen=True)
class ElementRow:
    """One chemical element."""

    number: int
    symbol: str
    name: str
    pool: Pool


def read_table(filename: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of ``workbench/data/<filename>`` as dicts, checking the header."""
    path = resources.files("workbench").joinpath("data", filename)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkbenchError(
            f"data table {filename!r} is missing from workbench/data: reinstall the package"
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != columns:
        raise WorkbenchError(
            f"{filename}: header is {reader.fieldnames}, expected {list(columns)}: fix the header"
        )
    return list(reader)


def _pool(value: str, where: str) -> Pool:
    if value not in POOLS:
        raise WorkbenchError(f"{where}: pool {value!r} is not one of {', '.join(POOLS)}")
    return value


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split("|") if v.strip())


@lru_cache(maxsize=1)
def capitals_table() -> tuple[CapitalRow, ...]:
    """All rows of ``capitals.csv``, validated (unique countries, known pools)."""
    cols = ("country", "capital", "aliases", "distractors", "pool", "hard_reason")
    rows: list[CapitalRow] = []
    seen: set[str] = set()
    for i, raw in enumerate(read_table("capitals.csv", cols), start=2):
        where = f"capitals.csv:{i}"
        if raw["country"] in seen:
            raise WorkbenchError(f"{where}: duplicate country {raw['country']!r}")
        seen.add(raw["country"])
        pool = _pool(raw["pool"], where)
        if (pool == "hard") != bool(raw["hard_reason"]):
            raise WorkbenchError(f"{where}: hard rows, and only they, need a hard_reason")
        rows.append(
            CapitalRow(
                country=raw["country"],
                capital=raw["capital"],
                aliases=_split_list(raw["aliases"]),
                distractors=_split_list(raw["distractors"]),
                pool=pool,
                hard_reason=raw["hard_reason"],
            )
        )
    return tuple(rows)


@lru_cache(maxsize=1)
def elements_table() -> tuple[ElementRow, ...]:
    """All rows of ``elements.csv``, validated (unique symbols, known pools)."""
    rows: list[ElementRow] = []
    seen: set[str] = set()
    for i, raw in enumerate(read_table("elements.csv", ("number", "symbol", "name", "pool")), 2):
        where = f"elements.csv:{i}"
        if raw["symbol"] in seen:
            raise WorkbenchError(f"{where}: duplicate symbol {raw['symbol']!r}")
        seen.add(raw["symbol"])
        rows.append(
            ElementRow(
                number=int(raw["number"]),
                symbol=raw["symbol"],
                name=raw["name"],
                pool=_pool(raw["pool"], where),
            )
        )
    return tuple(rows)
