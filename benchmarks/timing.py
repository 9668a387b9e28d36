"""Alternating repetitions and their summary: median, min-max, ratio to the floor.

Paths are timed in turn, one round after another, so a slow spell of a shared
machine hits every path rather than one; each round starts one path later
(A B C, B C A, C A B, ...) so no path is always first. The garbage collector
runs before every timed call and is off inside it (as in ``timeit``). The ratio of a path is its median over the
floor's median; the paired ratios (path / floor within one repetition, run
back to back) give the spread.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = ["alternate", "summarize", "synchronizer", "target"]


def synchronizer(device: torch.device) -> Callable[[], None]:
    """Waits for queued device work (CUDA kernels run asynchronously); a no-op on CPU."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def alternate(
    paths: Mapping[str, Callable[[], Any]],
    reps: int,
    sync: Callable[[], None],
    log: Callable[[str], None] = lambda _: None,
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Seconds per call of every path, ``reps`` rounds, paths in turn within a round;
    and what each path returned in the first round (for checks outside the timing)."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    first: dict[str, Any] = {}
    names = list(paths)
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            sync()
            gc.disable()  # as timeit does: no collection pauses inside a timed call
            try:
                start = time.perf_counter()
                out = paths[name]()
                sync()
                times[name].append(time.perf_counter() - start)
            finally:
                gc.enable()
            if rep == 0:
                first[name] = out
            del out
            log(f"  rep {rep + 1}/{reps} {name}: {times[name][-1]:.3f} s")
    return times, first


def summarize(
    times: Mapping[str, list[float]], floor: str, *, work: float | None = None
) -> list[dict[str, Any]]:
    """One row per path. ``ratio`` = median time / floor's median time (lower is faster).

    With ``work`` (units done per call, e.g. generated tokens) a row also gets
    ``throughput`` (units per second, from the median) and ``throughput_ratio``
    (floor's median time / this median time: higher is faster).
    """
    base = statistics.median(times[floor])
    rows = []
    for name, secs in times.items():
        med = statistics.median(secs)
        paired = [s / f for s, f in zip(secs, times[floor], strict=True)]
        row: dict[str, Any] = {
            "path": name,
            "median_s": med,
            "min_s": min(secs),
            "max_s": max(secs),
            "times_s": list(secs),
            "ratio": med / base,
            "paired_ratio_min": min(paired),
            "paired_ratio_max": max(paired),
        }
        if work is not None:
            row["throughput"] = work / med
            row["throughput_ratio"] = base / med
        rows.append(row)
    return rows


def target(
    name: str, value: float, threshold: float, direction: str, **context: Any
) -> dict[str, Any]:
    """A target check: ``direction`` is ``"<="``, ``"<"`` or ``">="`` (value against threshold)."""
    checks = {"<=": value <= threshold, "<": value < threshold, ">=": value >= threshold}
    met = checks[direction]
    return {
        "target": name,
        "value": value,
        "threshold": threshold,
        "direction": direction,
        "met": bool(met),
        **context,
    }
