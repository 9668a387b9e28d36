"""Out-of-memory back-off that remembers: the batch size that fit is kept for the run.

A capture or a generation runs its batches through one :class:`BatchBudget`. On an
out-of-memory error the batch is split in halves (down to one row); the size
that then fits becomes the cap for every later batch of the run, so the run does
not fail again at the original size batch after batch, and the lowered size is
said once (each time it drops, not per batch):

>>> budget = BatchBudget("capture", say=print)
>>> def step(rows):
...     if len(rows) > 2:
...         raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
...     return list(rows)
>>> budget.run(list(range(5)), step, lambda parts: sum(parts, []))
out of memory at capture batch size 5: continuing with batches of 2 for the rest of this run
[0, 1, 2, 3, 4]
>>> budget.limit, budget.run([5, 6, 7], step, lambda parts: sum(parts, []))
(2, [5, 6, 7])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

__all__ = ["BatchBudget", "is_oom"]

T = TypeVar("T")
R = TypeVar("R")


def is_oom(error: BaseException) -> bool:
    """Whether ``error`` is a device out-of-memory error (CUDA, MPS or the allocator's)."""
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


class BatchBudget:
    """The largest batch that fit after an out-of-memory error, for the rest of a run.

    Args:
        what: what the batches are for, in the message (``capture``, ``generate``).
        say: called once with one line whenever the cap drops (default: stderr).
    """

    def __init__(self, what: str, say: Callable[[str], None] | None = None) -> None:
        self.what = what
        self.limit: int | None = None
        self._say = say or _stderr

    def run(
        self,
        rows: Sequence[T],
        step: Callable[[list[T]], R],
        join: Callable[[list[R]], R],
    ) -> R:
        """``step`` over ``rows`` in pieces of at most the cap; ``join`` the results in order."""
        size = len(rows) if self.limit is None else min(self.limit, len(rows))
        parts: list[R] = []
        start = 0
        while start < len(rows):
            piece = list(rows[start : start + size])
            try:
                parts.append(step(piece))
            except (torch.OutOfMemoryError, RuntimeError) as e:
                if not is_oom(e) or size == 1:
                    raise
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                size = self.lower(len(piece))
                continue
            start += len(piece)
        return parts[0] if len(parts) == 1 else join(parts)

    def lower(self, failed: int) -> int:
        """The size to try after ``failed`` rows ran out of memory (half); kept as the cap."""
        size = max(1, failed // 2)
        if self.limit is None or size < self.limit:
            self._say(
                f"out of memory at {self.what} batch size {failed}: continuing with "
                f"batches of {size} for the rest of this run"
            )
            self.limit = size
        return size


def _stderr(message: str) -> None:
    from workbench.core.progress import console

    console.print(f"warning: {message}", soft_wrap=True, markup=False, highlight=False)
