"""Site names across backends: ``head_in(3)`` is TransformerLens' ``blocks.3.attn.hook_z``.

Every workbench site reads one or more *points* of the forward pass; each
backend names a point its own way (module paths below are those of a Llama
layout; others follow the model's layout):

=====================  =========================================  ================================  =========================================
site                   hf (PyTorch hook)                          transformer_lens                  nnsight
=====================  =========================================  ================================  =========================================
``head_in(L)``         ``model.layers.L.self_attn.o_proj.input``  ``blocks.L.attn.hook_z``          ``model.layers.L.self_attn.o_proj.input``
``resid(L)``           ``model.layers.L.output``                  ``blocks.L.hook_resid_post``      ``model.layers.L.output``
``h_last``             ``model.norm.output``                      ``ln_final.hook_out``             ``model.norm.output``
=====================  =========================================  ================================  =========================================

``head_norm(L)`` reads the same point as ``head_in(L)``; ``mean_last_n(N)``
reads ``resid`` of the N-1 layers before the last plus ``h_last``. In
TransformerLens, ``blocks.L.attn.o.hook_in`` is ``hook_z`` and
``blocks.L+1.hook_resid_pre`` equals ``blocks.L.hook_resid_post``;
``ln_final.hook_normalized`` is *before* the final norm's weight, so it is not
``h_last`` (which is the norm's output, what HF returns as ``hidden_states[-1]``).

>>> str(from_backend_name("blocks.3.attn.hook_z", "transformer_lens"))
'head_in(3)'
>>> to_backend_name("head_in(3)", "transformer_lens", lm.layout)  # doctest: +SKIP
'blocks.3.attn.hook_z'
"""

from __future__ import annotations

import re

from workbench.core.errors import WorkbenchError
from workbench.core.sites import Site, parse_site
from workbench.model.layouts import LAYOUTS, Layout, ResolvedLayout
from workbench.model.points import Point, point_of, points_of_site

__all__ = [
    "Point",
    "BACKEND_NAMES",
    "points_of_site",
    "point_of",
    "point_name",
    "to_backend_name",
    "to_backend_names",
    "from_backend_name",
    "name_table",
]

BACKEND_NAMES = ("hf", "transformer_lens", "nnsight")


def _check_backend(backend: str) -> None:
    if backend not in BACKEND_NAMES:
        raise WorkbenchError(f"unknown backend {backend!r}: use one of {', '.join(BACKEND_NAMES)}")


def point_name(point: Point, backend: str, layout: ResolvedLayout) -> str:
    """A point's name in one backend (module paths for ``hf`` and ``nnsight``)."""
    _check_backend(backend)
    layer, kind = point
    paths = layout.layout
    if backend == "transformer_lens":
        if layer == layout.n_layers:
            return "ln_final.hook_out"
        return f"blocks.{layer}.attn.hook_z" if kind == 0 else f"blocks.{layer}.hook_resid_post"
    if layer == layout.n_layers:
        return f"{paths.final_norm}.output"
    if kind == 0:
        return f"{paths.layers}.{layer}.{paths.attn}.{paths.o_proj}.input"
    return f"{paths.layers}.{layer}.output"


def to_backend_names(site: str | Site, backend: str, layout: ResolvedLayout) -> tuple[str, ...]:
    """Every backend name a site reads (several for ``mean_last_n``)."""
    return tuple(point_name(p, backend, layout) for p in points_of_site(site, layout))


def to_backend_name(site: str | Site, backend: str, layout: ResolvedLayout) -> str:
    """The backend name of a one-point site (``resid``, ``h_last``, ``head_in``, ``head_norm``)."""
    names = to_backend_names(site, backend, layout)
    if len(names) != 1:
        raise WorkbenchError(
            f"site {parse_site(site)} reads {len(names)} points ({', '.join(names)}): "
            "use to_backend_names for mean_last_n"
        )
    return names[0]


_TL_HEAD = re.compile(r"^blocks\.(\d+)\.attn\.(?:hook_z|o\.hook_in)$")
_TL_RESID = re.compile(r"^blocks\.(\d+)\.(?:hook_resid_post|hook_out)$")
_TL_RESID_PRE = re.compile(r"^blocks\.(\d+)\.(?:hook_resid_pre|hook_in)$")
_TL_KNOWN = (
    "blocks.L.attn.hook_z, blocks.L.attn.o.hook_in, blocks.L.hook_resid_post, "
    "blocks.L.hook_resid_pre (L >= 1), ln_final.hook_out"
)


def _from_lens(name: str) -> Site:
    if m := _TL_HEAD.match(name):
        return Site("head_in", int(m.group(1)))
    if m := _TL_RESID.match(name):
        return Site("resid", int(m.group(1)))
    if m := _TL_RESID_PRE.match(name):
        layer = int(m.group(1))
        if layer == 0:
            raise WorkbenchError(
                f"{name} is the embedding output: the workbench has no site before layer 0"
            )
        return Site("resid", layer - 1)
    if name == "ln_final.hook_out":
        return Site("resid", -1, 1, True)
    if name == "ln_final.hook_normalized":
        raise WorkbenchError(
            "ln_final.hook_normalized is before the final norm's weight, so it is not h_last: "
            "use ln_final.hook_out (resid(-1,normed))"
        )
    raise WorkbenchError(f"no workbench site for {name!r}: known hook names are {_TL_KNOWN}")


def _from_path(name: str, layout: Layout) -> Site | None:
    layers, attn, o_proj = (re.escape(p) for p in (layout.layers, layout.attn, layout.o_proj))
    if m := re.match(rf"^{layers}\.(\d+)\.{attn}\.{o_proj}(\.input|\.output)?$", name):
        if m.group(2) == ".output":
            raise WorkbenchError(
                f"{name}: the output of o_proj mixes heads; head_in is the o_proj input "
                f"({name.removesuffix('.output')}.input)"
            )
        return Site("head_in", int(m.group(1)))
    if m := re.match(rf"^{layers}\.(\d+)(\.output)?$", name):
        return Site("resid", int(m.group(1)))
    if re.match(rf"^{re.escape(layout.final_norm)}(\.output)?$", name):
        return Site("resid", -1, 1, True)
    return None


def from_backend_name(name: str, backend: str, layout: ResolvedLayout | None = None) -> Site:
    """The workbench site a backend name reads.

    Args:
        name: e.g. ``blocks.3.attn.hook_z`` (``transformer_lens``) or
            ``model.layers.3.self_attn.o_proj.input`` (``hf``, ``nnsight``; a
            leading ``model.`` for nnsight's root object is accepted).
        backend: ``hf``, ``transformer_lens`` or ``nnsight``.
        layout: the model's layout: checks the layer and resolves its module
            paths (without it, every layout in ``LAYOUTS`` is tried).
    """
    _check_backend(backend)
    name = name.strip()
    if backend == "transformer_lens":
        site = _from_lens(name)
    else:
        candidates = (
            [layout.layout] if layout is not None else list(dict.fromkeys(LAYOUTS.values()))
        )
        found = None
        for text in (name, name.removeprefix("model.")):
            found = next((s for c in candidates if (s := _from_path(text, c)) is not None), None)
            if found is not None:
                break
        if found is None:
            example = candidates[0]
            raise WorkbenchError(
                f"no workbench site for {name!r}: known names are {example.layers}.L."
                f"{example.attn}.{example.o_proj}.input, {example.layers}.L.output and "
                f"{example.final_norm}.output"
            )
        site = found
    if layout is not None:
        points_of_site(site, layout)  # range and attention checks
    return site


def name_table(layout: ResolvedLayout, layer: int | None = None) -> str:
    """The translation table as markdown, for one model's layout."""
    layer = layout.layers_with_attention[0] if layer is None else layout.layer_index(layer)
    rows = ["| site | hf | transformer_lens | nnsight |", "|---|---|---|---|"]
    for site in (f"head_in({layer})", f"resid({layer})", "h_last"):
        cells = [f"`{to_backend_name(site, b, layout)}`" for b in BACKEND_NAMES]
        rows.append(f"| `{site}` | {' | '.join(cells)} |")
    return "\n".join(rows)
