"""Controls of the machinery: a positive and a negative control, through the same steps.

*Positive*: the teacher-forced truth of a capitals statement. Each country
of the capitals table reads once with its true capital and once with the
capital of another country of the same pool ("What is the capital of France?"
then "The capital of France is Paris." or "... is Lima."); ``h_last`` is read
at the final token. Train uses the ``train`` countries and one sentence
template, fresh the ``fresh`` and ``hard`` countries and another, so nothing is
shared but the property. Its label is none of the named confounds (task family
and truncation are constant here and left out; response length is tested),
so a working pipeline should find it and call it ``survives``.

*Negative*: the ``correct`` labels of the plain condition shuffled within task
family (``[controls] seed``) on every split, with the real features: nothing
is there to find, so the pipeline should not pass it.

Stage directory ``controls/positive/``: ``items.jsonl``, ``labels.json`` and
``features/`` (``h_last``).

>>> items, y = truth_statements("train")
>>> items[0].response, int(y[0]), items[1].response, int(y[1])
('The capital of France is Paris.', 1, 'The capital of France is Lisbon.', 0)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.items import Item, write_items
from workbench.core.store import FeatureStore, atomic_write_json
from workbench.study.cache import Stage, model_identity, stage_key
from workbench.study.collect import H_LAST, write_features
from workbench.study.config import ModelConfig, chat_flag, section_json
from workbench.study.context import StageContext
from workbench.study.labels import SplitLabels

__all__ = ["ControlSet", "positive_control", "shuffled_within_family", "truth_statements"]

_TEMPLATES = {
    "train": ("What is the capital of {country}?", "The capital of {country} is {city}."),
    "fresh": ("Tell me the capital of {country}.", "{city} is the capital of {country}."),
}
_POOLS = {"train": ("train",), "fresh": ("fresh", "hard")}
_SHIFT = {"train": 7, "fresh": 11}


def truth_statements(split: str) -> tuple[list[Item], np.ndarray]:
    """Items (prompt, teacher-forced statement) and truth labels for ``train`` or ``fresh``."""
    from workbench.labels.domains.tables import capitals_table

    rows = [r for r in capitals_table() if r.pool in _POOLS[split]]
    question, answer = _TEMPLATES[split]
    items, y = [], []
    for i, r in enumerate(rows):
        wrong = rows[(i + _SHIFT[split]) % len(rows)].capital
        for label, city in ((1, r.capital), (0, wrong)):
            text = answer.format(country=r.country, city=city)
            labels = {"family": "capitals", "truth": bool(label), "country": r.country}
            items.append(Item(f"{split}-truth-{i}-{label}", question.format(country=r.country),
                              text, labels))  # fmt: skip
            y.append(label)
    return items, np.array(y, dtype=np.float64)


@dataclass(frozen=True)
class ControlSet:
    """A control's split: features, labels and rows for the confounds."""

    X: np.ndarray
    y: np.ndarray
    rows: tuple[dict[str, Any], ...]


def positive_control(ctx: StageContext, model: ModelConfig) -> tuple[dict[str, ControlSet], bool]:
    """The truth statements of both splits, captured (or reused); (sets, reused)."""
    key = stage_key("controls/positive/1", model_identity(model.name), section_json(model),
                    _TEMPLATES, _SHIFT)  # fmt: skip
    stage = Stage(ctx.out / "controls" / "positive", key)
    reused = ctx.use_cache and stage.valid
    if not reused:
        from workbench.model.capture import capture

        lm = ctx.models.get(model.name)
        path = stage.begin()
        meta: dict[str, Any] = {}
        for split in ("train", "fresh"):
            items, y = truth_statements(split)
            got = capture(lm, items, [H_LAST], batch_size=model.batch_size,
                          chat_template=chat_flag(model.chat_template), progress=ctx.progress)  # fmt: skip
            write_items(path / f"{split}.items.jsonl", items)
            write_features(path / f"{split}-features", [it.id for it in items], got.features)
            lengths = [len(lm.tokenizer(it.response or "", add_special_tokens=False)["input_ids"])
                       for it in items]  # fmt: skip
            meta[split] = {"y": y.tolist(), "n_tokens": lengths}
        atomic_write_json(path / "labels.json", meta)
        stage.commit({"model": lm.describe()})
    meta = json.loads((stage.path / "labels.json").read_text())
    sets = {}
    for split in ("train", "fresh"):
        X = FeatureStore(stage.path / f"{split}-features").load_all()[H_LAST]
        rows = tuple(
            {"n_tokens": n, "truncated": False, "family": "capitals"}
            for n in meta[split]["n_tokens"]
        )
        sets[split] = ControlSet(X, np.asarray(meta[split]["y"], dtype=np.float64), rows)
    return sets, reused


def shuffled_within_family(labels: SplitLabels, seed: int) -> np.ndarray:
    """``correct`` shuffled among the items of each task family (class counts kept per family)."""
    y = labels.array("correct").copy()
    families = np.array([str(r["family"]) for r in labels.rows])
    rng = np.random.default_rng([seed, sum(map(ord, labels.name))])
    for f in np.unique(families):
        idx = np.flatnonzero(families == f)
        y[idx] = rng.permutation(y[idx])
    return y
