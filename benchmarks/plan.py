"""How much work each section does, per model and mode (all recorded in results.json)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["SECTIONS", "Plan", "plan_for"]

SECTIONS = (
    "capture", "early_stop", "fused", "tempered", "demo_generation", "demo_stage", "demo_sweep",
    "memory",
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """Workload sizes of one model's sections.

    Attributes:
        reps: timed repetitions per path (after one untimed warm-up per path).
        sections: which sections run (``padding`` is model-free and always runs).
        small_batch_items: items captured one at a time (batch size 1).
        large_batch: the large batch size; that many items captured in one batch.
        gen_items, gen_batch, gen_tokens: section 3 (responses forced to ``gen_tokens``).
        temper_items, temper_tokens: section 4 (one batch; responses forced to length).
        memory_items: items per capture path in section 5 (one large batch).
        stream_items, stream_shard: the 1x streamed run (the 10x run has 10x items).
        demo_limit: the first N items of each demo split (None: all 290).
        demo_batch, demo_tokens: the demo's batch size and ``max_new_tokens``.
        reps_demo: timed repetitions of the demo sections (each is minutes on a CPU).
        memory_one_child: measure every memory path in one child process (fast, for
            the smoke test; the numbers are then not comparable).
    """

    reps: int = 3
    sections: tuple[str, ...] = SECTIONS
    small_batch_items: int = 4
    large_batch: int = 16
    gen_items: int = 8
    gen_batch: int = 8
    gen_tokens: int = 64
    temper_items: int = 4
    temper_tokens: int = 16
    memory_items: int = 16
    stream_items: int = 4
    stream_shard: int = 4
    demo_limit: int | None = None
    demo_batch: int = 48
    demo_tokens: int = 48
    reps_demo: int = 2
    memory_one_child: bool = False
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FULL = Plan()
QUICK = Plan(
    reps=1,
    small_batch_items=1,
    large_batch=4,
    gen_items=2,
    gen_batch=2,
    gen_tokens=4,
    temper_items=2,
    temper_tokens=4,
    memory_items=4,
    stream_items=2,
    stream_shard=2,
    demo_limit=2,
    demo_batch=2,
    demo_tokens=4,
    reps_demo=1,
    memory_one_child=True,
    note="--quick: tiny sizes, one repetition; for the smoke test, not for numbers",
)
# On a CPU the 0.6B model is ~4.5x slower than SmolLM2-135M: keep the full run near 20 minutes.
QWEN_CPU = dataclasses.replace(
    FULL,
    reps=2,
    sections=("capture", "early_stop"),
    small_batch_items=2,
    large_batch=8,
    note="CPU time budget: 2 repetitions, large batch 8 (not 16), sections 1-2 only "
    "(the rest run with --device cuda or --sections)",
)


def plan_for(
    model: str,
    *,
    quick: bool,
    device: str,
    reps: int | None = None,
    sections: tuple[str, ...] | None = None,
) -> Plan:
    """The plan for ``model``; ``reps`` and ``sections`` override it when given."""
    if quick:
        plan = QUICK
    elif model == "qwen3-0.6b-random" and not device.startswith("cuda"):
        plan = QWEN_CPU
    else:
        plan = FULL
    if reps is not None:
        plan = dataclasses.replace(plan, reps=reps)
    if sections is not None:
        plan = dataclasses.replace(plan, sections=sections)
    return plan
