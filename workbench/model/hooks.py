"""PyTorch hooks, always inside a context manager that removes them in ``finally``.

Every module of the workbench that touches a forward pass (capture, tempering,
steering) builds a list of :class:`Hook` values with factory functions (so
loop variables bind per layer and head) and attaches them with :func:`attach`.
An exception inside the ``with`` block, a ``KeyboardInterrupt`` included,
leaves the model with no hook of ours attached.

>>> import torch
>>> seen = []
>>> def fn(module, args, output):
...     seen.append(tuple(output.shape))
>>> with attach([Hook(lm.model.lm_head, "post", fn)]):
...     _ = lm.model(torch.tensor([[1, 5, 7]]))
>>> seen, len(lm.model.lm_head._forward_hooks)
([(1, 3, 261)], 0)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

__all__ = ["Hook", "StopForward", "attach", "count_hooks", "stop_forward_allowed"]


class StopForward(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by a capture hook once every requested site is read (early stop)."""


@dataclass(frozen=True)
class Hook:
    """A hook to attach: ``pre`` hooks see (and may replace) a module's inputs,
    ``post`` hooks its output."""

    module: nn.Module
    kind: Literal["pre", "post"]
    fn: Callable[..., Any]


@contextlib.contextmanager
def attach(hooks: Iterable[Hook]) -> Iterator[None]:
    """Register hooks for the duration of the block; remove them in ``finally``."""
    handles = []
    try:
        for hook in hooks:
            if hook.kind == "pre":
                handles.append(hook.module.register_forward_pre_hook(hook.fn))
            else:
                handles.append(hook.module.register_forward_hook(hook.fn))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def stop_forward_allowed() -> Iterator[None]:
    """Swallow :class:`StopForward` raised by an early-stopping capture hook."""
    with contextlib.suppress(StopForward):
        yield


def count_hooks(model: nn.Module) -> int:
    """Forward and forward-pre hooks attached anywhere in ``model`` (tests use it).

    transformers' own output recorders are not counted: transformers 5 installs
    them, for good, on the first call with ``output_hidden_states=True``, so a
    count including them would blame whichever code ran after that call.
    """
    return sum(
        1
        for m in model.modules()
        for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values())
        if not str(getattr(h, "__module__", "")).startswith("transformers.")
    )
