"""A *condition*: one model's responses to one item set under one decoding config, on disk.

``workbench compare`` compares two conditions (e.g. base vs adapter) and refuses
when anything but the model differs. A condition directory holds::

    condition.json      format, model (LoadedModel.describe() + adapter SHA256),
                        decoding config (max_new_tokens, sampling, seed, chat
                        template), item set (count + SHA256 of ids and prompts),
                        truncated count, judge identity and prompt SHA256 if judged
    generations.jsonl   one row per item: id, prompt, response, truncated,
                        n_tokens, token_ids, optional scores {name: value},
                        and the item's labels (gold answers, family...)
    judge/judge_run.json  optional: a JudgeRun of these responses

``generations.jsonl`` is an item file: ``workbench capture --items`` reads it
(prompt + response), and ``score_items(read_items(...), cfg, out=DIR/judge)``
judges it in place.

>>> import tempfile
>>> from workbench.core.items import as_items
>>> from workbench.model.generation import generate
>>> items = as_items(items)
>>> out = tempfile.mkdtemp() + "/base"
>>> gens = generate(lm, items, max_new_tokens=3)
>>> _ = write_condition(out, gens, lm, items=items)
>>> cond = read_condition(out)
>>> len(cond.generations), cond.truncated_fraction == gens.truncated_fraction
(2, True)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.conditions.condition_meta import check_meta, read_json
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, jsonl_lines
from workbench.core.store import (
    atomic_write_bytes,
    atomic_write_json,
    check_out_dir,
    sha256_file,
    sha256_text,
)
from workbench.labels.judge.results import JudgeRun, read_judge_run
from workbench.model.generation import DecodingConfig, Generation, Generations

__all__ = [
    "CONDITION_FILE",
    "CONDITION_FORMAT",
    "GENERATIONS_FILE",
    "JUDGE_RUN_FILE",
    "Condition",
    "build_condition",
    "item_set_sha256",
    "model_record",
    "read_condition",
    "write_condition",
]

CONDITION_FORMAT = "workbench-condition/1"
CONDITION_FILE = "condition.json"
GENERATIONS_FILE = "generations.jsonl"
JUDGE_RUN_FILE = "judge/judge_run.json"
_FIELDS = ("id", "prompt", "response", "n_tokens", "truncated", "token_ids", "scores")


def item_set_sha256(items: Sequence[Item]) -> str:
    """SHA256 of the (id, prompt) pairs, order-free: equal for the same item set."""
    pairs = sorted((it.id, sha256_text(it.prompt)) for it in items)
    return sha256_text(json.dumps(pairs))


def model_record(lm: Any) -> dict[str, Any]:
    """``lm.describe()`` plus the SHA256 of an adapter's weights (paths can move, hashes not)."""
    record = dict(lm.describe())
    adapter = record.get("adapter")
    if adapter is not None:
        weights = sorted(Path(adapter).glob("adapter_model.*"))
        record["adapter_sha256"] = sha256_file(weights[0]) if weights else None
    return record


@dataclass(frozen=True)
class Condition:
    """Responses (``generations``), their items (labels) and how they were produced."""

    model: Mapping[str, Any]
    decoding: DecodingConfig
    items: tuple[Item, ...]
    generations: tuple[Generation, ...]
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    judge: JudgeRun | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        ids = [g.id for g in self.generations]
        if ids != [it.id for it in self.items]:
            raise WorkbenchError(
                "a condition's items and generations must list the same ids in order"
            )

    @property
    def max_new_tokens(self) -> int:
        return self.decoding.max_new_tokens

    @property
    def n_truncated(self) -> int:
        return sum(g.truncated for g in self.generations)

    @property
    def truncated_fraction(self) -> float:
        return self.n_truncated / len(self.generations) if self.generations else 0.0

    @property
    def item_set_sha256(self) -> str:
        return item_set_sha256(self.items)

    @property
    def label(self) -> str:
        """A short name for reports: the directory, else model (+ adapter)."""
        if self.path is not None:
            return self.path.name
        adapter = self.model.get("adapter")
        return f"{self.model.get('name')}" + (f" + {Path(adapter).name}" if adapter else "")

    def identity(self) -> dict[str, Any]:
        """What must match for two conditions to be comparable (the model may differ)."""
        out: dict[str, Any] = dict(self.decoding.to_json())
        if not self.decoding.do_sample:  # greedy: sampling parameters and seed play no part
            out.update(dict.fromkeys(("temperature", "top_p", "top_k", "seed"), "unused (greedy)"))
        out["item_set"] = f"{len(self.items)} items, sha256 {self.item_set_sha256[:12]}"
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``condition.json`` record."""
        judge = None
        if self.judge is not None:
            judge = {**self.judge.identity(), "n_ok": self.judge.n_ok, "file": JUDGE_RUN_FILE}
        return {
            "format": CONDITION_FORMAT,
            "model": dict(self.model),
            "decoding": self.decoding.to_json(),
            "max_new_tokens": self.max_new_tokens,
            "items": {"n": len(self.items), "sha256": self.item_set_sha256},
            "n_truncated": self.n_truncated,
            "truncated_fraction": self.truncated_fraction,
            "judge": judge,
        }

    def rows(self) -> list[dict[str, Any]]:
        """The ``generations.jsonl`` rows."""
        out = []
        check_labels(self.items)
        for item, gen in zip(self.items, self.generations, strict=True):
            row = gen.to_json()
            if item.id in self.scores:
                row["scores"] = dict(self.scores[item.id])
            out.append({**row, **item.labels})
        return out

    def write(self, path: str | Path, *, overwrite: bool = False) -> Condition:
        """Write the directory (atomically per file); returns the condition with its path."""
        path = check_out_dir(path, "condition")
        if (path / CONDITION_FILE).exists() and not overwrite:
            raise WorkbenchError(
                f"{path} already holds a condition: pass a new directory or overwrite=True (--overwrite)"
            )
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.rows())
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path / GENERATIONS_FILE, text.encode("utf-8"))
        if self.judge is not None:
            self.judge.write(path / JUDGE_RUN_FILE)
        elif (path / JUDGE_RUN_FILE).exists():
            (path / JUDGE_RUN_FILE).unlink()  # a stale judge run of other responses
        atomic_write_json(path / CONDITION_FILE, self.to_json())
        return dataclasses.replace(self, path=path)


def check_labels(items: Sequence[Item]) -> None:
    """Refuse an item label whose name a condition row uses (checked before generating)."""
    for item in items:
        clash = sorted(set(item.labels) & set(_FIELDS))
        if clash:
            raise WorkbenchError(
                f"item {item.id!r} has a label named {clash[0]!r}, which a condition row uses: rename it"
            )


def _check_judge(judge: JudgeRun, generations: Sequence[Generation], where: str) -> None:
    """A judge run must have scored exactly these responses."""
    by_id = {g.id: g for g in generations}
    for r in judge.results:
        gen = by_id.get(r.id)
        if gen is None:
            raise WorkbenchError(
                f"{where}: judge run scores item {r.id!r}, which has no generation"
            )
        if r.response_sha256 is not None and r.response_sha256 != sha256_text(gen.response):
            raise WorkbenchError(
                f"{where}: the judge run scored a different response for item {r.id!r} than "
                "generations.jsonl holds: re-judge this condition's responses"
            )


def build_condition(
    generations: Generations,
    lm: Any,
    *,
    items: Sequence[Item] | None = None,
    scores: Mapping[str, Mapping[str, float]] | None = None,
    judge: JudgeRun | None = None,
) -> Condition:
    """A :class:`Condition` in memory; :func:`write_condition` documents the arguments."""
    by_id = {it.id: it for it in items} if items is not None else {}
    rows: list[Item] = []
    for g in generations:
        if items is not None and g.id not in by_id:
            raise WorkbenchError(
                f"generation {g.id!r} has no item in items: pass the items generated from"
            )
        labels = by_id[g.id].labels if g.id in by_id else {}
        rows.append(Item(id=g.id, prompt=g.prompt, response=g.response, labels=labels))
    decoding = generations.config
    if decoding.chat_template is None:  # record what "default" meant for this tokenizer
        decoding = dataclasses.replace(decoding, chat_template=bool(lm.has_chat_template))
    if judge is not None:
        _check_judge(judge, generations.items, "the judge run")
    return Condition(
        model=model_record(lm),
        decoding=decoding,
        items=tuple(rows),
        generations=generations.items,
        scores=dict(scores or {}),
        judge=judge,
    )


def write_condition(
    path: str | Path,
    generations: Generations,
    lm: Any,
    *,
    items: Sequence[Item] | None = None,
    scores: Mapping[str, Mapping[str, float]] | None = None,
    judge: JudgeRun | None = None,
    overwrite: bool = False,
) -> Condition:
    """Write a condition directory from :func:`~workbench.model.generation.generate` output.

    Args:
        path: the directory (created).
        generations: the responses and their decoding config.
        lm: the model that generated them (its ``describe()`` is recorded).
        items: the items generated from, for their labels (gold answers); by
            default the generations' ids and prompts without labels.
        scores: optional per-item scores, ``{item id: {name: value}}``
            (``workbench compare --score score:NAME``).
        judge: a judge run of these responses (response hashes are checked).
        overwrite: replace a condition already in ``path``.
    """
    condition = build_condition(generations, lm, items=items, scores=scores, judge=judge)
    return condition.write(path, overwrite=overwrite)


def _row(obj: Any, where: str) -> tuple[Item, Generation, Mapping[str, float] | None]:
    if not isinstance(obj, dict):
        raise WorkbenchError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in ("id", "prompt", "response", "truncated") if k not in obj]
    if missing:
        raise WorkbenchError(
            f"{where}: missing field {missing[0]!r}: rewrite it with write_condition"
        )
    labels = {k: v for k, v in obj.items() if k not in _FIELDS}
    item = Item(id=str(obj["id"]), prompt=obj["prompt"], response=obj["response"], labels=labels)
    gen = Generation(
        id=item.id,
        prompt=obj["prompt"],
        response=obj["response"],
        token_ids=tuple(obj.get("token_ids") or ()),
        truncated=bool(obj["truncated"]),
    )
    return item, gen, obj.get("scores")


def read_condition(path: str | Path) -> Condition:
    """Load a condition directory, checking its format, rows and judge run."""
    path = Path(path)
    meta_path = path / CONDITION_FILE
    if not path.is_dir() or not meta_path.is_file():
        raise WorkbenchError(
            f"condition {path} has no {CONDITION_FILE}: pass a directory written by "
            "`workbench generate` or write_condition"
        )
    meta = read_json(meta_path, "condition file")
    if not isinstance(meta, dict) or meta.get("format") != CONDITION_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise WorkbenchError(f"{meta_path}: format {found!r} is not {CONDITION_FORMAT!r}")
    decoding = check_meta(meta, meta_path)
    gen_path = path / GENERATIONS_FILE
    if not gen_path.is_file():
        raise WorkbenchError(f"condition {path} has no {GENERATIONS_FILE}: regenerate it")
    items, gens, scores = [], [], {}
    for lineno, obj in jsonl_lines(gen_path):
        item, gen, row_scores = _row(obj, f"{gen_path}:{lineno}")
        items.append(item)
        gens.append(gen)
        if row_scores:
            scores[item.id] = row_scores
    if len(items) != meta["items"]["n"] or item_set_sha256(items) != meta["items"]["sha256"]:
        raise WorkbenchError(
            f"{gen_path} holds {len(items)} items that do not match {meta_path} "
            f"({meta['items']['n']} items): the directory was edited; regenerate it"
        )
    judge = None
    if (path / JUDGE_RUN_FILE).is_file():
        judge = read_judge_run(path / JUDGE_RUN_FILE)
        _check_judge(judge, gens, str(path))
    return Condition(
        model=meta["model"],
        decoding=decoding,
        items=tuple(items),
        generations=tuple(gens),
        scores=scores,
        judge=judge,
        path=path,
    )
