"""Cached decoding through a TransformerLens bridge: check it, and fix the known break.

transformers 5.x hands attention layers the KV cache as ``cache=``;
TransformerLens 4.3's ``AttentionBridge._update_kv_cache`` reads only
``past_key_values=`` (or ``layer_past=``), so through the bridge each cached
decoding step attends to the current token alone and greedy output degenerates
(SmolLM2: ``"Paris---------"``). :func:`check_and_fix` compares one cached step
with an uncached forward; on a mismatch it makes each attention bridge of the
model also read ``cache=``, and checks again.

>>> check_and_fix(lm)  # doctest: +SKIP
'patched'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from workbench.core.errors import WorkbenchError
from workbench.model.loaded import LoadedModel

__all__ = ["cache_agrees", "check_and_fix"]

PROBE_TEXT = "The capital of France is"


def cache_agrees(lm: LoadedModel) -> bool:
    """Whether one cached decoding step gives the logits of an uncached forward."""
    ids = list(lm.tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"])[:6]
    if len(ids) < 2:
        raise WorkbenchError(
            f"the tokenizer encodes {PROBE_TEXT!r} to one token: cannot check cached decoding"
        )
    tokens = torch.tensor([ids], device=lm.device)
    with torch.inference_mode():
        full = lm.model(input_ids=tokens, use_cache=False).logits[0, -1].float()
        prefix = lm.model(input_ids=tokens[:, :-1], use_cache=True)
        step = (
            lm.model(
                input_ids=tokens[:, -1:],
                cache=prefix.cache,
                use_cache=True,
                position_ids=torch.tensor([[len(ids) - 1]], device=tokens.device),
            )
            .logits[0, -1]
            .float()
        )
    scale = max(1.0, float(full.abs().max()))
    return bool(torch.allclose(full, step.to(full.device), rtol=0.0, atol=1e-3 * scale))


def _read_cache_kwarg(update: Callable[..., Any]) -> Callable[..., Any]:
    def update_kv_cache(k: torch.Tensor, v: torch.Tensor, **kwargs: Any) -> Any:
        if kwargs.get("past_key_values") is None and kwargs.get("cache") is not None:
            kwargs["past_key_values"] = kwargs["cache"]
        return update(k, v, **kwargs)

    return update_kv_cache


def check_and_fix(lm: LoadedModel) -> str:
    """``"ok"``, ``"patched"`` (the fix restored agreement) or ``"disabled"`` (it did not:
    decode without a cache). ``lm.model`` must already hold the bridge components."""
    if cache_agrees(lm):
        return "ok"
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    for module in lm.model.modules():
        if isinstance(module, AttentionBridge):
            module._update_kv_cache = _read_cache_kwarg(module._update_kv_cache)  # type: ignore[method-assign]
    return "patched" if cache_agrees(lm) else "disabled"
