"""Hooks that read sites out of a forward pass.

A :class:`SiteReader` turns a list of sites into hooks on the modules that
hold them (one hook per module, however many sites read it), gathering each
row's values at positions the caller sets before each forward pass. The hook
that fires last in execution order raises :class:`StopForward` when early
stopping is on, so layers after the deepest requested site (and the LM head)
are never computed.

Used by capture (positions = the final non-pad token, or the last N) and by
fused generate-and-capture (positions = the token being processed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from einops import rearrange

from workbench.core.sites import Site
from workbench.model.hooks import Hook, StopForward
from workbench.model.layouts import ResolvedLayout
from workbench.model.points import Point, points_of_site

__all__ = ["SiteReader", "Positions"]


@dataclass
class Positions:
    """Per row, the token indices to read (``index``: (batch, n), last column = final token)
    and which are real tokens (``valid``)."""

    index: torch.Tensor
    valid: torch.Tensor

    def __post_init__(self) -> None:
        self.all_valid = bool(self.valid.all())  # one device sync per batch, not per hook

    @classmethod
    def final(cls, last: torch.Tensor, first: torch.Tensor, n: int) -> Positions:
        offsets = torch.arange(n - 1, -1, -1, device=last.device)
        index = last[:, None] - offsets[None, :]
        return cls(index=index, valid=index >= first[:, None])


def _output_tensor(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@dataclass
class SiteReader:
    """Read sites during forward passes into ``self.values`` (float32, on device)."""

    layout: ResolvedLayout
    sites: Sequence[Site]
    early_stop: bool = True
    positions: Positions | None = None
    values: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._readers: dict[Point, list[Callable[[torch.Tensor], None]]] = {}
        for site in self.sites:
            name, points = str(site), points_of_site(site, self.layout)
            if site.is_head:
                info = self.layout.attention(points[0][0])
                self._add(points[0], self._head_reader(name, site, info.n_heads, info.head_dim))
                continue
            for point in points:  # resid: one point; mean_last_n(N): N points, each 1/N
                self._add(point, self._vector_reader(name, 1.0 / len(points)))
        self.max_n = max([s.n for s in self.sites if s.is_head] + [1])
        self._stop_point = max(self._readers)

    def _add(self, point: Point, reader: Callable[[torch.Tensor], None]) -> None:
        self._readers.setdefault(point, []).append(reader)

    def _gather(self, h: torch.Tensor, n: int) -> torch.Tensor:
        assert self.positions is not None, "set reader.positions before the forward pass"
        index = self.positions.index[:, -n:]
        rows = torch.arange(h.shape[0], device=h.device)[:, None]
        out = h[rows, index.clamp(min=0)].float()
        if not self.positions.all_valid:
            out = out.masked_fill(~self.positions.valid[:, -n:, None], float("nan"))
        return out

    def _vector_reader(self, name: str, weight: float) -> Callable[[torch.Tensor], None]:
        def read(h: torch.Tensor) -> None:
            v = self._gather(h, 1)[:, 0]
            if weight != 1.0:
                v = v * weight
            self.values[name] = self.values[name] + v if name in self.values else v

        return read

    def _head_reader(
        self, name: str, site: Site, n_heads: int, head_dim: int
    ) -> Callable[[torch.Tensor], None]:
        def read(x: torch.Tensor) -> None:
            v = rearrange(self._gather(x, site.n), "b n (h d) -> b n h d", h=n_heads, d=head_dim)
            if site.kind == "head_norm":
                v = torch.linalg.vector_norm(v, dim=-1)
            self.values[name] = v[:, 0] if site.n == 1 else v

        return read

    def _hook_fn(self, point: Point) -> Callable[..., None]:
        readers = self._readers[point]
        stop = self.early_stop and point == self._stop_point

        if point[1] == 0 and point[0] < self.layout.n_layers:

            def pre_hook(module: Any, args: tuple[Any, ...]) -> None:
                for read in readers:
                    read(args[0])
                if stop:
                    raise StopForward

            return pre_hook

        def post_hook(module: Any, args: tuple[Any, ...], output: Any) -> None:
            h = _output_tensor(output)
            for read in readers:
                read(h)
            if stop:
                raise StopForward

        return post_hook

    def hooks(self) -> list[Hook]:
        hooks = []
        for point in self._readers:
            layer, kind = point
            if layer == self.layout.n_layers:
                hooks.append(Hook(self.layout.final_norm, "post", self._hook_fn(point)))
            elif kind == 0:
                hooks.append(Hook(self.layout.o_proj(layer), "pre", self._hook_fn(point)))
            else:
                hooks.append(Hook(self.layout.layers[layer], "post", self._hook_fn(point)))
        return hooks

    def take_on_device(self) -> dict[str, torch.Tensor]:
        """The values read since the last call (and forget them)."""
        values, self.values = self.values, {}
        return values

    def take(self) -> dict[str, torch.Tensor]:
        """The values read since the last call, moved to CPU."""
        return {k: v.detach().cpu() for k, v in self.take_on_device().items()}
