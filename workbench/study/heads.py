"""Head attribution (confident-wrong vs confident-right) and the tempering sweep.

Attribution compares two cohorts of one split head by head
(:func:`interventions.attribute_heads`); a cohort under ``min_cohort`` items is
reported with its size instead of attributed. The sweep tempers the top heads
by magnitude (louder in cohort ``a``) at each lambda with sampled decoding and
three or more seeds (:func:`interventions.temper_sweep`), and the same
tempering is judged by the causal rule against random heads
(:func:`tempering_causal`); both are cached in ``sweep/``.

>>> cohort_reason({"cw": 3, "cr": 40}, ("cw", "cr"), 5)
'cohort cw has 3 items (cr: 40), under min_cohort = 5: too few for a Cohen d'
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interventions import (
    HeadAttribution,
    MaxDNull,
    SweepResult,
    attribute_heads,
    cohorts_from_labels,
    layers_from_features,
    max_magnitude_d_null,
    temper_sweep,
)
from workbench.core.items import Item
from workbench.core.store import atomic_write_json
from workbench.labels.verbal import classify_verbal
from workbench.model.generation import DecodingConfig
from workbench.study.cache import Stage, model_identity, stage_key
from workbench.study.collect import SplitData, format_items
from workbench.study.config import (
    AttributionConfig,
    ModelConfig,
    TemperingConfig,
    chat_flag,
    section_json,
)
from workbench.study.context import StageContext
from workbench.study.labels import Checker, SplitLabels

__all__ = [
    "AttributionOutcome",
    "cohort_reason",
    "run_attribution",
    "checker_scorers",
    "run_tempering",
]


def cohort_reason(sizes: Mapping[str, int], names: tuple[str, str], minimum: int) -> str | None:
    """Why the cohorts are too small to attribute (None when they are large enough)."""
    for name, other in (names, names[::-1]):
        if sizes[name] < minimum:
            return (
                f"cohort {name} has {sizes[name]} items ({other}: {sizes[other]}), under "
                f"min_cohort = {minimum}: too few for a Cohen d"
            )
    return None


@dataclass(frozen=True)
class AttributionOutcome:
    """The attribution (None when skipped), the reason, the cohort sizes, the heads to temper,
    and the shuffled-cohort null of the top magnitude d."""

    attribution: HeadAttribution | None
    skipped: str | None
    split: str
    cohorts: tuple[str, str]
    sizes: Mapping[str, int]
    heads: tuple[tuple[int, int], ...]
    null: MaxDNull | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "cohorts": list(self.cohorts),
            "cohort_sizes": dict(self.sizes),
            "skipped": self.skipped,
            "tempered_heads": [list(h) for h in self.heads],
            "result": None if self.attribution is None else self.attribution.to_json(top_k=10),
            "max_d_null": None if self.null is None else self.null.to_json(),
        }


def run_attribution(
    data: SplitData, labels: SplitLabels, cfg: AttributionConfig, n_layers: int, *, seed: int
) -> AttributionOutcome:
    """Attribute every head of ``data`` (``head_in`` over the last N tokens)."""
    masks = cohorts_from_labels(labels.array("correct").astype(int), labels.verbal)
    names = (cfg.cohort_a, cfg.cohort_b)
    sizes = {k: int(v.sum()) for k, v in masks.items()}
    reason = cohort_reason(sizes, names, cfg.min_cohort)
    if reason:
        return AttributionOutcome(None, reason, data.name, names, sizes, ())
    layers = layers_from_features(data.features, n_layers=n_layers)
    attr = attribute_heads(layers, masks[names[0]], masks[names[1]], names=names, seed=seed)
    heads = tuple((h.layer, h.head) for h in attr.top(cfg.top_k, "magnitude"))
    null = None
    if cfg.n_null > 0:  # cheap: head norms are pooled once
        null = max_magnitude_d_null(
            layers, masks[names[0]], masks[names[1]], n_shuffles=cfg.n_null, seed=seed
        )
    return AttributionOutcome(attr, None, data.name, names, sizes, heads, null)


def checker_scorers(checker: Checker) -> dict[str, Any]:
    """``correct`` (the checker) and ``asserts`` (the verbal label) as scorers of responses."""
    return {
        "correct": lambda item, response: bool(checker(item, response)),
        "asserts": lambda item, response: classify_verbal(response) == "assert",
    }


def run_tempering(
    items: Sequence[Item],
    heads: Sequence[tuple[int, int]],
    ctx: StageContext,
    cfg: TemperingConfig,
    model: ModelConfig,
) -> tuple[SweepResult, dict[str, Any], bool]:
    """The sweep over lambdas x seeds on the first ``n_items`` items, and the causal test of
    the same tempering against random heads; (sweep, causal result JSON, reused)."""
    checker, progress = ctx.checker, ctx.progress
    chosen = format_items(list(items)[: cfg.n_items], model.prompt_template)
    key = stage_key(
        "sweep/2",
        model_identity(model.name),
        section_json(model),
        section_json(cfg),
        ctx.items_key,
        [list(h) for h in heads],
        getattr(checker, "__qualname__", repr(checker)),
    )
    stage = Stage(ctx.out / "sweep", key)
    reused = ctx.use_cache and stage.valid
    if not reused:
        lm = ctx.models.get(model.name)
        decoding = DecodingConfig(
            max_new_tokens=cfg.max_new_tokens,
            do_sample=True,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            chat_template=chat_flag(model.chat_template),
        )
        scorers = checker_scorers(checker)
        result = temper_sweep(
            lm, chosen, list(heads), cfg.lambdas, cfg.seeds, scorers, decoding=decoding,
            batch_size=model.batch_size, progress=progress,
        )  # fmt: skip
        causal = tempering_causal(
            lm, chosen, heads, cfg, decoding, scorers["correct"], model, sweep=result
        )
        path = stage.begin()
        atomic_write_json(path / "sweep.json", result.to_json())
        atomic_write_json(path / "causal.json", causal)
        stage.commit({"heads": [list(h) for h in heads], "n_items": len(chosen)})
    data = json.loads((stage.path / "sweep.json").read_text())
    causal = json.loads((stage.path / "causal.json").read_text())
    return SweepResult.from_json(data), causal, reused


def tempering_causal(
    lm: Any,
    items: Sequence[Item],
    heads: Sequence[tuple[int, int]],
    cfg: TemperingConfig,
    decoding: DecodingConfig,
    correct: Any,
    model: ModelConfig,
    sweep: SweepResult | None = None,
) -> dict[str, Any]:
    """Tempering by the causal rule: each lambda < 1 on ``heads`` against random heads.

    Lambda 0 is the zero ablation (``necessity``); every other lambda but 1 is a
    ``tempering (lambda x)`` test. The target, the teacher-forced gold-answer
    log-prob, is read under every random draw; the side effects and the
    regenerated ``correct`` rate use the first ``cfg.regenerate`` draws with
    every seed (descriptive). Given the ``sweep`` of the same heads, items,
    decoding and seeds, its responses stand for the regenerations of the baseline
    (lambda 1) and of each lambda on ``heads``, instead of regenerating them again.
    """
    from interventions import Target, causal_heads
    from interventions.causal import SIDE_EFFECTS

    target = Target.logprob(
        [str(it.labels.get("gold")) for it in items], name="gold answer log-prob"
    )
    scales = [x for x in cfg.lambdas if x not in (0.0, 1.0)]
    known = {}
    if sweep is not None:
        names = {1.0: "baseline", 0.0: "necessity (zero ablation)"}
        for x in sweep.values:
            name = names.get(x, f"tempering (lambda {x:g})")
            known[name] = {m: sweep.summary(m, x).mean for m in ("correct", *SIDE_EFFECTS)}
    return causal_heads(
        lm, items, [(int(h[0]), int(h[1])) for h in heads], target, kind="zero",
        scales=scales, n_random=cfg.n_random, seeds=cfg.seeds, decoding=decoding,
        batch_size=model.batch_size, regenerate=cfg.regenerate, scorers={"correct": correct},
        known=known,
    ).to_json()  # fmt: skip
