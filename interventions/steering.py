"""Residual-stream steering: add ``alpha * v`` to the output of a decoder layer.

The direction ``v`` comes from labelled activations at that layer
(:func:`mass_mean_direction`: ``mean(X[y == 1]) - mean(X[y == 0])``, as in
ITI's mass-mean shift) or from a fitted probe (:func:`probe_direction`: the
weights mapped back to activation space). Directions are unit-normalised by
default, so ``alpha`` is in units of the residual norm. The addition applies at
every position processed while the context is active (prompt and generated
tokens), through the same :class:`~interventions.base.Intervention` mechanism
as tempering, so :func:`~interventions.sweep` runs over ``alpha`` the same way.

>>> v = mass_mean_direction(X_layer10, correct)  # doctest: +SKIP
>>> with steer(lm, 10, v, alpha=4.0):  # doctest: +SKIP
...     gens = generate(lm, items)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from interventions.base import Applied, model_and_layout
from workbench.core.errors import WorkbenchError
from workbench.model.intervention import Intervention as Value

__all__ = ["check_alpha", "mass_mean_direction", "probe_direction", "steer"]


def unit(v: np.ndarray, normalize: bool, what: str) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    if not np.isfinite(v).all() or norm == 0:
        raise WorkbenchError(f"{what} is zero or not finite (norm {norm}): check the inputs")
    return v / norm if normalize else v


def mass_mean_direction(X: ArrayLike, y: ArrayLike, *, normalize: bool = True) -> np.ndarray:
    """``mean(X[y == 1]) - mean(X[y == 0])``; rows with NaN labels are left out.

    >>> mass_mean_direction([[0.0, 0.0], [2.0, 0.0]], [0, 1]).tolist()
    [1.0, 0.0]
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if X.ndim != 2 or X.shape[0] != y.size:
        raise WorkbenchError(
            f"X {X.shape} and y ({y.size},) do not match: pass one feature row per label"
        )
    pos, neg = X[y == 1], X[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        raise WorkbenchError(
            f"mass-mean direction needs both classes, got {len(pos)} of label 1 and {len(neg)} "
            "of label 0: pass labels with both"
        )
    return unit(pos.mean(0) - neg.mean(0), normalize, "the mass-mean direction")


def probe_direction(probe: Any, *, normalize: bool = True) -> np.ndarray:
    """The activation-space direction a fitted probe reads (towards label 1).

    Accepts ``probes.LinearProbe`` (its standardised weights divided by the
    scaler's scale), ``probes.MassMeanProbe`` (``direction_``), a bare
    ``LogisticRegression`` or any estimator with a 1-D ``coef_``.
    """
    direction = getattr(probe, "direction_", None)
    if direction is None:
        pipeline = getattr(probe, "pipeline_", None)
        if pipeline is not None:
            coef = np.asarray(pipeline[-1].coef_, dtype=np.float64).ravel()
            scale = getattr(pipeline[0], "scale_", None)
            direction = coef / np.asarray(scale) if scale is not None else coef
        elif getattr(probe, "coef_", None) is not None:
            direction = np.asarray(probe.coef_, dtype=np.float64).ravel()
    if direction is None:
        raise WorkbenchError(
            f"cannot read a direction from {type(probe).__name__}: fit it first, or pass a "
            "LinearProbe, MassMeanProbe or LogisticRegression"
        )
    return unit(np.asarray(direction, dtype=np.float64), normalize, "the probe direction")


def steer(
    model: Any, layer: int, vector: ArrayLike, alpha: float = 1.0, positions: Any = "all"
) -> Applied:
    """Add ``alpha * vector`` to the residual stream after decoder layer ``layer`` while active.

    ``add`` at ``resid(layer)``.

    Args:
        model: a ``LoadedModel``, a backend, or a transformers causal LM.
        layer: the decoder layer (original numbering; negative counts from the end).
        vector: a ``(d_model,)`` direction (used as given: normalise it yourself
            or build it with :func:`mass_mean_direction` / :func:`probe_direction`).
        alpha: the step; any finite number (0 is the identity, negative steers away).
        positions: which positions of each row (default all).

    >>> with steer(lm, -1, v, alpha=2.0):  # doctest: +SKIP
    ...     out = lm.model(input_ids)
    """
    _, layout = model_and_layout(model)
    index = layout.layer_index(layer)
    v = np.asarray(vector, dtype=np.float64)
    if v.ndim != 1 or v.size != layout.d_model:
        raise WorkbenchError(
            f"steering vector has shape {v.shape}; this model's residual stream is "
            f"({layout.d_model},): pass a direction captured at resid({layer})"
        )
    if not np.isfinite(v).all():
        raise WorkbenchError("steering vector holds NaN or infinite values: pass a finite vector")
    alpha = check_alpha(alpha)
    value = Value(f"resid({index})", "add", operand=alpha * v, positions=positions)
    summary = {
        "kind": "steer",
        "site": f"resid({index})",
        "targets": [{"layer": index, "alpha": alpha, "norm": float(np.linalg.norm(v))}],
    }
    return Applied(model, [value], summary)


def check_alpha(alpha: Any, what: str = "steer alpha") -> float:
    """A finite step size, or a one-line error."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha):
        raise WorkbenchError(f"{what} {alpha!r} must be a finite number: pass e.g. 1.0 or -2.0")
    return float(alpha)
