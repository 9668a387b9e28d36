"""Section 6: padding waste (fraction of pad tokens) with and without length bucketing.

Model-free: it counts tokens. Two length mixes, tokenised the workbench's way
(chat template, response cut at 512 tokens as in the paper):

* ``paper``: the 293 prompt + response pairs the paper released (Gemma 4 E2B
  answers to cooking prompts, ``judge_v4_step16.json`` + ``judge_v4_fresh.json``
  from ``$WORKBENCH_PAPER_ARTIFACTS`` or ``../shared/paper-artifacts``), in file
  order; skipped when the files are absent.
* ``mixed``: the benchmark prompts with response lengths drawn from a
  log-normal (median 80 tokens, sigma 1.0, cut at 512), seed 0, 512 items: short
  answers and long explanations in one data set.

Without bucketing, batches are consecutive items in data-set order; with it,
:func:`workbench.model.tokens.length_buckets`.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.workload import bench_items
from workbench.core.items import Item
from workbench.model.tokens import (
    DEFAULT_MAX_RESPONSE_TOKENS,
    encode_item,
    encode_prompt,
    length_buckets,
)

__all__ = ["pad_fraction", "padding_section"]

REPO = Path(__file__).resolve().parent.parent


def pad_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Pad tokens over all tokens in the padded batches."""
    total = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1.0 - sum(lengths) / total


def _paper_lengths(tokenizer: Any) -> list[int] | None:
    root = Path(
        os.environ.get("WORKBENCH_PAPER_ARTIFACTS", REPO.parent / "shared" / "paper-artifacts")
    )
    files = [root / "judge_v4_step16.json", root / "judge_v4_fresh.json"]
    if not all(f.is_file() for f in files):
        return None
    lengths = []
    for f in files:
        for i, row in enumerate(json.loads(f.read_text())["items"]):
            item = Item(f"{f.stem}-{i}", row["prompt"], row["response"])
            lengths.append(
                len(encode_item(tokenizer, item, max_response_tokens=DEFAULT_MAX_RESPONSE_TOKENS))
            )
    return lengths


def _mixed_lengths(tokenizer: Any, n: int = 512) -> list[int]:
    rng = random.Random(0)
    prompts = [len(encode_prompt(tokenizer, it.prompt)) for it in bench_items(16)]
    return [
        prompts[i % len(prompts)]
        + min(DEFAULT_MAX_RESPONSE_TOKENS, max(1, round(rng.lognormvariate(4.382, 1.0))))
        for i in range(n)
    ]


def padding_section(tokenizer: Any, batch_sizes: Sequence[int] = (8, 16)) -> dict[str, Any]:
    mixes = {"paper": _paper_lengths(tokenizer), "mixed": _mixed_lengths(tokenizer)}
    rows = []
    for mix, lengths in mixes.items():
        if lengths is None:
            continue
        for bs in batch_sizes:
            naive = [list(range(i, min(i + bs, len(lengths)))) for i in range(0, len(lengths), bs)]
            rows.append(
                {
                    "mix": mix,
                    "n_items": len(lengths),
                    "batch_size": bs,
                    "median_tokens": sorted(lengths)[len(lengths) // 2],
                    "min_tokens": min(lengths),
                    "max_tokens": max(lengths),
                    "pad_fraction_unbucketed": pad_fraction(lengths, naive),
                    "pad_fraction_bucketed": pad_fraction(lengths, length_buckets(lengths, bs)),
                }
            )
    skipped = [m for m, v in mixes.items() if v is None]
    return {"rows": rows, "skipped": skipped}
