"""Scaling interventions: heads at the ``o_proj`` input, values at ``v_proj``, the MLP.

:func:`temper` is the paper's intervention: multiply chosen heads' slices of
the ``o_proj`` *input* (``n_heads * head_dim`` wide, so with grouped-query
attention each query head has its own slice) by a factor, through a forward
pre-hook. The output of ``o_proj`` mixes heads, so slicing it would be wrong.
Factor 1 leaves the forward pass bit-identical (``x * 1.0 == x``); factor 0
zero-ablates the head. Tempering is data: one ``scale`` at ``head_in(layer)``
(:func:`workbench.model.compile.head_scales`) per layer, compiled by every
backend. By default the scaling applies at every position the model processes
while the context is active (the prompt, i.e. the prefill, and every generated
token of ``workbench.generate``); ``positions=`` restricts it (``prompt``,
``response``, ``last``, indices). :func:`temper_toward_mean` interpolates towards
the heads' reference mean instead of towards zero.

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

import numpy as np

from interventions.base import Applied, model_and_layout
from workbench.core.errors import WorkbenchError
from workbench.model.compile import head_scales
from workbench.model.intervention import Intervention as Value

__all__ = [
    "SITES",
    "intervention_factory",
    "temper_toward_mean",
    "parse_head",
    "scale_mlp",
    "scale_values",
    "temper",
]

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


def _targets(values: Sequence[Value], name: str) -> list[dict[str, Any]]:
    out = []
    for v in values:
        layer = int(v.site[v.site.index("(") + 1 : -1])
        for head, factor in zip(v.heads, v.operand.tolist(), strict=True):
            out.append({"layer": layer, name: head, "factor": float(factor)})
    return sorted(out, key=lambda t: (t["layer"], t[name]))


def temper(model: Any, heads: Mapping[tuple[int, int], float], positions: Any = "all") -> Applied:
    """Scale chosen heads' ``o_proj`` inputs while the context is active.

    Tempering is ``scale`` at ``head_in(layer)``: one
    :class:`~workbench.model.intervention.Intervention` per layer.

    Args:
        model: a ``LoadedModel``, a backend, or a transformers causal LM.
        heads: ``{(layer, head): factor}``; factor 1 is the identity, 0 ablates
            the head. Layers keep their original numbers (hybrid models
            included); negative layers count from the end.
        positions: which positions of each row (``all``, ``prompt``, ``response``,
            ``last``, indices; see :class:`~workbench.model.positions.PositionSpec`).

    Returns:
        A re-enterable context manager (pass it to ``generate(interventions=...)``).

    >>> with temper(lm, {(3, 1): 0.5}):  # doctest: +SKIP
    ...     out = lm.model(input_ids)
    """
    _, layout = model_and_layout(model)
    values = head_scales(layout, heads, positions)
    summary = {"kind": "temper", "site": "o_proj input", "targets": _targets(values, "head")}
    return Applied(model, values, summary)


def scale_values(
    model: Any, kv_heads: Mapping[tuple[int, int], float], positions: Any = "all"
) -> Applied:
    """Scale key-value heads' slices of the ``v_proj`` output (``scale`` at ``v_out(L)``).

    With grouped-query attention, key-value head ``g`` feeds query heads
    ``g * r .. (g + 1) * r - 1`` (``r = n_heads / n_kv_heads``); scaling it by
    ``f`` scales all their outputs by ``f`` (attention is linear in the values).

    >>> with scale_values(lm, {(3, 0): 0.5}):  # doctest: +SKIP
    ...     out = lm.model(input_ids)
    """
    _, layout = model_and_layout(model)
    if not isinstance(kv_heads, Mapping) or not kv_heads:
        raise WorkbenchError(
            f"scale_values: pass a non-empty mapping {{(layer, kv_head): factor}}, got {kv_heads!r}"
        )
    per_layer: dict[int, dict[int, Any]] = {}
    for key, factor in kv_heads.items():
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, int) for k in key)):
            raise WorkbenchError(
                f"scale_values: key {key!r} is not a (layer, head) pair of integers"
            )
        layer = layout.layer_index(key[0])
        if key[1] in per_layer.setdefault(layer, {}):
            raise WorkbenchError(
                f"scale_values: layer {key[0]} head {key[1]} is given twice: give each head once"
            )
        per_layer[layer][key[1]] = factor
    values = [
        Value(f"v_out({layer})", "scale", operand=[f for _, f in sorted(fs.items())],
              heads=tuple(sorted(fs)), positions=positions)
        for layer, fs in sorted(per_layer.items())
    ]  # fmt: skip
    summary = {
        "kind": "scale_values",
        "site": "v_proj output",
        "targets": _targets(values, "kv_head"),
    }
    return Applied(model, values, summary)


def scale_mlp(model: Any, layers: Mapping[int, float], positions: Any = "all") -> Applied:
    """Scale layers' MLP output (``scale`` at ``mlp_out(L)``, bias included) while active.

    >>> with scale_mlp(lm, {10: 0.5}):  # doctest: +SKIP
    ...     out = lm.model(input_ids)
    """
    _, layout = model_and_layout(model)
    if not isinstance(layers, Mapping) or not layers:
        raise WorkbenchError(
            f"scale_mlp: pass a non-empty mapping {{layer: factor}}, got {layers!r}"
        )
    keys: dict[int, Any] = {}
    for layer, value in layers.items():
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise WorkbenchError(f"scale_mlp: key {layer!r} is not a layer index")
        index = layout.layer_index(layer)
        if index in keys:
            raise WorkbenchError(f"scale_mlp: layer {layer} is given twice: give each layer once")
        keys[index] = value
    values = [
        Value(f"mlp_out({index})", "scale", operand=[f], positions=positions)
        for index, f in sorted(keys.items())
    ]
    targets = [
        {"layer": layer, "factor": float(v.operand[0])}
        for layer, v in zip(sorted(keys), values, strict=True)
    ]
    return Applied(
        model, values, {"kind": "scale_mlp", "site": "mlp down_proj output", "targets": targets}
    )


def temper_toward_mean(
    model: Any,
    heads: Mapping[tuple[int, int], float],
    reference: Sequence[Any],
    positions: Any = "all",
) -> Applied:
    """Interpolate heads towards their reference mean: ``lambda * x + (1 - lambda) * mean``.

    Lambda 1 is the identity, lambda 0 mean-ablation (the mean over ``reference``
    at the same positions): tempering without pushing activations off distribution.
    """
    from interventions.causal_heads import head_ablation

    _, layout = model_and_layout(model)
    scales = head_scales(layout, heads, positions)
    means = head_ablation(model, list(heads), "mean", positions=positions, reference=reference)
    shifts = []
    for scale, mean in zip(scales, means, strict=True):
        rest = 1.0 - np.asarray(scale.operand, dtype=np.float64)[:, None]
        shifts.append(Value(mean.site, "add", rest * mean.operand, mean.heads, positions))
    summary = {"kind": "temper_toward_mean", "site": "o_proj input",
               "targets": _targets(scales, "head")}  # fmt: skip
    return Applied(model, [*scales, *shifts], summary)


def intervention_factory(
    lm: Any,
    at: Site,
    targets: Sequence[Any],
    *,
    positions: Any = "all",
    ablation: str = "zero",
    reference: Sequence[Any] | None = None,
) -> Callable[[float], Applied]:
    """``value -> intervention`` scaling ``targets`` at one site by the value.

    Args:
        lm: a ``LoadedModel``, a backend or a transformers causal LM.
        at: ``o_proj`` (targets: ``(layer, head)``, :func:`temper`), ``v_proj``
            (``(layer, kv_head)``, :func:`scale_values`) or ``mlp`` (layers, :func:`scale_mlp`).
        targets: what to scale; every target gets the same value.
        positions: which positions of each row are scaled.
        ablation: what lambda 0 means at ``o_proj``: ``zero`` (plain scaling) or
            ``mean`` (:func:`temper_toward_mean` over ``reference``).
    """
    if not targets:
        raise WorkbenchError(f"no targets to scale at {at}: pass at least one head or layer")
    if ablation not in ("zero", "mean"):
        raise WorkbenchError(
            f"ablation {ablation!r} for a sweep: use zero or mean (resample: workbench causal)"
        )
    if ablation == "mean" and (at != "o_proj" or not reference):
        raise WorkbenchError("mean tempering needs at='o_proj' and reference items")
    if at == "o_proj" and ablation == "mean":
        assert reference is not None
        return lambda lam: temper_toward_mean(
            lm, dict.fromkeys(map(tuple, targets), lam), reference, positions
        )
    if at == "o_proj":
        return lambda lam: temper(lm, dict.fromkeys(map(tuple, targets), lam), positions)
    if at == "v_proj":
        return lambda lam: scale_values(lm, dict.fromkeys(map(tuple, targets), lam), positions)
    if at == "mlp":
        return lambda lam: scale_mlp(lm, dict.fromkeys(targets, lam), positions)
    raise WorkbenchError(f"unknown site {at!r}: use one of {', '.join(SITES)}")
