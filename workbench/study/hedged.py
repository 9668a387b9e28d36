"""The hedge-licensing condition: every prompt with an instruction that licenses hedging.

On the plain prompt the demo model asserts nearly every answer, so the
*asserts* axis has one class and cannot be probed. Appending
``[hedged] instruction`` (default ``If you are unsure, start your answer with
"I think".``) makes both classes occur; the model answers again greedily
under the same cap, through the same collect stage (cached in
``conditions/hedged/<split>/``, ``h_last`` only), and the ``asserts`` probe is
fitted on these answers' ``h_last``.

>>> from workbench.core.items import Item
>>> hedge_items([Item("a", "What is 2 + 2?")], "Say 'I think' if unsure.")[0].prompt
"What is 2 + 2? Say 'I think' if unsure."
"""

from __future__ import annotations

from collections.abc import Sequence

from workbench.core.items import Item
from workbench.study.collect import SplitData, collect_split
from workbench.study.config import CaptureConfig, GenerationConfig, ModelConfig, section_json
from workbench.study.context import StageContext
from workbench.study.sections import HedgedConfig

__all__ = ["ROOT", "collect_hedged", "hedge_items"]

ROOT = "conditions/hedged"


def hedge_items(items: Sequence[Item], instruction: str) -> list[Item]:
    """The items with ``instruction`` appended to each prompt (after a space)."""
    return [Item(it.id, f"{it.prompt} {instruction}", it.response, it.labels) for it in items]


def collect_hedged(
    split: str,
    items: Sequence[Item],
    ctx: StageContext,
    *,
    hedged: HedgedConfig,
    model: ModelConfig,
    generation: GenerationConfig,
    capture: CaptureConfig,
) -> SplitData:
    """Answer and capture ``split`` under the hedge-licensing instruction (or reuse it).

    Runs on one process (the study gives this stage a single-process context).
    """
    data = collect_split(
        split, hedge_items(items, hedged.instruction), ctx, model=model, generation=generation,
        capture=capture, root=ROOT, condition=section_json(hedged), only_h_last=True,
    )  # fmt: skip
    if data is None:
        raise RuntimeError("the hedged condition is collected by one process only")
    return data
