"""Conditions sharing batches (per-row interventions): every cell equals a generation run
alone under a hand-written hook; draws do not depend on the other conditions in the
batch; layouts that cannot share fall back to one run per cell and say so."""

from __future__ import annotations

import pytest
import torch
from support import prompt_items, record_prefix_tokens

from workbench.core.errors import WorkbenchError
from workbench.model.bound import bind
from workbench.model.compile import head_scales
from workbench.model.decoding import DecodingConfig
from workbench.model.edits import apply
from workbench.model.generation import generate
from workbench.model.grid import generate_grid
from workbench.model.hooks import Hook, attach
from workbench.model.intervention import Intervention
from workbench.model.positions import Frame

ITEMS = prompt_items()[0][:5]
PREFIXED = prompt_items()[1]
SAMPLED = DecodingConfig(max_new_tokens=8, do_sample=True, temperature=1.0, top_p=0.95)


def _by_hand(lm, layer: int, head: int, factor: float):
    """A pre-hook on ``o_proj`` scaling one head's slice: the independent computation."""
    d = lm.layout.attention(layer).head_dim

    def scale(module, args):
        x = args[0].clone()
        x[..., head * d : (head + 1) * d] *= factor
        return (x, *args[1:])

    return attach([Hook(lm.layout.o_proj(layer), "pre", scale)])


def _tokens(gens):
    return [g.token_ids for g in gens]


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
@pytest.mark.parametrize(
    "config", [DecodingConfig(max_new_tokens=8), SAMPLED], ids=["greedy", "sampled"]
)
def test_every_cell_equals_its_condition_run_alone_under_a_hand_written_hook(tiny, arch, config):
    lm = tiny(arch)
    layer = lm.layout.layers_with_attention[-1]
    factors = [0.0, 3.0]
    conditions = [[], *(head_scales(lm.layout, {(layer, 1): f}) for f in factors)]
    grid = generate_grid(lm, ITEMS, conditions, seeds=[0, 7], decoding=config, batch_size=4)
    assert grid.loop == "continuous (shared batches)"
    for seed in (0, 7):
        kw = {**config.to_json(), "seed": seed}
        plain = generate(lm, ITEMS, batch_size=2, **kw)
        assert _tokens(grid.cell(0, seed)) == _tokens(plain)
        for c, f in enumerate(factors, start=1):
            with _by_hand(lm, layer, 1, f):
                alone = generate(lm, ITEMS, batch_size=2, **kw)
            assert _tokens(grid.cell(c, seed)) == _tokens(alone), (seed, f)
            assert grid.cell(c, seed).config.seed == seed
    # the conditions did differ: otherwise the test could not fail
    assert _tokens(grid.cell(1, 0)) != _tokens(grid.cell(0, 0))


def test_a_rows_draws_do_not_depend_on_the_conditions_beside_it(tiny):
    lm = tiny("llama")
    layer = lm.layout.layers_with_attention[0]
    a = head_scales(lm.layout, {(layer, 0): 0.5}, positions="response")
    b = head_scales(lm.layout, {(layer, 1): 0.0})
    alone = generate_grid(lm, ITEMS, [a], seeds=[3], decoding=SAMPLED, batch_size=2)
    mixed = generate_grid(lm, ITEMS[::-1], [b, a, []], seeds=[3], decoding=SAMPLED, batch_size=5)
    assert _tokens(mixed.cell(1, 3)) == _tokens(alone.cell(0, 3))[::-1]
    with_iv = generate(lm, ITEMS, interventions=a, **{**SAMPLED.to_json(), "seed": 3})
    assert _tokens(alone.cell(0, 3)) == _tokens(with_iv)


def test_a_layout_that_cannot_share_runs_each_cell_alone_and_says_so(tiny):
    lm = tiny("gemma3")  # sliding-window caches cannot be cut per row
    layer = lm.layout.layers_with_attention[0]
    conditions = [[], head_scales(lm.layout, {(layer, 0): 0.0})]
    grid = generate_grid(lm, ITEMS[:3], conditions, seeds=[0], decoding=SAMPLED)
    assert grid.loop.startswith("sequential (fallback: ")
    kw = {**SAMPLED.to_json(), "seed": 0}
    assert _tokens(grid.cell(1, 0)) == _tokens(
        generate(lm, ITEMS[:3], interventions=conditions[1], **kw)
    )


def test_a_conditions_edit_outside_a_grid_is_refused_not_applied_to_every_row(tiny):
    lm = tiny("llama")
    value = Intervention("head_in(0)", "scale", heads=(0,), operand=[0.0])
    b = bind(value, lm.layout)
    from dataclasses import replace

    x = torch.ones(2, 3, lm.layout.attention(0).n_heads * lm.layout.attention(0).head_dim)
    with pytest.raises(WorkbenchError, match="does not say which condition"):
        apply(replace(b, group=1), x, Frame.plain(x))
    frame = Frame.plain(x)
    grouped = Frame(frame.pos, frame.n_prompt, frame.length, frame.capacity, frame.keys,
                    frame.seen, groups=(0, 1))  # fmt: skip
    y = apply(replace(b, group=1), x, grouped)
    d = lm.layout.attention(0).head_dim
    assert torch.equal(y[0], x[0])  # row of another condition: untouched
    assert torch.equal(y[1, :, :d], torch.zeros(3, d)) and torch.equal(y[1, :, d:], x[1, :, d:])


@pytest.mark.parametrize(
    ("conditions", "seeds", "match"),
    [
        ([], [0], "at least one condition"),
        ([Intervention("head_in(0)", "scale", operand=[0.5])], [0], "list of Intervention"),
        ([["temper"]], [0], "conditions share batches only as Intervention"),
        ([[]], [], "at least one seed"),
        ([[]], [1, 1], "each once"),
    ],
)
def test_bad_grids_are_refused_before_any_work(tiny, conditions, seeds, match):
    with pytest.raises(WorkbenchError, match=match):
        generate_grid(tiny("llama"), ITEMS, conditions, seeds=seeds)


def test_an_intervention_the_model_does_not_have_is_refused_before_generating(tiny):
    lm = tiny("llama")
    bad = [[Intervention("head_in(0)", "scale", heads=(99,), operand=[0.5])]]
    with pytest.raises(WorkbenchError, match="head 99 is out of range"):
        generate_grid(lm, ITEMS, [[], *bad])


@pytest.mark.parametrize(("positions", "shared"), [("all", True), ("last", False)])
def test_the_shared_prefix_is_prefilled_once_per_condition_under_its_edits(
    tiny, monkeypatch, positions, shared
):
    lm = tiny("llama")
    layer = lm.layout.layers_with_attention[0]
    factors = [0.0, 3.0]
    conditions = [[], *(head_scales(lm.layout, {(layer, 1): f}, positions) for f in factors)]
    prefixes = record_prefix_tokens(monkeypatch)
    grid = generate_grid(lm, PREFIXED, conditions, seeds=[1], decoding=SAMPLED, batch_size=4)
    assert (prefixes[0] > 5) == shared
    monkeypatch.undo()
    kw = {**SAMPLED.to_json(), "seed": 1}
    for c, f in enumerate(factors, start=1):
        with _by_hand(lm, layer, 1, f) if positions == "all" else attach([]):
            alone = generate(lm, PREFIXED, batch_size=2, loop="static", **kw,
                             interventions=[] if positions == "all" else conditions[c])  # fmt: skip
        assert _tokens(grid.cell(c, 1)) == _tokens(alone), f
