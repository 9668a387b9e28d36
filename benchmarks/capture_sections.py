"""Sections 1 and 2: ``h_last`` capture against the floor, and mid-layer capture with early stop."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from benchmarks.flops import Flops, utilisation
from benchmarks.paths import capture_paths
from benchmarks.plan import Plan
from benchmarks.timing import alternate, summarize, target
from benchmarks.workload import bench_items
from workbench.core.items import Item
from workbench.model.capture import encode_items
from workbench.model.loaded import LoadedModel

__all__ = ["capture_section", "early_stop_section", "mid_layer"]


def mid_layer(lm: LoadedModel) -> int:
    """The mid-layer site of section 2: a third of the way up."""
    return lm.layout.n_layers // 3


def _diffs(outputs: Mapping[str, torch.Tensor]) -> dict[str, float]:
    ref = outputs["floor"]
    return {name: float((out - ref).abs().max()) for name, out in outputs.items()}


def _token_counts(lm: LoadedModel, items: list[Item], batch_size: int) -> dict[str, int]:
    lengths = [len(e) for e in encode_items(lm, items)]
    padded = sum(
        batch_size * max(lengths[i : i + batch_size]) if batch_size > 1 else lengths[i]
        for i in range(0, len(lengths), batch_size)
    )
    return {"n_tokens": sum(lengths), "n_padded_tokens": padded}


def _attach(rows: list[dict[str, Any]], diffs: Mapping[str, float]) -> list[dict[str, Any]]:
    for row in rows:
        row["max_abs_diff_vs_floor"] = diffs[row["path"]]
    return rows


def _capture_flops(lm: LoadedModel, items: list[Item]) -> float:
    """Model FLOPs of the feature: every decoder layer over every real token (no padding;
    no LM head, which a capture does not need)."""
    flops = Flops.of(lm)
    return sum(flops.sequence(len(e)) for e in encode_items(lm, items))


def _add_utilisation(
    rows: list[dict[str, Any]], flops: float, peak: dict[str, Any] | None
) -> list[dict[str, Any]]:
    for row in rows:
        if peak is not None:
            row.update(utilisation(flops, row["median_s"], peak))
    return rows


def capture_section(
    lm: LoadedModel,
    plan: Plan,
    *,
    bridge: Any,
    nnm: Any,
    sync: Callable[[], None],
    log: Callable[[str], None],
    peak: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Section 1: ``h_last`` at batch 1 (one item at a time) and at the large batch size.

    Batch 1 runs first, after one untimed warm-up call of every path; the large
    batch then needs no separate warm-up. Values of every path are compared with
    the floor's (first timed round).
    """
    items = bench_items(max(plan.large_batch, plan.small_batch_items))
    runs, targets = [], []
    for batch_size, n in ((1, plan.small_batch_items), (plan.large_batch, plan.large_batch)):
        subset = items[:n]
        paths = capture_paths(lm, subset, batch_size, bridge=bridge, nnm=nnm)
        if batch_size == 1:
            log("section 1: warm-up")
            for fn in paths.values():
                fn()
        log(f"section 1: h_last, batch {batch_size}, {n} items")
        times, first = alternate(paths, plan.reps, sync, log)
        rows = _attach(summarize(times, "floor"), _diffs(first))
        _add_utilisation(rows, _capture_flops(lm, subset), peak)
        runs.append(
            {
                "batch_size": batch_size,
                "n_items": n,
                **_token_counts(lm, subset, batch_size),
                "rows": rows,
            }
        )
        by = {r["path"]: r for r in rows}
        limit = 1.05 if batch_size == 1 else 1.02
        for path in ("workbench", "workbench_no_early_stop"):
            targets.append(
                target(
                    f"h_last capture <= {limit}x plain forward at batch {batch_size}",
                    by[path]["ratio"],
                    limit,
                    "<=",
                    path=path,
                    section="capture",
                )
            )
        if peak is not None and batch_size > 1:
            targets.append(
                target(
                    f"capture >= 75% of the matmul peak at batch {batch_size}",
                    by["workbench"]["fraction_of_peak"],
                    0.75,
                    ">=",
                    path="workbench",
                    section="capture",
                )
            )
    return {"site": "h_last", "runs": runs, "targets": targets}


def early_stop_section(
    lm: LoadedModel,
    plan: Plan,
    *,
    bridge: Any,
    nnm: Any,
    sync: Callable[[], None],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Section 2: ``resid(L)`` with early stop against a full forward pass (LM head included)."""
    layer = mid_layer(lm)
    n_layers = lm.layout.n_layers
    items = bench_items(plan.large_batch)
    paths = capture_paths(
        lm,
        items,
        plan.large_batch,
        bridge=bridge,
        nnm=nnm,
        layer=layer,
        which=("floor", "workbench", "transformer_lens_early_stop", "nnsight_early_stop"),
    )
    log(f"section 2: resid({layer}) of {n_layers} layers, batch {plan.large_batch}")
    times, first = alternate(paths, plan.reps, sync, log)
    rows = _attach(summarize(times, "floor"), _diffs(first))
    limit = (layer + 1) / n_layers + 0.1
    ratio = next(r["ratio"] for r in rows if r["path"] == "workbench")
    return {
        "site": f"resid({layer})",
        "layer": layer,
        "n_layers": n_layers,
        "batch_size": plan.large_batch,
        "n_items": len(items),
        **_token_counts(lm, items, plan.large_batch),
        "rows": rows,
        "targets": [
            target(
                "mid-layer capture with early stop <= (L+1)/n_layers + 0.1 of a full forward",
                ratio,
                limit,
                "<=",
                path="workbench",
                section="early_stop",
            )
        ],
    }
