"""The one computation every backend runs to apply an intervention.

Each bound intervention becomes, for one forward pass, three tensors over the
site split per head, ``(batch, seq, n_heads, head_dim)`` (broadcastable):
``x -> (x - (x . u) u) * mult + shift``. ``mult`` is 1 and ``shift``/``u`` are 0
everywhere the intervention does not write (other heads, other positions), so
those elements come back bit-identical (``x * 1 + 0 == x``); inside:

* ``scale``: ``mult`` = the factor; ``add``: ``shift`` = the vector;
* ``set`` / ``mean`` / ``resample`` / ``patch``: ``mult`` = 0, ``shift`` = the new value;
* ``project_out``: ``u`` = the unit direction.

:func:`terms` builds them (outside any engine), :func:`run_terms` applies them
with plain tensor operations only, so an nnsight trace body (also a remote one)
runs the same code as a PyTorch or TransformerLens hook (:func:`apply`).

>>> y = apply(bind(iv, lm.layout), x, current_frame(x))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from workbench.core.errors import WorkbenchError
from workbench.model.bound import Bound
from workbench.model.positions import Frame, select

__all__ = ["Terms", "apply", "apply_all", "resample_index", "run_terms", "terms"]

#: ``(mult, shift, u or None, n_heads)`` for one intervention in one forward pass.
Terms = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, int]


def resample_index(key: int, seed: int, n: int) -> int:
    """The bank row a row with item key ``key`` draws (the same on every backend)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % n


def _rows_of(b: Bound, frame: Frame) -> torch.Tensor:
    """``(batch,)`` bool: the rows of ``b``'s condition in a batch several conditions share."""
    if len(frame.groups) != frame.pos.shape[0]:
        raise WorkbenchError(
            f"{b.value.site}: an intervention of condition {b.group} ran in a forward pass "
            "that does not say which condition each row runs under: run it through "
            "generate_grid, or apply it without a condition"
        )
    return torch.tensor([g == b.group for g in frame.groups], dtype=torch.bool)


def _patch_values(b: Bound, frame: Frame, where: torch.Tensor) -> torch.Tensor:
    """``(batch, seq, k, d)``: each written position's value in the source run."""
    batch, seq = frame.pos.shape
    out = torch.zeros(batch, seq, len(b.heads), b.head_dim)
    align = dict(b.value.align) if b.value.align is not None else None
    for row, key in enumerate(frame.keys):
        source = b.sources.get(key)
        if source is None:
            raise WorkbenchError(
                f"patch at {b.value.site}: no source run for row key {key}; patch only the "
                f"rows the source run covers ({len(b.sources)} rows)"
            )
        shift = source.shape[0] - int(frame.capacity[row])  # aligned from the end
        for col, p in enumerate(frame.pos[row].tolist()):
            if p < 0 or not bool(where[row, col]):
                continue
            s = align.get(p) if align is not None else p + shift
            if s is None:
                where[row, col] = False
                continue
            if not 0 <= s < source.shape[0]:
                raise WorkbenchError(
                    f"patch at {b.value.site}: target position {p} of row {key} maps to source "
                    f"position {s}, outside its {source.shape[0]} tokens: the runs do not "
                    "align; pass align=((target, source), ...) or positions both runs have"
                )
            out[row, col] = source[s]
    return out


def terms(b: Bound, frame: Frame, device: Any, dtype: torch.dtype) -> Terms:
    """The three tensors of ``b`` for the forward pass ``frame`` describes."""
    batch, seq = frame.pos.shape
    h, d, op = b.n_heads, b.head_dim, b.value.op
    mask = select(b.value.positions, frame)
    where = torch.ones(batch, seq, dtype=torch.bool) if mask is None else mask.cpu().clone()
    if b.group is not None:
        where &= _rows_of(b, frame)[:, None]
        mask = where
    heads = torch.zeros(h, dtype=torch.bool)
    heads[list(b.heads)] = True
    inside = where[:, :, None, None] & heads[None, None, :, None]  # (b, s, h, 1)
    mult = torch.ones(1, 1, h, d)
    shift = torch.zeros(1, 1, h, d)
    u = None
    idx = list(b.heads)
    if op == "scale":
        assert b.operand is not None
        mult[0, 0, idx] = b.operand[:, None].expand(len(idx), d)
    elif op == "add":
        assert b.operand is not None
        shift[0, 0, idx] = b.operand
    elif op == "project_out":
        assert b.operand is not None
        u = torch.zeros(1, 1, h, d)
        u[0, 0, idx] = b.operand
        u = torch.where(inside, u, torch.zeros(()))
    else:
        mult[0, 0, idx] = 0.0
        if op in ("set", "mean"):
            assert b.operand is not None
            shift[0, 0, idx] = b.operand
        elif op == "resample":
            assert b.operand is not None
            rows = [resample_index(key, b.value.seed, b.operand.shape[0]) for key in frame.keys]
            shift = torch.zeros(batch, 1, h, d)
            shift[:, :, idx] = b.operand[rows][:, None]
        else:  # patch
            values = _patch_values(b, frame, where)
            inside = where[:, :, None, None] & heads[None, None, :, None]
            shift = torch.zeros(batch, seq, h, d)
            shift[:, :, idx] = values
    if mask is not None or op == "patch":
        mult = torch.where(inside, mult, torch.ones(()))
        shift = torch.where(inside, shift, torch.zeros(()))
    cast = [t.to(device=device, dtype=dtype) for t in (mult, shift)]
    return cast[0], cast[1], (u.to(device=device, dtype=dtype) if u is not None else None), h


def run_terms(x: torch.Tensor, all_terms: list[Terms]) -> torch.Tensor:
    """``x`` (``(batch, seq, width)`` or split per head) with each term set applied in order.

    Plain tensor operations only: an nnsight trace body calls this same code.
    """
    for mult, shift, u, h in all_terms:
        y = x.reshape(*x.shape[:2], h, -1) if x.dim() == 3 else x
        if u is not None:
            y = y - (y * u).sum(-1, keepdim=True) * u
        y = y * mult + shift
        x = y.reshape(x.shape)
    return x


def _check(b: Bound, x: torch.Tensor) -> None:
    split = x.dim() == 4
    if x.shape[-1] * (x.shape[-2] if split else 1) != b.n_heads * b.head_dim:
        raise WorkbenchError(
            f"{b.value.site} has shape {tuple(x.shape)}, the intervention was built for "
            f"{b.n_heads} x {b.head_dim}: the layout does not match this model; pass layout=..."
        )


def apply_all(bounds: list[Bound], x: torch.Tensor, frame: Frame) -> torch.Tensor:
    """Apply several interventions at one site, in order (see the module docstring)."""
    for b in bounds:
        _check(b, x)
    return run_terms(x, [terms(b, frame, x.device, x.dtype) for b in bounds])


def apply(b: Bound, x: torch.Tensor, frame: Frame) -> torch.Tensor:
    """``x`` with one bound intervention applied."""
    return apply_all([b], x, frame)
