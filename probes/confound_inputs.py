"""Named confounds as inputs: per-item values on train and fresh, a type, checks, encodings.

A confound is ``num`` (response length, a score) or ``cat`` (task family,
truncated yes/no; a family stored as integers is still categorical, so say
so). Values are checked once, here, where they enter: every item has a
finite value, the training values are not constant, the type is known.

Encodings, all fitted on the training values only:

* for the logistic models of the incremental test, a ``num`` confound is
  standardised and a ``cat`` one is one-hot over its training levels (a fresh
  level never seen in training encodes as all zeros, like no level at all);
* for LEACE, the same columns (one-hot for ``cat``, as LEACE expects for a
  k-class concept).

>>> c = Confound(train=[3, 1, 2], fresh=[1, 1], kind="cat")
>>> c.levels
('1', '2', '3')
>>> encode({"family": c})[0].tolist()
[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from workbench.core.errors import WorkbenchError

__all__ = ["KINDS", "Confound", "check_confounds", "encode"]

KINDS = ("num", "cat")
"""Confound types: ``num`` (ordered values, quantile strata) and ``cat`` (levels)."""


def _as_values(values: ArrayLike, kind: str | None) -> tuple[np.ndarray, str]:
    arr = np.asarray(values, dtype=object).ravel()
    numeric = all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in arr
        if v is not None
    )
    inferred = "num" if numeric else "cat"
    return arr, inferred if kind is None else kind


def _level(v: object) -> str:
    """A level's name: integral numbers without a decimal point (1 and 1.0 are one level)."""
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float | np.floating) and math.isnan(v))


@dataclass(frozen=True, eq=False)
class Confound:
    """A confound's values for the training items and the fresh items.

    Args:
        train: one value per training item (numbers, or level names).
        fresh: one value per fresh item.
        kind: ``"num"`` or ``"cat"``; None infers ``num`` for numbers and
            ``cat`` otherwise (pass ``"cat"`` for integer-coded levels).
    """

    train: np.ndarray
    fresh: np.ndarray
    kind: str | None = None
    levels: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        train, kind = _as_values(self.train, self.kind)
        fresh, _ = _as_values(self.fresh, kind)
        object.__setattr__(self, "train", train)
        object.__setattr__(self, "fresh", fresh)
        object.__setattr__(self, "kind", kind)
        if kind == "cat":
            levels = sorted({_level(v) for v in train if not _is_missing(v)}, key=_level_key)
            object.__setattr__(self, "levels", tuple(levels))

    def values(self, which: str) -> np.ndarray:
        """``num``: float values; ``cat``: level names as strings."""
        arr = self.train if which == "train" else self.fresh
        if self.kind == "num":
            return arr.astype(np.float64)
        return np.array([_level(v) for v in arr], dtype=object)


def _level_key(level: str) -> tuple[int, float | str]:
    try:
        return (0, float(level))
    except ValueError:
        return (1, level)


def _check_one(name: str, c: Confound, which: str, n: int) -> None:
    arr = c.train if which == "train" else c.fresh
    if arr.size != n:
        raise WorkbenchError(
            f"confound {name!r} has {arr.size} {which} values for {n} {which} items: "
            "give one value per item, in the features' order (or with item ids)"
        )
    missing = [i for i, v in enumerate(arr) if _is_missing(v)]
    if c.kind == "num" and not missing:
        try:
            vals = arr.astype(np.float64)
        except (TypeError, ValueError):
            bad = next(v for v in arr if not isinstance(v, int | float | np.integer | np.floating))
            raise WorkbenchError(
                f"confound {name!r} is num but holds {str(bad)[:30]!r}: mark it categorical "
                f"({name}=SPEC:cat, or kind='cat')"
            ) from None
        missing = np.flatnonzero(~np.isfinite(vals)).tolist()
    if missing:
        raise WorkbenchError(
            f"confound {name!r} has NaN or no value for {len(missing)} of {n} {which} items "
            f"(first: item {missing[0]}): give every item a value, or drop the confound"
        )


def check_confounds(
    confounds: Mapping[
        str, Confound | tuple[ArrayLike, ArrayLike] | tuple[ArrayLike, ArrayLike, str]
    ],
    n_train: int,
    n_fresh: int,
) -> dict[str, Confound]:
    """Check each confound against the set sizes; raise :class:`WorkbenchError` naming the fix.

    Accepts a :class:`Confound` or a ``(train, fresh)`` / ``(train, fresh, kind)`` tuple.
    """
    out: dict[str, Confound] = {}
    for name, c in confounds.items():
        if not isinstance(c, Confound):
            if not isinstance(c, tuple) or len(c) not in (2, 3):
                raise WorkbenchError(
                    f"confound {name!r} is {type(c).__name__}: pass Confound(train, fresh, kind) "
                    "or a (train, fresh[, kind]) tuple"
                )
            if c[0] is None or c[1] is None:
                which = "train" if c[0] is None else "fresh"
                other = "fresh" if which == "train" else "train"
                raise WorkbenchError(
                    f"confound {name!r} has {other} values but no {which} values: the models "
                    f"are fitted on train and tested on fresh, so pass both"
                )
            kind = str(c[2]) if len(c) == 3 else None
            c = Confound(np.asarray(c[0], dtype=object), np.asarray(c[1], dtype=object), kind)
        if c.kind not in KINDS:
            raise WorkbenchError(
                f"confound {name!r} has unknown type {c.kind!r}: use 'cat' (levels) or 'num' "
                "(ordered values)"
            )
        _check_one(name, c, "train", n_train)
        _check_one(name, c, "fresh", n_fresh)
        train = c.values("train")
        if np.unique(train).size < 2:
            first = train[0].item() if isinstance(train[0], np.generic) else train[0]
            raise WorkbenchError(
                f"confound {name!r} is constant on the training set (all {first!r}): a "
                "constant cannot confound anything; drop it"
            )
        out[name] = c
    return out


def _columns(c: Confound, which: str, keep: np.ndarray | None) -> np.ndarray:
    vals = c.values(which)
    if keep is not None:
        vals = vals[keep]
    if c.kind == "num":
        ref = c.values("train").astype(np.float64)
        sd = float(ref.std()) or 1.0
        return ((vals - ref.mean()) / sd)[:, None]
    return np.stack([(vals == lv).astype(np.float64) for lv in c.levels], axis=1)


def encode(
    confounds: Mapping[str, Confound],
    *,
    train_keep: np.ndarray | None = None,
    fresh_keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Design columns of the confounds (side by side) for the train and fresh items kept."""
    tr = [_columns(c, "train", train_keep) for c in confounds.values()]
    fr = [_columns(c, "fresh", fresh_keep) for c in confounds.values()]
    return np.concatenate(tr, axis=1), np.concatenate(fr, axis=1)
