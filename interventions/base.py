"""The one mechanism behind every intervention: hooks attached while a context is active.

An :class:`Intervention` holds a *builder* (a function returning
:class:`workbench.model.hooks.Hook` values) and attaches the hooks it builds with
:func:`workbench.model.hooks.attach` on ``__enter__``; ``__exit__`` removes them, also
after an exception. It is re-enterable (enter, exit, enter again) but not
nestable: entering it twice at once would apply it twice (lambda squared), so
that is an error. ``generate(..., interventions=[...])`` enters it around the
whole generation.

Hook closures are built by the factories here (:func:`scale_input`,
:func:`scale_output`, :func:`add_to_output`), so every layer and head binds its
own values. Tempering, value and MLP scaling, and steering are thin wrappers
that choose a module and a factory.

>>> with temper(lm, {(3, 1): 0.5}):  # doctest: +SKIP
...     logits = lm.model(input_ids).logits
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import torch
from torch import nn

from workbench.core.errors import WorkbenchError
from workbench.model.hooks import Hook, attach
from workbench.model.layouts import ResolvedLayout, resolve_layout

__all__ = [
    "Intervention",
    "add_to_output",
    "check_factor",
    "model_and_layout",
    "scale_input",
    "scale_output",
]

HookFn = Callable[..., Any]


def model_and_layout(model: Any) -> tuple[nn.Module, ResolvedLayout]:
    """The torch module and resolved layout of a ``LoadedModel`` or a raw HF causal LM."""
    layout = getattr(model, "layout", None)
    module = getattr(model, "model", None)
    if isinstance(layout, ResolvedLayout) and isinstance(module, nn.Module):
        return module, layout
    if isinstance(model, nn.Module):
        return model, resolve_layout(model)
    raise WorkbenchError(
        f"cannot intervene on a {type(model).__name__}: pass a LoadedModel (workbench.load_model) "
        "or a transformers causal-LM module"
    )


def check_factor(value: Any, what: str) -> float:
    """A scale factor as a float: finite and >= 0, or an error naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WorkbenchError(f"{what}: factor {value!r} is not a number: pass a float >= 0")
    f = float(value)
    if not math.isfinite(f) or f < 0:
        raise WorkbenchError(
            f"{what}: factor {value!r} must be finite and >= 0 (1 = unchanged, 0 = ablated)"
        )
    return f


def _first(x: Any) -> torch.Tensor:
    return x[0] if isinstance(x, tuple) else x


def _replace_first(x: Any, new: torch.Tensor) -> Any:
    return (new, *x[1:]) if isinstance(x, tuple) else new


def _on(
    cache: dict[tuple[torch.device, torch.dtype], torch.Tensor], v: torch.Tensor, like: torch.Tensor
) -> torch.Tensor:
    key = (like.device, like.dtype)
    if key not in cache:
        cache[key] = v.to(device=like.device, dtype=like.dtype)
    return cache[key]


def _check_width(module: nn.Module, x: torch.Tensor, width: int) -> None:
    if x.shape[-1] != width:
        raise WorkbenchError(
            f"{type(module).__name__} sees width {x.shape[-1]}, the intervention was built for "
            f"{width}: the layout's head geometry does not match this model; pass layout=..."
        )


def scale_input(vector: torch.Tensor) -> HookFn:
    """A forward pre-hook multiplying a module's first input by ``vector`` (last axis)."""
    cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if not args:
            raise WorkbenchError(
                f"{type(module).__name__} was called without a positional input: cannot scale it"
            )
        x = args[0]
        _check_width(module, x, vector.shape[-1])
        return (x * _on(cache, vector, x), *args[1:])

    return hook


def scale_output(vector: torch.Tensor) -> HookFn:
    """A forward hook multiplying a module's output (or its first element) by ``vector``."""
    cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        y = _first(output)
        _check_width(module, y, vector.shape[-1])
        return _replace_first(output, y * _on(cache, vector, y))

    return hook


def add_to_output(vector: torch.Tensor) -> HookFn:
    """A forward hook adding ``vector`` to a module's output (or its first element)."""
    cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        y = _first(output)
        _check_width(module, y, vector.shape[-1])
        return _replace_first(output, y + _on(cache, vector, y))

    return hook


class Intervention(AbstractContextManager["Intervention"]):
    """Hooks attached while the context is active; removed on exit, even after an error.

    Args:
        model: the module the hooks go into (used for ``repr`` and checks).
        build: returns the hooks to attach; called on every ``__enter__``.
        spec: what the intervention does, for reports (``to_json``).

    Re-enterable, not nestable. Build one with :func:`~interventions.temper`,
    :func:`~interventions.scale_values`, :func:`~interventions.scale_mlp` or
    :func:`~interventions.steer`.
    """

    def __init__(
        self, model: nn.Module, build: Callable[[], list[Hook]], spec: Mapping[str, Any]
    ) -> None:
        self.model = model
        self._build = build
        self.spec: dict[str, Any] = dict(spec)
        self._stack: contextlib.ExitStack | None = None

    @property
    def active(self) -> bool:
        """Whether the hooks are attached now."""
        return self._stack is not None

    def __enter__(self) -> Intervention:
        if self._stack is not None:
            raise WorkbenchError(
                f"{self!r} is already active: entering it again would apply it twice; "
                "exit it first or build a second intervention"
            )
        stack = contextlib.ExitStack()
        stack.enter_context(attach(self._build()))
        self._stack = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def to_json(self) -> dict[str, Any]:
        return dict(self.spec)

    def __repr__(self) -> str:
        return f"Intervention({self.spec.get('kind', '?')}, {self.spec.get('targets', '')})"
