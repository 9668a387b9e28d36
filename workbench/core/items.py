"""Items: a prompt, optionally a response, and any label fields.

An item file is JSONL, one object per line with ``id`` (string or int),
``prompt`` (string), an optional ``response`` (string) and any other fields,
which are kept as labels.

>>> import json, pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "items.jsonl"
>>> _ = path.write_text(json.dumps({"id": 1, "prompt": "What is the capital of France?", "gold": "Paris"}))
>>> items = read_items(path)
>>> items[0].id, items[0].prompt, items[0].labels
('1', 'What is the capital of France?', {'gold': 'Paris'})
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.store import atomic_write_bytes, sha256_text

__all__ = ["Item", "as_items", "jsonl_lines", "read_items", "write_items"]


@dataclass(frozen=True)
class Item:
    """One prompt (and optional response) with its labels."""

    id: str
    prompt: str
    response: str | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "prompt": self.prompt}
        if self.response is not None:
            out["response"] = self.response
        out.update(self.labels)
        return out

    def hashes(self) -> dict[str, str | None]:
        """SHA256 of the prompt and response text (what a manifest records)."""
        return {
            "prompt_sha256": sha256_text(self.prompt),
            "response_sha256": None if self.response is None else sha256_text(self.response),
        }


def _item_from_obj(obj: Any, where: str) -> Item:
    if not isinstance(obj, dict):
        raise WorkbenchError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in ("id", "prompt") if k not in obj]
    if missing:
        raise WorkbenchError(
            f"{where}: missing field {missing[0]!r}: every item needs id and prompt"
        )
    if not isinstance(obj["prompt"], str) or not obj["prompt"]:
        raise WorkbenchError(f"{where}: 'prompt' must be a non-empty string")
    response = obj.get("response")
    if response is not None and not isinstance(response, str):
        raise WorkbenchError(f"{where}: 'response' must be a string or absent")
    labels = {k: v for k, v in obj.items() if k not in ("id", "prompt", "response")}
    return Item(id=str(obj["id"]), prompt=obj["prompt"], response=response, labels=labels)


def jsonl_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed value)`` for every non-blank line of a JSONL file; a
    malformed line is a one-line error naming the file, line and column."""
    if path.is_dir():
        raise WorkbenchError(f"{path} is a directory: pass a JSONL file")
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                raise WorkbenchError(
                    f"{path}:{lineno}: not UTF-8 text: save the file as UTF-8 JSONL"
                ) from None
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise WorkbenchError(
                    f"{path}:{lineno}: malformed JSON ({e.msg}, column {e.colno}): "
                    "fix or remove the line"
                ) from None


def read_items(path: str | Path) -> list[Item]:
    """Read a JSONL item file, with errors that name the line."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise WorkbenchError(f"item file {path} {what}: pass a JSONL file with id and prompt")
    items: list[Item] = []
    seen: dict[str, int] = {}
    for lineno, obj in jsonl_lines(path):
        where = f"{path}:{lineno}"
        item = _item_from_obj(obj, where)
        if item.id in seen:
            raise WorkbenchError(
                f"{where}: duplicate id {item.id!r} (first on line {seen[item.id]}): ids must be unique"
            )
        seen[item.id] = lineno
        items.append(item)
    if not items:
        raise WorkbenchError(
            f"item file {path} is empty: it needs at least one JSON line with id and prompt"
        )
    return items


def write_items(path: str | Path, items: Iterable[Item]) -> None:
    """Write items as JSONL, atomically."""
    text = "".join(json.dumps(it.to_json(), ensure_ascii=False) + "\n" for it in items)
    atomic_write_bytes(path, text.encode("utf-8"))


def as_items(items: Sequence[Item | str | Mapping[str, Any]]) -> list[Item]:
    """Accept items, bare prompt strings or dicts; bare prompts get ids "0", "1", ..."""
    out: list[Item] = []
    for i, it in enumerate(items):
        if isinstance(it, Item):
            out.append(it)
        elif isinstance(it, str):
            out.append(Item(id=str(i), prompt=it))
        else:
            out.append(_item_from_obj(dict(it), f"item {i}"))
    if not out:
        raise WorkbenchError("no items given: pass at least one prompt")
    ids = [it.id for it in out]
    if len(set(ids)) != len(ids):
        dup = next(x for x in ids if ids.count(x) > 1)
        raise WorkbenchError(f"duplicate item id {dup!r}: ids must be unique")
    return out
