"""The intervention core against hand-written computations, on every layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support import ARCHES, MULTIMODAL

from interventions import ablate_mean, collect_site, patch, project_out, resample, temper
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.model.capture import capture
from workbench.model.hooks import Hook, attach, count_hooks
from workbench.model.intervention import Intervention
from workbench.model.positions import PositionSpec, item_key

ITEMS = [
    Item("a", "What is the capital of France?", "Paris, of course."),
    Item("b", "Hi", "Hello"),
    Item("c", "Name a colour", "Blue and green"),
]
LAYOUTS = (*ARCHES, *MULTIMODAL)


def _layer(lm) -> int:
    return lm.layout.layers_with_attention[0]


def _direction(lm, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(lm.layout.d_model)


def _hand_hook(fn):
    """A forward hook written by hand: ``fn(hidden, row positions) -> hidden``."""

    def hook(module, args, output):
        h = output[0] if isinstance(output, tuple) else output
        new = fn(h)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return hook


def _per_token(lm, site: str) -> dict[int, np.ndarray]:
    return collect_site(lm, ITEMS, site, per_item=True)


@pytest.mark.parametrize("arch", LAYOUTS)
def test_project_out_equals_projecting_by_hand(tiny, arch):
    lm = tiny(arch)
    layer = _layer(lm)
    v = _direction(lm)
    u = torch.tensor(v / np.linalg.norm(v), dtype=torch.float32)
    plain = _per_token(lm, f"resid({layer})")
    with project_out(lm, f"resid({layer})", v):
        edited = _per_token(lm, f"resid({layer})")
        logits = capture(lm, ITEMS, ["h_last"])["h_last"]
    for key, h in plain.items():
        hand = h - (h @ u.numpy())[:, None] * u.numpy()[None, :]
        np.testing.assert_allclose(edited[key], hand, atol=1e-5)
        assert np.abs(edited[key] @ u.numpy()).max() < 1e-4
    hook = _hand_hook(lambda h: h - (h @ u)[..., None] * u)
    with attach([Hook(lm.layout.layers[layer], "post", hook)]):
        by_hand = capture(lm, ITEMS, ["h_last"])["h_last"]
    np.testing.assert_allclose(logits, by_hand, atol=1e-5)
    assert count_hooks(lm.model) == 0


@pytest.mark.parametrize("arch", LAYOUTS)
def test_position_restricted_leaves_other_positions_bit_identical(tiny, arch):
    lm = tiny(arch)
    layer = _layer(lm)
    last = lm.layout.n_layers - 1
    v = _direction(lm, 1)
    plain_site, plain_out = _per_token(lm, f"resid({layer})"), _per_token(lm, f"resid({last})")
    for positions in ("last", "response", [1]):
        with project_out(lm, f"resid({layer})", v, positions=positions):
            site, out = _per_token(lm, f"resid({layer})"), _per_token(lm, f"resid({last})")
        for it in ITEMS:
            key = item_key(it.id)
            n = plain_site[key].shape[0]
            n_prompt = n - len(lm.tokenizer(it.response, add_special_tokens=False)["input_ids"])
            cols = {
                "last": [n - 1],
                "response": list(range(n_prompt, n)),
            }.get(positions if isinstance(positions, str) else "", [1])
            others = [c for c in range(n) if c not in cols]
            np.testing.assert_array_equal(site[key][others], plain_site[key][others])
            assert not np.allclose(site[key][cols], plain_site[key][cols])
            before = [c for c in others if c < min(cols)]  # causal: earlier tokens unchanged
            np.testing.assert_array_equal(out[key][before], plain_out[key][before])


@pytest.mark.parametrize("arch", LAYOUTS)
def test_mean_ablation_equals_substituting_the_mean_by_hand(tiny, arch):
    lm = tiny(arch)
    layer = _layer(lm)
    reference = [Item("r1", "One two three", "four"), Item("r2", "Five", "six seven")]
    bank = collect_site(lm, reference, f"head_in({layer})", heads=(1,), positions="last")
    assert bank.shape == (2, lm.layout.attention(layer).head_dim)
    mean = bank.mean(0)
    d = lm.layout.attention(layer).head_dim

    def by_hand(module, args):
        x = args[0].clone()
        x[:, -1, d : 2 * d] = torch.tensor(mean)  # left padding: column -1 is every row's last
        return (x, *args[1:])

    with ablate_mean(lm, f"head_in({layer})", mean, heads=(1,), positions="last"):
        ablated = capture(lm, ITEMS, ["h_last", f"head_in({layer})"])
    with attach([Hook(lm.layout.o_proj(layer), "pre", by_hand)]):
        hand = capture(lm, ITEMS, ["h_last", f"head_in({layer})"])
    np.testing.assert_allclose(ablated["h_last"], hand["h_last"], atol=1e-5)
    np.testing.assert_allclose(ablated[f"head_in({layer})"][:, 1], np.tile(mean, (3, 1)), atol=1e-6)


def test_resample_draws_a_bank_row_per_item(tiny):
    lm = tiny("llama")
    bank = collect_site(lm, ITEMS, "resid(1)", positions="last")
    with resample(lm, "resid(1)", bank, positions="last", seed=3):
        got = capture(lm, ITEMS, ["resid(1)"])["resid(1)"]
    rows = {tuple(np.round(r, 5)) for r in bank}
    assert all(tuple(np.round(g, 5)) in rows for g in got)


@pytest.mark.parametrize("arch", LAYOUTS)
def test_patching_everything_reproduces_the_source_and_nothing_the_target(tiny, arch):
    lm = tiny(arch)
    clean = [Item("x", "The capital of Italy is", " Paris")]
    corrupt = [Item("x", "The capital of Spain is", " Paris")]  # same key, same length
    site = f"resid({_layer(lm)})"
    source = collect_site(lm, clean, site, per_item=True)
    target = capture(lm, corrupt, ["h_last", site])
    with patch(lm, site, source):
        patched = capture(lm, corrupt, ["h_last", site])
        at_site = collect_site(lm, corrupt, site, per_item=True)
    np.testing.assert_allclose(at_site[item_key("x")], source[item_key("x")], atol=1e-6)
    np.testing.assert_allclose(patched[site], capture(lm, clean, [site])[site], atol=1e-6)
    # Gemma 4 (per-layer token embeddings): patching resid(0) or resid(1) of the tiny model
    # leaves h_last 0.30 / 0.13 from the clean run, resid(2) and resid(3) reproduce it
    # exactly; the corrupted tokens reach later layers by another path (not pinned down).
    text = getattr(lm.model.config, "text_config", lm.model.config)
    if not getattr(text, "hidden_size_per_layer_input", 0):
        clean_out = capture(lm, clean, ["h_last"])["h_last"]
        np.testing.assert_allclose(patched["h_last"], clean_out, atol=1e-5)
    with patch(lm, site, source, align=()):  # an empty map patches nothing
        same = capture(lm, corrupt, ["h_last"])
    np.testing.assert_array_equal(same["h_last"], target["h_last"])
    shorter = [Item("x", "Spain is", " Paris")]
    with pytest.raises(WorkbenchError, match="do not align"), patch(lm, site, source):
        capture(lm, [Item("x", "A much longer prompt about Spain is", " Paris")], ["h_last"])
    with patch(lm, site, source, positions="last"):  # from the end: the last tokens align
        capture(lm, shorter, ["h_last"])


def test_tempering_is_scale_at_head_in_and_serialises(tiny):
    lm = tiny("qwen3")
    iv = temper(lm, {(1, 2): 0.0, (1, 0): 0.5, (2, 1): 1.0})
    assert [v.site for v in iv.values] == ["head_in(1)", "head_in(2)"]
    data = json.loads(json.dumps(iv.to_json()))
    rebuilt = [Intervention.from_json(v) for v in data["interventions"]]
    assert [r.to_json() for r in rebuilt] == data["interventions"]
    assert rebuilt[0].heads == (0, 2) and rebuilt[0].operand.tolist() == [0.5, 0.0]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda lm: project_out(lm, "resid(1)", np.ones(3)), r"shape \(3,\).*takes \(64,\)"),
        (lambda lm: project_out(lm, "resid(1)", np.ones(64), positions=[40]), "outside a row"),
        (lambda lm: temper(lm, {(1, 9): 0.5}), "head 9 is out of range for layer 1"),
        (
            lambda lm: ablate_mean(lm, "head_in(1)", np.ones(16), heads=(4,)),
            "head 4 is out of range",
        ),
        (lambda lm: Intervention("v_out(1)", "project_out", np.ones(32)), "v_out.*not project_out"),
        (lambda lm: Intervention("h_last", "add", np.ones(64)), "cannot be written"),
        (lambda lm: Intervention("resid(1)", "add", [np.nan] * 64), "NaN"),
        (lambda lm: PositionSpec.parse("middle"), "positions 'middle' not understood"),
    ],
)
def test_bad_input_is_one_line(tiny, build, message):
    lm = tiny("llama")
    with pytest.raises(WorkbenchError, match=message) as info:
        iv = build(lm)
        with iv:
            capture(lm, ITEMS, ["h_last"])
    assert "\n" not in str(info.value)
    assert count_hooks(lm.model) == 0
