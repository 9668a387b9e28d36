"""Continuous batching: equals HF greedy per layout with mixed lengths and EOS at different
steps, per-item seeds independent of the batch, interventions and fused capture equal to
the static loop, the per-step view of prompt and generated positions, and the pieces."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from support import prompt_items, record_prefix_tokens

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.model.compile import head_scales
from workbench.model.continuous import Step, decode_continuous
from workbench.model.generation import eos_ids, generate
from workbench.model.hooks import Hook, attach
from workbench.model.kvcache_rows import rows_supported
from workbench.model.scheduler import Scheduler, shared_prefix
from workbench.model.tokens import encode_prompt

ITEMS, PREFIXED = prompt_items()
SLICEABLE = {"llama": True, "qwen3": True, "gpt2": True, "gemma3": False, "gemma4": False,
             "qwen3_5": False}  # fmt: skip


def _hf_greedy(lm, item: Item, max_new_tokens: int, eos: list[int]) -> list[int]:
    ids = torch.tensor([encode_prompt(lm.tokenizer, item.prompt)])
    out = lm.model.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
        pad_token_id=lm.tokenizer.pad_token_id, eos_token_id=eos,
    )  # fmt: skip
    tokens = out[0, ids.shape[1] :].tolist()
    for i, t in enumerate(tokens):
        if t in eos:
            return tokens[:i]
    return tokens


@contextlib.contextmanager
def _extra_eos(lm, token: int):
    config = lm.model.generation_config
    old = config.eos_token_id
    config.eos_token_id = sorted({*eos_ids(lm), token})
    try:
        yield config.eos_token_id
    finally:
        config.eos_token_id = old


def _eos_at_different_steps(lm, n: int) -> int:
    """A token that greedy decoding picks first at different steps for different items."""
    gens = generate(lm, ITEMS, max_new_tokens=n, batch_size=len(ITEMS), loop="static")
    firsts: dict[int, set[int]] = {}
    for g in gens:
        seen: set[int] = set()
        for step, t in enumerate(g.token_ids):
            if t not in seen:
                firsts.setdefault(t, set()).add(step)
                seen.add(t)
    counts = {t: sum(t in g.token_ids for g in gens) for t in firsts}
    some = [t for t in firsts if counts[t] < len(gens)] or list(firsts)  # some rows run on
    return max(some, key=lambda t: (len(firsts[t]), -t))


@pytest.mark.parametrize("arch", sorted(SLICEABLE))
def test_continuous_greedy_equals_hf_generate(tiny, arch):
    lm = tiny(arch)
    n = 10
    with _extra_eos(lm, _eos_at_different_steps(lm, n)) as eos:
        gens = generate(lm, ITEMS, max_new_tokens=n, batch_size=3, loop="continuous")
        want = [_hf_greedy(lm, it, n, eos) for it in ITEMS]
    assert [list(g.token_ids) for g in gens] == want
    assert [g.truncated for g in gens] == [len(w) == n for w in want]
    if SLICEABLE[arch]:  # EOS ended rows at different steps, and some rows ran to the cap
        # (the tiny Gemma 3 repeats one token for every prompt, so it cannot show this;
        # it, Gemma 4 and Qwen3.5 run the static loop)
        assert len({len(w) for w in want if len(w) < n}) >= 2 and any(len(w) == n for w in want)
    assert rows_supported(lm.model) == SLICEABLE[arch]
    assert gens.loop == "continuous" if SLICEABLE[arch] else gens.loop.startswith("static (fall")


def _record(lm, prompts, *, batch_size, share_prefix, max_new_tokens=6, reader=None, min_group=1):
    steps: list[tuple[Step, torch.Tensor]] = []

    def forward(ids, mask, positions, cache, step):
        steps.append((step, mask.clone()))
        out = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                       use_cache=True, logits_to_keep=1)  # fmt: skip
        return out.logits[:, -1, :]

    with torch.inference_mode(), attach(reader.hooks() if reader else []):
        decoded = decode_continuous(
            lm.model, forward, prompts, [torch.Generator() for _ in prompts],
            lambda logits, gens: logits.argmax(-1), batch_size=batch_size,
            max_new_tokens=max_new_tokens, eos=set(eos_ids(lm)), pad=lm.pad_id,
            device=lm.device, share_prefix=share_prefix, min_group=min_group, reader=reader,
        )  # fmt: skip
    return decoded, steps


def test_shared_prefix_is_prefilled_once_and_changes_nothing(tiny):
    lm = tiny("llama")
    items = [Item(f"p{i}", f"Please answer briefly: {q}") for i, q in enumerate(["a", "bb", "ccc"])]
    prompts = [encode_prompt(lm.tokenizer, it.prompt) for it in items]
    shared, steps = _record(lm, prompts, batch_size=2, share_prefix=True)
    alone, _ = _record(lm, prompts, batch_size=2, share_prefix=False)
    assert shared.prefix_tokens == shared_prefix(prompts) > 20
    assert sum(1 for s, _ in steps if s.items == (-1,)) == 1  # one prefix pass for 2 groups
    assert shared.tokens == alone.tokens
    assert shared.tokens == [_hf_greedy(lm, it, 6, eos_ids(lm)) for it in items]
    assert shared.row_tokens < alone.row_tokens


@pytest.mark.parametrize("min_group", [1, 2])
def test_step_says_which_positions_are_prompt_and_generated(tiny, min_group):
    lm = tiny("llama")
    prompts = [encode_prompt(lm.tokenizer, it.prompt) for it in ITEMS]
    with _extra_eos(lm, _eos_at_different_steps(lm, 6)):
        decoded, steps = _record(lm, prompts, batch_size=3, share_prefix=False, min_group=min_group)
        assert decoded.tokens == [_hf_greedy(lm, it, 6, eos_ids(lm)) for it in ITEMS]
    fed = {i: 0 for i in range(len(prompts))}
    ended: set[int] = set()
    for step, mask in steps:
        assert step.pos.shape[0] == len(step.items) == mask.shape[0]
        for r, item in enumerate(step.items):
            real = step.pos[r][step.pos[r] >= 0].tolist()
            if not real:  # an ended row waiting to be removed (min_group > 1)
                ended.add(item)
                continue
            assert item not in ended
            n_prompt = len(prompts[item])
            if real and real[0] == 0:  # the item's prefill: its whole prompt, in order
                assert real == list(range(n_prompt)) and int(step.length[r]) == n_prompt
            else:  # a decoding step: one generated token at the row's next position
                assert real == [int(step.length[r]) - 1] and real[0] >= n_prompt
            assert int(mask[r].sum()) == int(step.length[r])  # the mask covers the row
            fed[item] += len(real)
    # every prompt token and every generated token was fed once (a token cut at the cap
    # is not fed: with no reader there is nothing left to compute for it)
    for i, tokens in enumerate(decoded.tokens):
        assert fed[i] == len(prompts[i]) + len(tokens) - int(decoded.truncated[i])
    assert max(len(s.items) for s, _ in steps) == 3
    assert bool(ended) == (min_group > 1)  # ended rows were kept for a while, then removed


def test_sampling_draws_do_not_depend_on_batch_composition(tiny):
    lm = tiny("qwen3")
    kw = dict(max_new_tokens=8, do_sample=True, temperature=1.0, top_p=0.95, top_k=50, seed=3)
    together = generate(lm, ITEMS, batch_size=3, loop="continuous", **kw)
    alone = generate(lm, ITEMS[::-1], batch_size=1, loop="continuous", **kw)
    static = generate(lm, ITEMS[2:], batch_size=2, loop="static", **kw)
    assert together.loop == "continuous"
    assert [g.token_ids for g in together] == [g.token_ids for g in alone][::-1]
    assert [g.token_ids for g in together][2:] == [g.token_ids for g in static]
    greedy = generate(lm, ITEMS, batch_size=3, max_new_tokens=8, loop="continuous")
    assert [g.token_ids for g in together] != [g.token_ids for g in greedy]


def _halve_head_outputs(lm):
    def scale(module, args):
        x = args[0].clone()
        x[..., :8] *= 0.5
        return (x, *args[1:])

    return attach(
        [Hook(lm.layout.o_proj(layer), "pre", scale) for layer in lm.layout.layers_with_attention]
    )


@pytest.mark.parametrize(("arch", "batch_size"), [("llama", 3), ("gpt2", 3), ("llama", 16)])
def test_interventions_and_fused_capture_equal_the_static_loop(tiny, arch, batch_size):
    # batch 16 keeps ended rows until two have ended (min_group 2): their features must hold
    lm = tiny(arch)
    layer = lm.layout.layers_with_attention[-1]
    sites = ["h_last", "resid(0)", "mean_last_n(2)", f"head_in({layer},last=3)"]
    out = {}
    with _extra_eos(lm, _eos_at_different_steps(lm, 7)):  # rows end at different steps
        for loop in ("static", "continuous"):
            out[loop] = generate(lm, ITEMS, max_new_tokens=7, batch_size=batch_size, loop=loop,
                                 interventions=[_halve_head_outputs(lm)], capture=sites)  # fmt: skip
        plain = generate(lm, ITEMS, max_new_tokens=7, batch_size=3)
    lengths = {g.n_tokens for g in out["static"] if not g.truncated}
    assert len(lengths) >= 2, lengths
    assert [g.token_ids for g in out["continuous"]] == [g.token_ids for g in out["static"]]
    assert [g.token_ids for g in plain] != [g.token_ids for g in out["static"]]
    assert any(g.truncated for g in plain)
    for name, want in out["static"].features.items():
        np.testing.assert_allclose(out["continuous"].features[name], want, rtol=1e-5, atol=1e-5)


def test_scheduler_admits_by_length_in_groups():
    s = Scheduler([7, 1, 5, 3, 9, 2], batch_size=4, min_group=2)
    assert s.admit(0) == [1, 5, 3, 2]
    assert s.admit(3) == []  # one free slot: wait for a group of two
    assert s.admit(2) == [0, 4] and s.waiting == 0
    assert shared_prefix([[1, 2, 3], [1, 2, 4, 5]]) == 2
    assert shared_prefix([[1, 2], [1, 2, 3]]) == 1  # every prompt keeps a token
    assert shared_prefix([[1, 2, 3]]) == 0


@pytest.mark.parametrize("positions", ["last", "prompt", "response", "last:2", [0, -1]])
@pytest.mark.parametrize("items", [ITEMS, PREFIXED], ids=["mixed", "shared-prefix"])
def test_position_restricted_interventions_equal_the_static_loop(tiny, positions, items):
    # Intervention values with positions read the Frame the loop sets: a row's prompt in
    # its prefill, its newest token at each step (and no shared-prefix pass under them)
    lm = tiny("llama")
    heads = {
        (layer, h): 0.0 if h % 2 == 0 else 3.0
        for layer in lm.layout.layers_with_attention
        for h in range(lm.layout.info[layer].n_heads)
    }
    values = head_scales(lm.layout, heads, positions)
    out = {}
    with _extra_eos(lm, _eos_at_different_steps(lm, 7)):
        for loop in ("static", "continuous"):
            out[loop] = generate(lm, items, max_new_tokens=7, batch_size=2, loop=loop,
                                 interventions=values)  # fmt: skip
        plain = generate(lm, items, max_new_tokens=7, batch_size=2, loop="continuous")
    assert out["continuous"].loop == "continuous" and out["static"].loop == "static"
    assert [g.token_ids for g in out["continuous"]] == [g.token_ids for g in out["static"]]
    assert [g.truncated for g in out["continuous"]] == [g.truncated for g in out["static"]]
    assert [g.token_ids for g in plain] != [g.token_ids for g in out["static"]]


def test_unknown_loop_is_refused_and_continuous_is_the_default(tiny):
    lm = tiny("llama")
    assert generate(lm, ITEMS[:2], max_new_tokens=2).loop == "continuous"
    assert generate(lm, ITEMS[:2], max_new_tokens=2, loop="static").loop == "static"
    with pytest.raises(WorkbenchError, match="loop 'fast' unknown"):
        generate(lm, ITEMS[:2], max_new_tokens=2, loop="fast")


def test_continuous_out_of_memory_halves_the_rows(tiny, monkeypatch, capsys):
    import workbench.model.generation as generation_module

    lm = tiny("llama")
    expected = generate(lm, ITEMS, max_new_tokens=4, batch_size=4, loop="continuous")
    real = generation_module.decode_continuous
    sizes: list[int] = []

    def fake(*args, batch_size, **kwargs):
        sizes.append(batch_size)
        if batch_size > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(*args, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(generation_module, "decode_continuous", fake)
    got = generate(lm, ITEMS, max_new_tokens=4, batch_size=4, loop="continuous")
    assert sizes == [4, 2]
    assert [g.token_ids for g in got] == [g.token_ids for g in expected]
    assert "at generate batch size 4: continuing with batches of 2" in capsys.readouterr().err


@pytest.mark.parametrize("positions", ["last", [1, -2], "response"])
def test_an_edit_entered_outside_generate_keeps_the_prefix_unshared(tiny, positions):
    """A steering edit entered as a context around generate (not passed to it) must see
    the same columns in both loops: the shared prefix, prefilled as a row of its own,
    would otherwise take its 'last' (or index) columns. Checked against the static loop."""
    from interventions import Applied
    from workbench.model.intervention import Intervention

    lm = tiny("llama")
    rng = np.random.default_rng(0)
    value = Intervention("resid(1)", "add", 3.0 * rng.standard_normal(lm.layout.d_model),
                         positions=positions)  # fmt: skip
    prompts = [f"Tell me about {w}, please" for w in ("cats", "a long river", "x", "the sea")]
    with Applied(lm, [value]):
        static = generate(lm, prompts, max_new_tokens=5, batch_size=2, loop="static")
        continuous = generate(lm, prompts, max_new_tokens=5, batch_size=2, loop="continuous")
    assert continuous.loop == "continuous"
    assert [g.token_ids for g in continuous] == [g.token_ids for g in static]
    plain = generate(lm, prompts, max_new_tokens=5, batch_size=2, loop="static")
    assert [g.token_ids for g in plain] != [g.token_ids for g in static]  # the edit acts


@pytest.mark.parametrize(
    ("positions", "shared"),
    [("all", True), ("prompt", True), ("response", True), ("last", False), ([0, -1], False)],
)
def test_edits_that_write_the_prefix_as_inside_each_prompt_share_it(
    tiny, monkeypatch, positions, shared
):
    """Passed edits at all / prompt / response positions see the shared prefix exactly as
    inside each prompt, so it is prefilled once under them; checked against the static loop."""
    lm = tiny("llama")
    layer = lm.layout.layers_with_attention[0]
    values = head_scales(lm.layout, {(layer, 0): 0.0, (layer, 1): 3.0}, positions)
    prefixes = record_prefix_tokens(monkeypatch)
    continuous = generate(lm, PREFIXED, max_new_tokens=6, batch_size=2, interventions=values)
    static = generate(lm, PREFIXED, max_new_tokens=6, batch_size=2, loop="static",
                      interventions=values)  # fmt: skip
    plain = generate(lm, PREFIXED, max_new_tokens=6, batch_size=2, loop="static")
    assert (prefixes[0] > 5) == shared
    assert [g.token_ids for g in continuous] == [g.token_ids for g in static]
    assert [g.token_ids for g in plain] != [g.token_ids for g in static]  # the edit acts
