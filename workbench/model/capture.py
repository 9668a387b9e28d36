"""Capture sites at the final token of prompt + response, through hooks.

``lm`` is any loaded model (here a tiny Llama: 4 heads of width 16, d_model 64):

>>> result = capture(lm, ["What is the capital of France?"], ["h_last", "head_in(2)"])
>>> result["h_last"].shape, result["head_in(2)"].shape
((1, 64), (1, 4, 16))
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
from workbench.core.shards import RankWriter
from workbench.core.sites import Site, parse_site, parse_sites
from workbench.core.store import FeatureStore, StoreWriter, sha256_text
from workbench.model.hooks import attach, stop_forward_allowed
from workbench.model.loaded import LoadedModel, unwrap
from workbench.model.memory import BatchBudget
from workbench.model.parallel import Processes, launched
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


def _forward_with_backoff(
    lm: LoadedModel,
    seqs: list[Sequence[int]],
    reader: SiteReader,
    padding_side: str,
    rows: list[tuple[int, int]],
    budget: BatchBudget,
) -> dict[str, torch.Tensor]:
    """Forward a batch in pieces the budget allows; an out-of-memory error halves the
    piece (down to one row) and the size that fit caps every later batch. ``rows`` gives
    each sequence's prompt length and item key (for position-restricted interventions)."""

    def step(piece: list[tuple[Sequence[int], tuple[int, int]]]) -> dict[str, torch.Tensor]:
        try:
            return forward_sites(
                lm, [q for q, _ in piece], reader, padding_side=padding_side,
                rows=[r for _, r in piece],
            )  # fmt: skip
        except BaseException:
            reader.values.clear()  # a failed pass leaves partial reads behind
            raise

    def join(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    return budget.run(list(zip(seqs, rows, strict=True)), step, join)


def _capture_encoded(
    lm: LoadedModel,
    encoded: Sequence[Encoded],
    reader: SiteReader,
    *,
    batch_size: int,
    padding_side: str,
    bar: Any,
    budget: BatchBudget,
    keys: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for bucket in length_buckets([len(e) for e in encoded], batch_size):
        seqs: list[Sequence[int]] = [encoded[i].ids for i in bucket]
        rows = [(encoded[i].n_prompt, keys[i] if keys is not None else i) for i in bucket]
        values = _forward_with_backoff(lm, seqs, reader, padding_side, rows, budget)
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
            budget=BatchBudget("capture"), keys=[item_key(it.id) for it in items],
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
#: Settings each shard records: a resume may change them (features agree to float tolerance).
SHARD_KEYS = ("batch_size", "padding_side", "device", "torch_version", "workbench_version")


def capture_to_store(
    lm: LoadedModel | Any,
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
    processes: Processes | None = None,
) -> FeatureStore:
    """Capture into a feature store, one shard at a time; a re-run resumes.

    Memory stays flat in the number of items (one shard in memory). If the run
    is killed, re-running the same call continues after the last complete
    shard and ends with the same features as an uninterrupted run.

    Under ``torchrun`` or ``accelerate launch`` (``processes``, by default
    :func:`~workbench.model.parallel.launched`) shard ``k`` goes to rank
    ``k % world_size``; every rank returns the merged store once the main
    process has written its manifest.
    """
    if shard_size < 1:
        raise WorkbenchError(f"shard_size {shard_size} must be >= 1")
    if batch_size < 1:  # checked before the manifest is written: nothing half-made
        raise WorkbenchError(f"batch_size {batch_size} must be >= 1")
    items = as_items(items)
    lm, backend = unwrap(lm)
    procs = processes or launched(str(lm.device))
    procs.check_shards(len(items), shard_size)
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
        "world_size": procs.world_size,
        "backend": backend.name if backend is not None else "hf",
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
    budget = BatchBudget("capture")  # one for every shard of the run

    def shard(rows: range, bar: Any) -> dict[str, np.ndarray]:
        if backend is None:
            chunk = [encoded[i] for i in rows]
            return _capture_encoded(
                lm, chunk, reader, batch_size=batch_size, padding_side=padding_side, bar=bar,
                budget=budget, keys=[item_key(items[i].id) for i in rows],
            )  # fmt: skip
        result = backend.capture(
            [items[i] for i in rows], parsed, batch_size=batch_size, padding_side=padding_side,
            max_response_tokens=max_response_tokens, chat_template=chat_template,
        )  # fmt: skip
        bar.advance(len(rows))
        return dict(result.features)

    if procs.world_size > 1:
        dealt = RankWriter(
            out, meta=meta, items=records, run_key=RUN_KEY, shard_size=shard_size,
            rank=procs.rank, world_size=procs.world_size, shard_keys=SHARD_KEYS,
        )  # fmt: skip
        if procs.is_main:
            dealt.remove_stale_temps()
            dealt.start()
        procs.barrier()  # every rank has checked the directory before any writes
        total = sum(len(dealt.rows(k)) for k in dealt.todo)
        with progress_bar("capture", total, progress and procs.is_main) as bar:
            for k in dealt.todo:
                dealt.write_shard(k, shard(dealt.rows(k), bar))
        procs.barrier()
        if procs.is_main:
            dealt.finish()
        procs.barrier()
        return FeatureStore(out)
    writer = StoreWriter(out, meta=meta, items=records, run_key=RUN_KEY, shard_keys=SHARD_KEYS)
    writer.start()
    with progress_bar("capture", len(items), progress) as bar:
        bar.advance(writer.n_done)
        while not writer.complete:
            start = writer.n_done
            arrays = shard(range(start, min(start + shard_size, len(items))), bar)
            writer.write_shard(arrays)
    return FeatureStore(out)
