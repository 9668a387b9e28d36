"""Which waiting items join the running batch, and when (continuous batching).

Pure bookkeeping, no torch. Items wait in order of prompt length (shortest
first, ties in input order) so the items admitted together pad little in their
prefill. A group is admitted when enough slots are free: on a CPU a decoding
step costs about in proportion to its live rows, but every admission is one
extra forward pass, so slots are refilled in groups of at least
``min_group`` (or whatever is left in the queue).

>>> s = Scheduler([5, 3, 9, 4], batch_size=2, min_group=1)
>>> s.admit(n_live=0)
[1, 3]
>>> s.admit(n_live=1), s.admit(n_live=0), s.waiting
([0], [2], 0)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from workbench.core.errors import WorkbenchError

__all__ = ["Scheduler", "shared_prefix"]


class Scheduler:
    """The queue of items not yet admitted, and the admission rule."""

    def __init__(self, lengths: Sequence[int], *, batch_size: int, min_group: int | None = None):
        if batch_size < 1:
            raise WorkbenchError(f"batch_size {batch_size} must be >= 1")
        self.batch_size = batch_size
        self.min_group = max(1, batch_size // 8) if min_group is None else max(1, min_group)
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        self._queue: deque[int] = deque(order)

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def admit(self, n_live: int) -> list[int]:
        """Items to prefill and add now, given ``n_live`` rows running (may be empty)."""
        free = self.batch_size - n_live
        if not self._queue or free <= 0:
            return []
        if n_live and free < min(self.min_group, len(self._queue)):
            return []
        return [self._queue.popleft() for _ in range(min(free, len(self._queue)))]


def shared_prefix(prompts: Sequence[Sequence[int]], *, keep: int = 1) -> int:
    """Length of the token prefix all prompts share, leaving at least ``keep`` tokens
    of every prompt after it (0 with fewer than two prompts: nothing to share)."""
    if len(prompts) < 2:
        return 0
    first, n = prompts[0], min(len(p) for p in prompts) - keep
    length = 0
    while length < n and all(p[length] == first[length] for p in prompts):
        length += 1
    return max(length, 0)
