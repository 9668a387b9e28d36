"""Activation patching: clean activations into a corrupted run, swept over layers x positions and heads.

As in TransformerLens' patching utilities: run the clean inputs (e.g. the
question with the right fact) and the corrupted ones (the same question with a
wrong fact), then, one site and position at a time, write the clean activation
into the corrupted run and measure a metric on its final-token logits: the logit
difference of a target against a foil token, or the target's probability. The
score is normalised, ``(patched - corrupted) / (clean - corrupted)``: 1 means
the patch restores the clean behaviour, 0 that it does nothing.

Clean and corrupted items pair by order. Positions are aligned from the end
(``-1`` is each row's final token) unless ``align`` maps corrupted to clean
positions; a patch whose positions have no counterpart is an error.

>>> result = patching_sweep(lm, clean, corrupt, logit_diff(paris, rome), n_positions=4)  # doctest: +SKIP
>>> result.figure().show()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from interventions.base import Applied
from interventions.ops import collect_site
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.model.intervention import Intervention as Value
from workbench.model.loaded import LoadedModel
from workbench.model.positions import PositionSpec, item_key

__all__ = ["PatchResult", "logit_diff", "patching_sweep", "prob"]

Metric = Callable[[np.ndarray], np.ndarray]


def logit_diff(target: Sequence[int], foil: Sequence[int]) -> Metric:
    """Per row, ``logit[target] - logit[foil]`` (one token id per item, or one for all)."""
    t, f = np.asarray(target), np.asarray(foil)
    return lambda logits: (
        logits[np.arange(len(logits)), np.broadcast_to(t, len(logits))]
        - logits[np.arange(len(logits)), np.broadcast_to(f, len(logits))]
    )


def prob(target: Sequence[int]) -> Metric:
    """Per row, the softmax probability of the target token."""
    t = np.asarray(target)

    def metric(logits: np.ndarray) -> np.ndarray:
        z = logits - logits.max(-1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
        return p[np.arange(len(p)), np.broadcast_to(t, len(p))]

    return metric


@dataclass(frozen=True)
class PatchResult:
    """Normalised patching scores: ``grid[i, j]`` for ``rows[i]`` x ``columns[j]``."""

    kind: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    grid: np.ndarray
    clean: float
    corrupted: float
    interventions: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "rows": list(self.rows), "columns": list(self.columns),
                "grid": self.grid.tolist(), "clean": self.clean, "corrupted": self.corrupted,
                "interventions": list(self.interventions)}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PatchResult:
        return cls(data["kind"], tuple(data["rows"]), tuple(data["columns"]),
                   np.array(data["grid"], dtype=float), data["clean"], data["corrupted"],
                   tuple(data.get("interventions", ())))  # fmt: skip

    def figure(self) -> go.Figure:
        """A plotly heatmap (1 = the patch restores the clean metric)."""
        fig = go.Figure(go.Heatmap(z=self.grid, x=list(self.columns), y=list(self.rows),
                                   colorscale="RdBu", zmid=0, colorbar={"title": "restored"}))  # fmt: skip
        fig.update_layout(
            title=f"Activation patching ({self.kind}): clean {self.clean:.3g}, "
            f"corrupted {self.corrupted:.3g}",
            yaxis={"autorange": "reversed"},
        )
        return fig


def _logits(model: Any, items: Sequence[Item]) -> np.ndarray:
    if isinstance(model, LoadedModel):
        from workbench.model.backends import HFBackend

        model = HFBackend(model)
    return np.asarray(model.logits(items))


def _sources(
    model: Any, clean: Sequence[Item], corrupted: Sequence[Item], site: str
) -> dict[int, Any]:
    got = collect_site(model, clean, site, per_item=True)
    return {item_key(c.id): got[item_key(k.id)] for k, c in zip(clean, corrupted, strict=True)}


def patching_sweep(
    model: Any,
    clean: Sequence[Item | str | Any],
    corrupted: Sequence[Item | str | Any],
    metric: Metric,
    *,
    layers: Sequence[int] | None = None,
    n_positions: int = 4,
    heads: bool = False,
    align: Sequence[tuple[int, int]] | None = None,
) -> PatchResult:
    """Patch ``resid(L)`` at each of the last ``n_positions`` tokens (or, with
    ``heads=True``, each head's ``head_in`` at every position) from clean into corrupted."""
    clean, corrupted = as_items(clean), as_items(corrupted)
    if len(clean) != len(corrupted):
        raise WorkbenchError(
            f"{len(clean)} clean and {len(corrupted)} corrupted items: pair them one to one"
        )
    lm = model if isinstance(model, LoadedModel) else model.lm
    layout = lm.layout
    chosen = [layout.layer_index(x) for x in (layers or range(layout.n_layers))]
    base = float(metric(_logits(model, corrupted)).mean())
    top = float(metric(_logits(model, clean)).mean())
    if abs(top - base) < 1e-9:
        raise WorkbenchError(
            f"the metric is {top:.4g} on clean and corrupted runs alike: nothing to restore; "
            "pick inputs or tokens where they differ"
        )
    pairs = tuple((int(a), int(b)) for a, b in align) if align is not None else None
    rows: list[str] = []
    grid: list[list[float]] = []
    columns: list[str] = []
    done: list[dict[str, Any]] = []
    for layer in chosen:
        if heads:
            if layer not in layout.layers_with_attention:
                continue
            site, n = f"head_in({layer})", layout.attention(layer).n_heads
            sources = _sources(model, clean, corrupted, site)
            d = layout.attention(layer).head_dim
            cells = []
            for h in range(n):
                src = {k: v.reshape(len(v), n, d)[:, h] for k, v in sources.items()}
                value = Value(site, "patch", heads=(h,), sources=src, align=pairs)
                cells.append(_score(model, corrupted, metric, value, base, top))
            columns = [f"H{h}" for h in range(n)]
        else:
            site = f"resid({layer})"
            sources = _sources(model, clean, corrupted, site)
            cells = []
            for p in range(-n_positions, 0):
                spec = PositionSpec.parse([p])
                value = Value(site, "patch", positions=spec, sources=sources, align=pairs)
                cells.append(_score(model, corrupted, metric, value, base, top))
            columns = [str(p) for p in range(-n_positions, 0)]
        rows.append(f"L{layer}")
        grid.append(cells)
        done.append({"site": site, "op": "patch", "source": "clean run"})
    return PatchResult("heads" if heads else "layers x positions", tuple(rows), tuple(columns),
                       np.array(grid), top, base, tuple(done))  # fmt: skip


def _score(
    model: Any, items: Sequence[Item], metric: Metric, value: Value, base: float, top: float
) -> float:
    with Applied(model, [value]):
        got = float(metric(_logits(model, items)).mean())
    return (got - base) / (top - base)
