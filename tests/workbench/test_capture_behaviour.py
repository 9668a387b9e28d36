"""Padding and batch invariance, early stop, hook cleanup, last-N positions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.model.capture import capture
from workbench.model.hooks import count_hooks

ITEMS = [
    Item("short", "Hi"),
    Item("long", "Tell me about the history of the Roman Empire.", "It began in 27 BC."),
    Item("mid", "What is 2 + 2?", "4"),
]
SITES = ["h_last", "resid(1)", "head_in(1,last=3)", "head_norm(0)"]


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2", "qwen3_5"])
def test_left_right_and_single_give_same_vectors(tiny, arch):
    lm = tiny(arch)
    sites = ["h_last", "resid(1)", f"head_in({lm.layout.layers_with_attention[0]},last=3)"]
    left = capture(lm, ITEMS, sites, batch_size=3, padding_side="left")
    right = capture(lm, ITEMS, sites, batch_size=3, padding_side="right")
    single = capture(lm, ITEMS, sites, batch_size=1)
    for site in sites:
        scale = max(1.0, float(np.nanmax(np.abs(single[site]))))
        for other in (left, right):
            np.testing.assert_allclose(other[site], single[site], rtol=1e-4, atol=1e-4 * scale)


def test_last_n_positions_before_sequence_start_are_nan(tiny):
    lm = tiny("llama")
    # "Hi" with the tiny chat template is 4 tokens: <|user|> H i <|assistant|>
    result = capture(lm, [Item("x", "Hi")], ["head_norm(0,last=6)"])
    values = result["head_norm(0,last=6)"][0]
    assert values.shape == (6, 4)
    assert np.isnan(values[:2]).all() and not np.isnan(values[2:]).any()


def test_early_stop_skips_later_layers_and_gives_same_values(tiny):
    lm = tiny("llama")
    calls = []
    handle = lm.layout.layers[-1].register_forward_hook(lambda *a: calls.append(1))
    try:
        early = capture(lm, ITEMS, ["resid(0)", "head_in(1)"], early_stop=True)
        assert calls == []  # the last layer never ran
        full = capture(lm, ITEMS, ["resid(0)", "head_in(1)"], early_stop=False)
        assert len(calls) > 0
    finally:
        handle.remove()
    for site in ("resid(0)", "head_in(1)"):
        np.testing.assert_array_equal(early[site], full[site])


def test_no_hook_left_after_exception_inside_capture(tiny):
    lm = tiny("llama")
    before = count_hooks(lm.model)

    def boom(*args):
        raise RuntimeError("boom inside forward")

    handle = lm.layout.layers[1].mlp.register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            capture(lm, ITEMS, SITES, early_stop=False)
    finally:
        handle.remove()
    assert count_hooks(lm.model) == before


def test_keyboard_interrupt_leaves_no_hook(tiny, monkeypatch):
    lm = tiny("gpt2")
    before = count_hooks(lm.model)

    def interrupt(*args):
        raise KeyboardInterrupt

    handle = lm.layout.layers[0].register_forward_hook(interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            capture(lm, ITEMS, ["h_last"])
    finally:
        handle.remove()
    assert count_hooks(lm.model) == before


def test_layer_out_of_range_names_valid_range(tiny):
    lm = tiny("llama")
    with pytest.raises(
        WorkbenchError, match=r"layer 7 is out of range: this model has layers 0\.\.2"
    ):
        capture(lm, ITEMS, ["resid(7)"])


def test_prompt_longer_than_context_is_refused(tiny):
    lm = tiny("llama")  # 256 positions
    with pytest.raises(
        WorkbenchError, match=r"item 'big' has \d+ tokens but the model's context is 256"
    ):
        capture(lm, [Item("big", "x" * 300)], ["h_last"])


def test_response_over_cap_is_cut_and_flagged(tiny):
    lm = tiny("llama")
    result = capture(
        lm, [Item("r", "Hi", "y" * 40), Item("s", "Hi", "ok")], ["h_last"], max_response_tokens=10
    )
    assert result.cut.tolist() == [True, False]
    assert result.n_tokens[0] == 4 + 10


def test_bfloat16_capture_is_stored_as_float32(tiny):
    from workbench.model.loaded import wrap_model

    base = tiny("llama")
    model = type(base.model)(base.model.config).to(torch.bfloat16).eval()
    lm = wrap_model(model, base.tokenizer)
    result = capture(lm, ITEMS, ["h_last", "head_in(0)"])
    assert result["h_last"].dtype == np.float32 and np.isfinite(result["h_last"]).all()
