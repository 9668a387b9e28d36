"""Generation: equals HF greedy, truncation flags, per-item seeds, interventions, fused capture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.model.capture import capture
from workbench.model.generation import generate
from workbench.model.hooks import Hook, attach, count_hooks
from workbench.model.tokens import encode_prompt

PROMPTS = [Item("a", "Hello"), Item("b", "A somewhat longer prompt here"), Item("c", "x")]


def _hf_greedy(lm, item: Item, max_new_tokens: int) -> list[int]:
    ids = torch.tensor([encode_prompt(lm.tokenizer, item.prompt)])
    out = lm.model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
        pad_token_id=lm.tokenizer.pad_token_id,
    )  # fmt: skip
    eos = lm.tokenizer.eos_token_id
    tokens = out[0, ids.shape[1] :].tolist()
    return tokens[: tokens.index(eos)] if eos in tokens else tokens


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2", "qwen3_5"])
def test_greedy_equals_hf_generate(tiny, arch):
    lm = tiny(arch)
    gens = generate(lm, PROMPTS, max_new_tokens=6, batch_size=3)
    for item, gen in zip(PROMPTS, gens, strict=True):
        assert list(gen.token_ids) == _hf_greedy(lm, item, 6)
        assert gen.truncated == (gen.n_tokens == 6)


@pytest.mark.slow
def test_greedy_equals_hf_generate_on_smollm(smollm):
    items = [
        Item("f", "What is the capital of France?"),
        Item("p", "Write a long poem about the sea."),
    ]
    gens = generate(smollm, items, max_new_tokens=12, batch_size=2)
    for item, gen in zip(items, gens, strict=True):
        assert list(gen.token_ids) == _hf_greedy(smollm, item, 12)
    assert not gens[0].truncated and "Paris" in gens[0].response
    assert gens[1].truncated and gens[1].n_tokens == 12


def test_sampling_draws_are_per_item_and_independent_of_batching(tiny):
    lm = tiny("llama")
    kw = dict(max_new_tokens=8, do_sample=True, temperature=1.0, top_p=0.95, top_k=50, seed=7)
    together = generate(lm, PROMPTS, batch_size=3, **kw)
    alone = generate(lm, PROMPTS[::-1], batch_size=1, **kw)
    assert [g.token_ids for g in together] == [g.token_ids for g in alone][::-1]
    other_seed = generate(lm, PROMPTS, batch_size=3, **{**kw, "seed": 8})
    assert [g.token_ids for g in other_seed] != [g.token_ids for g in together]


def test_interventions_are_active_for_every_position(tiny):
    lm = tiny("llama")
    # transformers keeps its own hooks once output_hidden_states was used
    before = count_hooks(lm.model)
    seen = []

    def record(module, args):
        seen.append(args[0].shape[1])

    intervention = attach([Hook(lm.layout.o_proj(0), "pre", record)])
    gens = generate(lm, [PROMPTS[0]], max_new_tokens=4, interventions=[intervention])
    prompt_len = len(encode_prompt(lm.tokenizer, PROMPTS[0].prompt))
    assert seen[0] == prompt_len and seen[1:] == [1] * (len(seen) - 1)
    assert len(seen) == min(4, gens[0].n_tokens + 1)
    assert count_hooks(lm.model) == before


def test_no_hook_left_after_exception_during_generation(tiny):
    lm = tiny("llama")
    before = count_hooks(lm.model)

    def boom(module, args):
        if args[0].shape[1] == 1:
            raise RuntimeError("boom at a decoding step")

    with pytest.raises(RuntimeError, match="boom"):
        generate(lm, PROMPTS, max_new_tokens=4, interventions=[attach([Hook(lm.layout.o_proj(1), "pre", boom)])],
                 capture=["h_last", "head_in(0,last=3)"])  # fmt: skip
    assert count_hooks(lm.model) == before


@pytest.mark.parametrize("arch", ["llama", "gemma4", "gpt2"])
def test_fused_capture_equals_two_pass(tiny, arch):
    from workbench.core.sites import parse_sites
    from workbench.model.capture import forward_sites
    from workbench.model.readers import SiteReader

    lm = tiny(arch)
    layer = lm.layout.layers_with_attention[-1]
    sites = parse_sites(
        ["h_last", "resid(0)", "mean_last_n(2)", f"head_in({layer},last=3)", f"head_norm({layer})"]
    )
    gens = generate(lm, PROMPTS, max_new_tokens=5, batch_size=3, capture=sites)
    assert any(g.truncated for g in gens)
    for i, gen in enumerate(gens):
        # the paper's two-pass method: one more full forward over prompt + response ids
        ids = encode_prompt(lm.tokenizer, gen.prompt) + list(gen.token_ids)
        two_pass = forward_sites(lm, [ids], SiteReader(lm.layout, sites))
        for site in sites:
            want = two_pass[str(site)][0].numpy()
            scale = max(1.0, float(np.nanmax(np.abs(want))))
            np.testing.assert_allclose(
                gens.features[str(site)][i], want, rtol=1e-4, atol=1e-4 * scale
            )


@pytest.mark.slow
def test_fused_capture_equals_two_pass_text_on_smollm(smollm):
    items = [Item("f", "What is the capital of France?"), Item("p", "Name three colours.")]
    gens = generate(
        smollm, items, max_new_tokens=12, batch_size=2, capture=["h_last", "head_in(5,last=4)"]
    )
    two_pass = capture(
        smollm, [Item(g.id, g.prompt, g.response) for g in gens], ["h_last", "head_in(5,last=4)"]
    )
    for site in ("resid(-1,normed)", "head_in(5,last=4)"):
        scale = max(1.0, float(np.abs(two_pass[site]).max()))
        np.testing.assert_allclose(
            gens.features[site], two_pass[site], rtol=1e-4, atol=1e-4 * scale
        )


def test_context_overflow_is_refused(tiny):
    lm = tiny("llama")
    with pytest.raises(WorkbenchError, match=r"exceed the model's context 256"):
        generate(lm, [Item("x", "y" * 200)], max_new_tokens=100)


def test_bad_decoding_params(tiny):
    lm = tiny("llama")
    for kw, pattern in [({"max_new_tokens": 0}, "max_new_tokens 0"), ({"temperature": 0.0}, "temperature"),
                        ({"top_p": 1.5}, "top_p")]:  # fmt: skip
        with pytest.raises(WorkbenchError, match=pattern):
            generate(lm, PROMPTS, **kw)


def test_truncated_fraction(tiny):
    lm = tiny("llama")
    gens = generate(lm, PROMPTS, max_new_tokens=2)
    assert gens.truncated_fraction == pytest.approx(np.mean([g.truncated for g in gens]))
    assert gens.config.max_new_tokens == 2
