"""Capture and tempered logits agree across the HF, TransformerLens and nnsight backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.items import Item
from workbench.model.backends import HFBackend, LensBackend, NNsightBackend
from workbench.model.hooks import count_hooks

ITEMS = [
    Item("a", "What is the capital of France?", "Paris, of course."),
    Item("b", "Hi"),
    Item("c", "Name a colour", "Blue"),
]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: on a busy 2-core machine torch's spinning threads collapse."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> float:
    """Within 1e-4 of the vector scale (NaN where the reference is NaN); returns the max error."""
    assert actual.shape == expected.shape, what
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=what)
    err = float(np.nanmax(np.abs(actual - expected))) if actual.size else 0.0
    atol = 1e-4 * max(1.0, float(np.nanmax(np.abs(expected))))
    assert err <= atol, f"{what}: max error {err:.3g} > {atol:.3g}"
    return err


def _sites(lm) -> list[str]:
    first, last = lm.layout.layers_with_attention[0], lm.layout.layers_with_attention[-1]
    return ["h_last", f"head_in({last})", f"head_in({first},last=3)", "resid(0)", "mean_last_n(2)"]


def _heads(lm) -> dict[tuple[int, int], float]:
    first, last = lm.layout.layers_with_attention[0], lm.layout.layers_with_attention[-1]
    return {(last, 1): 0.0, (first, 0): 0.5}


@pytest.fixture(scope="module")
def backends(tiny):
    """Per architecture: HF and nnsight over the shared tiny model, TL over a copy
    (the bridge rewires the module tree it wraps)."""
    cache: dict[str, tuple] = {}

    def get(arch: str):
        if arch not in cache:
            lm = tiny(arch)
            cache[arch] = (
                HFBackend(lm),
                NNsightBackend(lm),
                LensBackend(lm, copy_model=True),
            )
        return cache[arch]

    return get


@pytest.mark.parametrize("arch", ["llama", "qwen3", "gemma3", "qwen3_5", "gemma4", "gpt2"])
def test_capture_and_tempered_logits_agree(backends, arch):
    hf, *others = backends(arch)
    sites = _sites(hf.lm)
    reference = hf.capture(ITEMS, sites, batch_size=2)
    with hf.temper(_heads(hf.lm)):
        tempered = hf.logits(ITEMS)
    plain = hf.logits(ITEMS)
    assert np.abs(tempered - plain).max() > 1e-3  # the tempering does something
    for backend in others:
        result = backend.capture(ITEMS, sites, batch_size=2)
        assert result.item_ids == reference.item_ids
        for site in sites:
            assert_close(result[site], reference[site], f"{backend!r} {site}")
        with backend.temper(_heads(hf.lm)):
            assert_close(backend.logits(ITEMS), tempered, f"{backend!r} tempered logits")
        assert_close(backend.logits(ITEMS), plain, f"{backend!r} logits after the context")


def test_nnsight_is_exact_and_right_padding_agrees(backends):
    hf, nn, lens = backends("llama")
    sites = _sites(hf.lm)
    reference = hf.capture(ITEMS, sites)
    for backend in (nn, lens):
        right = backend.capture(ITEMS, sites, padding_side="right")
        for site in sites:
            assert_close(right[site], reference[site], f"{backend!r} right padding {site}")
    exact = nn.capture(ITEMS, sites)
    for site in sites:
        np.testing.assert_array_equal(exact[site], reference[site])


def test_temper_semantics_match_interventions_temper(backends):
    from interventions.temper import temper

    hf, nn, lens = backends("qwen3")
    heads = _heads(hf.lm)
    with temper(hf.lm, heads):
        expected = hf.logits(ITEMS)
    for backend in (hf, nn, lens):
        with backend.temper(heads):
            assert_close(backend.logits(ITEMS), expected, f"{backend!r} vs interventions.temper")
        plain = backend.logits(ITEMS)
        with backend.temper({key: 1.0 for key in heads}):  # lambda = 1 is the identity
            assert_close(backend.logits(ITEMS), plain, f"{backend!r} lambda 1")
    plain = hf.logits(ITEMS)
    with hf.temper({key: 1.0 for key in heads}):  # exact on the HF path
        np.testing.assert_array_equal(hf.logits(ITEMS), plain)


def test_nested_temper_contexts_multiply(backends):
    hf, nn, lens = backends("llama")
    layer = hf.lm.layout.layers_with_attention[-1]
    with hf.temper({(layer, 2): 0.25}):
        expected = hf.logits(ITEMS)
    for backend in (hf, nn, lens):
        with backend.temper({(layer, 2): 0.5}), backend.temper({(layer, 2): 0.5}):
            assert_close(backend.logits(ITEMS), expected, f"{backend!r} nested")


def test_nnsight_leaves_the_hf_model_untouched(tiny):
    lm = tiny("gemma3")
    sites = _sites(lm)
    before = HFBackend(lm).capture(ITEMS, sites)
    hooks = count_hooks(lm.model)
    state = {k: v.clone() for k, v in lm.model.state_dict().items()}
    backend = NNsightBackend(lm)
    backend.capture(ITEMS, sites)
    after = HFBackend(lm).capture(ITEMS, sites)
    for site in sites:
        np.testing.assert_array_equal(after[site], before[site])
    assert count_hooks(lm.model) == hooks
    assert all(torch.equal(v, lm.model.state_dict()[k]) for k, v in state.items())
    assert backend.model.tokenizer is not lm.tokenizer  # nnsight re-pads its own copy


def test_lens_in_place_keeps_the_hf_path_working():
    from support import build_tiny

    from workbench.model.generation import generate

    lm = build_tiny("llama")  # our own model: the bridge rewires it in place
    sites = _sites(lm)
    before = HFBackend(lm).capture(ITEMS, sites)
    tokens_before = [g.token_ids for g in generate(lm, ITEMS, max_new_tokens=5)]
    backend = LensBackend(lm)
    assert backend.lm is lm and backend.kv_cache in ("ok", "patched")
    after = HFBackend(lm).capture(ITEMS, sites)
    for site in sites:
        assert_close(after[site], before[site], f"HF path after bridging, {site}")
    assert [g.token_ids for g in generate(lm, ITEMS, max_new_tokens=5)] == tokens_before


@pytest.mark.slow
def test_gemma3_270m_agrees_across_backends():
    from workbench.model.loading import load_model

    try:
        lm = load_model("gemma3-270m")
    except Exception as e:  # the model package is an optional extra
        pytest.skip(f"gemma3-270m unavailable: {e}")
    items = [Item("a", "The capital of France is")]
    sites = ["h_last", "head_in(5)", "resid(2)"]
    heads = {(5, 1): 0.0, (2, 0): 0.5}
    hf = HFBackend(lm)
    reference = hf.capture(items, sites, chat_template=False)
    with hf.temper(heads):
        tempered = hf.logits(items, chat_template=False)
    for backend in (NNsightBackend(lm), LensBackend(lm)):  # TL last: it rewires lm.model
        result = backend.capture(items, sites, chat_template=False)
        for site in sites:
            assert_close(result[site], reference[site], f"{backend!r} {site}")
        with backend.temper(heads):
            assert_close(backend.logits(items, chat_template=False), tempered, f"{backend!r}")
