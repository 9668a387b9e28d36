"""Continuous batching: finished rows leave the batch, waiting items take their slots.

One KV cache holds the running rows (see :mod:`workbench.model.kvcache_rows`).
Each decoding step feeds every live row its newest token; a row that picks EOS,
or reaches ``max_new_tokens``, has ended (with fused capture, a row cut at the
cap is fed once more so the reader sees its last token, exactly as the static
loop does). Removing rows copies the whole cache, so ended rows are removed in
groups: when a group of waiting items joins, or once they are as many as the
rows still running; until then they are computed and ignored (their columns
count as no token in :class:`Step`). Waiting items are admitted in groups by
:class:`~workbench.model.scheduler.Scheduler`: each group is prefilled on its
own, left-padded, and its cache rows appended to the running ones. When every
prompt starts with the same tokens (the chat template's system turn), that
prefix is prefilled once and its keys and values copied into every group's
cache. When rows run under different conditions (``groups``, per-row
interventions), the prefix is prefilled once per condition, as one row per
condition, and each row takes its own condition's; the caller shares the prefix
only under interventions that write it as they would inside each prompt
(:func:`~workbench.model.intervention.prefix_invariant`).

What a forward pass sees is one :class:`Step` value (the per-row positions of
its columns, prompt lengths, lengths so far), passed to the ``forward``
callable with the model inputs; the sampling rule, the reader of fused capture
and each item's random generator travel with the item, so an item's draws and
tokens do not depend on which other items share its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache

from workbench.model.kvcache_rows import compact, empty_cache, merge, select_rows, take_rows
from workbench.model.readers import Positions, SiteReader
from workbench.model.scheduler import Scheduler, shared_prefix
from workbench.model.tokens import collate

__all__ = ["Decoded", "Step", "decode_continuous"]


@dataclass(frozen=True, eq=False)
class Step:
    """Where the columns of one forward pass sit in their rows.

    Attributes:
        pos: ``(batch, seq)`` position of each column in its unpadded row, -1 for padding
            and for rows that ended and wait to be removed (a column at ``pos < n_prompt``
            is a prompt token, the rest are generated).
        n_prompt: ``(batch,)`` prompt tokens per row.
        length: ``(batch,)`` real tokens in the row so far, this pass included.
        capacity: ``(batch,)`` the longest the row can become (prompt + ``max_new_tokens``).
        items: the item index of each row (-1 for a shared-prefix row).
        groups: the condition of each row when rows run under several (empty: one).
    """

    pos: torch.Tensor
    n_prompt: torch.Tensor
    length: torch.Tensor
    capacity: torch.Tensor
    items: tuple[int, ...]
    groups: tuple[int, ...] = ()


#: ``forward(input_ids, attention_mask, position_ids, cache, step) -> last logits (batch, vocab)``.
Forward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Any, Step], torch.Tensor]
#: ``choose(logits, generators) -> token ids (batch,)``: the sampling rule, row by row.
Choose = Callable[[torch.Tensor, list[torch.Generator]], torch.Tensor]


@dataclass
class Decoded:
    """Per item: generated ids (EOS excluded), whether cut at the cap, fused features."""

    tokens: list[list[int]]
    truncated: list[bool]
    features: list[dict[str, torch.Tensor]]
    forward_passes: int = 0
    prefix_tokens: int = 0
    row_tokens: int = 0  # tokens fed through the model for live rows (padding excluded)
    padded_tokens: int = 0  # columns computed, padding included
    notes: list[str] = field(default_factory=list)


@dataclass
class _Live:
    """The running batch, row-aligned: items, KV cache, mask, lengths, next inputs."""

    items: list[int]
    cache: DynamicCache
    mask: torch.Tensor
    length: torch.Tensor
    pending: torch.Tensor
    draining: list[bool]
    state: dict[str, torch.Tensor]
    dead: list[bool] = field(default_factory=list)  # ended, awaiting removal

    def __post_init__(self) -> None:
        self.dead = self.dead or [False] * len(self.items)

    @property
    def n_alive(self) -> int:
        return len(self.items) - sum(self.dead)

    def reap(self) -> None:
        """Remove ended rows (one copy of the cache, so it is done for several at once)."""
        if any(self.dead):
            self.keep([r for r, d in enumerate(self.dead) if not d])

    def keep(self, rows: list[int]) -> None:
        index = torch.tensor(rows, dtype=torch.long, device=self.mask.device)
        select_rows(self.cache, index)
        self.items = [self.items[r] for r in rows]
        self.draining = [self.draining[r] for r in rows]
        self.dead = [self.dead[r] for r in rows]
        self.mask, self.length = self.mask[index], self.length[index]
        self.pending = self.pending[index]
        self.state = {k: v[index] for k, v in self.state.items()}

    def extend(self, other: _Live) -> None:
        self.mask = merge(self.cache, self.mask, other.cache, other.mask)
        self.items += other.items
        self.draining += other.draining
        self.dead += other.dead
        self.length = torch.cat([self.length, other.length])
        self.pending = torch.cat([self.pending, other.pending])
        self.state = {k: torch.cat([v, other.state[k]]) for k, v in self.state.items()}


class _Loop:
    def __init__(
        self,
        model: Any,
        forward: Forward,
        prompts: Sequence[Sequence[int]],
        generators: list[torch.Generator],
        choose: Choose,
        *,
        max_new_tokens: int,
        eos: set[int],
        pad: int,
        device: torch.device,
        reader: SiteReader | None,
        share_prefix: bool,
        on_done: Callable[[int], None],
        reap_at: int,
        groups: Sequence[int],
    ) -> None:
        self.model, self.forward, self.prompts = model, forward, prompts
        self.generators, self.choose = generators, choose
        self.max_new, self.eos, self.pad, self.device = max_new_tokens, eos, pad, device
        self.reader, self.on_done = reader, on_done
        self.windows = (
            {str(s): s.n for s in reader.sites if s.is_head and s.n > 1} if reader else {}
        )
        n = len(prompts)
        self.out = Decoded([[] for _ in range(n)], [False] * n, [{} for _ in range(n)])
        keep = reader.max_n if reader is not None else 1
        self.prefix_len = shared_prefix(prompts, keep=keep) if share_prefix else 0
        self.prefix: DynamicCache | None = None
        self.reap_at = reap_at
        self.groups = list(groups)
        # one shared-prefix row per condition (a single row without conditions)
        self.prefix_rows = {g: r for r, g in enumerate(sorted(set(self.groups)))}

    def _groups(self, items: Sequence[int]) -> tuple[int, ...]:
        return tuple(self.groups[i] for i in items) if self.groups else ()

    def _run(self, ids: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, cache: Any,
             step: Step) -> torch.Tensor:  # fmt: skip
        self.out.forward_passes += 1
        self.out.padded_tokens += ids.numel()
        self.out.row_tokens += int((step.pos >= 0).sum())
        return self.forward(ids, mask, pos, cache, step)

    def _prefill_prefix(self) -> None:
        p, n = self.prefix_len, max(1, len(self.prefix_rows))
        ids = torch.tensor([list(self.prompts[0][:p])] * n, dtype=torch.long, device=self.device)
        arange = torch.arange(p, device=self.device)[None].expand(n, p)
        cache = empty_cache(self.model)
        full = torch.full((n,), p, device=self.device)
        step = Step(arange, full, full, full, (-1,) * n, tuple(self.prefix_rows))
        if self.reader is not None:  # nothing of the prefix is kept: features come later
            self.reader.positions = Positions.final(arange[:, -1], arange[:, 0], 1)
        self._run(ids, torch.ones_like(ids), arange, cache, step)
        if self.reader is not None:
            self.reader.take_on_device()
        self.out.prefix_tokens = p
        self.prefix = cache

    def _prefill(self, group: list[int]) -> _Live:
        p, dev = self.prefix_len, self.device
        if p and self.prefix is None:
            self._prefill_prefix()
        batch = collate([self.prompts[i][p:] for i in group], self.pad, side="left", device=dev)
        lengths = torch.tensor([len(self.prompts[i]) for i in group], device=dev)
        mask, pos = batch.attention_mask, batch.position_ids + p
        if p:
            assert self.prefix is not None
            rows = [self.prefix_rows[self.groups[i]] if self.groups else 0 for i in group]
            cache = take_rows(self.prefix, torch.tensor(rows, device=dev), self.model)
            mask = torch.cat([mask.new_ones((len(group), p)), mask], dim=1)
        else:
            cache = empty_cache(self.model)
        step = Step(
            pos=pos.masked_fill(batch.attention_mask == 0, -1),
            n_prompt=lengths,
            length=lengths,
            capacity=lengths + self.max_new,
            items=tuple(group),
            groups=self._groups(group),
        )
        if self.reader is not None:
            self.reader.positions = Positions.final(batch.last, batch.first, self.reader.max_n)
        logits = self._run(batch.input_ids, mask, pos, cache, step)
        state = self.reader.take_on_device() if self.reader is not None else {}
        live = _Live(
            items=list(group),
            cache=cache,
            mask=mask,
            length=lengths,
            pending=torch.zeros(len(group), dtype=torch.long, device=dev),
            draining=[False] * len(group),
            state=state,
        )
        self._sample(live, logits)
        return live

    def _sample(self, live: _Live, logits: torch.Tensor) -> None:
        """Choose the next token of every live row that is not draining; retire rows."""
        rows = [r for r, d in enumerate(live.draining) if not d and not live.dead[r]]
        finished = [r for r, d in enumerate(live.draining) if d and not live.dead[r]]
        if rows:
            index = torch.tensor(rows, device=logits.device)
            chosen = self.choose(
                logits.index_select(0, index).float(),
                [self.generators[live.items[r]] for r in rows],
            )
            live.pending[index] = chosen.to(live.pending.dtype)
            for r, token in zip(rows, chosen.tolist(), strict=True):
                item = live.items[r]
                if token in self.eos:
                    finished.append(r)
                    continue
                self.out.tokens[item].append(int(token))
                if len(self.out.tokens[item]) >= self.max_new:
                    self.out.truncated[item] = True
                    if self.reader is None:
                        finished.append(r)
                    else:
                        live.draining[r] = True  # one more pass so the reader sees it
        for r in finished:
            item = live.items[r]
            self.out.features[item] = {k: v[r].detach().cpu() for k, v in live.state.items()}
            self.on_done(item)
            live.dead[r] = True
        # An ended row costs its share of each step; removing it costs a copy of the cache
        # (about a step's attention): remove ended rows in groups, or when they are the majority.
        n_dead = len(live.items) - live.n_alive
        if n_dead and (n_dead >= self.reap_at or n_dead >= live.n_alive):
            live.reap()

    def _step(self, live: _Live) -> None:
        n, dev = len(live.items), self.device
        live.mask = torch.cat([live.mask, live.mask.new_ones((n, 1))], dim=1)
        positions = live.length[:, None]
        live.length = live.length + 1
        dead = torch.tensor(live.dead, device=dev)
        step = Step(
            pos=positions.masked_fill(dead[:, None], -1),  # an ended row's column is no token
            n_prompt=torch.tensor([len(self.prompts[i]) for i in live.items], device=dev),
            length=live.length,
            capacity=torch.tensor(
                [len(self.prompts[i]) + self.max_new for i in live.items], device=dev
            ),
            items=tuple(live.items),
            groups=self._groups(live.items),
        )
        if self.reader is not None:
            self.reader.positions = Positions(
                index=torch.zeros((n, 1), dtype=torch.long, device=dev),
                valid=torch.ones((n, 1), dtype=torch.bool, device=dev),
            )
        logits = self._run(live.pending[:, None], live.mask, positions, live.cache, step)
        if self.reader is not None:
            alive = ~dead
            for name, new in self.reader.take_on_device().items():
                old = live.state[name]
                if name in self.windows:
                    new = torch.cat([old, new], dim=1)[:, -self.windows[name] :]
                live.state[name] = torch.where(alive.view(-1, *[1] * (new.dim() - 1)), new, old)
        self._sample(live, logits)

    def run(self, scheduler: Scheduler) -> Decoded:
        live: _Live | None = None
        while True:
            group = scheduler.admit(live.n_alive if live is not None else 0)
            if group:
                if live is not None:
                    live.reap()
                joined = self._prefill(group)
                if live is None or not live.items:
                    live = joined
                elif joined.items:
                    live.extend(joined)
            if live is None or not live.items:
                if scheduler.waiting:
                    live = None
                    continue
                return self.out
            live.mask = compact(live.cache, live.mask)
            self._step(live)


def decode_continuous(
    model: Any,
    forward: Forward,
    prompts: Sequence[Sequence[int]],
    generators: list[torch.Generator],
    choose: Choose,
    *,
    batch_size: int,
    max_new_tokens: int,
    eos: set[int],
    pad: int,
    device: torch.device,
    reader: SiteReader | None = None,
    share_prefix: bool = True,
    min_group: int | None = None,
    on_done: Callable[[int], None] = lambda _: None,
    groups: Sequence[int] = (),
) -> Decoded:
    """Decode every prompt with continuous batching (``batch_size`` rows at most).

    The caller enters interventions and attaches ``reader``'s hooks around the
    call; ``generators[i]`` is item ``i``'s own random generator; ``groups[i]`` its
    condition when rows run under several (each :class:`Step` carries them).
    """
    scheduler = Scheduler([len(p) for p in prompts], batch_size=batch_size, min_group=min_group)
    loop = _Loop(
        model, forward, prompts, generators, choose,
        max_new_tokens=max_new_tokens, eos=eos, pad=pad, device=device, reader=reader,
        share_prefix=share_prefix, on_done=on_done, reap_at=scheduler.min_group, groups=groups,
    )  # fmt: skip
    return loop.run(scheduler)
