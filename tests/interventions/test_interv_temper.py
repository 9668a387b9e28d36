"""Tempering at the o_proj input: identity, ablation, GQA slices, generation, cleanup, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from interventions import Intervention, temper
from workbench.core.errors import WorkbenchError
from workbench.model.generation import generate
from workbench.model.hooks import Hook, attach, count_hooks
from workbench.model.tokens import encode_prompt

ARCHES = ("llama", "qwen3", "qwen3_5", "gemma3", "gemma4", "gpt2")


@pytest.mark.parametrize("arch", ARCHES)
def test_lambda_one_is_bit_identical(tiny, arch, input_ids, logits_of, attn_layer):
    lm = tiny(arch)
    layer = attn_layer(lm)
    base = logits_of(lm, input_ids)
    heads = {(layer, h): 1.0 for h in range(lm.layout.info[layer].n_heads)}
    with temper(lm, heads) as iv:
        assert iv.active and count_hooks(lm.model) == 1
        tempered = logits_of(lm, input_ids)
    assert torch.equal(base, tempered)
    assert count_hooks(lm.model) == 0


@pytest.mark.parametrize("arch", ARCHES)
def test_lambda_zero_equals_manual_head_ablation(
    tiny, arch, input_ids, logits_of, attn_layer, manual_ablation
):
    lm = tiny(arch)
    layer = attn_layer(lm)
    head = lm.layout.info[layer].n_heads - 1  # beyond the KV-head count under GQA
    with temper(lm, {(layer, head): 0.0}):
        tempered = logits_of(lm, input_ids)
    manual = manual_ablation(lm, input_ids, layer, {head})
    base = logits_of(lm, input_ids)
    assert not torch.allclose(tempered, base, atol=1e-4), "ablating the head changed nothing"
    torch.testing.assert_close(tempered, manual, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ("llama", "gemma4"))
def test_two_layers_two_heads_match_manual_ablation(
    tiny, arch, input_ids, logits_of, manual_ablation
):
    lm = tiny(arch)
    last = lm.layout.layers_with_attention[-1]
    with temper(lm, {(last, 0): 0.0, (last, 2): 0.0}):
        tempered = logits_of(lm, input_ids)
    torch.testing.assert_close(
        tempered, manual_ablation(lm, input_ids, last, {0, 2}), atol=2e-5, rtol=1e-4
    )


@pytest.mark.parametrize("arch", ("llama", "qwen3", "gemma3", "gemma4"))
def test_gqa_scales_exactly_the_query_head_slice(tiny, arch, input_ids, attn_layer):
    lm = tiny(arch)
    layer = attn_layer(lm)
    info = lm.layout.info[layer]
    o_proj = lm.layout.o_proj(layer)
    n_kv = lm.model.config.num_key_value_heads
    assert n_kv < info.n_heads  # a GQA model
    assert o_proj.in_features == info.n_heads * info.head_dim
    seen: list[torch.Tensor] = []
    record = [Hook(o_proj, "pre", lambda m, args: seen.append(args[0].clone()))]
    head = info.n_heads - 1
    with torch.no_grad():
        with attach(record):
            lm.model(input_ids=input_ids, use_cache=False)
        with temper(lm, {(layer, head): 0.5}), attach(record):  # recorder runs after temper
            lm.model(input_ids=input_ids, use_cache=False)
    before, after = seen
    cols = slice(head * info.head_dim, (head + 1) * info.head_dim)
    assert torch.equal(after[..., cols], before[..., cols] * 0.5)
    assert torch.equal(after[..., : cols.start], before[..., : cols.start])
    assert after.shape[-1] == info.n_heads * info.head_dim != n_kv * info.head_dim


def _greedy_manual(lm, prompt: str, n: int) -> list[int]:
    """Token-by-token greedy decoding with a full forward each step (no KV cache)."""
    eos = {
        lm.tokenizer.eos_token_id,
        *(
            [lm.model.generation_config.eos_token_id]
            if isinstance(lm.model.generation_config.eos_token_id, int)
            else lm.model.generation_config.eos_token_id or []
        ),
    }
    ids = encode_prompt(lm.tokenizer, prompt)
    out: list[int] = []
    with torch.no_grad():
        for _ in range(n):
            logits = lm.model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1]
            token = int(logits.argmax())
            if token in eos:
                break
            out.append(token)
            ids.append(token)
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_tempered_generation_equals_manual_loop(tiny, arch):
    lm = tiny(arch)
    # every attention head, even ones removed and odd ones tripled: strong enough that the
    # greedy tokens move (a uniform factor would be undone by Gemma's post-attention norm)
    heads = {
        (layer, h): 0.0 if h % 2 == 0 else 3.0
        for layer in lm.layout.layers_with_attention
        for h in range(lm.layout.info[layer].n_heads)
    }
    prompt = "Name the capital of Peru."
    with temper(lm, heads):
        expected = _greedy_manual(lm, prompt, 6)
    gens = generate(lm, [prompt], max_new_tokens=6, batch_size=1, interventions=[temper(lm, heads)])
    assert list(gens[0].token_ids) == expected
    if arch != "gemma3":  # tiny random Gemma 3 copies the last token whatever its logits
        assert expected != _greedy_manual(lm, prompt, 6), "tempering must change the tokens"
    assert count_hooks(lm.model) == 0


@pytest.mark.parametrize("arch", ("llama", "qwen3_5", "gpt2"))
def test_scaling_applies_at_every_processed_position(tiny, arch, attn_layer):
    lm = tiny(arch)
    layer = attn_layer(lm)
    info = lm.layout.info[layer]
    o_proj = lm.layout.o_proj(layer)
    before: list[torch.Tensor] = []
    after: list[torch.Tensor] = []
    record_before = attach([Hook(o_proj, "pre", lambda m, a: before.append(a[0].clone()))])
    record_after = attach([Hook(o_proj, "pre", lambda m, a: after.append(a[0].clone()))])
    prompt = "Hello there"
    gens = generate(
        lm,
        [prompt],
        max_new_tokens=5,
        interventions=[record_before, temper(lm, {(layer, 1): 0.5}), record_after],
    )
    cols = slice(info.head_dim, 2 * info.head_dim)
    n_prompt = len(encode_prompt(lm.tokenizer, prompt))
    assert before[0].shape[1] == n_prompt  # the prefill: every prompt position
    assert all(b.shape[1] == 1 for b in before[1:])  # then one new position per step
    assert len(before) >= gens[0].n_tokens
    for b, a in zip(before, after, strict=True):
        assert torch.equal(a[..., cols], b[..., cols] * 0.5)
        assert torch.equal(a[..., cols.stop :], b[..., cols.stop :])


def test_fused_capture_reads_the_tempered_input(tiny):
    lm = tiny("qwen3")
    gens = generate(
        lm,
        ["Hello"],
        max_new_tokens=3,
        capture=["head_in(1,last=2)"],
        interventions=[temper(lm, {(1, 0): 0.0})],
    )
    heads = gens.features["head_in(1,last=2)"][0]  # (2 tokens, n_heads, head_dim)
    assert (heads[:, 0] == 0).all() and (heads[:, 1] != 0).any()


@pytest.mark.parametrize("arch", ("llama", "gemma3"))
def test_fused_capture_equals_two_pass_while_tempered(tiny, arch):
    """The fused read under tempering equals a second full forward under the same tempering."""
    from workbench.core.sites import parse_sites
    from workbench.model.capture import forward_sites
    from workbench.model.readers import SiteReader

    lm = tiny(arch)
    layer = lm.layout.layers_with_attention[-1]
    heads = {(layer, 0): 0.0, (layer, 1): 2.0}
    sites = parse_sites(["h_last", f"head_in({layer},last=3)"])
    prompts = ["Hello", "A somewhat longer prompt here", "x"]
    gens = generate(lm, prompts, max_new_tokens=5, batch_size=3, capture=sites,
                    interventions=[temper(lm, heads)])  # fmt: skip
    with temper(lm, heads):
        for i, gen in enumerate(gens):
            ids = encode_prompt(lm.tokenizer, gen.prompt) + list(gen.token_ids)
            two_pass = forward_sites(lm, [ids], SiteReader(lm.layout, sites))
            for site in sites:
                want = two_pass[str(site)][0].numpy()
                scale = max(1.0, float(np.abs(want).max()))
                np.testing.assert_allclose(
                    gens.features[str(site)][i], want, rtol=1e-4, atol=1e-4 * scale
                )
    assert (gens.features[f"head_in({layer},last=3)"][:, :, 0] == 0).all()


class Boom(Exception):
    pass


@pytest.mark.parametrize("error", (Boom, KeyboardInterrupt))
@pytest.mark.parametrize("arch", ("llama", "qwen3_5", "gpt2"))
def test_hooks_removed_after_exception_during_generation(tiny, arch, error, attn_layer):
    lm = tiny(arch)
    layer = attn_layer(lm)
    calls = {"n": 0}

    def explode(module, args, output):
        calls["n"] += 1
        if calls["n"] == 3:  # prefill and one step have run
            raise error

    iv = temper(lm, {(layer, 0): 0.5})
    bomb = attach([Hook(lm.layout.final_norm, "post", explode)])
    with pytest.raises(error):
        generate(lm, ["Hi"], max_new_tokens=8, interventions=[iv, bomb])
    assert calls["n"] == 3
    assert count_hooks(lm.model) == 0
    assert not iv.active
    with iv:  # still usable afterwards
        assert count_hooks(lm.model) == 1
    assert count_hooks(lm.model) == 0


def test_reenterable_but_not_nestable(tiny, input_ids, logits_of):
    lm = tiny("llama")
    iv = temper(lm, {(1, 2): 0.0})
    with iv:
        first = logits_of(lm, input_ids)
        with pytest.raises(WorkbenchError, match="already active"):
            iv.__enter__()
        assert count_hooks(lm.model) == 1
    with iv:
        second = logits_of(lm, input_ids)
    assert torch.equal(first, second)
    assert count_hooks(lm.model) == 0
    assert iv.to_json() == {
        "kind": "temper",
        "site": "o_proj input",
        "targets": [{"layer": 1, "head": 2, "factor": 0.0}],
        "interventions": [
            {"site": "head_in(1)", "op": "scale", "positions": "all", "heads": [2],
             "operand": [0.0]}
        ],
    }  # fmt: skip


def test_accepts_raw_hf_model_and_negative_layers(tiny, input_ids, logits_of):
    lm = tiny("qwen3")
    with temper(lm.model, {(-1, 3): 0.0}):
        raw = logits_of(lm, input_ids)
    with temper(lm, {(2, 3): 0.0}):
        loaded = logits_of(lm, input_ids)
    assert torch.equal(raw, loaded)
    assert isinstance(temper(lm, {(0, 0): 0.5}), Intervention)


@pytest.mark.parametrize(
    ("heads", "message"),
    [
        ({(1, 4): 0.5}, r"head 4 is out of range for layer 1: valid heads are 0\.\.3"),
        ({(1, -1): 0.5}, r"head -1 is out of range"),
        ({(7, 0): 0.5}, r"layer 7 is out of range: this model has layers 0\.\.2"),
        ({(1, 0): -0.5}, r"factor -0\.5 must be finite and >= 0"),
        ({(1, 0): math.nan}, r"factor nan must be finite"),
        ({(1, 0): math.inf}, r"factor inf must be finite"),
        ({(1, 0): "0.5"}, r"is not a number"),
        ({(1, 0): True}, r"is not a number"),
        ({}, r"non-empty mapping"),
        ({(2, 0): 0.5, (-1, 0): 0.3}, r"given twice"),
        ({1: 0.5}, r"not a \(layer, head\) pair"),
    ],
)
def test_bad_input_is_a_clear_error(tiny, heads, message):
    lm = tiny("llama")
    with pytest.raises(WorkbenchError, match=message):
        temper(lm, heads)
    assert count_hooks(lm.model) == 0


def test_layer_without_attention_in_hybrid_model(tiny):
    lm = tiny("qwen3_5")
    with pytest.raises(WorkbenchError, match=r"layer 0 has no full-attention o_proj.*\[1, 3\]"):
        temper(lm, {(0, 0): 0.5})
    assert lm.layout.layers_with_attention == [1, 3]
