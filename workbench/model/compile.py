"""Interventions compiled for the ``hf`` path, and the one tempering constructor.

:func:`hf_hooks` turns :class:`~workbench.model.intervention.Intervention`
values into PyTorch hooks (pre-hooks for ``head_in``, forward hooks for the
others) that call :func:`workbench.model.edits.apply` with the running loop's
frame. :func:`head_scales` is tempering as data: ``{(layer, head): factor}``
becomes one ``scale`` at ``head_in(layer)`` per layer. Backends import both;
``interventions.temper`` builds its values with :func:`head_scales` too.

>>> values = head_scales(lm.layout, {(3, 1): 0.5})  # doctest: +SKIP
>>> with attach(hf_hooks(lm.layout, values)):  # doctest: +SKIP
...     out = lm.model(input_ids)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from workbench.core.errors import WorkbenchError
from workbench.model.bound import Bound, bind, v_path
from workbench.model.edits import apply_all
from workbench.model.hooks import Hook
from workbench.model.intervention import Intervention
from workbench.model.layouts import ResolvedLayout
from workbench.model.positions import PositionSpec, current_frame

__all__ = ["by_site", "head_scales", "hf_hooks", "site_module"]


def head_scales(
    layout: ResolvedLayout, heads: Mapping[Any, Any], positions: Any = "all"
) -> list[Intervention]:
    """``{(layer, head): factor}`` as one ``scale`` at ``head_in(layer)`` per layer."""
    if not isinstance(heads, Mapping) or not heads:
        raise WorkbenchError(
            f"temper: pass a non-empty mapping {{(layer, head): factor}}, got {heads!r}"
        )
    per_layer: dict[int, dict[int, Any]] = {}
    for key, factor in heads.items():
        if not (
            isinstance(key, tuple)
            and len(key) == 2
            and all(isinstance(k, int) and not isinstance(k, bool) for k in key)
        ):
            raise WorkbenchError(f"temper: key {key!r} is not a (layer, head) pair of integers")
        layer = layout.layer_index(key[0])
        layout.check_head(layer, key[1])
        if key[1] in per_layer.setdefault(layer, {}):
            raise WorkbenchError(
                f"temper: layer {key[0]} head {key[1]} is given twice (layer {layer} by another "
                "index): give each head once"
            )
        per_layer[layer][key[1]] = factor
    spec = PositionSpec.parse(positions)
    return [
        Intervention(
            f"head_in({layer})",
            "scale",
            operand=[f for _, f in sorted(factors.items())],
            heads=tuple(sorted(factors)),
            positions=spec,
        )
        for layer, factors in sorted(per_layer.items())
    ]


def by_site(
    layout: ResolvedLayout, values: Sequence[Intervention], group: int | None = None
) -> dict[tuple[str, int], list[Bound]]:
    """Bind every value once and group them by ``(kind, layer)``, keeping their order
    (``group``: they write only the rows of that condition, see :class:`Bound`)."""
    out: dict[tuple[str, int], list[Bound]] = {}
    for value in values:
        if not isinstance(value, Intervention):
            raise WorkbenchError(
                f"{value!r} is not an Intervention: build one with interventions.* or "
                "workbench.model.intervention.Intervention"
            )
        b = bind(value, layout)
        if group is not None:
            b = replace(b, group=group)
        out.setdefault((b.kind, b.layer), []).append(b)
    return out


def site_module(layout: ResolvedLayout, kind: str, layer: int) -> nn.Module:
    """The module whose input (``head_in``) or output (the others) holds the site."""
    if kind == "head_in":
        return layout.o_proj(layer)
    if kind == "resid":
        return layout.layers[layer]
    if kind == "mlp_out":
        return layout.submodule(layer, layout.layout.mlp_down, "mlp_down")
    return layout.submodule(layer, v_path(layout), "v_proj")


def _pre(bounds: list[Bound]) -> Callable[..., tuple[Any, ...]]:
    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if not args:
            raise WorkbenchError(
                f"{type(module).__name__} was called without a positional input: cannot edit it"
            )
        x = args[0]
        return (apply_all(bounds, x, current_frame(x)), *args[1:])

    return hook


def _post(bounds: list[Bound]) -> Callable[..., Any]:
    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        y: torch.Tensor = output[0] if isinstance(output, tuple) else output
        new = apply_all(bounds, y, current_frame(y))
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return hook


def hf_hooks(
    layout: ResolvedLayout, values: Sequence[Intervention], group: int | None = None
) -> list[Hook]:
    """PyTorch hooks applying ``values`` (attach them with :func:`workbench.model.hooks.attach`);
    with ``group``, to the rows of that condition only (:mod:`workbench.model.grid`)."""
    hooks = []
    for (kind, layer), bounds in by_site(layout, values, group).items():
        module = site_module(layout, kind, layer)
        if kind == "head_in":
            hooks.append(Hook(module, "pre", _pre(bounds)))
        else:
            hooks.append(Hook(module, "post", _post(bounds)))
    return hooks
