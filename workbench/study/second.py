"""Step 5's inputs: ``h_last`` of a second model of another family on the same items.

Two modes (``[second_model] responses``):

``shared``
    The second model reads the same prompts (through its own prompt template)
    followed by the first model's responses; the labels are the first model's.
    This asks whether the signal is readable from the same text by another
    family, not only from inside the model that wrote it. Cheap: one forward
    pass per item.
``own``
    The second model answers the prompts itself (greedy, cut at the first line
    break, since a base model runs on into the next question); its answers are
    checked and its ``h_last`` is read after its own answer. This is the
    paper's replication; it costs a generation per item.

Stage directory ``second/<split>/``: ``key.json``, ``responses.jsonl`` and
``features/`` (a FeatureStore with ``resid(-1,normed)``).

>>> cut_answer(" Paris.\\nQuestion: What is 2 + 2?")
'Paris.'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workbench.core.items import Item
from workbench.core.store import FeatureStore
from workbench.model.capture import capture
from workbench.model.generation import generate
from workbench.study.cache import Stage, model_identity, stage_key
from workbench.study.collect import (
    H_LAST,
    SplitData,
    format_items,
    read_jsonl,
    write_features,
    write_jsonl,
)
from workbench.study.config import SecondModelConfig, chat_flag, section_json
from workbench.study.context import StageContext
from workbench.study.models import ModelPool

__all__ = ["SecondSplit", "collect_second", "cut_answer"]


def cut_answer(text: str) -> str:
    """The answer up to its first line break (a base model continues with a new question)."""
    return text.strip().split("\n", 1)[0].strip()


@dataclass(frozen=True)
class SecondSplit:
    """The second model's ``h_last`` and labels on one split."""

    name: str
    X: np.ndarray
    correct: np.ndarray
    responses: tuple[str, ...]
    reused: bool
    own: bool = False
    """The responses are the second model's own answers (``responses = "own"``)."""


def collect_second(
    data: SplitData, main_correct: np.ndarray, ctx: StageContext, cfg: SecondModelConfig
) -> SecondSplit:
    """Capture (``shared``) or generate and capture (``own``) one split on the second model."""
    checker = ctx.checker
    section = {k: v for k, v in section_json(cfg).items() if k != "enabled"}
    upstream = data.key if cfg.responses == "shared" else ctx.items_key
    key = stage_key("second/1", model_identity(cfg.name), section, upstream, data.name)
    stage = Stage(ctx.out / "second" / data.name, key)
    reused = ctx.use_cache and stage.valid
    if not reused:
        _compute(stage, data, cfg, ctx.models, ctx.progress)
    rows = read_jsonl(stage.path / "responses.jsonl")
    X = FeatureStore(stage.path / "features").load(H_LAST)
    if cfg.responses == "shared":
        correct = np.asarray(main_correct, dtype=np.float64)
    else:
        by_id = {it.id: it for it in data.items}
        correct = np.array(
            [bool(checker(by_id[r["id"]], r["response"])) for r in rows], dtype=np.float64
        )
    responses = tuple(r["response"] for r in rows)
    return SecondSplit(data.name, X, correct, responses, reused, own=cfg.responses == "own")


def _compute(
    stage: Stage, data: SplitData, cfg: SecondModelConfig, models: ModelPool, progress: bool
) -> None:
    lm, engine = models.get(cfg.name), models.engine(cfg.name)
    chat = chat_flag(cfg.chat_template)
    prompts = format_items(data.items, cfg.prompt_template)
    raw = chat is False or (chat is None and not lm.has_chat_template)
    if cfg.responses == "shared":
        responses = [g.response for g in data.generations]
    else:
        gens = generate(
            engine,
            prompts,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=cfg.batch_size,
            chat_template=chat,
            progress=progress,
        )
        responses = [cut_answer(g.response) for g in gens]
    reading = _with_responses(prompts, responses, space=raw)
    result = capture(
        engine, reading, [H_LAST], batch_size=cfg.batch_size, chat_template=chat, progress=progress
    )
    path = stage.begin()
    write_jsonl(
        path / "responses.jsonl",
        [{"id": it.id, "response": r} for it, r in zip(data.items, responses, strict=True)],
    )
    write_features(path / "features", [it.id for it in data.items], dict(result.features))
    stage.commit({"split": data.name, "model": lm.describe(), "responses": cfg.responses})


def _with_responses(items: Sequence[Item], responses: Sequence[str], *, space: bool) -> list[Item]:
    """Items carrying the responses to read; a raw prompt gets a space before the answer."""
    return [
        Item(it.id, it.prompt, " " + r if space and r else r, it.labels)
        for it, r in zip(items, responses, strict=True)
    ]
