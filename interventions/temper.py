"""Scaling interventions: heads at the ``o_proj`` input, values at ``v_proj``, the MLP.

:func:`temper` is the paper's intervention: multiply chosen heads' slices of
the ``o_proj`` *input* (``n_heads * head_dim`` wide, so with grouped-query
attention each query head has its own slice) by a factor, through a forward
pre-hook. The output of ``o_proj`` mixes heads, so slicing it would be wrong.
Factor 1 leaves the forward pass bit-identical (``x * 1.0 == x``); factor 0
zero-ablates the head. The scaling applies at every position the model
processes while the context is active: the prompt (prefill) and every generated
token of ``workbench.generate``.

:func:`scale_values` scales a key-value head's slice of the ``v_proj`` output
(with grouped-query attention that moves every query head sharing it), and
:func:`scale_mlp` scales a layer's MLP output (the down-projection), so the same
sweep can be run at the locations the paper did not test.

``generate(..., capture=["head_in(L)"], interventions=[temper(...)])`` reads
the scaled input at a tempered layer (what ``o_proj`` consumed): capture hooks
are attached inside the interventions, so they run after the scaling.

Caveat for Gemma-style layers, which normalise the attention output
(``post_attention_layernorm``) before adding it to the residual stream: that
norm undoes a uniform scale, so tempering *every* head of a layer (or the only
key-value head) by one factor changes almost nothing; tempering a subset
changes how the heads are mixed, not the output's size.

>>> with temper(lm, {(3, 1): 0.5, (5, 2): 0.0}):  # doctest: +SKIP
...     gens = generate(lm, items, max_new_tokens=32)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from interventions.base import (
    Intervention,
    check_factor,
    model_and_layout,
    scale_input,
    scale_output,
)
from workbench.core.errors import WorkbenchError
from workbench.model.hooks import Hook
from workbench.model.layouts import ResolvedLayout

__all__ = ["SITES", "intervention_factory", "parse_head", "scale_mlp", "scale_values", "temper"]

Site = Literal["o_proj", "v_proj", "mlp"]
SITES: tuple[Site, ...] = ("o_proj", "v_proj", "mlp")


def parse_head(text: str) -> tuple[int, int]:
    """``"L.H"`` (or ``"L:H"``) as ``(layer, head)``.

    >>> parse_head("12.3")
    (12, 3)
    """
    for sep in (".", ":"):
        layer, found, head = text.strip().partition(sep)
        if found:
            try:
                return int(layer), int(head)
            except ValueError:
                break
    raise WorkbenchError(f"head {text!r} is not LAYER.HEAD: write e.g. 12.3 for layer 12, head 3")


def _normalise(
    layout: ResolvedLayout, factors: Mapping[Any, Any], what: str
) -> dict[tuple[int, int], float]:
    if not isinstance(factors, Mapping) or not factors:
        raise WorkbenchError(
            f"{what}: pass a non-empty mapping {{(layer, head): factor}}, got {factors!r}"
        )
    out: dict[tuple[int, int], float] = {}
    for key, value in factors.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, int) for k in key)):
            raise WorkbenchError(f"{what}: key {key!r} is not a (layer, head) pair of integers")
        layer = layout.layer_index(key[0])
        factor = check_factor(value, f"{what} layer {key[0]} head {key[1]}")
        if (layer, key[1]) in out:
            raise WorkbenchError(
                f"{what}: layer {key[0]} head {key[1]} is given twice (layer {layer} by another "
                "index): give each head once"
            )
        out[(layer, key[1])] = factor
    return out


def _slice_vectors(
    keys: Mapping[tuple[int, int], float], width_of: Mapping[int, tuple[int, int]]
) -> dict[int, torch.Tensor]:
    """Per layer, a ones vector with each chosen slice set to its factor."""
    vectors: dict[int, torch.Tensor] = {}
    for (layer, head), factor in sorted(keys.items()):
        n, dim = width_of[layer]
        v = vectors.setdefault(layer, torch.ones(n * dim, dtype=torch.float32))
        v[head * dim : (head + 1) * dim] = factor
    return vectors


def _targets(keys: Mapping[tuple[int, int], float], name: str) -> list[dict[str, Any]]:
    return [{"layer": layer, name: h, "factor": f} for (layer, h), f in sorted(keys.items())]


def temper(model: Any, heads: Mapping[tuple[int, int], float]) -> Intervention:
    """Scale chosen heads' ``o_proj`` inputs while the context is active.

    Args:
        model: a ``LoadedModel`` or a transformers causal LM.
        heads: ``{(layer, head): factor}``; factor 1 is the identity, 0 ablates
            the head. Layers keep their original numbers (hybrid models
            included); negative layers count from the end.

    Returns:
        A re-enterable context manager (pass it to ``generate(interventions=...)``).

    >>> with temper(lm, {(3, 1): 0.5}):  # doctest: +SKIP
    ...     out = lm.model(input_ids)
    """
    module, layout = model_and_layout(model)
    keys = _normalise(layout, heads, "temper")
    geometry = {}
    for layer, head in keys:
        info = layout.check_head(layer, head)
        geometry[layer] = (info.n_heads, info.head_dim)

    def build() -> list[Hook]:
        vectors = _slice_vectors(keys, geometry)
        return [Hook(layout.o_proj(layer), "pre", scale_input(v)) for layer, v in vectors.items()]

    spec = {"kind": "temper", "site": "o_proj input", "targets": _targets(keys, "head")}
    return Intervention(module, build, spec)


def _out_features(module: nn.Module) -> int:
    """Output width of a ``Linear`` (``out_features``) or a GPT-2 ``Conv1D`` (``nf``)."""
    for name in ("out_features", "nf"):
        value = getattr(module, name, None)
        if isinstance(value, int):
            return value
    raise WorkbenchError(
        f"cannot read the output width of {type(module).__name__}: pass layout=..."
    )


def _kv_geometry(layout: ResolvedLayout, layer: int) -> tuple[int, int]:
    attn = layout.attn_module(layer)
    info = layout.attention(layer)
    v_proj = layout.submodule(
        layer,
        f"{layout.layout.attn}.{layout.layout.v_proj}" if layout.layout.v_proj else None,
        "v_proj",
    )
    if hasattr(attn, "v_norm"):
        raise WorkbenchError(
            f"layer {layer}: this model normalises values after v_proj (v_norm), so scaling the "
            "v_proj output has no effect: use temper() at the o_proj input instead"
        )
    width = _out_features(v_proj)
    if width % info.head_dim:
        raise WorkbenchError(
            f"layer {layer}: v_proj output width {width} is not a multiple of head_dim "
            f"{info.head_dim}: this layout is not supported for value scaling"
        )
    return width // info.head_dim, info.head_dim


def scale_values(model: Any, kv_heads: Mapping[tuple[int, int], float]) -> Intervention:
    """Scale key-value heads' slices of the ``v_proj`` output while active.

    With grouped-query attention, key-value head ``g`` feeds query heads
    ``g * r .. (g + 1) * r - 1`` (``r = n_heads / n_kv_heads``); scaling it by
    ``f`` scales all their outputs by ``f`` (attention is linear in the values).

    Args:
        model: a ``LoadedModel`` or a transformers causal LM.
        kv_heads: ``{(layer, kv_head): factor}``.

    >>> with scale_values(lm, {(3, 0): 0.5}):  # doctest: +SKIP
    ...     out = lm.model(input_ids)
    """
    module, layout = model_and_layout(model)
    keys = _normalise(layout, kv_heads, "scale_values")
    geometry = {}
    for layer, head in keys:
        n_kv, dim = _kv_geometry(layout, layer)
        if not 0 <= head < n_kv:
            raise WorkbenchError(
                f"kv head {head} is out of range for layer {layer}: valid kv heads are 0..{n_kv - 1}"
            )
        geometry[layer] = (n_kv, dim)
    v_path = f"{layout.layout.attn}.{layout.layout.v_proj}"

    def build() -> list[Hook]:
        vectors = _slice_vectors(keys, geometry)
        return [
            Hook(layout.submodule(layer, v_path, "v_proj"), "post", scale_output(v))
            for layer, v in vectors.items()
        ]

    spec = {"kind": "scale_values", "site": "v_proj output", "targets": _targets(keys, "kv_head")}
    return Intervention(module, build, spec)


def scale_mlp(model: Any, layers: Mapping[int, float]) -> Intervention:
    """Scale layers' MLP output (the down-projection's output, bias included) while active.

    Args:
        model: a ``LoadedModel`` or a transformers causal LM.
        layers: ``{layer: factor}``; 0 removes the MLP's contribution to the residual.

    >>> with scale_mlp(lm, {10: 0.5}):  # doctest: +SKIP
    ...     out = lm.model(input_ids)
    """
    module, layout = model_and_layout(model)
    if not isinstance(layers, Mapping) or not layers:
        raise WorkbenchError(
            f"scale_mlp: pass a non-empty mapping {{layer: factor}}, got {layers!r}"
        )
    keys: dict[int, float] = {}
    for layer, value in layers.items():
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise WorkbenchError(f"scale_mlp: key {layer!r} is not a layer index")
        index = layout.layer_index(layer)
        if index in keys:
            raise WorkbenchError(f"scale_mlp: layer {layer} is given twice: give each layer once")
        keys[index] = check_factor(value, f"scale_mlp layer {layer}")
    path = layout.layout.mlp_down
    for index in keys:
        layout.submodule(index, path, "mlp_down")

    def build() -> list[Hook]:
        hooks = []
        for index, factor in sorted(keys.items()):
            down = layout.submodule(index, path, "mlp_down")
            vector = torch.full((_out_features(down),), factor)
            hooks.append(Hook(down, "post", scale_output(vector)))
        return hooks

    targets = [{"layer": layer, "factor": f} for layer, f in sorted(keys.items())]
    return Intervention(
        module, build, {"kind": "scale_mlp", "site": "mlp down_proj output", "targets": targets}
    )


def intervention_factory(
    lm: Any, at: Site, targets: Sequence[Any]
) -> Callable[[float], Intervention]:
    """``value -> intervention`` scaling ``targets`` at one site by the value.

    Args:
        lm: a ``LoadedModel`` or a transformers causal LM.
        at: ``o_proj`` (targets: ``(layer, head)``, :func:`temper`), ``v_proj``
            (``(layer, kv_head)``, :func:`scale_values`) or ``mlp`` (layers, :func:`scale_mlp`).
        targets: what to scale; every target gets the same value.
    """
    if not targets:
        raise WorkbenchError(f"no targets to scale at {at}: pass at least one head or layer")
    if at == "o_proj":
        return lambda lam: temper(lm, dict.fromkeys(map(tuple, targets), lam))
    if at == "v_proj":
        return lambda lam: scale_values(lm, dict.fromkeys(map(tuple, targets), lam))
    if at == "mlp":
        return lambda lam: scale_mlp(lm, dict.fromkeys(targets, lam))
    raise WorkbenchError(f"unknown site {at!r}: use one of {', '.join(SITES)}")
