"""Interventions applied while a context is active: values compiled for the model's backend.

An :class:`Applied` holds :class:`~workbench.model.intervention.Intervention`
values and the model they act on (a ``LoadedModel``, a raw transformers module,
or any backend ``load_model(..., backend=...)`` returns). ``__enter__`` compiles
the values for that backend (PyTorch hooks on ``hf``, TransformerLens hooks,
nnsight edits) and ``__exit__`` removes them, also after an exception. It is
re-enterable (enter, exit, enter again) but not nestable: entering it twice at
once would apply it twice (lambda squared), so that is an error.
``generate(..., interventions=[...])`` enters it around the whole generation.

Every constructor in :mod:`interventions` (``temper``, ``steer``, ``project_out``,
``ablate_mean``...) is a thin function building values and wrapping them here;
``to_json`` records exactly what was done.

>>> with temper(lm, {(3, 1): 0.5}):  # doctest: +SKIP
...     logits = lm.model(input_ids).logits
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from torch import nn

from workbench.core.errors import WorkbenchError
from workbench.model.compile import by_site, hf_hooks
from workbench.model.hooks import attach
from workbench.model.intervention import Intervention as Value
from workbench.model.layouts import ResolvedLayout, resolve_layout
from workbench.model.loaded import LoadedModel

__all__ = ["Applied", "Intervention", "apply", "model_and_layout", "target_of"]


def model_and_layout(model: Any) -> tuple[nn.Module, ResolvedLayout]:
    """The torch module and resolved layout of a ``LoadedModel``, a backend or a raw HF LM."""
    lm = getattr(model, "lm", None)
    if isinstance(lm, LoadedModel):
        model = lm
    layout = getattr(model, "layout", None)
    module = getattr(model, "model", None)
    if isinstance(layout, ResolvedLayout) and isinstance(module, nn.Module):
        return module, layout
    if isinstance(model, nn.Module):
        return model, resolve_layout(model)
    raise WorkbenchError(
        f"cannot intervene on a {type(model).__name__}: pass a LoadedModel (workbench.load_model), "
        "a backend, or a transformers causal-LM module"
    )


def target_of(model: Any) -> Any:
    """The backend that compiles values for ``model``, or ``None`` for the hf path."""
    lm = getattr(model, "lm", None)
    if isinstance(lm, LoadedModel) and callable(getattr(model, "intervene", None)):
        return None if getattr(model, "name", "hf") == "hf" else model
    return None


class Applied(AbstractContextManager["Applied"]):
    """Intervention values applied to a model while the context is active.

    Args:
        model: a ``LoadedModel``, a backend, or a transformers causal LM.
        values: the interventions; each is checked against the model here, once.
        summary: what the constructor did, in its own terms (kept in ``to_json``).
    """

    def __init__(
        self, model: Any, values: Sequence[Value], summary: Mapping[str, Any] | None = None
    ) -> None:
        self.module, self.layout = model_and_layout(model)
        self.backend = target_of(model)
        self.values = tuple(values)
        if not self.values:
            raise WorkbenchError("no intervention to apply: pass at least one")
        by_site(self.layout, self.values)  # validate once, where the values enter
        self.summary: dict[str, Any] = dict(summary or {})
        self._stack: contextlib.ExitStack | None = None

    @property
    def active(self) -> bool:
        """Whether the interventions are applied now."""
        return self._stack is not None

    def __enter__(self) -> Applied:
        if self._stack is not None:
            raise WorkbenchError(
                f"{self!r} is already active: entering it again would apply it twice; "
                "exit it first or build a second intervention"
            )
        stack = contextlib.ExitStack()
        if self.backend is not None:
            stack.enter_context(self.backend.intervene(self.values))
        else:
            stack.enter_context(attach(hf_hooks(self.layout, self.values)))
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
        """The constructor's summary plus every value (``interventions``), JSON-ready."""
        return {**self.summary, "interventions": [v.to_json() for v in self.values]}

    def __repr__(self) -> str:
        kind = self.summary.get("kind", "interventions")
        return f"Applied({kind}: {', '.join(map(repr, self.values))})"


#: The context-manager type every constructor returns (the old name, kept).
Intervention = Applied


def apply(model: Any, values: Sequence[Value] | Value) -> Applied:
    """Apply intervention values while active.

    >>> iv = Value("resid(1)", "project_out", operand=direction, positions="last")  # doctest: +SKIP
    >>> with apply(lm, [iv]):  # doctest: +SKIP
    ...     out = capture(lm, items, ["h_last"])
    """
    return Applied(model, [values] if isinstance(values, Value) else list(values))
