"""Read labels and features from files: ``PATH[:FIELD][>=T]`` and ``PATH[:SITE]``.

Labels come from ``.npz`` (an array), ``.json`` (a list; a dict of lists; a
list of objects, or a dict holding one such list, e.g. ``{"items": [...]}``),
``.jsonl`` (one object per line) or ``.csv`` (a column). A dotted FIELD walks
into nested objects (``scores.factual_accuracy``). Values are 0/1 or
booleans ("assert"/"hedge" read as 1/0), or continuous values binarised by a threshold (``>= T`` -> 1), given
in the spec (``PATH:FIELD>=4``) or as ``threshold=``. An item whose value is
missing or null is unlabelled (NaN) and left out of the statistics, counted in
the report; a field missing from every item is an error.

Labels are matched to features by item id whenever both sides carry ids (a
feature store's manifest on one side, records with an ``id`` field, or the
paper's ``i``, on the other): the label file may list the items in any order or hold more items
than the features; a feature item with no label record is an error. Without
ids on either side, labels are matched by order and the lengths must agree.

>>> y = load_labels("paper-artifacts/smollm_fresh_judged_gold.json:coverage>=0.5")  # doctest: +SKIP
>>> int(y.sum())  # doctest: +SKIP
9
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.store import FeatureStore, load_feature_matrix, load_npz

__all__ = [
    "feature_ids",
    "label_fields",
    "load_features",
    "load_labels",
    "load_values",
    "parse_spec",
    "raw_values",
    "read_label_file",
    "record_ids",
]

MISSING = object()
_THRESHOLD = re.compile(r"^(?P<body>.+?)>=(?P<t>[^:>=]+)$")


def parse_spec(spec: str) -> tuple[Path, str | None, float | None]:
    """Split ``PATH[:FIELD][>=T]`` into its parts (an existing path wins over a colon)."""
    threshold = None
    m = _THRESHOLD.match(spec)
    if m and not Path(spec).exists():
        try:
            threshold = float(m["t"])
        except ValueError:
            raise WorkbenchError(
                f"threshold {m['t']!r} in {spec!r} is not a number: write PATH:FIELD>=0.5"
            ) from None
        spec = m["body"]
    if Path(spec).exists() or ":" not in spec:
        return Path(spec), None, threshold
    path, field = spec.rsplit(":", 1)
    return Path(path), field or None, threshold


def read_label_file(path: Path) -> Any:
    if not path.exists():
        raise WorkbenchError(f"label file {path} does not exist: pass an existing file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            return load_npz(path)
        if suffix == ".json":
            return json.loads(path.read_text())
        if suffix == ".jsonl":
            lines = path.read_text().splitlines()
            return [json.loads(line) for line in lines if line.strip()]
        if suffix == ".csv":
            with path.open(newline="") as f:
                return {"__csv__": list(csv.DictReader(f))}
    except json.JSONDecodeError as e:
        raise WorkbenchError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None
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


def _to_float(v: Any, i: int, field: str, path: Path) -> float:
    if v is MISSING or v is None or (isinstance(v, str) and not v.strip()):
        return math.nan
    if isinstance(v, bool | np.bool_):
        return float(v)
    if isinstance(v, str):
        low = v.strip().lower()
        if low in ("true", "false", "assert", "hedge"):
            return float(low in ("true", "assert"))
        try:
            return float(low)
        except ValueError:
            pass
    if isinstance(v, int | float | np.integer | np.floating):
        return float(v)
    raise WorkbenchError(
        f"{path} field {field!r} item {i} is {str(v)[:40]!r}, not a number or boolean: "
        "pick a numeric field (nested ones with dots, e.g. scores.completeness)"
    )


ID_KEYS = ("id", "i")
"""Record fields read as item ids, first found wins (the paper's files use ``i``)."""


def _record_ids(data: Any, path: Path) -> list[str] | None:
    """Every record's id (:data:`ID_KEYS`), or None when the records do not all carry one."""
    records = _records(data)
    if not records or not all(isinstance(r, dict) for r in records):
        return None
    key = next((k for k in ID_KEYS if all(r.get(k) is not None for r in records)), None)
    if key is None:
        return None
    ids = [str(r[key]) for r in records]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise WorkbenchError(f"{path} holds item id {dup!r} more than once: ids must be unique")
    return ids


def _align(
    values: list[Any] | np.ndarray,
    data: Any,
    ids: list[str],
    path: Path,
    what: str = "label for feature item",
) -> Any:
    """``values`` reordered to the features' item ``ids`` (unchanged without label ids)."""
    label_ids = _record_ids(data, path)
    if label_ids is None or label_ids == ids:
        return values
    where = {item: k for k, item in enumerate(label_ids)}
    missing = [item for item in ids if item not in where]
    if missing:
        raise WorkbenchError(
            f"{path} has no {what} {missing[0]!r} ({len(missing)} of {len(ids)} missing): "
            "pass a file with a record for every item"
        )
    return [values[where[item]] for item in ids]


def record_ids(spec: str) -> list[str] | None:
    """Item ids of a label file's records (``id`` or ``i``), None when they carry none."""
    path = parse_spec(spec)[0]
    return _record_ids(read_label_file(path), path)


def load_values(
    spec: str, *, ids: list[str] | None = None, what: str = "value for item"
) -> np.ndarray:
    """Per-item floats from ``PATH[:FIELD]`` without thresholding (NaN = missing).

    >>> import json, pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.json"
    >>> _ = p.write_text(json.dumps({"items": [{"i": 1, "c": 0.25}, {"i": 0, "c": 0.5}]}))
    >>> load_values(f"{p}:c", ids=["0", "1"]).tolist()
    [0.5, 0.25]
    """
    path, field, threshold = parse_spec(spec)
    if threshold is not None:
        raise WorkbenchError(f"{spec!r}: drop the '>= T' to read the values unthresholded")
    return _values(path, field, ids, what)


def _values(path: Path, field: str | None, ids: list[str] | None, what: str) -> np.ndarray:
    data = read_label_file(path)
    raw = raw_values(data, field, path)
    if ids is not None:
        raw = _align(raw, data, ids, path, what)
    name = field or path.name
    if isinstance(raw, np.ndarray):
        if raw.dtype.kind not in "biuf" or raw.ndim != 1:
            raise WorkbenchError(
                f"{path} array {name!r} has dtype {raw.dtype} and shape {raw.shape}: "
                "pass a 1-D numeric array"
            )
        return raw.astype(np.float64)
    return np.array([_to_float(v, i, name, path) for i, v in enumerate(raw)], dtype=np.float64)


def feature_ids(spec: str) -> list[str] | None:
    """Item ids of the features named by ``PATH[:SITE]``: a store's manifest ids, else None."""
    path = parse_spec(spec)[0]
    return FeatureStore(path).item_ids if path.is_dir() else None


def load_labels(
    spec: str,
    *,
    threshold: float | None = None,
    ids: list[str] | None = None,
    threshold_option: str = "--threshold",
) -> np.ndarray:
    """Binary labels (1.0/0.0, NaN = unlabelled) from ``PATH[:FIELD][>=T]``.

    Args:
        spec: the file, optionally a field and a threshold (``>= T`` -> 1).
        threshold: used when the spec gives none; without either, the values
            must already be 0/1 or booleans.
        ids: the features' item ids (:func:`feature_ids`); when the label records
            carry ``id`` fields too, the labels come back in this order.
        threshold_option: the option the error for continuous values points to.

    >>> import json, pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "l.json"
    >>> _ = p.write_text(json.dumps({"items": [{"s": {"a": 5}}, {"s": {"a": 2}}]}))
    >>> load_labels(f"{p}:s.a>=4").tolist()
    [1.0, 0.0]
    """
    path, field, spec_threshold = parse_spec(spec)
    threshold = spec_threshold if spec_threshold is not None else threshold
    values = _values(path, field, ids, "label for feature item")
    name = field or path.name
    known = ~np.isnan(values)
    if threshold is not None:
        return np.where(known, (values >= threshold).astype(np.float64), np.nan)
    if not np.isin(values[known], (0.0, 1.0)).all():
        sample = np.unique(values[known])[:4].tolist()
        raise WorkbenchError(
            f"{path} field {name!r} holds continuous values (e.g. {sample}): "
            f"binarise with {threshold_option} T (or PATH:FIELD>=T); values >= T become 1"
        )
    return values


def load_features(spec: str) -> np.ndarray:
    """A feature matrix from ``PATH[:SITE]``: a feature-store directory or an ``.npz`` (``X``).

    For an ``.npz``, SITE names the array (default ``X``).
    """
    path, site, threshold = parse_spec(spec)
    if threshold is not None:
        raise WorkbenchError(f"{spec!r}: a threshold applies to labels, not to features")
    if not path.exists():
        raise WorkbenchError(
            f"features {path} do not exist: pass a feature-store directory or .npz"
        )
    if not path.is_dir() and path.suffix.lower() != ".npz":
        raise WorkbenchError(
            f"features {path} are neither a feature-store directory nor an .npz: "
            "pass the output of `workbench capture` or an .npz holding X"
        )
    return load_feature_matrix(path, site)
