"""Past one machine: device_map placement (testable on CPU) and nnsight's remote path.

Real multi-GPU sharding and NDIF execution cannot run on these offline CPU
machines; ``device_map`` on the CPU goes through the same accelerate dispatch,
and ``remote="local"`` through nnsight's serialise-and-run path.
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.core.items import Item
from workbench.model.backends import HFBackend, LensBackend, NNsightBackend
from workbench.model.backends.nnsight_backend import wrap_nnsight
from workbench.model.loading import load_model

ITEMS = [Item("a", "Hello there", "General Kenobi"), Item("b", "Hi")]
SITES = ["h_last", "head_in(1)", "resid(0)"]


@pytest.fixture(scope="module")
def reference(tiny_dir):
    lm = load_model(str(tiny_dir))
    return HFBackend(lm).capture(ITEMS, SITES)


@pytest.mark.parametrize("device_map", ["cpu", {"": "cpu"}, "auto"], ids=["cpu", "dict", "auto"])
def test_device_map_loads_and_captures_the_same(tiny_dir, reference, device_map):
    lm = load_model(str(tiny_dir), device_map=device_map)
    assert lm.device.type == "cpu"  # transformers places an all-CPU map without dispatch hooks
    result = HFBackend(lm).capture(ITEMS, SITES)
    for site in SITES:
        np.testing.assert_array_equal(result[site], reference[site])


def test_accelerate_dispatch_hooks_compose_with_ours(tiny_dir, reference, tmp_path):
    """What a sharded load installs (accelerate's per-module device hooks), with our hooks:
    here layers 1 and 2 are offloaded to disk and loaded by accelerate's hooks per forward."""
    from accelerate import dispatch_model

    lm = load_model(str(tiny_dir))
    plain = HFBackend(lm).logits(ITEMS)
    with HFBackend(lm).temper({(1, 2): 0.0}):
        tempered = HFBackend(lm).logits(ITEMS)
    placement = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu"}
    placement |= {"model.layers.1": "disk", "model.layers.2": "disk", "model.norm": "cpu"}
    placement |= {"lm_head": "cpu"}
    dispatch_model(lm.model, device_map=placement, main_device="cpu", offload_dir=str(tmp_path))
    assert hasattr(lm.layout.o_proj(1), "_hf_hook")
    backend = HFBackend(lm)
    result = backend.capture(ITEMS, SITES)
    for site in SITES:
        np.testing.assert_array_equal(result[site], reference[site])
    np.testing.assert_array_equal(backend.logits(ITEMS), plain)
    with backend.temper({(1, 2): 0.0}):
        np.testing.assert_array_equal(backend.logits(ITEMS), tempered)


@pytest.mark.parametrize(
    ("backend", "cls"), [("transformer_lens", LensBackend), ("nnsight", NNsightBackend)]
)
def test_load_model_returns_each_backend_with_a_device_map(tiny_dir, reference, backend, cls):
    wrapped = load_model(str(tiny_dir), backend=backend, device_map={"": "cpu"})
    assert isinstance(wrapped, cls) and wrapped.name == backend
    result = wrapped.capture(ITEMS, SITES)
    for site in SITES:
        atol = 1e-4 * max(1.0, float(np.abs(reference[site]).max()))
        np.testing.assert_allclose(result[site], reference[site], rtol=0, atol=atol)


def test_nnsight_remote_local_simulation_equals_local(tiny):
    lm = tiny("llama")
    local = NNsightBackend(lm)
    remote = NNsightBackend.from_nnsight(wrap_nnsight(lm), remote="local")
    assert remote.lm.layout.n_layers == lm.layout.n_layers
    heads = {(2, 1): 0.0}
    a, b = local.capture(ITEMS, SITES), remote.capture(ITEMS, SITES)
    for site in SITES:
        np.testing.assert_array_equal(a[site], b[site])
    with local.temper(heads), remote.temper(heads):
        np.testing.assert_array_equal(local.logits(ITEMS), remote.logits(ITEMS))
        tokens = [g.token_ids for g in local.generate(ITEMS, max_new_tokens=4)]
        assert [g.token_ids for g in remote.generate(ITEMS, max_new_tokens=4)] == tokens


def test_remote_flag_reaches_nnsight(tiny, monkeypatch):
    """``remote=True`` needs NDIF; check that every entry point asks nnsight for it."""
    backend = NNsightBackend(tiny("llama"), remote=True)
    asked: list[object] = []

    def no_network(self, remote, *args):
        asked.append(remote)
        raise ConnectionError("offline: NDIF is unreachable")

    monkeypatch.setattr(type(backend.model), "_remote_backend", no_network)
    for run in (
        lambda: backend.capture(ITEMS, ["h_last"]),
        lambda: backend.logits(ITEMS),
        lambda: backend.generate(ITEMS, max_new_tokens=2),
    ):
        with pytest.raises(ConnectionError, match="offline"):
            run()
    assert asked == [True, True, True]
