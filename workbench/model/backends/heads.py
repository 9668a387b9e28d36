"""Per-head factors for tempering, as one vector per layer over the ``o_proj`` input.

Tempering multiplies chosen heads' slices of a layer's ``o_proj`` input
(``n_heads * head_dim`` wide) by a factor: 1 is an exact identity, 0 ablates
the head. Every backend applies the same vectors through its own mechanism, so
the semantics are those of ``interventions.temper`` on the HF path.

>>> scales = HeadScales.build(lm.layout, {(3, 1): 0.5})  # doctest: +SKIP
>>> scales.vectors[3][64:128].unique()  # doctest: +SKIP
tensor([0.5000])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from workbench.core.errors import WorkbenchError
from workbench.model.layouts import ResolvedLayout

__all__ = ["HeadScales", "combine", "scale_last_axis"]


def _factor(value: Any, layer: int, head: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WorkbenchError(
            f"temper layer {layer} head {head}: factor {value!r} is not a number: pass a float >= 0"
        )
    f = float(value)
    if not math.isfinite(f) or f < 0:
        raise WorkbenchError(
            f"temper layer {layer} head {head}: factor {value!r} must be finite and >= 0 "
            "(1 = unchanged, 0 = ablated)"
        )
    return f


@dataclass(frozen=True, eq=False)
class HeadScales:
    """Validated tempering factors.

    Attributes:
        factors: ``{(layer, head): factor}`` with layers normalised to ``0..n-1``.
        vectors: per tempered layer, the factor for every element of the
            ``o_proj`` input (float32, CPU): ones except the chosen heads' slices.
        geometry: per tempered layer, ``(n_heads, head_dim)``.
    """

    factors: Mapping[tuple[int, int], float]
    vectors: Mapping[int, torch.Tensor]
    geometry: Mapping[int, tuple[int, int]]

    @classmethod
    def build(cls, layout: ResolvedLayout, heads: Mapping[Any, Any]) -> HeadScales:
        """Check ``{(layer, head): factor}`` against a layout and build the vectors."""
        if not isinstance(heads, Mapping) or not heads:
            raise WorkbenchError(
                f"temper: pass a non-empty mapping {{(layer, head): factor}}, got {heads!r}"
            )
        factors: dict[tuple[int, int], float] = {}
        geometry: dict[int, tuple[int, int]] = {}
        for key, value in heads.items():
            if not (
                isinstance(key, tuple)
                and len(key) == 2
                and all(isinstance(k, int) and not isinstance(k, bool) for k in key)
            ):
                raise WorkbenchError(f"temper: key {key!r} is not a (layer, head) pair of integers")
            layer = layout.layer_index(key[0])
            info = layout.check_head(layer, key[1])
            if (layer, key[1]) in factors:
                raise WorkbenchError(
                    f"temper: layer {key[0]} head {key[1]} is given twice (layer {layer} by "
                    "another index): give each head once"
                )
            factors[(layer, key[1])] = _factor(value, key[0], key[1])
            geometry[layer] = (info.n_heads, info.head_dim)
        vectors: dict[int, torch.Tensor] = {}
        for (layer, head), factor in sorted(factors.items()):
            n, dim = geometry[layer]
            v = vectors.setdefault(layer, torch.ones(n * dim, dtype=torch.float32))
            v[head * dim : (head + 1) * dim] = factor
        return cls(factors=factors, vectors=vectors, geometry=geometry)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "temper",
            "site": "o_proj input",
            "targets": [
                {"layer": layer, "head": head, "factor": f}
                for (layer, head), f in sorted(self.factors.items())
            ],
        }


def combine(active: Iterable[HeadScales]) -> dict[int, torch.Tensor]:
    """The product of several active temperings, per layer (nested contexts stack)."""
    out: dict[int, torch.Tensor] = {}
    for scales in active:
        for layer, v in scales.vectors.items():
            out[layer] = out[layer] * v if layer in out else v.clone()
    return out


def scale_last_axis(x: torch.Tensor, vector: torch.Tensor, where: str) -> torch.Tensor:
    """``x * vector`` over the ``o_proj`` input width, for ``(..., width)`` or
    ``(..., n_heads, head_dim)`` tensors (TransformerLens' ``hook_z`` layout)."""
    width = vector.shape[0]
    if x.shape[-1] == width:
        return x * vector.to(device=x.device, dtype=x.dtype)
    if x.dim() >= 2 and x.shape[-2] * x.shape[-1] == width:
        return x * vector.to(device=x.device, dtype=x.dtype).view(x.shape[-2], x.shape[-1])
    raise WorkbenchError(
        f"{where} has shape {tuple(x.shape)}, tempering was built for width {width}: the "
        "layout's head geometry does not match this model; pass layout=..."
    )
