"""Every operation gives the same activations, logits and tokens on hf, nnsight and TL;
sampled generation runs on all three through the workbench's decoding loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import ARCHES, MULTIMODAL

from interventions import collect_site
from workbench.core.items import Item
from workbench.model.backends import HFBackend, LensBackend, NNsightBackend
from workbench.model.generation import generate
from workbench.model.hooks import count_hooks
from workbench.model.intervention import Intervention

ITEMS = [
    Item("a", "What is the capital of France?", "Paris, of course."),
    Item("b", "Hi", "Hello"),
    Item("c", "Name a colour", "Blue"),
]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> float:
    assert actual.shape == expected.shape, what
    err = float(np.nanmax(np.abs(actual - expected)))
    atol = 1e-4 * max(1.0, float(np.nanmax(np.abs(expected))))
    assert err <= atol, f"{what}: max error {err:.3g} > {atol:.3g}"
    return err


@pytest.fixture(scope="module")
def backends(tiny):
    cache: dict[str, tuple] = {}

    def get(arch: str):
        if arch not in cache:
            lm = tiny(arch)
            cache[arch] = (HFBackend(lm), NNsightBackend(lm), LensBackend(lm, copy_model=True))
        return cache[arch]

    return get


def _values(lm) -> dict[str, Intervention]:
    """One value per operation, at varied sites and positions."""
    layer = lm.layout.layers_with_attention[0]
    info = lm.layout.attention(layer)
    rng = np.random.default_rng(0)
    d = lm.layout.d_model
    resid = f"resid({layer})"
    sources = {k: v + rng.standard_normal(v.shape) for k, v in
               collect_site(lm, ITEMS, resid, per_item=True).items()}  # fmt: skip
    bank = collect_site(lm, ITEMS, f"head_in({layer})", heads=(0,), positions="last")
    mean = collect_site(lm, ITEMS, resid).mean(0)
    return {
        "scale": Intervention(f"head_in({layer})", "scale", [0.0, 0.5], (0, 2), "prompt"),
        "add": Intervention(resid, "add", 3 * rng.standard_normal(d), positions="last"),
        "set": Intervention(f"mlp_out({layer})", "set", rng.standard_normal(d), positions=[1, -2]),
        "project_out": Intervention(
            f"head_in({layer})",
            "project_out",
            rng.standard_normal((1, info.head_dim)),
            (1,),
            "response",
        ),  # fmt: skip
        "mean": Intervention(resid, "mean", mean, positions="all", note="the items"),
        "resample": Intervention(f"head_in({layer})", "resample", bank, (0,), "last", seed=1),
        "patch": Intervention(resid, "patch", sources=sources, positions="last:3"),
    }


def _run(backend, values, sites):
    with backend.intervene(values):
        feats = backend.capture(ITEMS, sites, batch_size=2)
        logits = backend.logits(ITEMS)
        tokens = [g.token_ids for g in backend.generate(ITEMS, max_new_tokens=4)]
    return feats, logits, tokens


@pytest.mark.parametrize("arch", [*ARCHES, *MULTIMODAL])
def test_every_operation_agrees_across_backends(backends, arch):
    hf, nn, lens = backends(arch)
    layer = hf.lm.layout.layers_with_attention[0]
    sites = ["h_last", f"head_in({layer},last=3)", f"resid({layer})"]
    plain = hf.logits(ITEMS)
    errors: dict[str, float] = {}
    for op, value in _values(hf.lm).items():
        feats, logits, tokens = _run(hf, [value], sites)
        assert np.abs(logits - plain).max() > 1e-3, f"{op} changed nothing"
        for backend in (nn, lens):
            other, other_logits, other_tokens = _run(backend, [value], sites)
            err = assert_close(other_logits, logits, f"{backend!r} {op} logits")
            for site in sites:
                err = max(err, assert_close(other[site], feats[site], f"{backend!r} {op} {site}"))
            assert other_tokens == tokens, f"{backend!r} {op} greedy tokens"
            errors[f"{backend.name}:{op}"] = err
        assert count_hooks(hf.lm.model) == 0
    print(f"{arch} max error per backend and op: {errors}")


def test_stacked_values_agree_and_generation_positions_follow_the_newest_token(backends):
    hf, nn, lens = backends("qwen3")
    values = list(_values(hf.lm).values())[:4]
    reference = _run(hf, values, ["h_last"])
    for backend in (nn, lens):
        got = _run(backend, values, ["h_last"])
        assert_close(got[1], reference[1], f"{backend!r} stacked")
        assert got[2] == reference[2]


@pytest.mark.parametrize("positions", ["last", "prompt", "response"])
def test_cached_generation_positions_equal_a_manual_token_loop(backends, positions):
    """Cached generation: ``prompt`` = the prefill, ``last`` = the newest token at each
    step (with the prompt's last at the prefill), ``response`` = generated tokens; a
    hand-written hook on an uncached token loop gives the same greedy tokens."""
    from workbench.model.hooks import Hook, attach
    from workbench.model.tokens import encode_prompts

    hf, nn, lens = backends("llama")
    lm = hf.lm
    shift = torch.full((lm.layout.d_model,), 2.0)
    value = Intervention("resid(1)", "add", shift.numpy(), positions=positions)
    item = ITEMS[0]
    ids = encode_prompts(lm.tokenizer, [item], max_new_tokens=6, chat_template=None)[0]
    n_prompt = len(ids)
    first = {"last": n_prompt - 1, "prompt": 0, "response": n_prompt}[positions]
    stop = n_prompt if positions == "prompt" else None

    def by_hand(module, args, output):
        h = output[0] if isinstance(output, tuple) else output
        h = h.clone()
        h[:, first:stop] += shift
        return (h, *output[1:]) if isinstance(output, tuple) else h

    manual = list(ids)
    with torch.inference_mode(), attach([Hook(lm.layout.layers[1], "post", by_hand)]):
        for _ in range(6):
            logits = lm.model(input_ids=torch.tensor([manual])).logits[0, -1]
            manual.append(int(logits.argmax()))
    expected = tuple(manual[n_prompt:])
    plain = generate(hf, [item], max_new_tokens=6, batch_size=1)[0].token_ids
    for backend in (hf, nn, lens):
        got = generate(backend, [item], max_new_tokens=6, interventions=[value])[0].token_ids
        assert got == expected[: len(got)], f"{backend!r} {positions}"
    assert expected[: len(plain)] != plain  # the edit changes the greedy tokens


@pytest.mark.parametrize("arch", ["llama", "gemma3_mm"])
def test_sampled_generation_gives_the_same_draws_on_every_backend(backends, arch):
    hf, nn, lens = backends(arch)
    value = Intervention("resid(1)", "add", np.ones(hf.lm.layout.d_model), positions="last")
    runs = {}
    for backend in (hf, nn, lens):
        with backend.intervene([value]):
            gens = generate(
                backend, ITEMS, max_new_tokens=6, do_sample=True, temperature=1.5, seed=7
            )
        runs[backend.name] = [g.token_ids for g in gens]
    assert runs["nnsight"] == runs["hf"] and runs["transformer_lens"] == runs["hf"]
    other_seed = [
        g.token_ids for g in generate(hf, ITEMS, max_new_tokens=6, do_sample=True, seed=8)
    ]
    assert other_seed != runs["hf"]


def test_constructors_compile_for_the_backend_they_are_given(backends):
    from interventions import project_out, temper

    hf, nn, lens = backends("llama")
    v = np.random.default_rng(3).standard_normal(hf.lm.layout.d_model)
    with project_out(hf.lm, "resid(1)", v, positions="last"), temper(hf.lm, {(2, 1): 0.0}):
        expected = hf.logits(ITEMS)
    for backend in (nn, lens):
        with project_out(backend, "resid(1)", v, positions="last"), temper(backend, {(2, 1): 0.0}):
            assert_close(backend.logits(ITEMS), expected, f"{backend!r} constructors")
        assert_close(backend.logits(ITEMS), hf.logits(ITEMS), f"{backend!r} after the context")
