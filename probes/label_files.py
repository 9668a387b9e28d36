"""Reading label files: ``.npz``, ``.json``, ``.jsonl`` and ``.csv``, and the fields in them.

:func:`read_label_file` parses a file (a byte-order mark removed, errors naming
the line); :func:`raw_values` picks one field per item; :func:`record_ids` reads
the ``id`` of every record, refusing a file where only some records carry one.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.items import jsonl_lines
from workbench.core.store import load_npz

__all__ = ["ID_KEYS", "MISSING", "label_fields", "raw_values", "read_label_file", "record_ids"]

MISSING = object()


class _Lines(list):  # type: ignore[type-arg]
    """The records of a JSONL file, with the line number of each (for errors)."""

    def __init__(self, records: list[Any], lines: list[int]) -> None:
        super().__init__(records)
        self.lines = lines


def _text(path: Path) -> str:
    """The file as UTF-8 text, a byte-order mark removed."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise WorkbenchError(
            f"label file {path} is not UTF-8 text (byte {e.start}): save it as UTF-8"
        ) from None


def read_label_file(path: Path) -> Any:
    """The parsed contents of a label file (``.npz``, ``.json``, ``.jsonl`` or ``.csv``).

    A byte-order mark is removed (a CSV saved by a spreadsheet would otherwise
    have a mangled ``id`` header), and errors name the file and line.
    """
    if not path.exists():
        raise WorkbenchError(f"label file {path} does not exist: pass an existing file")
    if path.is_dir():
        raise WorkbenchError(f"label file {path} is a directory: pass a file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_npz(path)
    if suffix == ".jsonl":
        parsed = list(jsonl_lines(path))
        return _Lines([obj for _, obj in parsed], [n for n, _ in parsed])
    if suffix == ".json":
        try:
            return json.loads(_text(path))
        except json.JSONDecodeError as e:
            raise WorkbenchError(
                f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno}): fix the file"
            ) from None
        except RecursionError:
            raise WorkbenchError(f"{path} nests too deeply to be a label file") from None
    if suffix == ".csv":
        try:
            rows = list(csv.DictReader(io.StringIO(_text(path), newline="")))
        except csv.Error as e:
            raise WorkbenchError(f"{path} is not a readable CSV ({e}): fix the file") from None
        return {"__csv__": rows}
    raise WorkbenchError(
        f"label file {path} has suffix {suffix!r}: pass a .npz, .json, .jsonl or .csv file"
    )


def _records(data: Any) -> list[Any] | None:
    """The list of per-item records in ``data`` (None for a dict of columns)."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and "__csv__" in data:
        return data["__csv__"]
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
        if len(lists) == 1:
            return lists[0]
    return None


def _flatten(obj: Any, prefix: str = "") -> list[str]:
    if not isinstance(obj, dict):
        return [prefix] if prefix else []
    out = []
    for k, v in obj.items():
        out += _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return [f.rstrip(".") for f in out]


def label_fields(path: str | Path) -> list[str]:
    """Fields a label file offers (dotted for nested objects), in file order."""
    data = read_label_file(Path(path))
    if isinstance(data, dict) and "__csv__" not in data and not _records(data):
        return [k for k, v in data.items() if isinstance(v, list | np.ndarray)]
    records = _records(data) or []
    seen: dict[str, None] = {}
    for rec in records:
        for f in _flatten(rec):
            seen.setdefault(f, None)
    return list(seen)


def _get(rec: Any, field: str) -> Any:
    if isinstance(rec, dict) and field in rec:
        return rec[field]
    for part in field.split("."):
        if not isinstance(rec, dict) or part not in rec:
            return MISSING
        rec = rec[part]
    return rec


def raw_values(data: Any, field: str | None, path: Path) -> list[Any] | np.ndarray:
    records = _records(data)
    if records is None and isinstance(data, dict):  # npz arrays or a dict of lists
        if field is None:
            for key in ("labels", "label", "y"):
                if key in data:
                    return data[key]
            arrays = [k for k, v in data.items() if isinstance(v, list | np.ndarray)]
            if len(arrays) == 1:
                return data[arrays[0]]
            raise WorkbenchError(
                f"{path} holds several fields ({', '.join(arrays)}): name one with PATH:FIELD"
            )
        value = _get(data, field)
        if value is MISSING:
            fields = ", ".join(k for k in data if isinstance(data[k], list | np.ndarray))
            raise WorkbenchError(
                f"field {field!r} is not in {path} (it holds {fields}): pass PATH:FIELD with one of them"
            )
        return value
    if records is None:
        raise WorkbenchError(f"{path} holds no list of labels: pass a list or a dict of lists")
    if field is None:
        if records and isinstance(records[0], dict):
            raise WorkbenchError(
                f"{path} holds objects with fields {', '.join(_flatten(records[0]))}: "
                "name one with PATH:FIELD"
            )
        return records
    values = [_get(rec, field) for rec in records]
    if all(v is MISSING for v in values):
        raise WorkbenchError(
            f"field {field!r} is not in {path} (its items hold "
            f"{', '.join(label_fields(path)) or 'no fields'}): pass PATH:FIELD with one of them"
        )
    return values


ID_KEYS = ("id", "i")
"""Record fields read as item ids, the first that any record carries wins (the paper's files use ``i``)."""


def record_ids(data: Any, path: Path) -> list[str] | None:
    """The id of every record (:data:`ID_KEYS`); None when no record carries one
    (labels then follow file order). A file where some records carry an id and
    others do not is refused with the first record that lacks one."""
    records = _records(data)
    dicts = [r for r in (records or []) if isinstance(r, dict)]
    key = next((k for k in ID_KEYS if any(k in r for r in dicts)), None)
    if not records or key is None:
        return None
    for k, r in enumerate(records):
        if not isinstance(r, dict) or r.get(key) is None or str(r.get(key)).strip() == "":
            where = (
                f"line {data.lines[k]}"
                if isinstance(data, _Lines)
                else (f"row {k + 2}" if isinstance(data, dict) else f"record {k + 1}")
            )
            raise WorkbenchError(
                f"{path} {where} has no id while other records have one: give every record "
                "an id (labels follow ids), or none (labels follow file order)"
            )
    ids = [str(r[key]) for r in records]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise WorkbenchError(f"{path} holds item id {dup!r} more than once: ids must be unique")
    return ids
