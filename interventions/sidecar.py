"""The paper's confidence-gated sidecar on a frozen base model.

A fitted probe reads ``h_last`` at the end of the prompt (``read="prompt"``,
before anything is generated) or after the base model's draft response
(``read="draft"``). When its ``p_correct`` is below ``threshold``, a hedge
prefix (configurable text) is put in front of the response; otherwise the
response is left as it is. The base model's content is never changed, so
correctness is the base model's (checked once, on the ungated response), and
only the disposition moves. The result holds the 2x2 disposition table of the
ungated baseline and of the gated responses on the same items.

>>> result = sidecar(lm, items, probe, threshold=0.4)  # doctest: +SKIP
>>> result.baseline_table.assertion_asymmetry, result.gated_table.assertion_asymmetry  # doctest: +SKIP
(0.05, -0.21)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from probes import DispositionTable, disposition_table
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.labels.domains import check_item
from workbench.labels.verbal import classify_verbal
from workbench.model.capture import capture
from workbench.model.generation import DecodingConfig, generate

__all__ = [
    "DEFAULT_HEDGE_PREFIX",
    "SidecarResult",
    "gate_responses",
    "gate_scored",
    "probe_p_correct",
    "sidecar",
]

DEFAULT_HEDGE_PREFIX = "I'm not certain, but "
Read = Literal["prompt", "draft"]


def gate_responses(
    responses: Sequence[str], p_correct: Sequence[float], threshold: float, prefix: str
) -> tuple[list[str], list[bool]]:
    """Put ``prefix`` before each response whose ``p_correct < threshold``.

    >>> gate_responses(["Paris.", "Lyon."], [0.9, 0.2], 0.5, "I'm not certain, but ")
    (['Paris.', "I'm not certain, but Lyon."], [False, True])
    """
    gated = [bool(p < threshold) for p in p_correct]
    out = [prefix + r.lstrip() if g else r for r, g in zip(responses, gated, strict=True)]
    return out, gated


@dataclass(frozen=True)
class SidecarResult:
    """Per item: probe confidence, gate decision, both responses and their verbal labels;
    the baseline and gated 2x2 disposition tables."""

    item_ids: tuple[str, ...]
    p_correct: tuple[float, ...]
    gated: tuple[bool, ...]
    baseline: tuple[str, ...]
    responses: tuple[str, ...]
    correct: tuple[bool, ...]
    verbal_baseline: tuple[str, ...]
    verbal_gated: tuple[str, ...]
    baseline_table: DispositionTable
    gated_table: DispositionTable
    threshold: float
    hedge_prefix: str
    read: str

    @property
    def n_gated(self) -> int:
        return sum(self.gated)

    def to_json(self) -> dict[str, Any]:
        rows = zip(
            self.item_ids,
            self.p_correct,
            self.gated,
            self.correct,
            self.verbal_baseline,
            self.verbal_gated,
            self.responses,
            strict=True,
        )
        return {
            "threshold": self.threshold,
            "hedge_prefix": self.hedge_prefix,
            "read": self.read,
            "n_items": len(self.item_ids),
            "n_gated": self.n_gated,
            "baseline": self.baseline_table.to_json(),
            "gated": self.gated_table.to_json(),
            "items": [
                {
                    "id": i,
                    "p_correct": p,
                    "gated": g,
                    "correct": c,
                    "verbal_baseline": vb,
                    "verbal_gated": vg,
                    "response": r,
                }
                for i, p, g, c, vb, vg, r in rows
            ],
        }


def probe_p_correct(probe: Any, X: np.ndarray) -> np.ndarray:
    if not callable(getattr(probe, "predict_proba", None)):
        raise WorkbenchError(f"{type(probe).__name__} has no predict_proba: pass a fitted probe")
    expected = getattr(probe, "n_features_in_", X.shape[1])
    if expected != X.shape[1]:
        raise WorkbenchError(
            f"the probe was fitted on {expected} features but the site gives {X.shape[1]}: "
            "fit it on the same site of the same model"
        )
    return np.asarray(probe.predict_proba(X))[:, 1]


def sidecar(
    lm: Any,
    items: Sequence[Item | str | Mapping[str, Any]],
    probe: Any,
    *,
    threshold: float = 0.5,
    hedge_prefix: str = DEFAULT_HEDGE_PREFIX,
    read: Read = "prompt",
    site: str = "h_last",
    responses: Sequence[str] | None = None,
    checker: Callable[[Item, str], bool] = check_item,
    classify: Callable[[str], str] = classify_verbal,
    decoding: DecodingConfig | None = None,
    batch_size: int = 8,
) -> SidecarResult:
    """Gate the base model's responses with a probe; compare dispositions with the ungated baseline.

    Args:
        lm: a ``LoadedModel``.
        items: the items (their ``labels`` feed ``checker``).
        probe: a fitted probe with ``predict_proba`` on ``site`` features (label 1 = correct).
        threshold: gate when ``p_correct < threshold``.
        hedge_prefix: the text put before a gated response.
        read: where the probe reads ``site``: end of the prompt, or after the draft response.
        site: the capture site the probe was fitted on (default ``h_last``).
        responses: the base model's responses, if already generated (else generated here).
        checker: ``(item, response) -> bool`` correctness of the base response.
        classify: ``response -> "assert" | "hedge"``.
        decoding: decoding of the baseline (default greedy, 64 new tokens).
        batch_size: prompts per batch.
    """
    if read not in ("prompt", "draft"):
        raise WorkbenchError(
            f"read={read!r}: use 'prompt' (end of prompt) or 'draft' (after the response)"
        )
    if not np.isfinite(threshold) or not 0 <= threshold <= 1:
        raise WorkbenchError(f"threshold {threshold!r} must be a probability in [0, 1]")
    if not isinstance(hedge_prefix, str) or not hedge_prefix.strip():
        raise WorkbenchError(
            'hedge_prefix is empty: pass the text to insert, e.g. "I\'m not certain, but "'
        )
    items = as_items(items)
    if responses is None:
        config = decoding or DecodingConfig()
        gens = generate(lm, items, **config.to_json(), batch_size=batch_size)
        responses = [g.response for g in gens]
    if len(responses) != len(items):
        raise WorkbenchError(
            f"{len(responses)} responses for {len(items)} items: pass one per item"
        )
    read_items = [
        Item(it.id, it.prompt, response=r if read == "draft" else None, labels=it.labels)
        for it, r in zip(items, responses, strict=True)
    ]
    X = capture(lm, read_items, [site], batch_size=batch_size).features
    return gate_scored(
        [it.id for it in items],
        responses,
        probe_p_correct(probe, next(iter(X.values()))),
        [bool(checker(it, r)) for it, r in zip(items, responses, strict=True)],
        [classify(r) for r in responses],
        threshold=threshold,
        hedge_prefix=hedge_prefix,
        read=read,
        classify=classify,
    )


def gate_scored(
    ids: Sequence[str],
    responses: Sequence[str],
    p_correct: Sequence[float] | np.ndarray,
    correct: Sequence[bool],
    verbal: Sequence[str],
    *,
    threshold: float,
    hedge_prefix: str,
    read: Read,
    classify: Callable[[str], str] = classify_verbal,
) -> SidecarResult:
    """Gate responses whose probe read is known; the 2x2 before and after.

    The one place a :class:`SidecarResult` is assembled: :func:`sidecar` calls it
    after its own capture, the study with the ``h_last`` it captured while generating.
    """
    p = [float(x) for x in p_correct]
    gated_responses, gated = gate_responses(list(responses), p, threshold, hedge_prefix)
    correct = [bool(c) for c in correct]
    verbal_gated = [classify(r) for r in gated_responses]
    return SidecarResult(
        item_ids=tuple(ids),
        p_correct=tuple(p),
        gated=tuple(gated),
        baseline=tuple(responses),
        responses=tuple(gated_responses),
        correct=tuple(correct),
        verbal_baseline=tuple(verbal),
        verbal_gated=tuple(verbal_gated),
        baseline_table=disposition_table(correct, list(verbal)),
        gated_table=disposition_table(correct, verbal_gated),
        threshold=float(threshold),
        hedge_prefix=hedge_prefix,
        read=read,
    )
