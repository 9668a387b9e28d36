"""Per-row surgery on a ``transformers`` KV cache: drop rows, add rows, share a prefix.

Continuous batching keeps one cache whose rows come and go. Rows are aligned on
the right (the newest token of every row is the last column) and padded on the
left or in the middle; the attention mask says which columns are real, and
explicit position ids keep RoPE (or GPT-2's learned positions) per row, so a
column's place in the cache never changes what it means.

Only caches made of plain full-attention layers (``DynamicLayer``, keys and
values shaped ``(batch, kv_heads, seq, head_dim)``) can be cut this way. A
sliding-window layer keeps only its last ``window`` columns, so rows that joined
at different times would lose different amounts of context; a linear-attention
(recurrent) layer's state was built through the left padding of its own prefill.
For those :func:`rows_supported` is False and the decoding loop falls back to
static batches.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

__all__ = [
    "compact",
    "empty_cache",
    "merge",
    "rows_supported",
    "select_rows",
    "take_rows",
    "unsupported_layers",
]


def empty_cache(model: Any) -> DynamicCache:
    """The cache ``model`` would build for itself on its first cached call."""
    return DynamicCache(config=model.config)


def unsupported_layers(cache: DynamicCache) -> list[str]:
    """Names of the cache layer types that cannot be sliced per row (empty: all can)."""
    return sorted(
        {type(layer).__name__ for layer in cache.layers if type(layer) is not DynamicLayer}
    )


def rows_supported(model: Any) -> bool:
    """Whether every layer of ``model``'s cache is a plain full-attention layer."""
    return not unsupported_layers(empty_cache(model))


def _layers(cache: DynamicCache) -> list[Any]:
    """The cache's layers (typed loosely: transformers types them as a union of mixins)."""
    return list(cache.layers)


def _kv(cache: DynamicCache) -> list[Any]:
    return [layer for layer in _layers(cache) if layer.is_initialized and layer.keys.numel()]


def select_rows(cache: DynamicCache, rows: torch.Tensor) -> None:
    """Keep only ``rows`` (a long tensor of batch indices), in that order, in place."""
    for layer in _kv(cache):
        layer.keys = layer.keys.index_select(0, rows)
        layer.values = layer.values.index_select(0, rows)


def _pad_left(x: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - x.shape[-2]
    if missing == 0:
        return x
    pad = x.new_zeros((*x.shape[:-2], missing, x.shape[-1]))
    return torch.cat([pad, x], dim=-2)


def merge(
    a: DynamicCache, mask_a: torch.Tensor, b: DynamicCache, mask_b: torch.Tensor
) -> torch.Tensor:
    """Append ``b``'s rows to ``a`` (in place), right-aligned; returns the joint mask.

    The narrower of the two is padded on the left with masked (zero) columns.
    """
    width = max(mask_a.shape[1], mask_b.shape[1])
    for la, lb in zip(_layers(a), _layers(b), strict=True):
        if not la.is_initialized:  # a shared-KV layer that stores nothing
            continue
        la.keys = torch.cat([_pad_left(la.keys, width), _pad_left(lb.keys, width)], dim=0)
        la.values = torch.cat([_pad_left(la.values, width), _pad_left(lb.values, width)], dim=0)

    def widen(m: torch.Tensor) -> torch.Tensor:
        return torch.cat([m.new_zeros((m.shape[0], width - m.shape[1])), m], dim=1)

    return torch.cat([widen(mask_a), widen(mask_b)], dim=0)


def compact(cache: DynamicCache, mask: torch.Tensor, *, min_waste: float = 0.25) -> torch.Tensor:
    """Drop the columns no row attends to, once they are at least ``min_waste`` of the
    width (copying the cache costs about one decoding step's attention); returns the mask."""
    used = mask.bool().any(0)
    n_unused = int((~used).sum())
    if n_unused == 0 or n_unused < min_waste * mask.shape[1]:
        return mask
    keep = used.nonzero().flatten()
    for layer in _kv(cache):
        layer.keys = layer.keys.index_select(-2, keep)
        layer.values = layer.values.index_select(-2, keep)
    return mask.index_select(1, keep)


def take_rows(cache: DynamicCache, rows: torch.Tensor, model: Any) -> DynamicCache:
    """A fresh cache holding ``rows`` of ``cache`` (repeats allowed; ``cache`` is kept)."""
    out = empty_cache(model)
    for target, source in zip(_layers(out), _layers(cache), strict=True):
        if not source.is_initialized:
            continue
        target.lazy_initialization(source.keys, source.values)
        target.keys = source.keys.index_select(0, rows)
        target.values = source.values.index_select(0, rows)
    return out
