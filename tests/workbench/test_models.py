"""load_model and LoadedModel: backend extras checked before loading, the input device
under accelerate dispatch."""

from __future__ import annotations

import sys

import pytest
import torch

import workbench.model.loading as models
from workbench.core.errors import MissingExtraError
from workbench.model.loading import LoadedModel, load_model, wrap_model


def test_missing_backend_extra_fails_before_any_weights_load(tiny_dir, monkeypatch):
    loaded = []
    real = models.wrap_model
    monkeypatch.setattr(models, "wrap_model", lambda *a, **k: loaded.append(1) or real(*a, **k))
    monkeypatch.setitem(sys.modules, "nnsight", None)  # as if the import failed
    with pytest.raises(MissingExtraError, match=r"\[nnsight\]"):
        load_model(str(tiny_dir), backend="nnsight")
    assert loaded == []
    assert isinstance(load_model(str(tiny_dir)), LoadedModel)  # hf needs no extra
    assert loaded == [1]


def _offloaded(tiny, device_map) -> LoadedModel:
    """A copy of the tiny model whose embedding is on ``meta``, as accelerate leaves
    an offloaded module until its hook loads it."""
    lm = tiny("llama")
    model = type(lm.model)(lm.model.config)
    model.get_input_embeddings().to("meta")
    if device_map is not None:
        model.hf_device_map = device_map
    return wrap_model(model, lm.tokenizer)


def test_device_is_the_embedding_device_not_a_meta_parameter(tiny):
    lm = tiny("llama")
    assert lm.device == torch.device("cpu") and lm.dtype == torch.float32
    offloaded = _offloaded(tiny, {"model.embed_tokens": "cpu", "model.layers": "disk"})
    assert next(offloaded.model.parameters()).device.type == "meta"  # what the old rule read
    assert offloaded.device == torch.device("cpu")
    assert _offloaded(tiny, {"model.embed_tokens": 0}).device == torch.device("cuda", 0)
    assert _offloaded(tiny, {"model.embed_tokens": "disk", "lm_head": "cuda:1"}).device == (
        torch.device("cuda", 1)
    )
    assert _offloaded(tiny, None).device == torch.device("cpu")  # first non-meta parameter
