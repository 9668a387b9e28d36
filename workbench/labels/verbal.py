"""Verbal assert/hedge labels from a transparent lexicon.

Rule (:meth:`VerbalClassifier.classify`): after Unicode NFKC, curly apostrophes
made straight and casefolding, a response is a **hedge** when

1. any phrase of ``hedge_phrases`` occurs in it as whole words (the words of a
   phrase may be separated by any whitespace; "might" does not match "mighty"), or
2. a word of ``confidence_words`` ("sure", "certain", "confident") has a negator
   (``negators``: "not", "never", "cannot", or any word ending in "n't") among the
   ``negation_window`` words before it ("I'm not entirely sure", "can't say for
   certain"), or
3. it is empty: an empty response asserts nothing.

Otherwise it is an **assert**. The lexicon covers first-person epistemic verbs
("I think", "I believe"), modal adverbs ("probably", "possibly", "might",
"approximately"), appearance ("it seems"), memory qualifiers ("if I remember",
"to my knowledge"), requests to verify ("double-check"), not knowing ("I don't
know", "no idea") and refusals ("I cannot", "I'm unable", "as an AI"). The lists
are fields of a frozen dataclass: print them, or derive a variant with
:func:`dataclasses.replace`.

Agreement with hand labels (:func:`verbal_agreement`) on
``workbench/data/verbal_handlabelled.jsonl``: 93 short responses of the kind a
small instruct model gives to the ``workbench.labels.domains`` questions (52 assert, 41
hedge), labelled by the developer who wrote the lexicon, not by independent
annotators, before the classifier existed. Label rule: *hedge* when the response
signals doubt about its own answer, declines to answer or says it does not know;
*assert* when it commits to an answer (right or wrong) without such a signal,
whatever its politeness or side remarks. The lexicon was fixed before it was
first run on the sample and not changed after. Result: agreement 0.914 (85/93),
Cohen's kappa 0.826; of 52 hand-asserts 4 were called hedge (a hedge word in a side
remark: "You might also want to practise..."), of 41 hand-hedges 4 were called
assert (hedges outside the lexicon: "I'm fairly confident", "I hope that's right",
"There is no way for me to know", "unless I made a mistake"). One person wrote the
responses, the labels and the lexicon, so treat these numbers as optimistic; an
independent annotation would be a better measure.

>>> classify_verbal("The capital of France is Paris.")
'assert'
>>> classify_verbal("I'm not entirely sure, but I think it is Paris.")
'hedge'
>>> VerbalClassifier().cues("It might be Lyon, I believe.")
('i believe', 'might')
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from workbench.core.errors import WorkbenchError

__all__ = [
    "Verbal",
    "VERBAL_LABELS",
    "HEDGE_PHRASES",
    "VerbalClassifier",
    "classify_verbal",
    "AgreementResult",
    "verbal_agreement",
    "cohen_kappa",
]

Verbal = Literal["assert", "hedge"]
VERBAL_LABELS: tuple[Verbal, Verbal] = ("assert", "hedge")

HEDGE_PHRASES: tuple[str, ...] = (
    # first-person epistemic verbs
    "i think", "i believe", "i guess", "i suppose", "i assume", "i suspect",
    "i would say", "i'd say", "i would guess", "i'd guess", "my guess", "i'm guessing",
    # modal verbs and adverbs
    "might", "may be", "maybe", "perhaps", "possibly", "probably", "presumably",
    "likely", "could be", "should be", "approximately", "roughly",
    # appearance
    "it seems", "seems to", "seem to", "it appears", "appears to be", "apparently",
    # uncertainty and not knowing
    "unsure", "uncertain", "not sure", "no idea", "don't know", "do not know", "dont know",
    "hard to say", "difficult to say", "hard to tell",
    # memory qualifiers
    "if i remember", "if i recall", "if i'm not mistaken", "if i am not mistaken",
    "as far as i know", "to my knowledge", "to the best of my knowledge", "not familiar",
    # requests to verify
    "double-check", "double check", "please verify", "please check",
    # refusals
    "i cannot", "i can't", "i can not", "i'm unable", "i am unable", "unable to",
    "i'm not able", "i am not able", "as an ai", "i don't have", "i do not have",
)  # fmt: skip

_APOSTROPHES = re.compile(r"[’‘ʼ`]")
_WORDS = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def _prepare(text: str) -> str:
    return _APOSTROPHES.sub("'", unicodedata.normalize("NFKC", text)).casefold()


@lru_cache(maxsize=512)
def _phrase_regex(phrase: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in _prepare(phrase).split()]
    return re.compile(r"(?<![^\W_])" + r"\s+".join(words) + r"(?![^\W_])")


@dataclass(frozen=True)
class VerbalClassifier:
    """The lexicon and the rule (see the module docstring) that label a response.

    >>> from dataclasses import replace
    >>> strict = replace(VerbalClassifier(), hedge_phrases=("maybe",))
    >>> strict.classify("I think it is 12."), VerbalClassifier().classify("I think it is 12.")
    ('assert', 'hedge')
    """

    hedge_phrases: tuple[str, ...] = HEDGE_PHRASES
    confidence_words: tuple[str, ...] = ("sure", "certain", "confident")
    negators: tuple[str, ...] = ("not", "never", "cannot", "n't")
    negation_window: int = 3
    empty_is_hedge: bool = field(default=True)

    def cues(self, response: str) -> tuple[str, ...]:
        """The cues found in ``response``, sorted: phrases, and ``"not ... sure"`` forms."""
        text = _prepare(response)
        found = {p for p in self.hedge_phrases if _phrase_regex(p).search(text)}
        words = _WORDS.findall(text)
        for i, word in enumerate(words):
            if word in self.confidence_words:
                before = words[max(0, i - self.negation_window) : i]
                negs = [w for w in before if self._negates(w)]
                if negs:
                    found.add(f"{negs[-1]} ... {word}")
        return tuple(sorted(found))

    def _negates(self, word: str) -> bool:
        return word in self.negators or ("n't" in self.negators and word.endswith("n't"))

    def classify(self, response: str) -> Verbal:
        """``"hedge"`` when any cue is found (or the response is empty), else ``"assert"``."""
        if not isinstance(response, str):
            raise WorkbenchError(
                f"response must be a string, got {type(response).__name__}: pass the text"
            )
        if not response.strip():
            return "hedge" if self.empty_is_hedge else "assert"
        return "hedge" if self.cues(response) else "assert"


def classify_verbal(response: str, classifier: VerbalClassifier | None = None) -> Verbal:
    """Label ``response`` ``"assert"`` or ``"hedge"`` with the default (or given) lexicon.

    >>> classify_verbal("It is probably 17.")
    'hedge'
    """
    return (classifier or VerbalClassifier()).classify(response)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa between two label lists (NaN when chance agreement is 1)."""
    if len(a) != len(b) or not a:
        raise WorkbenchError(f"kappa needs two equal, non-empty lists, got {len(a)} and {len(b)}")
    cats = sorted(set(a) | set(b))
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    expected = sum((list(a).count(c) / n) * (list(b).count(c) / n) for c in cats)
    return float("nan") if expected == 1 else (observed - expected) / (1 - expected)


@dataclass(frozen=True)
class AgreementResult:
    """Agreement of the classifier with hand labels.

    ``confusion[i][j]`` counts responses hand-labelled ``VERBAL_LABELS[i]`` that the
    classifier labelled ``VERBAL_LABELS[j]``; ``disagreements`` lists their ids.
    """

    n: int
    agreement: float
    kappa: float
    confusion: tuple[tuple[int, int], tuple[int, int]]
    disagreements: tuple[str, ...]
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "agreement": self.agreement,
            "kappa": self.kappa,
            "confusion": {
                f"hand={h}": {
                    f"classifier={c}": self.confusion[i][j] for j, c in enumerate(VERBAL_LABELS)
                }
                for i, h in enumerate(VERBAL_LABELS)
            },
            "disagreements": list(self.disagreements),
            "source": self.source,
            "labelled_by": "the developer (not independent annotators)",
        }


def _read_handlabelled(path: str | Path | None) -> tuple[list[dict[str, Any]], str]:
    if path is None:
        res = resources.files("workbench").joinpath("data", "verbal_handlabelled.jsonl")
        text, source = res.read_text(encoding="utf-8"), "workbench/data/verbal_handlabelled.jsonl"
    else:
        p = Path(path)
        if not p.is_file():
            raise WorkbenchError(f"hand-labelled file {p} does not exist: pass a JSONL path")
        text, source = p.read_text(encoding="utf-8"), str(p)
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise WorkbenchError(
                f"{source}:{lineno}: malformed JSON ({e.msg}): fix the line"
            ) from None
        if row.get("label") not in VERBAL_LABELS or not isinstance(row.get("response"), str):
            raise WorkbenchError(
                f"{source}:{lineno}: needs a string 'response' and 'label' in {VERBAL_LABELS}, "
                f"got label {row.get('label')!r}"
            )
        rows.append(row)
    if not rows:
        raise WorkbenchError(f"{source} has no labelled responses")
    return rows, source


def verbal_agreement(
    path: str | Path | None = None, classifier: VerbalClassifier | None = None
) -> AgreementResult:
    """Agreement and Cohen's kappa of ``classifier`` with a hand-labelled JSONL sample.

    Args:
        path: JSONL with ``response`` and ``label`` (and ``id``) per line; default
            the packaged ``verbal_handlabelled.jsonl``.
        classifier: default :class:`VerbalClassifier`.

    >>> result = verbal_agreement()
    >>> result.n
    93
    """
    rows, source = _read_handlabelled(path)
    clf = classifier or VerbalClassifier()
    hand = [r["label"] for r in rows]
    pred = [clf.classify(r["response"]) for r in rows]
    confusion = [[0, 0], [0, 0]]
    for h, p in zip(hand, pred, strict=True):
        confusion[VERBAL_LABELS.index(h)][VERBAL_LABELS.index(p)] += 1
    return AgreementResult(
        n=len(rows),
        agreement=sum(h == p for h, p in zip(hand, pred, strict=True)) / len(rows),
        kappa=cohen_kappa(hand, pred),
        confusion=((confusion[0][0], confusion[0][1]), (confusion[1][0], confusion[1][1])),
        disagreements=tuple(
            str(r.get("id", i))
            for i, (r, h, p) in enumerate(zip(rows, hand, pred, strict=True))
            if h != p
        ),
        source=source,
    )
