"""Where capture's time goes: operator shares, attention implementation, batch size.

    python benchmarks/profile_capture.py --out benchmarks/profile_capture.json

SmolLM2-135M, the demo's items with a 24-word response each (as a probe set),
``capture(h_last)`` with early stop. For each batch size and attention
implementation: the median of ``--reps`` alternating calls, its model FLOP/s and
fraction of a matmul peak measured in the same run (:mod:`benchmarks.flops`), then
one profiled call per batch size (``torch.profiler``) split into matrix
multiplies, attention, copies (``cat``/``copy_``/``index``/``contiguous``) and the rest.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks.demo_sections import demo_splits  # noqa: E402
from benchmarks.flops import Flops, matmul_peak  # noqa: E402
from workbench.core.items import Item  # noqa: E402
from workbench.model.capture import capture, encode_items  # noqa: E402
from workbench.model.loading import load_model, wrap_model  # noqa: E402

_GROUPS = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm"),
    "attention": ("attention", "sdpa", "softmax"),
    "copies": ("aten::cat", "aten::copy_", "aten::index", "aten::contiguous", "aten::clone"),
}


def _group(name: str) -> str:
    for group, keys in _GROUPS.items():
        if any(k in name for k in keys):
            return group
    return "other"


def _items(n: int) -> list[Item]:
    words = [
        "the",
        "answer",
        "is",
        "that",
        "it",
        "depends",
        "on",
        "several",
        "things",
        "we",
        "should",
        "check",
        "carefully",
        "first",
    ]
    base = [it for split in demo_splits().values() for it in split][:n]
    return [Item(it.id, it.prompt, " ".join((words * 2)[:24])) for it in base]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "profile_capture.json")
    p.add_argument("--items", type=int, default=96)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--batches", default="8,16,48")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    items = _items(args.items)
    out: dict[str, Any] = {"load_before": Path("/proc/loadavg").read_text().split()[:3]}
    lm = load_model("smollm2-135m-instruct")
    eager = copy.deepcopy(lm.model)
    eager.set_attn_implementation("eager")
    lms = {"sdpa": lm, "eager": wrap_model(eager, lm.tokenizer, name="smollm2 (eager attention)")}
    flops = Flops.of(lm)
    encoded = encode_items(lm, items)
    work = sum(flops.sequence(len(e)) for e in encoded)
    out["n_items"], out["n_tokens"] = len(items), sum(len(e) for e in encoded)
    out["peak"] = matmul_peak(lm.device, lm.dtype)
    batches = [int(b) for b in args.batches.split(",")]
    paths = {(impl, b): (lms[impl], b) for impl in lms for b in batches}
    for lm_ in lms.values():
        capture(lm_, items[:2], ["h_last"])
    times: dict[str, list[float]] = {f"{i} batch {b}": [] for i, b in paths}
    for rep in range(args.reps):
        order = list(paths.items())
        for (impl, b), (model, size) in order[rep % len(order) :] + order[: rep % len(order)]:
            start = time.perf_counter()
            capture(model, items, ["h_last"], batch_size=size)
            times[f"{impl} batch {b}"].append(time.perf_counter() - start)
            print(f"rep {rep} {impl} batch {b}: {times[f'{impl} batch {b}'][-1]:.2f} s", flush=True)
    out["rows"] = [
        {
            "path": name,
            "median_s": statistics.median(ts),
            "times_s": ts,
            "achieved_flops": work / statistics.median(ts),
            "fraction_of_peak": work / statistics.median(ts) / out["peak"]["peak_flops"],
        }
        for name, ts in times.items()
        if ts
    ]
    profiles = {}
    for b in batches:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            capture(lm, items, ["h_last"], batch_size=b)
        shares: dict[str, float] = {}
        for ev in prof.key_averages():
            shares[_group(ev.key)] = shares.get(_group(ev.key), 0.0) + ev.self_cpu_time_total
        total = sum(shares.values())
        profiles[f"sdpa batch {b}"] = {k: v / total for k, v in shares.items()}
        top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:8]
        profiles[f"sdpa batch {b}"]["top_ops"] = [  # type: ignore[assignment]
            [e.key, e.self_cpu_time_total / total] for e in top
        ]
    out["profile_shares"] = profiles
    out["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
