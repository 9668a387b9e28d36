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
feature store's manifest on one side, records with an ``id`` field on the
other): the label file may list the items in any order or hold more items
than the features; a feature item with no label record is an error, and so
is a label file where only some records carry an id (a CSV saved with a
byte-order mark no longer hides its ``id`` column). Without ids in the label
file, or without ids on the features (an ``.npz``), labels are matched by
order, the lengths must agree, and :class:`Labels` says so (``matched_by``).

>>> y = load_labels("paper-artifacts/smollm_fresh_judged_gold.json:coverage>=0.5")  # doctest: +SKIP
>>> int(y.sum())  # doctest: +SKIP
9
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from probes.label_files import MISSING, label_fields, raw_values, read_label_file
from probes.label_files import record_ids as _file_record_ids
from workbench.core.errors import WorkbenchError
from workbench.core.store import FeatureStore, load_feature_matrix

__all__ = [
    "MISSING",
    "Labels",
    "feature_ids",
    "label_fields",
    "load_features",
    "load_labels",
    "load_values",
    "parse_spec",
    "raw_values",
    "read_label_file",
    "read_labels",
    "record_ids",
]

_THRESHOLD = re.compile(r"^(?P<body>.+?)>=(?P<t>[^:>=]+)$")


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except OSError:  # e.g. a name too long for the file system
        return False


def parse_spec(spec: str) -> tuple[Path, str | None, float | None]:
    """Split ``PATH[:FIELD][>=T]`` into its parts (an existing path wins over a colon)."""
    if not isinstance(spec, str) or not spec.strip() or "\x00" in spec:
        raise WorkbenchError(
            f"{str(spec)[:60]!r} is not PATH[:FIELD][>=T]: pass a file path, e.g. labels.jsonl:correct"
        )
    threshold = None
    m = _THRESHOLD.match(spec)
    if m and not _exists(spec):
        try:
            threshold = float(m["t"])
        except ValueError:
            raise WorkbenchError(
                f"threshold {m['t']!r} in {spec!r} is not a number: write PATH:FIELD>=0.5"
            ) from None
        spec = m["body"]
    if not math.isfinite(threshold if threshold is not None else 0.0):
        raise WorkbenchError(f"threshold {threshold} in {spec!r} must be a finite number")
    if _exists(spec) or ":" not in spec:
        return Path(spec), None, threshold
    path, field = spec.rsplit(":", 1)
    return Path(path), field or None, threshold


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


def _align(
    values: list[Any] | np.ndarray,
    data: Any,
    ids: list[str],
    path: Path,
    what: str = "label for feature item",
) -> Any:
    """``values`` reordered to the features' item ``ids`` (unchanged without label ids)."""
    label_ids = _file_record_ids(data, path)
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


def _values(
    path: Path, field: str | None, ids: list[str] | None, what: str
) -> tuple[np.ndarray, str]:
    """Per-item floats (NaN = missing), aligned to ``ids``, and how they were matched."""
    data = read_label_file(path)
    raw = raw_values(data, field, path)
    if not isinstance(raw, list | np.ndarray):
        raise WorkbenchError(
            f"{path} field {field!r} is a single {type(raw).__name__}, not one label per item: "
            "pass a field that holds a list"
        )
    label_ids = _file_record_ids(data, path)  # refuses records where only some carry an id
    matched_by = "id" if ids is not None and label_ids is not None else "order"
    if ids is not None:
        raw = _align(raw, data, ids, path, what)
    name = field or path.name
    if isinstance(raw, np.ndarray):
        if raw.dtype.kind not in "biuf" or raw.ndim != 1:
            raise WorkbenchError(
                f"{path} array {name!r} has dtype {raw.dtype} and shape {raw.shape}: "
                "pass a 1-D numeric array"
            )
        return raw.astype(np.float64), matched_by
    values = np.array([_to_float(v, i, name, path) for i, v in enumerate(raw)], dtype=np.float64)
    return values, matched_by


def record_ids(spec: str) -> list[str] | None:
    """Item ids of a label file's records (``id``, or the paper's ``i``), None when they carry none."""
    path = parse_spec(spec)[0]
    return _file_record_ids(read_label_file(path), path)


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
    return _values(path, field, ids, what)[0]


def feature_ids(spec: str) -> list[str] | None:
    """Item ids of the features named by ``PATH[:SITE]``: a store's manifest ids, else None."""
    path = parse_spec(spec)[0]
    return FeatureStore(path).item_ids if path.is_dir() else None


@dataclass(frozen=True)
class Labels:
    """Labels read from a file and how they were matched to the features.

    ``matched_by`` is ``"id"`` (the label records' ids, reordered to the
    features' ids) or ``"order"`` (file order: the label records carry no ids,
    or the features none); a report says which.
    """

    values: np.ndarray
    matched_by: str


def load_labels(
    spec: str,
    *,
    threshold: float | None = None,
    ids: list[str] | None = None,
    threshold_option: str = "--threshold",
) -> np.ndarray:
    """The values of :func:`read_labels` (see there)."""
    return read_labels(spec, threshold=threshold, ids=ids, threshold_option=threshold_option).values


def read_labels(
    spec: str,
    *,
    threshold: float | None = None,
    ids: list[str] | None = None,
    threshold_option: str = "--threshold",
) -> Labels:
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
    >>> read_labels(f"{p}:s.a>=4").values.tolist()
    [1.0, 0.0]
    """
    path, field, spec_threshold = parse_spec(spec)
    threshold = spec_threshold if spec_threshold is not None else threshold
    values, matched_by = _values(path, field, ids, "label for feature item")
    name = field or path.name
    known = ~np.isnan(values)
    if values.size and not known.any():
        raise WorkbenchError(
            f"{path} field {name!r} has no value for any of its {values.size} items (all missing "
            "or null): pass the field that holds the labels"
        )
    if threshold is not None:
        values = np.where(known, (values >= threshold).astype(np.float64), np.nan)
        return Labels(values, matched_by)
    if not np.isin(values[known], (0.0, 1.0)).all():
        sample = np.unique(values[known])[:4].tolist()
        raise WorkbenchError(
            f"{path} field {name!r} holds continuous values (e.g. {sample}): "
            f"binarise with {threshold_option} T (or PATH:FIELD>=T); values >= T become 1"
        )
    return Labels(values, matched_by)


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
