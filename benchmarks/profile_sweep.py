"""Where the demo tempering sweep's time goes in shared batches: prefill, steps, sampling.

    python benchmarks/profile_sweep.py

SmolLM2-135M, the demo's tempering items, lambdas and seeds (``workbench/configs/demo.toml``),
three heads of the middle layer, every condition in shared batches of 48
(:func:`workbench.model.grid.generate_grid`); the continuous loop's forward passes and
its sampling are timed by wrapping them (one torch thread). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import workbench.model.continuous as continuous  # noqa: E402
from benchmarks.demo_sections import demo_splits  # noqa: E402
from workbench.model.compile import head_scales  # noqa: E402
from workbench.model.decoding import DecodingConfig  # noqa: E402
from workbench.model.grid import generate_grid  # noqa: E402
from workbench.model.loading import load_model  # noqa: E402
from workbench.study.config import load_config  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config().tempering
    items = demo_splits()[cfg.split][: cfg.n_items]
    lm = load_model("smollm2-135m-instruct")
    layer = lm.layout.layers_with_attention[len(lm.layout.layers_with_attention) // 2]
    conditions = [
        head_scales(lm.layout, dict.fromkeys([(layer, 0), (layer, 1), (layer, 2)], lam))
        for lam in cfg.lambdas
    ]
    config = DecodingConfig(
        max_new_tokens=cfg.max_new_tokens, do_sample=True, temperature=cfg.temperature,
        top_p=cfg.top_p,
    )  # fmt: skip
    spent: dict[str, dict[str, float]] = {}

    def add(kind: str, seconds: float, tokens: int = 0) -> None:
        row = spent.setdefault(kind, {"calls": 0, "seconds": 0.0, "tokens": 0})
        row["calls"] += 1
        row["seconds"] += seconds
        row["tokens"] += tokens

    run, sample = continuous._Loop._run, continuous._Loop._sample

    def timed_run(self: Any, ids: torch.Tensor, *args: Any) -> torch.Tensor:
        start = time.perf_counter()
        out = run(self, ids, *args)
        add("prefill" if ids.shape[1] > 1 else "step", time.perf_counter() - start, ids.numel())
        return out

    def timed_sample(self: Any, *args: Any) -> None:
        start = time.perf_counter()
        sample(self, *args)
        add("sample", time.perf_counter() - start)

    continuous._Loop._run, continuous._Loop._sample = timed_run, timed_sample  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        generate_grid(lm, items, conditions, list(cfg.seeds), decoding=config, batch_size=48)
        total = time.perf_counter() - start
    finally:
        continuous._Loop._run, continuous._Loop._sample = run, sample  # type: ignore[method-assign]
    print(json.dumps({"total_s": total, **spent}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
