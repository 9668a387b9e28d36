"""Which token positions an intervention writes, counted per unpadded row.

A :class:`PositionSpec` is data (``all``, ``prompt``, ``response``, ``last`` or
explicit indices, negative ones counting from the end); a :class:`Frame` says,
for one forward pass, where each column of the padded batch sits in its row.
The loop that runs the model (capture, logits, the decoding loop) sets the frame
with :func:`using_frame`; the compiled interventions read it with
:func:`current_frame`. During cached generation the prefill's frame covers the
prompt, and each step's frame covers only the newest token, so ``last`` is the
newest token at every step and ``prompt`` is exactly the prefill. A forward pass
run without a frame (a bare ``lm.model(ids)``) counts every column as a prompt
token of an unpadded row.

>>> PositionSpec.parse("last:3")
PositionSpec(kind='indices', indices=(-3, -2, -1))
>>> str(PositionSpec.parse([0, -1]))
'0,-1'
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from workbench.core.errors import WorkbenchError

__all__ = ["Frame", "PositionSpec", "current_frame", "item_key", "select", "using_frame"]

Kind = Literal["all", "prompt", "response", "last", "indices"]
_NAMED = ("all", "prompt", "response", "last")
_HELP = (
    "all, prompt, response, last, last:N, or token indices such as 0,5,-1 (negative from the end)"
)


@dataclass(frozen=True)
class PositionSpec:
    """Positions within each unpadded row: a named set or explicit indices."""

    kind: Kind = "all"
    indices: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in (*_NAMED, "indices"):
            raise WorkbenchError(f"positions {self.kind!r} unknown: use {_HELP}")
        if (self.kind == "indices") != bool(self.indices):
            raise WorkbenchError(f"positions {self}: indices go with kind 'indices' only")

    def __str__(self) -> str:
        return self.kind if self.kind != "indices" else ",".join(map(str, self.indices))

    def to_json(self) -> str | list[int]:
        return self.kind if self.kind != "indices" else list(self.indices)

    @classmethod
    def parse(cls, value: Any) -> PositionSpec:
        """From a spec, a name, ``last:N``, ``"0,5,-1"``, an int or a list of ints."""
        if isinstance(value, PositionSpec):
            return value
        if isinstance(value, str):
            text = value.strip()
            if text in _NAMED:
                return cls(text)  # type: ignore[arg-type]
            if text.startswith("last:"):
                n = _int(text[5:], value)
                if n < 1:
                    raise WorkbenchError(f"positions {value!r}: last:N needs N >= 1")
                return cls("indices", tuple(range(-n, 0)))
            value = [_int(p, value) for p in text.split(",") if p.strip()]
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, Sequence) and value and all(_is_int(v) for v in value):
            indices = tuple(dict.fromkeys(int(v) for v in value))
            return cls("indices", indices)
        raise WorkbenchError(f"positions {value!r} not understood: use {_HELP}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(text: str, whole: Any) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise WorkbenchError(f"positions {whole!r} not understood: use {_HELP}") from None


@dataclass(frozen=True, eq=False)
class Frame:
    """Where the columns of one forward pass sit in their rows.

    Attributes:
        pos: ``(batch, seq)`` position of each column in its unpadded row, -1 for padding.
        n_prompt: ``(batch,)`` prompt tokens per row (the rest is response).
        length: ``(batch,)`` real tokens in the row so far, this pass included.
        capacity: ``(batch,)`` the longest the row can become (``length`` for a
            complete sequence; prompt + ``max_new_tokens`` while generating).
        keys: one integer per row naming its item (resampling draws from it).
        seen: ``(batch, seq)`` the row's length when each column was first processed
            (``length`` in one pass; during generation a generated token was the newest
            one, so ``last`` and ``-1`` select it whether or not a KV cache is used).
        groups: the condition each row runs under when several conditions share the
            batch (:func:`workbench.model.grid.generate_grid`; -1 for a row of none);
            empty when the whole batch runs under one.
    """

    pos: torch.Tensor
    n_prompt: torch.Tensor
    length: torch.Tensor
    capacity: torch.Tensor
    keys: tuple[int, ...]
    seen: torch.Tensor
    groups: tuple[int, ...] = ()

    @classmethod
    def of_batch(
        cls,
        attention_mask: torch.Tensor,
        n_prompt: Sequence[int] | None = None,
        keys: Sequence[int] | None = None,
        extra: int = 0,
        offset: torch.Tensor | None = None,
    ) -> Frame:
        """The frame of a padded batch (``offset``: row tokens already in the cache)."""
        mask = attention_mask.bool()
        pos = mask.long().cumsum(-1) - 1
        length = mask.sum(-1)
        if offset is not None:
            pos = pos + offset[:, None]
            length = length + offset
        pos = pos.masked_fill(~mask, -1)
        device = mask.device
        n = mask.shape[0]
        prompt = length if n_prompt is None else torch.tensor(list(n_prompt), device=device)
        return cls(
            pos=pos,
            n_prompt=prompt,
            length=length,
            capacity=length + extra,
            keys=tuple(keys) if keys is not None else tuple(range(n)),
            seen=length[:, None].expand_as(pos),
        )

    @classmethod
    def plain(cls, x: torch.Tensor) -> Frame:
        """Every column real, every token a prompt token (a bare forward pass)."""
        return cls.of_batch(torch.ones(x.shape[:2], dtype=torch.long, device=x.device))

    def step(self, length: torch.Tensor) -> Frame:
        """The frame of one cached decoding step: the newest token of each row."""
        return Frame(
            pos=(length - 1)[:, None],
            n_prompt=self.n_prompt,
            length=length,
            capacity=self.capacity,
            keys=self.keys,
            seen=length[:, None],
            groups=self.groups,
        )

    def regenerated(self, attention_mask: torch.Tensor) -> Frame:
        """The frame of an uncached decoding step (prompt and generated tokens re-run):
        each generated column counts as the newest token it was at its own step."""
        full = Frame.of_batch(attention_mask, self.n_prompt.tolist(), self.keys)
        seen = torch.maximum(full.pos + 1, self.n_prompt[:, None].to(full.pos.device))
        return Frame(
            full.pos, full.n_prompt, full.length, self.capacity, self.keys, seen, self.groups
        )


def item_key(item_id: str) -> int:
    """The integer naming an item in a frame (resampling and patching key rows by it)."""
    return int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:8], "little") >> 1


_FRAME: contextvars.ContextVar[Frame | None] = contextvars.ContextVar("frame", default=None)


@contextlib.contextmanager
def using_frame(frame: Frame) -> Iterator[Frame]:
    """Make ``frame`` the current one for the forward passes inside the block."""
    token = _FRAME.set(frame)
    try:
        yield frame
    finally:
        _FRAME.reset(token)


def current_frame(x: torch.Tensor) -> Frame:
    """The frame set by the running loop, or a plain one matching ``x``'s first two axes."""
    frame = _FRAME.get()
    if frame is None or tuple(frame.pos.shape) != tuple(x.shape[:2]):
        return Frame.plain(x)
    return frame


def select(spec: PositionSpec, frame: Frame) -> torch.Tensor | None:
    """``(batch, seq)`` bool: the columns ``spec`` writes (``None`` = every column)."""
    if spec.kind == "all":
        return None
    pos = frame.pos
    real = pos >= 0
    if spec.kind == "prompt":
        return real & (pos < frame.n_prompt[:, None].to(pos.device))
    if spec.kind == "response":
        return real & (pos >= frame.n_prompt[:, None].to(pos.device))
    length = frame.seen.to(pos.device)
    if spec.kind == "last":
        return real & (pos == length - 1)
    idx = torch.tensor(spec.indices, device=pos.device)
    negative = idx < 0
    shortest = int(frame.length.min())
    room = int(frame.capacity.min())
    for i in spec.indices:
        if (i < 0 and -i > shortest) or (i >= 0 and i >= room):
            n = shortest if i < 0 else room
            raise WorkbenchError(
                f"positions {list(spec.indices)}: index {i} is outside a row of {n} tokens; "
                "pass indices inside every row (negative ones count from the end)"
            )
    resolved = torch.where(negative[None, None, :], length[:, :, None] + idx, idx)
    return real & (pos[:, :, None] == resolved).any(-1)
