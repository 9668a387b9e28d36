"""Greedy generation, with and without tempering, gives the same tokens in every backend.

Also the TransformerLens KV-cache pitfall: with transformers 5.x the bridge's
attention ignored the cache (``cache=`` kwarg), so cached decoding attended to
the current token only and SmolLM2 answered ``"Paris---------"``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import build_tiny

from workbench.core.items import Item
from workbench.model.backends import HFBackend, LensBackend, NNsightBackend
from workbench.model.backends.lens import build_bridge
from workbench.model.generation import generate
from workbench.model.tokens import encode_prompt

PROMPTS = [Item("a", "Hello"), Item("b", "A somewhat longer prompt here"), Item("c", "x")]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: on a busy 2-core machine torch's spinning threads collapse."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_close(actual, expected, what: str) -> None:
    """Within 1e-4 of the vector scale (as in test_backend_agreement)."""
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=what)
    atol = 1e-4 * max(1.0, float(np.nanmax(np.abs(expected))))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol, err_msg=what)


def _tokens(gens) -> list[tuple[int, ...]]:
    return [g.token_ids for g in gens]


@pytest.mark.parametrize("arch", ["llama", "qwen3_5"])
def test_greedy_tokens_agree_with_and_without_tempering(tiny, arch):
    lm = tiny(arch)
    layer = lm.layout.layers_with_attention[-1]
    heads = {(layer, h): 0.0 for h in range(lm.layout.info[layer].n_heads - 1)}
    hf = HFBackend(lm)
    plain = _tokens(hf.generate(PROMPTS, max_new_tokens=6, batch_size=2))
    with hf.temper(heads):
        tempered = _tokens(hf.generate(PROMPTS, max_new_tokens=6, batch_size=2))
    assert tempered != plain  # tempering is active for the prompt and every new token
    lens = LensBackend(lm, copy_model=True)
    expected_cache = "disabled" if arch == "qwen3_5" else ("ok", "patched")
    assert lens.kv_cache in expected_cache
    for backend in (NNsightBackend(lm), lens):
        assert _tokens(backend.generate(PROMPTS, max_new_tokens=6, batch_size=2)) == plain
        with backend.temper(heads):
            assert _tokens(backend.generate(PROMPTS, max_new_tokens=6, batch_size=2)) == tempered


def test_lens_kv_cache_pitfall_is_detected_and_fixed():
    lm = build_tiny("llama")
    reference = _tokens(generate(lm, PROMPTS, max_new_tokens=6))
    broken = build_tiny("llama")
    build_bridge(broken)  # a bare bridge, without the backend's check
    bare = _tokens(generate(broken, PROMPTS, max_new_tokens=6))
    backend = LensBackend(lm)
    if bare != reference:  # the upstream incompatibility is present: the fix must be on
        assert backend.kv_cache == "patched"
    else:
        assert backend.kv_cache == "ok"
    assert _tokens(backend.generate(PROMPTS, max_new_tokens=6)) == reference
    # the fix also repairs TransformerLens' own cached generate()
    ids = torch.tensor([encode_prompt(lm.tokenizer, PROMPTS[1].prompt)])
    out = backend.bridge.generate(
        ids, max_new_tokens=6, do_sample=False, use_past_kv_cache=True, verbose=False
    )
    new = out[0, ids.shape[1] :].tolist()
    assert new[: len(reference[1])] == list(reference[1])


@pytest.fixture(scope="module")
def smollm_backends(smollm):
    return HFBackend(smollm), NNsightBackend(smollm), LensBackend(smollm, copy_model=True)


SMOLLM_ITEMS = [Item("f", "What is the capital of France?"), Item("c", "Name a primary colour.")]


@pytest.mark.slow
def test_smollm_capture_and_tempered_logits_agree(smollm_backends):
    hf, *others = smollm_backends
    sites = ["h_last", "head_in(3)", "head_in(20,last=2)"]
    heads = {(3, 1): 0.0, (20, 4): 0.5}
    reference = hf.capture(SMOLLM_ITEMS, sites)
    with hf.temper(heads):
        tempered = hf.logits(SMOLLM_ITEMS)
    for backend in others:
        result = backend.capture(SMOLLM_ITEMS, sites)
        for site in sites:
            assert_close(result[site], reference[site], f"{backend!r} {site}")
        with backend.temper(heads):
            assert_close(backend.logits(SMOLLM_ITEMS), tempered, f"{backend!r} tempered")


@pytest.mark.slow
def test_smollm_greedy_tokens_agree_with_and_without_tempering(smollm_backends):
    hf, nn, lens = smollm_backends
    heads = {(layer, head): 0.0 for layer in range(4) for head in range(9)}
    plain = hf.generate(SMOLLM_ITEMS, max_new_tokens=4)
    with hf.temper(heads):
        tempered = _tokens(hf.generate(SMOLLM_ITEMS, max_new_tokens=4))
    assert plain[0].response.startswith("The capital of France")
    assert tempered != _tokens(plain)
    assert lens.kv_cache in ("ok", "patched")
    for backend in (nn, lens):
        gens = backend.generate(SMOLLM_ITEMS, max_new_tokens=4)
        assert _tokens(gens) == _tokens(plain), repr(backend)
        assert [g.response for g in gens] == [g.response for g in plain]
        with backend.temper(heads):
            assert _tokens(backend.generate(SMOLLM_ITEMS, max_new_tokens=4)) == tempered


@pytest.mark.parametrize("positions", ["last", "prompt"])
def test_continuous_loop_through_every_backend(tiny, positions):
    """The continuous loop runs through each backend's Decoder (the bridge's uncached one
    falls back to static, recorded) and a position-restricted tempering gives the static
    loop's tokens."""
    lm = tiny("llama")
    layer = lm.layout.layers_with_attention[-1]
    heads = {(layer, h): 0.0 for h in range(lm.layout.info[layer].n_heads - 1)}
    lens = LensBackend(lm, copy_model=True)
    for backend in (HFBackend(lm), NNsightBackend(lm), lens):
        with backend.temper(heads, positions=positions):
            static = backend.generate(PROMPTS, max_new_tokens=6, batch_size=2, loop="static")
            continuous = backend.generate(
                PROMPTS, max_new_tokens=6, batch_size=2, loop="continuous"
            )
        assert static.loop == "static"
        assert continuous.loop == "continuous", (backend.name, continuous.loop)
        assert _tokens(continuous) == _tokens(static), backend.name


def test_uncached_decoder_falls_back_to_static(tiny):
    lm = tiny("qwen3_5")  # the bridge's cache is disabled for it: the whole sequence each step
    lens = LensBackend(lm, copy_model=True)
    assert lens.kv_cache == "disabled"
    gens = lens.generate(PROMPTS, max_new_tokens=4, batch_size=2, loop="continuous")
    assert gens.loop.startswith("static (fallback")
    assert _tokens(gens) == _tokens(lens.generate(PROMPTS, max_new_tokens=4, batch_size=2))
