"""Site names translate between the workbench, TransformerLens and nnsight, and resolve."""

from __future__ import annotations

import pytest
import torch

from workbench.core.errors import WorkbenchError
from workbench.model.backends import (
    LensBackend,
    NNsightBackend,
    from_backend_name,
    name_table,
    to_backend_name,
    to_backend_names,
)
from workbench.model.layouts import get_module


def _sites(lm) -> list[str]:
    heads = [f"head_in({layer})" for layer in lm.layout.layers_with_attention]
    return [*heads, *(f"resid({layer})" for layer in range(lm.layout.n_layers)), "h_last"]


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gemma4", "qwen3_5"])
def test_every_site_name_resolves_and_round_trips(tiny, arch):
    lm = tiny(arch)
    bridge = LensBackend(lm, copy_model=True).bridge
    nn = NNsightBackend(lm)
    for site in _sites(lm):
        canonical = str(from_backend_name(to_backend_name(site, "hf", lm.layout), "hf"))
        for backend in ("hf", "transformer_lens", "nnsight"):
            name = to_backend_name(site, backend, lm.layout)
            assert str(from_backend_name(name, backend, lm.layout)) == canonical, name
        assert to_backend_name(site, "transformer_lens", lm.layout) in bridge.hook_dict
        path, _, side = to_backend_name(site, "nnsight", lm.layout).rpartition(".")
        envoy = nn._envoy(path)
        assert side in ("input", "output") and envoy._module is get_module(lm.model, path)
    assert to_backend_name("head_in(1)", "hf", tiny("llama").layout) == (
        "model.layers.1.self_attn.o_proj.input"
    )


def test_names_a_lens_user_knows_find_the_workbench_site():
    cases = {
        "blocks.3.attn.hook_z": "head_in(3)",
        "blocks.3.attn.o.hook_in": "head_in(3)",
        "blocks.3.hook_resid_post": "resid(3)",
        "blocks.4.hook_resid_pre": "resid(3)",
        "ln_final.hook_out": "resid(-1,normed)",
    }
    for name, site in cases.items():
        assert str(from_backend_name(name, "transformer_lens")) == site
    paths = {
        "model.layers.2.self_attn.o_proj.input": "head_in(2)",
        "model.model.layers.2.self_attn.o_proj.input": "head_in(2)",  # nnsight's root `model.`
        "transformer.h.1.attn.c_proj.input": "head_in(1)",
        "model.language_model.layers.5.output": "resid(5)",
        "model.norm.output": "resid(-1,normed)",
        "model.layers.7": "resid(7)",
    }
    for name, site in paths.items():
        assert str(from_backend_name(name, "nnsight")) == site


@pytest.mark.parametrize(
    ("name", "backend", "message"),
    [
        ("ln_final.hook_normalized", "transformer_lens", "use ln_final.hook_out"),
        ("blocks.0.hook_resid_pre", "transformer_lens", "embedding output"),
        ("blocks.1.mlp.hook_post", "transformer_lens", "known hook names are"),
        ("model.layers.1.self_attn.o_proj.output", "nnsight", "output of o_proj mixes heads"),
        ("model.embed_tokens.output", "hf", "known names are"),
        ("blocks.1.attn.hook_z", "pyvene", "unknown backend"),
    ],
)
def test_names_without_a_site_say_why(name, backend, message):
    with pytest.raises(WorkbenchError, match=message):
        from_backend_name(name, backend)


def test_layout_checks_layers_and_attention(tiny):
    with pytest.raises(WorkbenchError, match="out of range"):
        from_backend_name("blocks.9.attn.hook_z", "transformer_lens", tiny("llama").layout)
    with pytest.raises(WorkbenchError, match="no full-attention o_proj"):
        to_backend_name("head_in(0)", "transformer_lens", tiny("qwen3_5").layout)


def test_multi_point_sites_and_the_table(tiny):
    layout = tiny("llama").layout
    assert to_backend_names("mean_last_n(2)", "transformer_lens", layout) == (
        "blocks.1.hook_resid_post",
        "ln_final.hook_out",
    )
    with pytest.raises(WorkbenchError, match="to_backend_names"):
        to_backend_name("mean_last_n(2)", "transformer_lens", layout)
    assert to_backend_name("head_norm(2,last=4)", "transformer_lens", layout) == (
        "blocks.2.attn.hook_z"
    )
    table = name_table(layout, 1)
    assert (
        "| `head_in(1)` | `model.layers.1.self_attn.o_proj.input` | `blocks.1.attn.hook_z` |"
        in table
    )


def test_resid_pre_of_the_next_block_is_resid_post(tiny):
    bridge = LensBackend(tiny("qwen3"), copy_model=True).bridge
    _, cache = bridge.run_with_cache(
        torch.tensor([[5, 6, 7, 8]]),
        names_filter=["blocks.1.hook_resid_pre", "blocks.0.hook_resid_post"],
    )
    torch.testing.assert_close(cache["blocks.1.hook_resid_pre"], cache["blocks.0.hook_resid_post"])
