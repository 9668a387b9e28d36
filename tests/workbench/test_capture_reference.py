"""Capture equals an independent computation on every tiny architecture and on SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.items import Item
from workbench.model.capture import capture
from workbench.model.tokens import encode_item

ARCHES = ("llama", "qwen3", "qwen3_5", "gemma3", "gemma4", "gpt2")
ITEMS = [
    Item("a", "What is the capital of France?", "Paris is the capital."),
    Item("b", "Add 2 and 3.", "I think it is 5."),
    Item("c", "Hi"),
]


def _reference(lm, item: Item, layer: int):
    """hidden_states from HF, and the o_proj input/output of ``layer`` from the attention module."""
    ids = torch.tensor([encode_item(lm.tokenizer, item).ids])
    attn = lm.layout.attn_module(layer)
    seen = {}

    def grab(module, args, output):
        seen["attn_out"] = output[0] if isinstance(output, tuple) else output

    handle = attn.register_forward_hook(grab)
    try:
        with torch.no_grad():
            out = lm.model(ids, output_hidden_states=True)
    finally:
        handle.remove()
    return out.hidden_states, seen["attn_out"][0, -1]


def _heads_to_attn_out(o_proj, heads: torch.Tensor) -> torch.Tensor:
    """Rebuild the o_proj output by hand, one head's columns at a time."""
    n_heads, head_dim = heads.shape
    weight = (
        o_proj.weight if isinstance(o_proj, torch.nn.Linear) else o_proj.weight.T
    )  # GPT-2 Conv1D
    total = sum(weight[:, h * head_dim : (h + 1) * head_dim] @ heads[h] for h in range(n_heads))
    bias = getattr(o_proj, "bias", None)
    return total + bias if bias is not None else total


def close(actual, desired) -> None:
    """Equal to float32 tolerance, relative to the vector's scale (1e-4 of its max)."""
    desired = np.asarray(desired)
    scale = max(1.0, float(np.abs(desired).max()))
    np.testing.assert_allclose(actual, desired, rtol=1e-4, atol=1e-4 * scale)


def _check(lm, layers):
    sites = ["h_last", "resid(0)", "resid(-2)", "mean_last_n(2)"] + [
        f"head_in({layer})" for layer in layers
    ]
    result = capture(lm, ITEMS, sites, batch_size=3)
    n = lm.layout.n_layers
    for i, item in enumerate(ITEMS):
        hs, _ = _reference(lm, item, layers[0])
        close(result["h_last"][i], hs[-1][0, -1].numpy())
        close(result["resid(0)"][i], hs[1][0, -1].numpy())
        close(result["resid(-2)"][i], hs[n - 1][0, -1].numpy())
        close(result["mean_last_n(2)"][i], torch.stack(hs[-2:]).mean(0)[0, -1].numpy())
        for layer in layers:
            _, attn_out = _reference(lm, item, layer)
            heads = torch.from_numpy(result[f"head_in({layer})"][i])
            info = lm.layout.info[layer]
            assert heads.shape == (info.n_heads, info.head_dim)
            rebuilt = _heads_to_attn_out(lm.layout.o_proj(layer), heads)
            close(rebuilt.detach().numpy(), attn_out.numpy())


@pytest.mark.parametrize("arch", ARCHES)
def test_capture_matches_output_hidden_states(tiny, arch):
    lm = tiny(arch)
    _check(lm, lm.layout.layers_with_attention)


@pytest.mark.slow
def test_capture_matches_reference_on_smollm(smollm):
    _check(smollm, [0, 14, 29])


def test_gqa_head_in_width_is_n_heads_times_head_dim(tiny):
    lm = tiny("llama")  # 4 query heads, 2 KV heads
    assert lm.model.config.num_key_value_heads < lm.model.config.num_attention_heads
    assert lm.layout.o_proj(0).in_features == 4 * 16
    assert capture(lm, ITEMS[:1], ["head_in(0)"])["head_in(0)"].shape == (1, 4, 16)


def test_hybrid_keeps_original_layer_numbers(tiny):
    lm = tiny("qwen3_5")
    assert lm.layout.layers_with_attention == [1, 3]
    from workbench.core.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match=r"layer 0 has no full-attention o_proj.*\[1, 3\]"):
        capture(lm, ITEMS[:1], ["head_in(0)"])


def test_gemma4_head_width_differs_by_layer(tiny):
    lm = tiny("gemma4")
    result = capture(lm, ITEMS[:1], ["head_in(0)", "head_in(1)"])
    assert result["head_in(0)"].shape == (1, 4, 16)  # sliding layer
    assert result["head_in(1)"].shape == (1, 4, 32)  # full-attention layer: global_head_dim
