"""Read confounds from label files: ``PATH[:FIELD][:cat|:num]``, matched by item id.

The file formats are those of :mod:`probes.labels` (``.npz``, ``.json``,
``.jsonl``, ``.csv``; records under ``items`` with ``id`` or ``i``). Values
are matched to the features' item ids where both sides carry ids, by order
otherwise. The type suffix says how to treat the values (``:cat`` for levels
such as a task family stored as integers, ``:num`` for ordered values);
without it, numbers are ``num`` and anything else ``cat``.

>>> import json, pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp()) / "c.json"
>>> _ = p.write_text(json.dumps({"items": [{"i": 0, "fam": 2}, {"i": 1, "fam": 1}]}))
>>> c = load_confounds({"family": f"{p}:fam:cat"}, {"family": f"{p}:fam:cat"})["family"]
>>> c.kind, c.levels
('cat', ('1', '2'))
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from probes.confound_inputs import KINDS, Confound
from probes.labels import _align, parse_spec, raw_values, read_label_file
from workbench.core.errors import WorkbenchError

__all__ = ["load_confound_values", "load_confounds", "split_kind"]


def split_kind(spec: str) -> tuple[str, str | None]:
    """``PATH[:FIELD][:cat|:num]`` -> (``PATH[:FIELD]``, the type or None)."""
    head, sep, last = spec.rpartition(":")
    if not sep or Path(spec).exists():
        return spec, None
    if last in KINDS:
        return head, last
    path, sep2, _ = head.rpartition(":")
    if sep2 and Path(path).exists():
        raise WorkbenchError(
            f"unknown type suffix {last!r} in {spec!r}: end the spec with :cat (levels, e.g. a "
            "task family) or :num (ordered values, e.g. a length)"
        )
    return spec, None


def load_confound_values(
    spec: str, *, ids: list[str] | None = None, name: str = "confound"
) -> tuple[list[Any] | np.ndarray, str | None]:
    """Raw per-item values of ``PATH[:FIELD][:cat|:num]`` and the type suffix (None if absent)."""
    body, kind = split_kind(spec)
    path, field, threshold = parse_spec(body)
    if threshold is not None:
        raise WorkbenchError(
            f"confound {name!r}: {spec!r} has a threshold; confounds are used as they are "
            "(drop '>= T', add :cat or :num)"
        )
    data = read_label_file(path)
    values = raw_values(data, field, path)
    if ids is not None:
        values = _align(values, data, ids, path, f"value of confound {name!r} for item")
    return values, kind


def load_confounds(
    train: Mapping[str, str],
    fresh: Mapping[str, str],
    *,
    train_ids: list[str] | None = None,
    fresh_ids: list[str] | None = None,
) -> dict[str, Confound]:
    """Confounds by name from their train and fresh specs (each name needs both).

    The checks against the feature sets (one finite value per item, not
    constant) happen in :func:`probes.falsify`.
    """
    for a, b, option in ((fresh, train, "--train-confound"), (train, fresh, "--fresh-confound")):
        for name in a:
            if name not in b:
                given = "--fresh-confound" if option == "--train-confound" else "--train-confound"
                raise WorkbenchError(
                    f"{given} {name} has no {option} {name}: the confound models are fitted on "
                    f"train and tested on fresh, so pass both ({option} {name}=SPEC)"
                )
    out = {}
    for name in train:
        tv, tk = load_confound_values(train[name], ids=train_ids, name=name)
        fv, fk = load_confound_values(fresh[name], ids=fresh_ids, name=name)
        if tk is not None and fk is not None and tk != fk:
            raise WorkbenchError(
                f"confound {name!r} is :{tk} on train but :{fk} on fresh: give both the same type"
            )
        out[name] = Confound(np.asarray(tv, dtype=object), np.asarray(fv, dtype=object), tk or fk)
    return out
