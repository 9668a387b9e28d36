"""Turning items into token ids, padded batches and length buckets.

As in the paper, the prompt is rendered through the tokenizer's chat template
(``add_generation_prompt=True``) when it has one, the rendered prompt and the
response are tokenised *separately* with ``add_special_tokens=False``, and the
ids are concatenated (no re-tokenisation across the boundary). A response
longer than ``max_response_tokens`` is cut and the cut is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item

__all__ = [
    "Encoded",
    "Batch",
    "render_prompt",
    "encode_prompt",
    "encode_prompts",
    "encode_item",
    "collate",
    "length_buckets",
    "DEFAULT_MAX_RESPONSE_TOKENS",
]

DEFAULT_MAX_RESPONSE_TOKENS = 512


@dataclass(frozen=True)
class Encoded:
    """Token ids of prompt + response; ``cut`` is True when the response was cut."""

    ids: tuple[int, ...]
    n_prompt: int
    cut: bool = False

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Batch:
    """A padded batch; ``last`` is the index of each row's final non-pad token."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    last: torch.Tensor
    first: torch.Tensor


def render_prompt(
    tokenizer: Any, prompt: str, chat_template: bool | None = None
) -> tuple[str, bool]:
    """The prompt text the model sees, and whether a chat template was applied."""
    has_template = getattr(tokenizer, "chat_template", None) is not None
    use = has_template if chat_template is None else chat_template
    if use and not has_template:
        raise WorkbenchError(
            "chat_template=True but this tokenizer has no chat template: pass chat_template=False"
        )
    if not use:
        return prompt, False
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    return str(text), True


def encode_prompt(tokenizer: Any, prompt: str, chat_template: bool | None = None) -> list[int]:
    """Token ids of the rendered prompt (BOS added only when no template is used)."""
    text, templated = render_prompt(tokenizer, prompt, chat_template)
    return list(tokenizer(text, add_special_tokens=not templated)["input_ids"])


def encode_prompts(
    tokenizer: Any,
    items: Sequence[Item],
    *,
    max_new_tokens: int,
    chat_template: bool | None = None,
    max_positions: int | None = None,
) -> list[list[int]]:
    """Prompt ids per item for generation, refusing one whose prompt plus
    ``max_new_tokens`` does not fit the model's context."""
    prompts = [encode_prompt(tokenizer, it.prompt, chat_template) for it in items]
    for it, p in zip(items, prompts, strict=True):
        if max_positions is not None and len(p) + max_new_tokens > max_positions:
            raise WorkbenchError(
                f"item {it.id!r}: {len(p)} prompt tokens + max_new_tokens {max_new_tokens} exceed "
                f"the model's context {max_positions}: shorten the prompt or lower max_new_tokens"
            )
    return prompts


def encode_item(
    tokenizer: Any,
    item: Item,
    *,
    chat_template: bool | None = None,
    max_response_tokens: int = DEFAULT_MAX_RESPONSE_TOKENS,
    max_positions: int | None = None,
) -> Encoded:
    """Encode one item; a response over ``max_response_tokens`` is cut (and flagged)."""
    if max_response_tokens < 1:
        raise WorkbenchError(
            f"max_response_tokens {max_response_tokens} must be >= 1: pass a positive cap"
        )
    prompt_ids = encode_prompt(tokenizer, item.prompt, chat_template)
    response_ids: list[int] = []
    cut = False
    if item.response:
        response_ids = list(tokenizer(item.response, add_special_tokens=False)["input_ids"])
        if len(response_ids) > max_response_tokens:
            response_ids, cut = response_ids[:max_response_tokens], True
    ids = tuple(prompt_ids + response_ids)
    if max_positions is not None and len(ids) > max_positions:
        raise WorkbenchError(
            f"item {item.id!r} has {len(ids)} tokens but the model's context is {max_positions}: "
            "shorten the prompt or lower max_response_tokens"
        )
    if not ids:
        raise WorkbenchError(f"item {item.id!r} encodes to no tokens: give it a non-empty prompt")
    return Encoded(ids=ids, n_prompt=len(prompt_ids), cut=cut)


def collate(
    seqs: Sequence[Sequence[int]],
    pad_id: int,
    *,
    side: str = "left",
    device: torch.device | str = "cpu",
) -> Batch:
    """Pad sequences to one batch with explicit position ids (so padding never shifts RoPE)."""
    if side not in ("left", "right"):
        raise WorkbenchError(f"padding side {side!r} is not 'left' or 'right'")
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        span = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
        ids[row, span] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, span] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    arange = torch.arange(width)
    last = (mask * arange).argmax(-1)
    first = torch.where(mask.bool(), arange, width).min(-1).values
    return Batch(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        last=last.to(device),
        first=first.to(device),
    )


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Group indices into batches of similar length (stable: ties keep input order)."""
    if batch_size < 1:
        raise WorkbenchError(f"batch_size {batch_size} must be >= 1")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
