"""Greedy decoding helpers for backends that do not use the workbench's cached loop.

:func:`greedy_uncached` re-runs the whole sequence each step (no KV cache): slow,
but correct whenever the engine's forward is, so it is the fallback when an
engine's cached decoding disagrees with its uncached forward.
:func:`to_generations` turns token ids from any decoder into the workbench's
:class:`~workbench.model.generation.Generations` (EOS cut, ``truncated`` flags).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from workbench.core.items import Item, as_items
from workbench.model.backends.base import ItemsLike, input_device
from workbench.model.generation import DecodingConfig, Generation, Generations, eos_ids
from workbench.model.loaded import LoadedModel
from workbench.model.tokens import Batch, collate, length_buckets
from workbench.model.tokens import encode_prompts as encode_prompts_for

__all__ = ["eos_ids", "encode_prompts", "greedy_uncached", "to_generations"]


def encode_prompts(
    lm: LoadedModel, items: ItemsLike, max_new_tokens: int, chat_template: bool | None
) -> tuple[list[Item], list[list[int]]]:
    """Items and their prompt ids, with the same context check as ``generate``."""
    DecodingConfig(max_new_tokens)  # validates max_new_tokens
    parsed = as_items(items)
    prompts = encode_prompts_for(
        lm.tokenizer, parsed, max_new_tokens=max_new_tokens, chat_template=chat_template,
        max_positions=lm.max_positions,
    )  # fmt: skip
    return parsed, prompts


def to_generations(
    lm: LoadedModel,
    items: Sequence[Item],
    new_tokens: Sequence[Sequence[int]],
    max_new_tokens: int,
    chat_template: bool | None,
) -> Generations:
    """Cut each row at its first EOS; ``truncated`` when no EOS came within the cap."""
    eos = set(eos_ids(lm))
    out = []
    for item, row in zip(items, new_tokens, strict=True):
        row = list(row)[:max_new_tokens]
        stop = next((i for i, t in enumerate(row) if t in eos), None)
        tokens = tuple(row if stop is None else row[:stop])
        text = lm.tokenizer.decode(list(tokens), skip_special_tokens=True)
        truncated = stop is None and len(row) >= max_new_tokens
        out.append(Generation(item.id, item.prompt, text, tokens, truncated))
    config = DecodingConfig(max_new_tokens=max_new_tokens, chat_template=chat_template)
    return Generations(items=tuple(out), config=config)


def greedy_uncached(
    lm: LoadedModel,
    items: ItemsLike,
    last_logits: Callable[[Batch], torch.Tensor],
    *,
    max_new_tokens: int,
    batch_size: int,
    chat_template: bool | None,
) -> Generations:
    """Greedy decoding that forwards prompt + tokens so far at every step.

    Args:
        last_logits: runs one left-padded batch, returns ``(batch, vocab)`` logits
            at each row's final token.
    """
    parsed, prompts = encode_prompts(lm, items, max_new_tokens, chat_template)
    eos = set(eos_ids(lm))
    new: list[list[int]] = [[] for _ in parsed]
    for bucket in length_buckets([len(p) for p in prompts], batch_size):
        done = dict.fromkeys(bucket, False)
        for _ in range(max_new_tokens):
            rows = [i for i in bucket if not done[i]]
            if not rows:
                break
            batch = collate(
                [prompts[i] + new[i] for i in rows],
                lm.pad_id,
                side="left",
                device=input_device(lm),
            )
            with torch.inference_mode():
                chosen = last_logits(batch).float().argmax(-1).tolist()
            for i, token in zip(rows, chosen, strict=True):
                new[i].append(int(token))
                done[i] = int(token) in eos
    return to_generations(lm, parsed, new, max_new_tokens, chat_template)
