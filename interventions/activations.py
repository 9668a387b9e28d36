"""Per-head activations as attribution and head probes read them.

Input: per layer, the ``head_in`` capture of that layer, shaped
``(n_items, N, n_heads, head_dim)`` (the last N tokens, ``head_in(L,last=N)``)
or ``(n_items, n_heads, head_dim)`` (the final token). Positions before the
start of a sequence shorter than N are NaN and ignored: every per-item value is
a ``nanmean`` over that item's real tokens. Layers keep their original numbers
(a hybrid model's attention layers are, say, 3, 7, 11).

>>> import numpy as np
>>> x = np.ones((2, 4, 3, 8), dtype=np.float32)
>>> x[0, :2] = np.nan  # item 0 is two tokens long
>>> norms, vectors = pool_tokens(x, layer=5)
>>> norms.shape, vectors.shape, round(float(norms[0, 0]), 3)
((2, 3), (2, 3, 8), 2.828)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from workbench.core.errors import WorkbenchError
from workbench.core.sites import parse_site

__all__ = ["as_layers", "layers_from_features", "pool_tokens"]


def as_layers(activations: Mapping[int, ArrayLike]) -> dict[int, np.ndarray]:
    """Check shapes (one item count, 3-D or 4-D) and return ``{layer: (n, N, H, D) float32}``."""
    if not isinstance(activations, Mapping) or not activations:
        raise WorkbenchError(
            "activations: pass a non-empty mapping {layer: array (n_items, N, n_heads, head_dim)}"
        )
    out: dict[int, np.ndarray] = {}
    n_items: int | None = None
    for layer in sorted(activations):
        if isinstance(layer, bool) or not isinstance(layer, int | np.integer):
            raise WorkbenchError(f"activations: key {layer!r} is not a layer number")
        x = np.asarray(activations[layer], dtype=np.float32)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or 0 in x.shape:
            raise WorkbenchError(
                f"activations of layer {layer} have shape {np.shape(activations[layer])}: expected "
                "(n_items, N, n_heads, head_dim) or (n_items, n_heads, head_dim), as head_in captures"
            )
        if n_items is not None and x.shape[0] != n_items:
            raise WorkbenchError(
                f"layer {layer} has {x.shape[0]} items but an earlier layer has {n_items}: "
                "pass every layer for the same items"
            )
        if np.isinf(x).any():
            raise WorkbenchError(
                f"activations of layer {layer} hold infinite values: capture again"
            )
        n_items = x.shape[0]
        out[int(layer)] = x
    return out


def pool_tokens(x: np.ndarray, *, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Per item and head: the mean L2 norm over real tokens, and the mean vector.

    Args:
        x: ``(n_items, N, n_heads, head_dim)``; a token with any NaN is padding.
        layer: for error messages.

    Returns:
        ``norms`` ``(n_items, n_heads)`` and ``vectors`` ``(n_items, n_heads, head_dim)``, float64.
    """
    valid = ~np.isnan(x).any(axis=-1)  # (n, N, H)
    empty = ~valid.any(axis=1)
    if empty.any():
        item, head = (int(i) for i in np.argwhere(empty)[0])
        raise WorkbenchError(
            f"layer {layer}: item {item} head {head} has no real token (all NaN): "
            "drop the item or capture it again"
        )
    count = valid.sum(axis=1)  # (n, H)
    clean = np.where(valid[..., None], x, 0.0).astype(np.float64)
    norms = np.linalg.norm(clean, axis=-1).sum(axis=1) / count
    vectors = clean.sum(axis=1) / count[..., None]
    return norms, vectors


def layers_from_features(
    features: Mapping[str, ArrayLike], *, n_layers: int | None = None
) -> dict[int, np.ndarray]:
    """``{layer: array}`` from capture features keyed by site (``head_in(L[,last=N])``).

    Other sites are ignored; a negative layer needs ``n_layers`` to become an
    original layer number.
    """
    out: dict[int, np.ndarray] = {}
    for name, arr in features.items():
        site = parse_site(name)
        if site.kind != "head_in":
            continue
        layer = site.layer
        if layer < 0:
            if n_layers is None:
                raise WorkbenchError(
                    f"site {name} has a negative layer: pass n_layers to number it from the start"
                )
            layer += n_layers
        if layer in out:
            raise WorkbenchError(f"layer {layer} is captured by two sites: keep one")
        out[layer] = np.asarray(arr)
    if not out:
        raise WorkbenchError(
            f"no head_in site among {', '.join(features) or 'nothing'}: capture head_in(L,last=N)"
        )
    return out
