"""An intervention is a value: a site, an operation, its operand and positions.

Every backend compiles the same :class:`Intervention` into its own mechanism
(PyTorch hooks, TransformerLens hooks, nnsight edits) through one torch function,
:func:`workbench.model.edits.apply`, so the semantics are defined once:

==================  ==========================================================
operation           what the site's activation ``x`` becomes (selected heads,
                    selected positions; everything else is left bit-identical)
==================  ==========================================================
``scale``           ``x * f`` (one factor, or one per head; 1 is the identity)
``add``             ``x + v``
``set``             ``v``
``project_out``     ``x - (x . u) u`` with ``u = v / |v|`` (directional ablation)
``mean``            the stored mean over a reference set (``note`` names it)
``resample``        a row of a bank of reference activations, drawn per item
``patch``           the source run's activation at the aligned position
==================  ==========================================================

Sites are written in the workbench's site language: ``resid(L)`` (a decoder
layer's output), ``head_in(L)`` (the ``o_proj`` input, per head: pass ``heads``),
``mlp_out(L)`` (the MLP down-projection's output) and ``v_out(L)`` (the value
projection's output, per key-value head; scaling only). The value checks what it
can on its own when built; :func:`workbench.model.bound.bind` checks it against a
model once, when a backend compiles it.

>>> iv = Intervention("head_in(3)", "scale", heads=(1,), operand=[0.5])
>>> Intervention.from_json(iv.to_json()).to_json() == iv.to_json()
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.sites import parse_site
from workbench.model.positions import PositionSpec

__all__ = [
    "OPS",
    "SUPPORTED",
    "Intervention",
    "check_factor",
    "prefix_invariant",
    "values_of",
    "write_site",
]

OPS = ("scale", "add", "set", "project_out", "mean", "resample", "patch")
#: Which operations each writable site supports.
SUPPORTED: dict[str, tuple[str, ...]] = {
    "resid": OPS,
    "head_in": OPS,
    "mlp_out": OPS,
    "v_out": ("scale",),
}
_SITE = re.compile(r"^\s*(mlp_out|v_out)\s*\(\s*(-?\d+)\s*\)\s*$")


def write_site(text: str) -> tuple[str, int]:
    """``(kind, layer)`` of a writable site, or an error naming the writable ones."""
    if m := _SITE.match(text):
        return m.group(1), int(m.group(2))
    site = parse_site(text)
    if site.kind in ("resid", "head_in") and not site.normed and site.n == 1:
        return site.kind, site.layer
    raise WorkbenchError(
        f"site {text!r} cannot be written: interventions write resid(L), head_in(L), "
        "mlp_out(L) or v_out(L)"
    )


def check_factor(value: Any, what: str) -> float:
    """A scale factor: finite and >= 0, or the one error naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise WorkbenchError(f"{what}: factor {value!r} is not a number: pass a float >= 0")
    f = float(value)
    if not (np.isfinite(f) and f >= 0):
        raise WorkbenchError(
            f"{what}: factor {value!r} must be finite and >= 0 (1 = unchanged, 0 = ablated)"
        )
    return f


def _array(value: Any, what: str) -> np.ndarray:
    try:
        a = np.array(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise WorkbenchError(f"{what} {value!r} is not numeric: pass numbers") from None
    if not np.isfinite(a).all():
        raise WorkbenchError(f"{what} holds NaN or infinite values: pass finite numbers")
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Intervention:
    """One intervention (see the module docstring).

    Attributes:
        site: a writable site, e.g. ``resid(10)`` or ``head_in(3)``.
        op: one of :data:`OPS`.
        operand: factors (``scale``), a vector or one per head (``add``, ``set``,
            ``project_out``, ``mean``), a bank of rows (``resample``) or, for
            ``patch``, one ``(tokens, width)`` array per source row (``sources``).
        heads: for ``head_in`` / ``v_out``: the heads written (empty: all).
        positions: which positions of each unpadded row are written.
        seed: the resampling draw.
        note: where the operand came from (a mean's reference set, a patch's source).
        sources: ``patch`` only: ``{row key: (tokens, width) array}`` of the source run.
        align: ``patch`` only: ``None`` aligns target and source rows from the end;
            else ``((target position, source position), ...)``.
    """

    site: str
    op: str
    operand: Any = None
    heads: tuple[int, ...] = ()
    positions: PositionSpec = field(default_factory=PositionSpec)
    seed: int = 0
    note: str = ""
    sources: Any = None
    align: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        kind, _ = write_site(self.site)
        if self.op not in OPS:
            raise WorkbenchError(f"operation {self.op!r} unknown: use one of {', '.join(OPS)}")
        if self.op not in SUPPORTED[kind]:
            raise WorkbenchError(
                f"{self.site} supports {', '.join(SUPPORTED[kind])}, not {self.op}: "
                "write head_in(L) for per-head edits"
            )
        set_ = object.__setattr__
        set_(self, "positions", PositionSpec.parse(self.positions))
        set_(self, "heads", tuple(self.heads))
        if any(isinstance(h, bool) or not isinstance(h, int) for h in self.heads):
            raise WorkbenchError(f"heads {self.heads!r} must be integers")
        if len(set(self.heads)) != len(self.heads):
            raise WorkbenchError(f"heads {list(self.heads)} repeat a head: give each head once")
        if self.heads and kind not in ("head_in", "v_out"):
            raise WorkbenchError(f"{self.site} has no heads: pass heads only at head_in(L)")
        if self.op == "patch":
            if not isinstance(self.sources, dict) or not self.sources:
                raise WorkbenchError("patch needs sources {row key: (tokens, width) array}")
            set_(
                self,
                "sources",
                {int(k): _array(v, "patch source") for k, v in self.sources.items()},
            )
            return
        if self.operand is None:
            raise WorkbenchError(f"{self.op} at {self.site} needs an operand")
        if self.op == "scale":
            for f in np.ravel(np.asarray(self.operand, dtype=object)):
                check_factor(f, self.site)
        a = _array(self.operand, f"{self.op} operand")
        if self.op == "scale" and a.ndim > 1:
            raise WorkbenchError(
                f"{self.site}: scale takes one factor or one per head, got {a.shape}"
            )
        if (
            self.op == "project_out"
            and not (np.linalg.norm(a.reshape(-1, a.shape[-1]), axis=-1) > 0).all()
        ):
            raise WorkbenchError(
                f"project_out at {self.site}: the direction is zero; pass a nonzero one"
            )
        set_(self, "operand", a)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "site": self.site,
            "op": self.op,
            "positions": self.positions.to_json(),
        }
        if self.heads:
            out["heads"] = list(self.heads)
        if self.operand is not None:
            out["operand"] = np.asarray(self.operand).tolist()
        if self.op == "resample":
            out["seed"] = self.seed
        if self.note:
            out["note"] = self.note
        if self.sources is not None:
            out["sources"] = {str(k): v.tolist() for k, v in self.sources.items()}
        if self.align is not None:
            out["align"] = [list(p) for p in self.align]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Intervention:
        sources = data.get("sources")
        align = data.get("align")
        return cls(
            site=data["site"],
            op=data["op"],
            operand=data.get("operand"),
            heads=tuple(data.get("heads", ())),
            positions=PositionSpec.parse(data.get("positions", "all")),
            seed=int(data.get("seed", 0)),
            note=str(data.get("note", "")),
            sources={int(k): v for k, v in sources.items()} if sources is not None else None,
            align=tuple((int(a), int(b)) for a, b in align) if align is not None else None,
        )

    def __repr__(self) -> str:
        heads = f", heads={list(self.heads)}" if self.heads else ""
        return f"Intervention({self.op} at {self.site}{heads}, positions={self.positions})"


def values_of(intervention: Any) -> list[Intervention] | None:
    """The :class:`Intervention` values behind ``intervention`` (itself, ``[]`` for ``None``,
    an ``Applied`` context's ``.values``), or ``None`` for a context manager that is not data."""
    if intervention is None:
        return []
    if isinstance(intervention, Intervention):
        return [intervention]
    values = getattr(intervention, "values", None)
    if isinstance(values, tuple) and all(isinstance(v, Intervention) for v in values):
        return list(values)
    return None


def prefix_invariant(values: Any) -> bool:
    """Whether ``values`` write a prompt prefix shared by every row the same way when it is
    prefilled once on its own (as continuous batching does) as inside each prompt.

    Positions ``all``, ``prompt`` and ``response`` name the same prefix tokens either way
    (every one, every one, none); ``last`` and indices count from a row's end, which the
    prefix alone does not have; resampling and patching draw per item, which the shared
    row is not.
    """
    return all(
        v.positions.kind in ("all", "prompt", "response") and v.op not in ("resample", "patch")
        for v in values
    )
