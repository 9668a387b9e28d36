"""An intervention bound to one model: layer resolved, heads checked, operand shaped.

:func:`bind` is where an :class:`~workbench.model.intervention.Intervention` meets a
model's layout: the layer exists, the heads are in range, the operand has the
site's width. Backends bind each value when they compile it.

>>> b = bind(Intervention("head_in(1)", "scale", [0.5], heads=(2,)), lm.layout)  # doctest: +SKIP
>>> b.operand  # doctest: +SKIP
tensor([0.5000])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from workbench.core.errors import WorkbenchError
from workbench.model.intervention import Intervention, write_site
from workbench.model.layouts import ResolvedLayout

__all__ = ["Bound", "bind", "v_path"]


@dataclass(frozen=True, eq=False)
class Bound:
    """An intervention checked against one model: layer resolved, operand shaped.

    ``operand`` is ``(k,)`` factors for ``scale``, ``(k, d)`` for vectors, ``(n, k, d)``
    for a resampling bank (``k`` heads of width ``d``; ``k = 1`` at a full-width site).
    ``group``: the condition whose rows it writes when several share a batch (see
    :attr:`~workbench.model.positions.Frame.groups`); ``None``, every row.
    """

    value: Intervention
    kind: str
    layer: int
    heads: tuple[int, ...]
    n_heads: int
    head_dim: int
    operand: torch.Tensor | None
    sources: dict[int, torch.Tensor] = field(default_factory=dict)
    group: int | None = None

    @property
    def split(self) -> bool:
        return self.kind in ("head_in", "v_out")


def _geometry(layout: ResolvedLayout, kind: str, layer: int) -> tuple[int, int]:
    if kind == "head_in":
        info = layout.attention(layer)
        return info.n_heads, info.head_dim
    if kind == "v_out":
        info = layout.attention(layer)
        module = layout.submodule(layer, v_path(layout), "v_proj")
        if hasattr(layout.attn_module(layer), "v_norm"):
            raise WorkbenchError(
                f"layer {layer}: this model normalises values after v_proj (v_norm), so scaling "
                "the v_proj output has no effect: use temper() at the o_proj input instead"
            )
        width = int(getattr(module, "out_features", 0) or getattr(module, "nf", 0))
        if not width or width % info.head_dim:
            raise WorkbenchError(
                f"layer {layer}: v_proj output width {width} is not a multiple of head_dim "
                f"{info.head_dim}: this layout is not supported for value scaling"
            )
        return width // info.head_dim, info.head_dim
    if kind == "mlp_out":
        layout.submodule(layer, layout.layout.mlp_down, "mlp_down")
    return 1, layout.d_model


def v_path(layout: ResolvedLayout) -> str | None:
    """The value projection's path relative to a layer (``None`` when fused)."""
    v = layout.layout.v_proj
    return f"{layout.layout.attn}.{v}" if v else None


def _shape(a: np.ndarray, k: int, d: int, bank: bool, what: str) -> torch.Tensor:
    want = (k, d)
    rows = int(a.shape[0]) if bank and a.ndim >= 1 else 1
    body = a.shape[1:] if bank else a.shape
    if body == (d,) and k == 1 or body == (k * d,):
        body = want
    if tuple(body) != want:
        expected = f"({d},)" if k == 1 else f"({k}, {d}) or ({k * d},)"
        raise WorkbenchError(
            f"{what} has shape {a.shape[1:] if bank else a.shape}, the site takes {expected}"
            f"{' per row' if bank else ''}: pass a vector of the site's width"
        )
    t = torch.from_numpy(np.array(a, dtype=np.float32))
    return t.reshape(rows, k, d) if bank else t.reshape(k, d)


def bind(value: Intervention, layout: ResolvedLayout) -> Bound:
    """Check ``value`` against a model's layout (layer, heads, widths) once."""
    kind, layer = write_site(value.site)
    layer = layout.layer_index(layer)
    n_heads, head_dim = _geometry(layout, kind, layer)
    heads = value.heads or tuple(range(n_heads))
    for h in heads:
        if not 0 <= h < n_heads:
            kv = "kv " if kind == "v_out" else ""
            raise WorkbenchError(
                f"{kv}head {h} is out of range for layer {layer}: valid {kv}heads are "
                f"0..{n_heads - 1}"
            )
    k, what = len(heads), f"{value.op} operand at {value.site}"
    operand: torch.Tensor | None = None
    sources: dict[int, torch.Tensor] = {}
    a = value.operand
    if value.op == "scale":
        if a.size not in (1, k):
            raise WorkbenchError(
                f"{what}: {a.size} factors for {k} heads; pass one or one per head"
            )
        operand = torch.from_numpy(np.broadcast_to(a.reshape(-1), (k,)).copy())
    elif value.op == "resample":
        if a.ndim < 2 or a.shape[0] < 1:
            raise WorkbenchError(f"{what}: a bank needs rows, got shape {a.shape}")
        operand = _shape(a, k, head_dim, True, what)
    elif value.op == "patch":
        for key, src in value.sources.items():
            if src.ndim < 2:
                raise WorkbenchError(
                    f"patch source {key} has shape {src.shape}: pass (tokens, width)"
                )
            sources[key] = _shape(src, k, head_dim, True, f"patch source {key}")
    else:
        operand = _shape(a, k, head_dim, False, what)
    if value.op == "project_out" and operand is not None:
        operand = operand / operand.norm(dim=-1, keepdim=True)
    return Bound(value, kind, layer, heads, n_heads, head_dim, operand, sources)
