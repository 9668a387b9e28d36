"""One constructor per operation: thin functions building intervention values.

Each returns an :class:`~interventions.base.Applied` context manager over one
:class:`~workbench.model.intervention.Intervention`; the site is in the
workbench's site language (``resid(L)``, ``head_in(L)`` with ``heads``,
``mlp_out(L)``), positions count per unpadded row (``all``, ``prompt``,
``response``, ``last``, ``last:N``, indices). Reference statistics for mean- and
resample-ablation come from :func:`collect_site` over a reference set the user
names (by default, callers pass the training split, read at the same positions).

>>> with project_out(lm, "resid(10)", direction, positions="last"):  # doctest: +SKIP
...     gens = generate(lm, items)
>>> bank = collect_site(lm, train_items, "head_in(3)", heads=(1,), positions="last")  # doctest: +SKIP
>>> with ablate_mean(lm, "head_in(3)", bank.mean(0), heads=(1,), positions="last"):  # doctest: +SKIP
...     logits = backend.logits(items)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from interventions.base import Applied, model_and_layout
from interventions.steering import check_alpha
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.model.bound import bind
from workbench.model.capture import encode_items
from workbench.model.compile import site_module
from workbench.model.hooks import attach
from workbench.model.intervention import Intervention as Value
from workbench.model.loaded import unwrap
from workbench.model.positions import Frame, PositionSpec, item_key, select, using_frame
from workbench.model.tokens import collate, length_buckets

__all__ = [
    "ablate_mean",
    "add",
    "collect_site",
    "patch",
    "project_out",
    "resample",
    "set_to",
]


def _one(model: Any, value: Value, kind: str, **extra: Any) -> Applied:
    return Applied(model, [value], {"kind": kind, "site": value.site, **extra})


def add(
    model: Any,
    site: str,
    vector: ArrayLike,
    *,
    alpha: float = 1.0,
    heads: Sequence[int] = (),
    positions: Any = "all",
) -> Applied:
    """Add ``alpha * vector`` at ``site`` (per head at ``head_in``: one row per head)."""
    a = check_alpha(alpha, "alpha")
    v = np.asarray(vector, dtype=np.float64) * a
    return _one(model, Value(site, "add", v, tuple(heads), positions), "add", alpha=a)


def set_to(
    model: Any, site: str, vector: ArrayLike, *, heads: Sequence[int] = (), positions: Any = "all"
) -> Applied:
    """Replace the activation at ``site`` by ``vector``."""
    return _one(model, Value(site, "set", vector, tuple(heads), positions), "set")


def project_out(
    model: Any,
    site: str,
    direction: ArrayLike,
    *,
    heads: Sequence[int] = (),
    positions: Any = "all",
) -> Applied:
    """Remove the component along ``direction`` (directional ablation, ``x - (x.u)u``)."""
    return _one(
        model, Value(site, "project_out", direction, tuple(heads), positions), "project_out"
    )


def ablate_mean(
    model: Any,
    site: str,
    mean: ArrayLike,
    *,
    heads: Sequence[int] = (),
    positions: Any = "all",
    reference: str = "reference set",
) -> Applied:
    """Replace the activation by its stored mean over ``reference`` (mean-ablation)."""
    value = Value(site, "mean", mean, tuple(heads), positions, note=reference)
    return _one(model, value, "mean_ablation", reference=reference)


def resample(
    model: Any,
    site: str,
    bank: ArrayLike,
    *,
    heads: Sequence[int] = (),
    positions: Any = "all",
    seed: int = 0,
    reference: str = "reference set",
) -> Applied:
    """Replace the activation by a row of ``bank`` drawn per item (resample-ablation)."""
    value = Value(site, "resample", bank, tuple(heads), positions, seed=seed, note=reference)
    return _one(model, value, "resample_ablation", reference=reference, seed=seed)


def patch(
    model: Any,
    site: str,
    sources: Mapping[int, ArrayLike],
    *,
    heads: Sequence[int] = (),
    positions: Any = "all",
    align: Sequence[tuple[int, int]] | None = None,
    source: str = "source run",
) -> Applied:
    """Write a source run's activations (``{item key: (tokens, width)}``, from
    :func:`collect_site` with ``per_item=True``) into this run at ``positions``,
    aligned from the end unless ``align`` maps target to source positions."""
    value = Value(
        site, "patch", None, tuple(heads), positions, note=source,
        sources=dict(sources),
        align=tuple((int(a), int(b)) for a, b in align) if align is not None else None,
    )  # fmt: skip
    return _one(model, value, "patch", source=source)


def _recorder(
    out: list[tuple[int, np.ndarray]], heads: tuple[int, ...], n_heads: int, spec: PositionSpec
) -> Callable[[torch.Tensor, Frame], None]:
    def record(x: torch.Tensor, frame: Frame) -> None:
        y = x.reshape(*x.shape[:2], n_heads, -1)[:, :, list(heads)].float()
        mask = select(spec, frame)
        for row, key in enumerate(frame.keys):
            cols = frame.pos[row] >= 0
            if mask is not None:
                cols = cols & mask[row]
            out.append((key, y[row, cols].flatten(1).cpu().numpy()))  # (n, heads * dim), n may be 0

    return record


def collect_site(
    model: Any,
    items: Sequence[Item | str | Mapping[str, Any]],
    site: str,
    *,
    heads: Sequence[int] = (),
    positions: Any = "all",
    per_item: bool = False,
    batch_size: int = 8,
    chat_template: bool | None = None,
) -> Any:
    """A site's activations over ``items`` at ``positions`` (prompt + response, unpadded).

    Returns a ``(n_tokens, width)`` bank (stack it, or ``.mean(0)`` for mean-ablation),
    or with ``per_item=True`` ``{item key: (tokens, width)}`` for :func:`patch`.
    Reads through PyTorch hooks on the HF modules (every backend shares the weights).
    """
    lm, _ = unwrap(model) if not hasattr(model, "layout") else (model, None)
    _, layout = model_and_layout(lm)
    spec = PositionSpec.parse(positions)
    probe = bind(Value(site, "scale", [1.0], tuple(heads)), layout)  # checks site and heads
    parsed = as_items(items)
    encoded = encode_items(lm, parsed, chat_template=chat_template)
    rows: list[tuple[int, np.ndarray]] = []
    record = _recorder(rows, probe.heads, probe.n_heads, spec)
    holder: dict[str, Frame] = {}
    module = site_module(layout, probe.kind, probe.layer)

    def pre(mod: Any, args: tuple[Any, ...]) -> None:
        record(args[0], holder["frame"])

    def post(mod: Any, args: tuple[Any, ...], output: Any) -> None:
        record(output[0] if isinstance(output, tuple) else output, holder["frame"])

    from workbench.model.hooks import Hook

    hook = Hook(module, "pre", pre) if probe.kind == "head_in" else Hook(module, "post", post)
    with torch.inference_mode(), attach([hook]):
        for bucket in length_buckets([len(e) for e in encoded], batch_size):
            batch = collate([encoded[i].ids for i in bucket], lm.pad_id, device=lm.device)
            frame = Frame.of_batch(
                batch.attention_mask,
                [encoded[i].n_prompt for i in bucket],
                [item_key(parsed[i].id) for i in bucket],
            )
            holder["frame"] = frame
            with using_frame(frame):
                lm.model(
                    input_ids=batch.input_ids,
                    attention_mask=batch.attention_mask,
                    position_ids=batch.position_ids,
                    use_cache=False,
                )
    if per_item:
        return dict(rows)
    bank = [a for _, a in rows if len(a)]
    if not bank:
        raise WorkbenchError(f"no tokens of {site} at positions {spec} in the reference items")
    return np.concatenate(bank)
