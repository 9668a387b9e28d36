"""Cohorts: which items are compared, from labels or masks.

The paper's cohorts cross correctness with the verbal disposition:
``cr`` confident-right (correct, asserted), ``cw`` confident-wrong, ``hr``
hedged-right and ``hw`` hedged-wrong; without verbal labels, ``right`` and
``wrong``. Unlabelled items (NaN or None) belong to no cohort.

>>> c = cohorts_from_labels([1, 0, 0, 1], ["assert", "assert", "hedge", "hedge"])
>>> c["cw"].tolist(), c["hr"].tolist()
([False, True, False, False], [False, False, False, True])
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from workbench.core.errors import WorkbenchError

__all__ = ["as_mask", "check_cohorts", "cohorts_from_labels"]


def as_mask(cohort: ArrayLike, n: int, name: str) -> np.ndarray:
    """A boolean mask of ``n`` items from a mask or integer indices."""
    arr = np.asarray(cohort)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise WorkbenchError(
                f"cohort {name!r} mask has shape {arr.shape}, the activations hold {n} items: "
                "pass one boolean per item"
            )
        return arr
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise WorkbenchError(f"cohort {name!r}: pass a boolean mask or integer item indices")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise WorkbenchError(
            f"cohort {name!r} holds index {int(arr.max())} but there are {n} items"
        )
    mask = np.zeros(n, dtype=bool)
    mask[arr] = True
    return mask


def check_cohorts(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    """Each cohort has at least 2 items (a variance), and they are disjoint."""
    for mask, name in zip((a, b), names, strict=True):
        if mask.sum() == 0:
            raise WorkbenchError(
                f"cohort {name!r} is empty: no item has that label combination; check the labels "
                "or compare other cohorts"
            )
        if mask.sum() < 2:
            raise WorkbenchError(
                f"cohort {name!r} has {int(mask.sum())} item: Cohen's d needs at least 2 items "
                "per cohort (a variance); add items"
            )
    if (a & b).any():
        raise WorkbenchError(
            f"cohorts {names[0]!r} and {names[1]!r} share {int((a & b).sum())} items: they must be disjoint"
        )


def _binary(values: ArrayLike, what: str) -> np.ndarray:
    """0/1 with NaN for missing; ``assert``/``hedge`` read as 1/0."""
    raw = np.asarray(values, dtype=object).ravel()
    out = np.full(raw.size, np.nan)
    for i, v in enumerate(raw):
        if isinstance(v, str):
            key = v.strip().lower()
            if key not in ("assert", "hedge"):
                raise WorkbenchError(f"{what} value {v!r} at item {i}: use 'assert'/'hedge' or 1/0")
            out[i] = float(key == "assert")
        elif v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        elif isinstance(v, bool | np.bool_ | int | np.integer | float | np.floating) and v in (
            0,
            1,
        ):
            out[i] = float(v)
        else:
            raise WorkbenchError(f"{what} value {v!r} at item {i} is not 0/1: binarise it first")
    return out


def cohorts_from_labels(
    correct: ArrayLike, verbal: ArrayLike | None = None
) -> dict[str, np.ndarray]:
    """Cohort masks from correctness and verbal labels (NaN/None = unlabelled, in no cohort).

    Returns ``right`` and ``wrong``, and with ``verbal`` the paper's four:
    ``cr`` (correct, asserted), ``cw`` (wrong, asserted), ``hr``, ``hw`` (hedged).

    >>> sorted(cohorts_from_labels([1, 0, None], ["assert", "assert", "hedge"]))
    ['cr', 'cw', 'hr', 'hw', 'right', 'wrong']
    """
    c = _binary(correct, "correct")
    out = {"right": c == 1, "wrong": c == 0}
    if verbal is not None:
        v = _binary(verbal, "verbal")
        if v.size != c.size:
            raise WorkbenchError(
                f"correct has {c.size} items but verbal has {v.size}: pass both for the same items"
            )
        out.update(
            cr=(c == 1) & (v == 1),
            cw=(c == 0) & (v == 1),
            hr=(c == 1) & (v == 0),
            hw=(c == 0) & (v == 0),
        )
    return out
