"""Label axes (e.g. a judge's five scores) for step 3, found by name in label files.

Judge files in the paper's layout (records under ``items``, scores nested):

>>> import json, pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> for name, scores in (("train", [5, 2, 4]), ("fresh", [1, 4])):
...     records = [{"i": k, "scores": {"completeness": s, "factual_accuracy": 6 - s}}
...                for k, s in enumerate(scores)]
...     _ = (root / f"{name}.json").write_text(json.dumps({"items": records}))
>>> axes = load_axes(str(root / "train.json"), str(root / "fresh.json"), threshold=4)
>>> sorted(axes), axes["completeness"][0].tolist(), axes["completeness"][1].tolist()
(['completeness', 'factual_accuracy'], [1.0, 0.0, 1.0], [0.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from probes.labels import (
    MISSING,
    label_fields,
    load_labels,
    parse_spec,
    raw_values,
    read_label_file,
)
from workbench.core.errors import WorkbenchError

__all__ = ["load_axes", "load_axis"]


def _axis_field(path: Path, axis: str) -> str:
    fields = label_fields(path)
    matches = [f for f in fields if f == axis or f.endswith(f".{axis}")]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        leaves = [f.rsplit(".", 1)[-1] for f in _numeric_fields(path)]
        leaves = [leaf for leaf in leaves if leaf not in _NOT_AXES]
        raise WorkbenchError(
            f"unknown axis {axis!r}: {path} holds {', '.join(leaves) or 'no fields'}; "
            "pass one of them or NAME=PATH:FIELD"
        )
    raise WorkbenchError(
        f"axis {axis!r} is ambiguous in {path} ({', '.join(matches)}): name the field with PATH:FIELD"
    )


def load_axes(
    train: str,
    fresh: str | None,
    names: Sequence[str] | None = None,
    *,
    threshold: float | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per-axis labels for step 3 from a pair of label files (e.g. judge scores).

    Args:
        train: the training label file; each axis is looked up by name,
            nested fields included (``scores.<name>``).
        fresh: the fresh label file, or None.
        names: axes to load; None loads every numeric field present in both files
            except ids and the main labels (``i``, ``id``, ``coverage``, ``correct``).
        threshold: binarising threshold (e.g. 4 for judge scores 1-5, "high" >= 4).

    On the paper's judge files (``judge_v4_step16.json``, ``judge_v4_fresh.json``)
    with ``threshold=4`` this gives its five axes, from ``completeness`` to
    ``self_verification``; the module's example runs on files written here.
    """
    train_path = parse_spec(train)[0]
    fresh_path = parse_spec(fresh)[0] if fresh is not None else None
    if names is None:
        fields = _numeric_fields(train_path)
        if fresh_path is not None:
            in_fresh = set(_numeric_fields(fresh_path))
            fields = [f for f in fields if f in in_fresh]
        names = [f.rsplit(".", 1)[-1] for f in fields if f.rsplit(".", 1)[-1] not in _NOT_AXES]
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for axis in names:
        fy = None if fresh_path is None else load_axis(str(fresh_path), axis, threshold=threshold)
        out[axis] = (load_axis(str(train_path), axis, threshold=threshold), fy)
    return out


def load_axis(
    spec: str, axis: str, *, threshold: float | None = None, ids: list[str] | None = None
) -> np.ndarray:
    """One axis's labels: ``spec``'s FIELD if given, else the field named ``axis``.

    A field named ``axis`` is found at any depth (``scores.<axis>``); an axis
    the file does not hold is an error listing the axes it does. ``ids`` (the
    features' item ids) aligns records that carry ids, as :func:`load_labels`.
    """
    path, field, spec_threshold = parse_spec(spec)
    if field is None:
        field = _axis_field(path, axis)
    t = spec_threshold if spec_threshold is not None else threshold
    return load_labels(f"{path}:{field}", threshold=t, ids=ids, threshold_option="--axis-threshold")


_NOT_AXES = frozenset({"i", "id", "idx", "index", "coverage", "correct", "labels", "label"})


def _numeric_fields(path: Path) -> list[str]:
    """Fields whose present values are all numbers or booleans."""
    data = read_label_file(path)
    out = []
    for field in label_fields(path):
        raw = raw_values(data, field, path)
        if isinstance(raw, np.ndarray):
            ok = raw.dtype.kind in "biuf" and raw.ndim == 1
        else:
            present = [v for v in raw if v is not MISSING and v is not None]
            ok = bool(present) and all(
                isinstance(v, bool | int | float | np.integer | np.floating) for v in present
            )
        if ok:
            out.append(field)
    return out
