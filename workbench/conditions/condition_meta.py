"""Reading a condition's ``condition.json``: exactly the keys the workbench writes.

A key missing or unknown (in the record or in its ``decoding``) is a one-line
error naming it, instead of a KeyError or TypeError from deep inside.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.model.generation import DecodingConfig

__all__ = ["check_meta", "read_json"]

_META_KEYS = ("format", "model", "decoding", "max_new_tokens", "items", "n_truncated",
              "truncated_fraction", "judge")  # fmt: skip


def check_meta(meta: dict[str, Any], where: Path) -> DecodingConfig:
    """The record's keys are the ones :meth:`Condition.to_json` writes; its decoding."""
    missing = [k for k in ("model", "decoding", "items") if k not in meta]
    unknown = [k for k in meta if k not in _META_KEYS]
    if missing or unknown:
        what = f"lacks key {missing[0]!r}" if missing else f"has unknown key {unknown[0]!r}"
        raise WorkbenchError(f"{where} {what}: it was edited or is not a condition; regenerate it")
    items, decoding = meta["items"], meta["decoding"]
    if not isinstance(meta["model"], dict) or not isinstance(decoding, dict):
        raise WorkbenchError(f"{where}: 'model' and 'decoding' must be objects; regenerate it")
    if not (isinstance(items, dict) and isinstance(items.get("n"), int) and "sha256" in items):
        raise WorkbenchError(f"{where}: 'items' must hold n and sha256; regenerate it")
    fields = {f.name for f in dataclasses.fields(DecodingConfig)}
    bad = [k for k in decoding if k not in fields]
    if bad:
        raise WorkbenchError(f"{where}: decoding has unknown key {bad[0]!r}; regenerate it")
    try:
        return DecodingConfig(**decoding)
    except (TypeError, ValueError) as e:
        raise WorkbenchError(f"{where}: decoding is invalid ({e}); regenerate it") from None


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise WorkbenchError(f"{what} {path} is not UTF-8 text: regenerate it") from None
    except json.JSONDecodeError as e:
        raise WorkbenchError(
            f"{what} {path} is not valid JSON ({e.msg} at line {e.lineno})"
        ) from None
