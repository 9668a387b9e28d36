"""Input checks shared by the pipeline: one-line errors naming the value and the fix."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from workbench.core.errors import WorkbenchError

__all__ = [
    "as_features",
    "as_labels",
    "check_C",
    "check_classes",
    "check_rows",
    "check_widths",
    "pool_layers",
]


def as_features(X: ArrayLike, what: str) -> np.ndarray:
    """A finite 2-D float array (``what`` names the set in errors)."""
    arr = np.asarray(X)
    if arr.dtype.kind not in "biuf":
        raise WorkbenchError(f"{what} features have dtype {arr.dtype}: pass a numeric array")
    if arr.ndim != 2:
        raise WorkbenchError(
            f"{what} features have shape {arr.shape}, expected (n_items, n_features): "
            "flatten or pool them first"
        )
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise WorkbenchError(
            f"{what} features hold NaN or infinite values in {rows.size} of {arr.shape[0]} rows "
            f"(first: row {rows[0]}): drop those items or capture them again"
        )
    return arr.astype(np.float64, copy=False)


def as_labels(y: ArrayLike, what: str) -> np.ndarray:
    """A 1-D float array of 0/1 with NaN marking an unlabelled item."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "biuf":
        raise WorkbenchError(f"{what} labels have dtype {arr.dtype}: pass 0/1 values")
    arr = arr.astype(np.float64).ravel() if arr.ndim <= 1 else arr
    if arr.ndim != 1:
        raise WorkbenchError(f"{what} labels have shape {arr.shape}: pass one label per item")
    seen = arr[~np.isnan(arr)]
    if not np.isin(seen, (0.0, 1.0)).all():
        odd = np.unique(seen[~np.isin(seen, (0.0, 1.0))])[:3].tolist()
        raise WorkbenchError(
            f"{what} labels hold values other than 0/1 (e.g. {odd}): binarise them "
            "(the CLI's --threshold T maps values >= T to 1)"
        )
    return arr


def check_C(C: float) -> float:
    """``C`` as a float, if it is a usable inverse regularisation strength (finite, > 0)."""
    c = float(C)
    if not (math.isfinite(c) and c > 0):
        raise WorkbenchError(
            f"C={c!r}: the inverse regularisation strength must be a positive finite number, "
            "e.g. 1.0 or 0.1"
        )
    return c


def check_rows(X: np.ndarray, y: np.ndarray, what: str) -> None:
    if X.shape[0] != y.size:
        raise WorkbenchError(
            f"{what} labels have {y.size} values but {what} features have {X.shape[0]} rows: "
            "pass labels for the same items in the same order"
        )


def check_classes(y: np.ndarray, what: str, folds: int | None = None) -> None:
    """Both classes present among labelled items, each at least ``folds`` times."""
    seen = y[~np.isnan(y)]
    n_pos = int(seen.sum())
    if n_pos in (0, seen.size):
        cls = int(n_pos > 0)
        raise WorkbenchError(
            f"{what} labels have one class (all {cls}, {seen.size} items): AUC is undefined; "
            f"pass a set with both classes (check --threshold or the field)"
        )
    if folds is not None:
        counts = {1: n_pos, 0: seen.size - n_pos}
        cls = min(counts, key=lambda k: counts[k])
        if counts[cls] < folds:
            fix = f"add items of class {cls}"
            if counts[cls] >= 2:
                fix = f"lower the folds to {counts[cls]} (--folds {counts[cls]}) or {fix}"
            raise WorkbenchError(
                f"{what} labels have {counts[cls]} items of class {cls}, fewer than the "
                f"{folds} CV folds: {fix}"
            )


def check_widths(a: np.ndarray, b: np.ndarray, what_a: str, what_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise WorkbenchError(
            f"{what_a} features are {a.shape[1]} wide but {what_b} features are {b.shape[1]} "
            "wide: score both with features from the same model and site"
        )


def pool_layers(L: ArrayLike, n_last: int, what: str) -> np.ndarray:
    """Mean over the last ``n_last`` layers of ``(n_items, n_layers, d)``; 2-D passes through."""
    arr = np.asarray(L)
    if arr.ndim == 2:
        return arr
    if arr.ndim != 3:
        raise WorkbenchError(
            f"{what} layer features have shape {arr.shape}: pass (n_items, n_layers, d) or "
            "already pooled (n_items, d)"
        )
    if not 1 <= n_last <= arr.shape[1]:
        raise WorkbenchError(
            f"n_last_layers={n_last} but {what} layer features hold {arr.shape[1]} layers: "
            f"pass 1..{arr.shape[1]}"
        )
    return arr[:, -n_last:, :].mean(axis=1)
