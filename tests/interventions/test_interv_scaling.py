"""Other intervention sites through the same mechanism: v_proj, MLP, residual steering."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interventions import (
    mass_mean_direction,
    probe_direction,
    scale_mlp,
    scale_values,
    steer,
    temper,
)
from probes import LinearProbe, MassMeanProbe
from workbench.core.errors import WorkbenchError
from workbench.model.hooks import count_hooks


@pytest.mark.parametrize("arch", ("llama", "qwen3", "qwen3_5", "gemma3"))
def test_value_scaling_equals_tempering_the_query_heads_of_that_kv_head(
    tiny, arch, input_ids, logits_of, attn_layer
):
    lm = tiny(arch)
    layer = attn_layer(lm)
    n_heads = lm.layout.info[layer].n_heads
    n_kv = lm.model.config.num_key_value_heads
    group = n_heads // n_kv
    kv = n_kv - 1
    base = logits_of(lm, input_ids)
    with scale_values(lm, {(layer, kv): 0.3}):
        scaled = logits_of(lm, input_ids)
    with temper(lm, {(layer, h): 0.3 for h in range(kv * group, (kv + 1) * group)}):
        tempered = logits_of(lm, input_ids)
    if n_kv > 1:  # Gemma 3 here has one KV head: see the next test
        assert not torch.allclose(scaled, base, atol=1e-4)
    torch.testing.assert_close(scaled, tempered, atol=2e-5, rtol=1e-4)
    with scale_values(lm, {(layer, kv): 1.0}):
        assert torch.equal(logits_of(lm, input_ids), base)


@pytest.mark.parametrize("arch", ("gemma3", "gemma4"))
def test_gemma_post_attention_norm_undoes_uniform_scaling_of_a_layer(
    tiny, arch, input_ids, logits_of
):
    """Gemma normalises the attention output before the residual add, so scaling every head
    of a layer by one factor changes (almost) nothing; scaling a subset changes the mix."""
    lm = tiny(arch)
    base = logits_of(lm, input_ids)
    n = lm.layout.info[1].n_heads
    with temper(lm, {(1, h): 0.3 for h in range(n)}):
        torch.testing.assert_close(logits_of(lm, input_ids), base, atol=1e-3, rtol=1e-3)
    with temper(lm, {(1, 0): 0.3}):
        assert not torch.allclose(logits_of(lm, input_ids), base, atol=1e-2)


def test_value_scaling_refused_where_it_cannot_act(tiny):
    with pytest.raises(WorkbenchError, match="v_norm.*use temper"):
        scale_values(tiny("gemma4"), {(1, 0): 0.5})
    with pytest.raises(WorkbenchError, match="no v_proj in this layout"):
        scale_values(tiny("gpt2"), {(1, 0): 0.5})
    with pytest.raises(
        WorkbenchError, match=r"kv head 2 is out of range for layer 1: valid kv heads are 0\.\.1"
    ):
        scale_values(tiny("llama"), {(1, 2): 0.5})


@pytest.mark.parametrize("arch", ("llama", "qwen3_5", "gemma3", "gpt2"))
def test_mlp_scaling_identity_and_removal(tiny, arch, input_ids, logits_of):
    lm = tiny(arch)
    base = logits_of(lm, input_ids)
    with scale_mlp(lm, {1: 1.0}):
        assert torch.equal(logits_of(lm, input_ids), base)
    with scale_mlp(lm, {1: 0.0}):
        removed = logits_of(lm, input_ids)
    mlp = lm.layout.layers[1].mlp
    handle = mlp.register_forward_hook(lambda m, a, out: torch.zeros_like(out))
    try:
        manual = logits_of(lm, input_ids)
    finally:
        handle.remove()
    assert not torch.allclose(removed, base, atol=1e-4)
    torch.testing.assert_close(removed, manual, atol=1e-5, rtol=1e-5)
    assert count_hooks(lm.model) == 0


def test_mlp_scaling_errors(tiny):
    lm = tiny("llama")
    with pytest.raises(WorkbenchError, match="factor -1 must be finite"):
        scale_mlp(lm, {0: -1})
    with pytest.raises(WorkbenchError, match="layer 5 is out of range"):
        scale_mlp(lm, {5: 0.5})
    with pytest.raises(WorkbenchError, match="given twice"):
        scale_mlp(lm, {2: 0.5, -1: 0.5})


@pytest.mark.parametrize("arch", ("llama", "gpt2"))
def test_steering_at_the_last_layer_matches_a_manual_computation(tiny, arch, input_ids, logits_of):
    lm = tiny(arch)
    last = lm.layout.n_layers - 1
    v = np.random.default_rng(1).normal(size=lm.layout.d_model)
    seen = {}
    handle = lm.layout.layers[last].register_forward_hook(
        lambda m, a, out: seen.__setitem__("h", out[0] if isinstance(out, tuple) else out)
    )
    try:
        logits_of(lm, input_ids)
    finally:
        handle.remove()
    with torch.no_grad():
        shifted = seen["h"] + 0.7 * torch.as_tensor(v, dtype=torch.float32)
        manual = lm.model.get_output_embeddings()(lm.layout.final_norm(shifted))
    with steer(lm, -1, v, alpha=0.7):
        steered = logits_of(lm, input_ids)
    torch.testing.assert_close(steered, manual, atol=1e-5, rtol=1e-5)
    base = logits_of(lm, input_ids)
    with steer(lm, 0, v, alpha=0.0):
        assert torch.equal(logits_of(lm, input_ids), base)
    assert count_hooks(lm.model) == 0


def test_steering_with_alpha_zero_is_identity_everywhere(tiny, input_ids, logits_of):
    lm = tiny("qwen3_5")
    base = logits_of(lm, input_ids)
    v = np.ones(lm.layout.d_model)
    for layer in range(lm.layout.n_layers):  # hybrid: linear-attention layers too
        with steer(lm, layer, v, alpha=0.0):
            assert torch.equal(logits_of(lm, input_ids), base)
        with steer(lm, layer, v, alpha=1.0):
            assert not torch.equal(logits_of(lm, input_ids), base)


def test_steering_errors(tiny):
    lm = tiny("llama")
    with pytest.raises(
        WorkbenchError, match=r"shape \(3,\); this model's residual stream is \(64,\)"
    ):
        steer(lm, 1, np.ones(3))
    with pytest.raises(WorkbenchError, match="NaN or infinite"):
        steer(lm, 1, np.full(64, np.nan))
    with pytest.raises(WorkbenchError, match="alpha nan must be a finite number"):
        steer(lm, 1, np.ones(64), alpha=float("nan"))


def test_directions_from_mass_mean_and_probes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6))
    y = (np.arange(200) % 2).astype(float)
    X[y == 1] += np.array([2.0, 0, 0, 0, 0, 1.0])
    mm = mass_mean_direction(X, y)
    assert np.isclose(np.linalg.norm(mm), 1.0) and mm[0] > 0.8
    np.testing.assert_allclose(probe_direction(MassMeanProbe().fit(X, y)), mm)
    probe = LinearProbe(C=1.0).fit(X, y)
    raw = probe_direction(probe, normalize=False)
    x0 = X[:1]
    for i in range(6):  # the direction is the decision function's gradient in activation space
        step = np.zeros((1, 6))
        step[0, i] = 1e-3
        grad = (probe.decision_function(x0 + step) - probe.decision_function(x0))[0] / 1e-3
        assert np.isclose(grad, raw[i], rtol=1e-4, atol=1e-6)
    with pytest.raises(WorkbenchError, match="needs both classes"):
        mass_mean_direction(X, np.zeros(200))
    with pytest.raises(WorkbenchError, match="fit it first"):
        probe_direction(LinearProbe())
