"""Capture sites at the final token of prompt + response, through hooks.

>>> lm = load_model("smollm2-135m-instruct")  # doctest: +SKIP
>>> result = capture(lm, ["What is the capital of France?"], ["h_last", "head_in(3)"])  # doctest: +SKIP
>>> result["head_in(3)"].shape  # doctest: +SKIP
(1, 9, 64)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench import __version__
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.core.progress import progress_bar
from workbench.core.sites import Site, parse_site, parse_sites
from workbench.core.store import FeatureStore, StoreWriter, sha256_text
from workbench.model.hooks import attach, stop_forward_allowed
from workbench.model.loaded import LoadedModel, unwrap
from workbench.model.positions import Frame, item_key, using_frame
from workbench.model.readers import Positions, SiteReader
from workbench.model.tokens import (
    DEFAULT_MAX_RESPONSE_TOKENS,
    Encoded,
    collate,
    encode_item,
    length_buckets,
)

__all__ = ["CaptureResult", "capture", "capture_to_store", "forward_sites", "encode_items"]


@dataclass(frozen=True)
class CaptureResult:
    """Features per site (float32, rows in item order) and per-item token facts."""

    item_ids: tuple[str, ...]
    features: Mapping[str, np.ndarray]
    n_tokens: np.ndarray
    cut: np.ndarray

    def __getitem__(self, site: str | Site) -> np.ndarray:
        return self.features[str(parse_site(site))]


def encode_items(
    lm: LoadedModel,
    items: Sequence[Item],
    *,
    chat_template: bool | None = None,
    max_response_tokens: int = DEFAULT_MAX_RESPONSE_TOKENS,
) -> list[Encoded]:
    return [
        encode_item(
            lm.tokenizer,
            it,
            chat_template=chat_template,
            max_response_tokens=max_response_tokens,
            max_positions=lm.max_positions,
        )
        for it in items
    ]


def forward_sites(
    lm: LoadedModel,
    seqs: Sequence[Sequence[int]],
    reader: SiteReader,
    *,
    padding_side: str = "left",
    rows: Sequence[tuple[int, int]] | None = None,
) -> dict[str, torch.Tensor]:
    """One padded forward pass over token id sequences; the sites at each final token.

    ``rows`` gives each sequence's ``(prompt tokens, item key)`` for position-restricted
    interventions (default: all prompt, keyed by row).
    """
    batch = collate(seqs, lm.pad_id, side=padding_side, device=lm.device)
    reader.positions = Positions.final(batch.last, batch.first, reader.max_n)
    frame = Frame.of_batch(
        batch.attention_mask,
        n_prompt=[r[0] for r in rows] if rows is not None else None,
        keys=[r[1] for r in rows] if rows is not None else None,
    )
    with (
        torch.inference_mode(),
        using_frame(frame),
        attach(reader.hooks()),
        stop_forward_allowed(),
    ):
        lm.model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            use_cache=False,
        )
    return reader.take()


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def _forward_with_backoff(
    lm: LoadedModel,
    seqs: list[Sequence[int]],
    reader: SiteReader,
    padding_side: str,
    rows: list[tuple[int, int]],
) -> dict[str, torch.Tensor]:
    """Forward a batch; on out-of-memory, split it in halves and retry (down to one row)."""
    try:
        return forward_sites(lm, seqs, reader, padding_side=padding_side, rows=rows)
    except (torch.OutOfMemoryError, RuntimeError) as e:
        if not _is_oom(e) or len(seqs) == 1:
            raise
        reader.values.clear()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(seqs) // 2
        a = _forward_with_backoff(lm, seqs[:half], reader, padding_side, rows[:half])
        b = _forward_with_backoff(lm, seqs[half:], reader, padding_side, rows[half:])
        return {k: torch.cat([a[k], b[k]]) for k in a}


def _capture_encoded(
    lm: LoadedModel,
    encoded: Sequence[Encoded],
    reader: SiteReader,
    *,
    batch_size: int,
    padding_side: str,
    bar: Any,
    keys: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for bucket in length_buckets([len(e) for e in encoded], batch_size):
        rows = [(encoded[i].n_prompt, keys[i] if keys is not None else i) for i in bucket]
        values = _forward_with_backoff(
            lm, [encoded[i].ids for i in bucket], reader, padding_side, rows
        )
        for name, tensor in values.items():
            if name not in out:
                out[name] = np.empty((len(encoded), *tensor.shape[1:]), dtype=np.float32)
            out[name][bucket] = tensor.numpy()
        bar.advance(len(bucket))
    return out


def capture(
    lm: LoadedModel | Any,
    items: Sequence[Item | str | Mapping[str, Any]],
    sites: Sequence[str | Site],
    *,
    batch_size: int = 8,
    max_response_tokens: int = DEFAULT_MAX_RESPONSE_TOKENS,
    chat_template: bool | None = None,
    padding_side: str = "left",
    early_stop: bool = True,
    progress: bool = False,
) -> CaptureResult:
    """Capture sites for items in memory (see :func:`capture_to_store` for disk).

    Args:
        lm: a loaded model.
        items: :class:`Item` objects, dicts with id/prompt/response, or bare prompts.
        sites: site names (``workbench.core.sites``), e.g. ``"h_last"``, ``"head_in(3,last=8)"``.
        batch_size: rows per forward pass; items are bucketed by length.
        max_response_tokens: responses longer than this are cut (``result.cut``).
        chat_template: render prompts with the chat template (default: when the tokenizer has one).
        padding_side: ``left`` or ``right``; results agree to float tolerance.
        early_stop: skip layers after the deepest site (and the LM head).
        progress: show a progress bar.

    ``lm`` may be anything ``load_model(..., backend=...)`` returns; a TransformerLens
    or nnsight backend runs the same capture through its own engine.
    """
    lm, backend = unwrap(lm)
    if backend is not None:
        return backend.capture(
            items, sites, batch_size=batch_size, max_response_tokens=max_response_tokens,
            chat_template=chat_template, padding_side=padding_side,
        )  # fmt: skip
    items = as_items(items)
    reader = SiteReader(lm.layout, parse_sites(sites), early_stop=early_stop)
    encoded = encode_items(
        lm, items, chat_template=chat_template, max_response_tokens=max_response_tokens
    )
    with progress_bar("capture", len(encoded), progress) as bar:
        features = _capture_encoded(
            lm, encoded, reader, batch_size=batch_size, padding_side=padding_side, bar=bar,
            keys=[item_key(it.id) for it in items],
        )  # fmt: skip
    return CaptureResult(
        item_ids=tuple(it.id for it in items),
        features=features,
        n_tokens=np.array([len(e) for e in encoded]),
        cut=np.array([e.cut for e in encoded]),
    )


def _template_hash(lm: LoadedModel, chat_template: bool | None) -> str | None:
    use = lm.has_chat_template if chat_template is None else chat_template
    return sha256_text(str(lm.tokenizer.chat_template)) if use else None


RUN_KEY = (
    "format_version",
    "model",
    "sites",
    "chat_template_sha256",
    "max_response_tokens",
    "shard_size",
)


def capture_to_store(
    lm: LoadedModel,
    items: Sequence[Item | str | Mapping[str, Any]],
    sites: Sequence[str | Site],
    out: str | Path,
    *,
    shard_size: int = 256,
    batch_size: int = 8,
    max_response_tokens: int = DEFAULT_MAX_RESPONSE_TOKENS,
    chat_template: bool | None = None,
    padding_side: str = "left",
    seed: int | None = None,
    progress: bool = False,
) -> FeatureStore:
    """Capture into a feature store, one shard at a time; a re-run resumes.

    Memory stays flat in the number of items (one shard in memory). If the run
    is killed, re-running the same call continues after the last complete
    shard and ends with the same features as an uninterrupted run.
    """
    if shard_size < 1:
        raise WorkbenchError(f"shard_size {shard_size} must be >= 1")
    if batch_size < 1:  # checked before the manifest is written: nothing half-made
        raise WorkbenchError(f"batch_size {batch_size} must be >= 1")
    items = as_items(items)
    parsed = parse_sites(sites)
    reader = SiteReader(lm.layout, parsed)
    encoded = encode_items(
        lm, items, chat_template=chat_template, max_response_tokens=max_response_tokens
    )
    meta = {
        "format_version": 1,
        "model": lm.describe(),
        "sites": [str(s) for s in parsed],
        "chat_template_sha256": _template_hash(lm, chat_template),
        "max_response_tokens": max_response_tokens,
        "shard_size": shard_size,
        "batch_size": batch_size,
        "padding_side": padding_side,
        "seed": seed,
        "workbench_version": __version__,
        "torch_version": torch.__version__,
        "device": str(lm.device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    records = [
        {
            "id": it.id,
            **it.hashes(),
            "n_tokens": len(e),
            "n_prompt_tokens": e.n_prompt,
            "cut": e.cut,
        }
        for it, e in zip(items, encoded, strict=True)
    ]
    writer = StoreWriter(out, meta=meta, items=records, run_key=RUN_KEY)
    writer.start()
    with progress_bar("capture", len(items), progress) as bar:
        bar.advance(writer.n_done)
        while not writer.complete:
            start = writer.n_done
            chunk = encoded[start : start + shard_size]
            keys = [item_key(it.id) for it in items[start : start + shard_size]]
            arrays = _capture_encoded(
                lm, chunk, reader, batch_size=batch_size, padding_side=padding_side, bar=bar,
                keys=keys,
            )  # fmt: skip
            writer.write_shard(arrays)
    return FeatureStore(out)
