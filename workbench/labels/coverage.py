"""Gold-checklist coverage: the fraction of required claims a response contains.

A checklist is a list of claims; a claim is a string or a list of alternative
strings (any one counts). How a claim is found is the *matcher*:

- ``"exact"``: a case-sensitive substring of the response;
- ``"normalized"`` (default): a whole-phrase match after both sides are normalised
  by :func:`workbench.labels.domains.normalize.normalize_text` (casefold, accents and
  punctuation stripped, whitespace collapsed): ``"sao paulo"`` finds
  "São Paulo!", ``"art"`` does not find "start";
- any callable ``(response, claim) -> bool``, for instance an LLM judge; it is
  called once per alternative until one is found.

The DESIGN's correctness axis is ``coverage >= 0.5`` (:meth:`CoverageResult.passed`).

>>> result = coverage("Canberra is the capital; Sydney is larger.", ["Canberra", "Sydney", "ACT"])
>>> result.score, result.hits
(0.6666666666666666, (True, True, False))
>>> coverage("It is Brasília.", [["Brasilia", "Brazilian capital"]]).passed()
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workbench.core.errors import WorkbenchError
from workbench.labels.domains.normalize import contains_phrase, normalize_text

__all__ = ["CoverageResult", "coverage", "MATCHERS"]

MatcherName = Literal["exact", "normalized"]
Matcher = MatcherName | Callable[[str, str], bool]
Claim = str | Sequence[str]


def _exact(response: str, claim: str) -> bool:
    return claim in response


MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "exact": _exact,
    "normalized": contains_phrase,
}


@dataclass(frozen=True)
class CoverageResult:
    """Which claims of a checklist a response contains.

    Attributes:
        score: fraction of claims found, in [0, 1].
        hits: per claim, whether it was found.
        claims: the checklist, each claim as a tuple of its alternatives.
        matched: per claim, the alternative that was found (None when missed).
        matcher: the matcher's name.
    """

    score: float
    hits: tuple[bool, ...]
    claims: tuple[tuple[str, ...], ...]
    matched: tuple[str | None, ...]
    matcher: str

    @property
    def missing(self) -> tuple[tuple[str, ...], ...]:
        """The claims not found."""
        return tuple(c for c, hit in zip(self.claims, self.hits, strict=True) if not hit)

    def passed(self, threshold: float = 0.5) -> bool:
        """Whether ``score >= threshold`` (0.5: the DESIGN's correctness label)."""
        if not 0.0 <= threshold <= 1.0:
            raise WorkbenchError(f"threshold={threshold}: use a fraction in [0, 1]")
        return self.score >= threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "matcher": self.matcher,
            "claims": [
                {"claim": c[0] if len(c) == 1 else list(c), "hit": h, "matched": m}
                for c, h, m in zip(self.claims, self.hits, self.matched, strict=True)
            ],
        }


def _as_claims(checklist: Sequence[Claim], check_normalized: bool) -> tuple[tuple[str, ...], ...]:
    if isinstance(checklist, str):
        raise WorkbenchError(
            f"checklist is a string ({checklist[:40]!r}): pass a list of claims, e.g. [{checklist[:20]!r}]"
        )
    claims: list[tuple[str, ...]] = []
    for i, claim in enumerate(checklist):
        alts = (claim,) if isinstance(claim, str) else tuple(claim)
        if not alts or not all(isinstance(a, str) and a.strip() for a in alts):
            raise WorkbenchError(
                f"checklist claim {i} ({claim!r}) must be a non-empty string or a non-empty "
                "list of non-empty strings"
            )
        if check_normalized and not all(normalize_text(a) for a in alts):
            raise WorkbenchError(
                f"checklist claim {i} ({claim!r}) is only punctuation, which the normalized "
                "matcher ignores: use matcher='exact' or a claim with words"
            )
        claims.append(alts)
    if not claims:
        raise WorkbenchError("checklist is empty: coverage needs at least one claim")
    return tuple(claims)


def _resolve(matcher: Matcher) -> tuple[str, Callable[[str, str], bool]]:
    if isinstance(matcher, str):
        if matcher not in MATCHERS:
            raise WorkbenchError(
                f"unknown matcher {matcher!r}: use one of {', '.join(MATCHERS)} or a callable "
                "(response, claim) -> bool"
            )
        return matcher, MATCHERS[matcher]
    if not callable(matcher):
        raise WorkbenchError(f"matcher {matcher!r} is neither a name nor a callable")
    return getattr(matcher, "__name__", type(matcher).__name__), matcher


def _as_bool(value: object, name: str) -> bool:
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    if isinstance(value, bool) or numpy_bool:
        return bool(value)
    raise WorkbenchError(
        f"matcher {name!r} returned {value!r} ({type(value).__name__}): it must return True or False"
    )


def coverage(
    response: str, checklist: Sequence[Claim], *, matcher: Matcher = "normalized"
) -> CoverageResult:
    """Score ``response`` against ``checklist``.

    Args:
        response: the text to score.
        checklist: required claims; a claim is a string or a list of alternatives.
        matcher: ``"normalized"``, ``"exact"`` or a callable ``(response, claim) -> bool``.

    >>> coverage("The symbol is AU", ["Au"], matcher="exact").score
    0.0
    >>> coverage("x", ["a", "b"], matcher=lambda r, c: c == "a").hits
    (True, False)
    """
    if not isinstance(response, str):
        raise WorkbenchError(
            f"response must be a string, got {type(response).__name__}: pass the response text"
        )
    name, fn = _resolve(matcher)
    claims = _as_claims(checklist, check_normalized=name == "normalized" and fn is contains_phrase)
    hits: list[bool] = []
    matched: list[str | None] = []
    for alts in claims:
        found = next((a for a in alts if _as_bool(fn(response, a), name)), None)
        hits.append(found is not None)
        matched.append(found)
    return CoverageResult(
        score=sum(hits) / len(claims),
        hits=tuple(hits),
        claims=claims,
        matched=tuple(matched),
        matcher=name,
    )
