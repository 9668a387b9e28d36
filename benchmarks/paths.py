"""Capture paths compared side by side: each returns a site's vector at every item's final token.

Every path starts from the same items and tokenises them the same way (the
workbench's ``encode_items``: chat template, prompt and response tokenised
separately), pads on the left with explicit position ids, and reads one site:
``h_last`` (the final norm's output, HF's ``hidden_states[-1]``) or ``resid(L)``
(decoder layer ``L``'s output, HF's ``hidden_states[L + 1]``). With left padding
every row's final token is the last column. Peers other than the workbench
process items in input order, ``batch_size`` at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from workbench.core.items import Item
from workbench.model.capture import capture, encode_items
from workbench.model.loaded import LoadedModel
from workbench.model.tokens import Batch, collate

__all__ = ["CapturePath", "capture_paths", "site_name"]

CapturePath = Callable[[], torch.Tensor]


def site_name(layer: int | None) -> str:
    """The workbench site read: ``h_last`` when ``layer`` is None, else ``resid(layer)``."""
    return "h_last" if layer is None else f"resid({layer})"


def _batches(lm: LoadedModel, items: Sequence[Item], batch_size: int) -> list[Batch]:
    encoded = encode_items(lm, items)
    pad = lm.tokenizer.pad_token_id
    return [
        collate([e.ids for e in encoded[i : i + batch_size]], pad, side="left", device=lm.device)
        for i in range(0, len(encoded), batch_size)
    ]


def _model_inputs(batch: Batch) -> dict[str, torch.Tensor]:
    return {
        "input_ids": batch.input_ids,
        "attention_mask": batch.attention_mask,
        "position_ids": batch.position_ids,
    }


def _tensor(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def floor(
    lm: LoadedModel, items: Sequence[Item], batch_size: int, layer: int | None
) -> CapturePath:
    """A plain forward pass (LM head included) with one PyTorch forward hook."""
    module = lm.layout.final_norm if layer is None else lm.layout.layers[layer]

    def run() -> torch.Tensor:
        rows: list[torch.Tensor] = []

        def hook(mod: Any, args: Any, output: Any) -> None:
            rows.append(_tensor(output)[:, -1].float().cpu())

        for batch in _batches(lm, items, batch_size):
            handle = module.register_forward_hook(hook)
            try:
                with torch.inference_mode():
                    lm.model(**_model_inputs(batch), use_cache=False)
            finally:
                handle.remove()
        return torch.cat(rows)

    return run


def hidden_states(
    lm: LoadedModel, items: Sequence[Item], batch_size: int, layer: int | None
) -> CapturePath:
    """``output_hidden_states=True`` on a plain forward pass."""
    index = -1 if layer is None else layer + 1

    def run() -> torch.Tensor:
        rows = []
        for batch in _batches(lm, items, batch_size):
            with torch.inference_mode():
                out = lm.model(**_model_inputs(batch), use_cache=False, output_hidden_states=True)
            rows.append(out.hidden_states[index][:, -1].float().cpu())
        return torch.cat(rows)

    return run


def workbench(
    lm: LoadedModel,
    items: Sequence[Item],
    batch_size: int,
    layer: int | None,
    *,
    early_stop: bool = True,
) -> CapturePath:
    """This workbench's public ``capture`` (length-bucketed; early stop after the site)."""
    site = site_name(layer)

    def run() -> torch.Tensor:
        result = capture(lm, items, [site], batch_size=batch_size, early_stop=early_stop)
        return torch.from_numpy(result[site])

    return run


def transformer_lens(
    bridge: Any,
    lm: LoadedModel,
    items: Sequence[Item],
    batch_size: int,
    layer: int | None,
    *,
    stop: bool = False,
) -> CapturePath:
    """The TransformerLens bridge's ``run_with_cache(names_filter=...)`` (``stop_at_layer``
    after the site when ``stop``)."""
    name = "ln_final.hook_out" if layer is None else f"blocks.{layer}.hook_out"
    extra = {"stop_at_layer": layer + 1} if stop and layer is not None else {}

    def run() -> torch.Tensor:
        rows = []
        for batch in _batches(lm, items, batch_size):
            with torch.inference_mode():
                _, cache = bridge.run_with_cache(
                    batch.input_ids,
                    names_filter=[name],
                    attention_mask=batch.attention_mask,
                    position_ids=batch.position_ids,
                    **extra,
                )
            rows.append(cache[name][:, -1].float().cpu())
        return torch.cat(rows)

    return run


def nnsight(
    nnm: Any,
    lm: LoadedModel,
    items: Sequence[Item],
    batch_size: int,
    layer: int | None,
    *,
    stop: bool = False,
) -> CapturePath:
    """nnsight's ``trace`` + ``.save()`` (``tracer.stop()`` after the site when ``stop``)."""

    def run() -> torch.Tensor:
        rows = []
        for batch in _batches(lm, items, batch_size):
            with torch.inference_mode(), nnm.trace(_model_inputs(batch)) as tracer:
                module = nnm.model.norm if layer is None else nnm.model.layers[layer]
                value = module.output[:, -1].save()
                if stop:
                    tracer.stop()
            rows.append(value.float().cpu())
        return torch.cat(rows)

    return run


def capture_paths(
    lm: LoadedModel,
    items: Sequence[Item],
    batch_size: int,
    *,
    bridge: Any = None,
    nnm: Any = None,
    layer: int | None = None,
    which: Sequence[str] = (
        "floor",
        "hidden_states",
        "workbench",
        "workbench_no_early_stop",
        "transformer_lens",
        "nnsight",
    ),
) -> dict[str, CapturePath]:
    """The named capture paths (``floor`` first: ratios are taken to it).

    ``*_early_stop`` peers stop after a mid-layer site (TransformerLens
    ``stop_at_layer``, nnsight ``tracer.stop()``).
    """
    makers: dict[str, Callable[[], CapturePath]] = {
        "floor": lambda: floor(lm, items, batch_size, layer),
        "hidden_states": lambda: hidden_states(lm, items, batch_size, layer),
        "workbench": lambda: workbench(lm, items, batch_size, layer),
        "workbench_no_early_stop": lambda: workbench(
            lm, items, batch_size, layer, early_stop=False
        ),
        "transformer_lens": lambda: transformer_lens(bridge, lm, items, batch_size, layer),
        "transformer_lens_early_stop": lambda: transformer_lens(
            bridge, lm, items, batch_size, layer, stop=True
        ),
        "nnsight": lambda: nnsight(nnm, lm, items, batch_size, layer),
        "nnsight_early_stop": lambda: nnsight(nnm, lm, items, batch_size, layer, stop=True),
    }
    unknown = [w for w in which if w not in makers]
    if unknown:
        raise ValueError(f"unknown capture paths {unknown}: use {', '.join(makers)}")
    return {w: makers[w]() for w in which}
