"""Points of a forward pass: the one table from sites to the places hooks read.

A *point* is ``(layer, 0)`` for the input of that layer's ``o_proj``, ``(layer, 1)``
for the layer's output, and ``(n_layers, 0)`` for the final norm's output; sorting
points gives execution order. The site reader hooks these points, and every backend
names them its own way (:mod:`workbench.model.backends.names`).

On a 3-layer model:

>>> points_of_site("mean_last_n(3)", lm.layout)
[(0, 1), (1, 1), (3, 0)]
>>> points_of_site("head_in(-1)", lm.layout), points_of_site("h_last", lm.layout)
([(2, 0)], [(3, 0)])
"""

from __future__ import annotations

from torch import nn

from workbench.core.errors import WorkbenchError
from workbench.core.sites import Site, parse_site
from workbench.model.layouts import ResolvedLayout

__all__ = ["Point", "point_of", "points_of_site"]

Point = tuple[int, int]


def points_of_site(site: str | Site, layout: ResolvedLayout) -> list[Point]:
    """The points a site reads, in execution order (``mean_last_n(N)`` reads N)."""
    s = parse_site(site)
    n = layout.n_layers
    if s.kind == "resid":
        return [(n, 0)] if s.normed else [(layout.layer_index(s.layer), 1)]
    if s.kind == "mean_last_n":
        if s.n > n:
            raise WorkbenchError(
                f"site {s}: this model has {n} layers; use mean_last_n(N) with N <= {n}"
            )
        return [(layer, 1) for layer in range(n - s.n, n - 1)] + [(n, 0)]
    layer = layout.layer_index(s.layer)
    layout.attention(layer)
    return [(layer, 0)]


def point_of(layout: ResolvedLayout, module: nn.Module) -> Point:
    """The point a :class:`~workbench.model.readers.SiteReader` hook on ``module`` reads."""
    if module is layout.final_norm:
        return (layout.n_layers, 0)
    for i, layer in enumerate(layout.layers):
        if module is layer:
            return (i, 1)
    for i in layout.layers_with_attention:
        if module is layout.o_proj(i):
            return (i, 0)
    raise WorkbenchError(f"{type(module).__name__} is not a site module of this layout")
