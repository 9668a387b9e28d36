"""Section 5: peak memory per capture path and for a 10x larger streamed run.

Each measurement runs in its own child process (``python -m benchmarks.memory
SPEC``), so no path inherits another's allocator state. The child loads the
model, builds only its own path (peers wrap the loaded model itself: no copy),
runs it once on one item to warm up, resets the kernel's peak-RSS counter
(``5`` into ``/proc/self/clear_refs``), runs the measured call and reads
``VmHWM`` from ``/proc/self/status``. On CUDA it also reports
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
``--quick`` measures every path in one child (to exercise the code quickly):
those numbers are not comparable with each other.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CAPTURE_PATHS = ("floor", "hidden_states", "workbench", "transformer_lens", "nnsight")
STREAM_PATHS = ("stream_1x", "stream_10x")

__all__ = ["CAPTURE_PATHS", "STREAM_PATHS", "memory_section"]


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _build(lm: Any, spec: dict[str, Any], path: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(warm-up call, measured call) for ``path``."""
    from benchmarks.paths import capture_paths
    from benchmarks.workload import bench_items, nnsight_model, transformer_lens_bridge
    from workbench.model.capture import capture_to_store

    size = spec["sizes"][path]
    n, batch = size["n_items"], size["batch_size"]
    items = bench_items(n)
    if path in CAPTURE_PATHS:
        copy = spec["one_child"]  # peers change the model in place: copy it when others follow
        bridge = (
            transformer_lens_bridge(lm, copy_model=copy) if path == "transformer_lens" else None
        )
        nnm = nnsight_model(lm, copy_model=copy) if path == "nnsight" else None
        build = lambda its, bs: capture_paths(  # noqa: E731
            lm, its, bs, bridge=bridge, nnm=nnm, which=(path,)
        )[path]
        return build(items[:1], 1), build(items, batch)
    sites = ["h_last", f"head_in({lm.layout.n_layers // 2},last=8)"]
    tmp = Path(spec["tmp"]) / path
    return (
        lambda: capture_to_store(lm, items[:1], sites, tmp / "warm", shard_size=1, batch_size=1),
        lambda: capture_to_store(
            lm, items, sites, tmp / "run", shard_size=size["shard_size"], batch_size=batch
        ),
    )


def _measure(lm: Any, spec: dict[str, Any], path: str) -> dict[str, Any]:
    import torch

    warm, run = _build(lm, spec, path)
    warm()
    gc.collect()
    cuda = spec["device"].startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    baseline = _status_mb("VmRSS")
    cuda_base = torch.cuda.memory_allocated() / 2**20 if cuda else None
    reset = _reset_peak()
    start = time.perf_counter()
    run()
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    out: dict[str, Any] = {
        "path": path,
        **spec["sizes"][path],
        "rss_before_mb": baseline,
        "peak_rss_mb": peak,
        "peak_rss_delta_mb": peak - baseline,
        "peak_counter_reset": reset,
        "wall_s": wall,
    }
    if cuda:
        cuda_peak = torch.cuda.max_memory_allocated() / 2**20
        out.update(cuda_peak_mb=cuda_peak, cuda_peak_delta_mb=cuda_peak - (cuda_base or 0.0))
    return out


def child(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Load the model once and measure ``spec["paths"]`` in turn."""
    import torch

    from benchmarks.workload import load_bench_model

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    lm = load_bench_model(spec["model"], device=spec["device"], dtype=spec["dtype"])
    return [_measure(lm, spec, path) for path in spec["paths"]]


def _spawn(spec: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", json.dumps(spec)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"memory child for {spec['paths']} failed: " + " | ".join(tail))
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


def memory_section(
    model: str,
    plan: Any,
    *,
    device: str,
    dtype: str,
    threads: int | None,
    log: Callable[[str], None],
    timeout: float = 900,
) -> dict[str, Any]:
    """Peak memory per capture path (one large batch) and streamed runs at 1x and 10x items."""
    from benchmarks.timing import target

    sizes: dict[str, dict[str, int]] = {
        path: {"n_items": plan.memory_items, "batch_size": plan.large_batch}
        for path in CAPTURE_PATHS
    }
    for path, scale in zip(STREAM_PATHS, (1, 10), strict=True):
        sizes[path] = {
            "n_items": scale * plan.stream_items,
            "batch_size": plan.stream_shard,
            "shard_size": plan.stream_shard,
        }
    base = {"model": model, "device": device, "dtype": dtype, "threads": threads, "sizes": sizes}
    groups = [list(sizes)] if plan.memory_one_child else [[p] for p in sizes]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        for paths in groups:
            log(f"section 5: {', '.join(paths)} in a child process")
            spec = {**base, "paths": paths, "one_child": len(paths) > 1, "tmp": tmp}
            rows += _spawn(spec, timeout)
    by = {r["path"]: r for r in rows}
    key = "cuda_peak_mb" if device.startswith("cuda") else "peak_rss_mb"
    growth = by["stream_10x"][key] / by["stream_1x"][key] - 1.0
    return {
        "metric": key,
        "one_child_for_all_paths": plan.memory_one_child,
        "rows": rows,
        "stream_growth": growth,
        "targets": [
            target(
                "streamed capture: peak memory grows < 10% from 1x to 10x items",
                growth,
                0.10,
                "<",
                path="capture_to_store",
                section="memory",
            )
        ],
    }


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))))
