"""Teacher-forced log-probs under many conditions at once (shared batches, a shared
prompt prefix) equal one read per condition, for every position kind and layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interventions.base import Applied
from interventions.targets import answer_logprob, answer_logprob_grid
from workbench.core.items import Item
from workbench.model.hooks import attach
from workbench.model.intervention import Intervention

ITEMS = [
    Item("a", "What is two plus two?"),
    Item("b", "Name the capital of France, please, in one word"),
    Item("c", "Hi"),
    Item("d", "Which ocean is the largest one on Earth, would you say?"),
]
ANSWERS = ["4", "Paris is the capital", "hello there", "Pacific"]


def _conditions(lm, positions: str) -> list[list[Intervention]]:
    layer = lm.layout.layers_with_attention[-1]
    d = lm.layout.d_model
    v = torch.randn(d, generator=torch.Generator().manual_seed(0)).numpy()
    return [
        [],
        [Intervention(f"resid({layer})", "add", operand=3 * v, positions=positions)],
        [Intervention(f"head_in({layer})", "scale", heads=(0, 1), operand=[0.0], positions=positions)],
        [Intervention("resid(0)", "project_out", operand=v, positions=positions),
         Intervention(f"resid({layer})", "add", operand=-2 * v, positions=positions)],
    ]  # fmt: skip


def _one_by_one(lm, conditions):
    out = []
    for values in conditions:
        with Applied(lm, values) if values else attach([]):
            out.append(answer_logprob(lm, ITEMS, ANSWERS, batch_size=3))
    return np.array(out)


@pytest.mark.parametrize("arch", ["llama", "qwen3", "gpt2", "gemma3"])
@pytest.mark.parametrize("positions", ["last", "response", "all"])
def test_every_condition_equals_its_own_read(tiny, arch, positions):
    lm = tiny(arch)
    conditions = _conditions(lm, positions)
    got = answer_logprob_grid(lm, ITEMS, ANSWERS, conditions, batch_size=3)
    want = _one_by_one(lm, conditions)
    assert got.shape == (len(conditions), len(ITEMS))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert np.abs(want[1:] - want[0]).max() > 1e-2  # the conditions do move it


@pytest.mark.parametrize(("positions", "prefills"), [("last", 1), ("response", 1), ("all", 0)])
def test_the_prefix_is_computed_once_per_bucket_only_when_no_condition_writes_it(
    tiny, monkeypatch, positions, prefills
):
    import interventions.targets as targets

    lm = tiny("llama")
    calls = []
    real = targets._prefill

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(targets, "_prefill", counting)
    answer_logprob_grid(lm, ITEMS, ANSWERS, _conditions(lm, positions), batch_size=8)
    assert calls == [len(ITEMS)] * prefills  # one bucket of 4 items for all 4 conditions
