r"""Which modules LoRA wraps: ``attn`` (q, k, v, o projections) or ``all`` (+ MLP).

The pattern is built from the model's resolved layout (:mod:`workbench.model.layouts`),
so it names decoder-layer modules only (never ``lm_head``) and separates GPT-2's
``attn.c_proj`` from its ``mlp.c_proj``. It is a peft ``target_modules`` regex,
matched against full module names.

>>> print(lora_target_modules(lm, "attn"))
model\.layers\.\d+\.self_attn\.(k_proj|o_proj|q_proj|v_proj)
"""

from __future__ import annotations

import re

from torch import nn

from workbench.core.errors import WorkbenchError
from workbench.model.layouts import get_module
from workbench.model.loaded import LoadedModel

__all__ = ["ATTENTION_PROJECTIONS", "TARGETS", "lora_target_modules"]

TARGETS = ("attn", "all")
#: Leaf names of attention projections LoRA wraps (Llama/Qwen/Gemma, fused qkv, GPT-2).
ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "c_attn", "c_proj")


def _is_projection(module: nn.Module) -> bool:
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, nn.Linear | Conv1D)


def _children(module: nn.Module | None, names: tuple[str, ...] | None) -> set[str]:
    if module is None:
        return set()
    return {
        n for n, m in module.named_children() if (names is None or n in names) and _is_projection(m)
    }


def lora_target_modules(lm: LoadedModel, target: str) -> str:
    """A peft ``target_modules`` regex for the layout's attention (and MLP) projections.

    Built from the resolved layout, so it names only decoder-layer modules
    (never ``lm_head``) and works for GPT-2, whose MLP also has a ``c_proj``.
    """
    if target not in TARGETS:
        raise WorkbenchError(f"unknown target {target!r}: use attn (q, k, v, o projections) or all")
    layout = lm.layout.layout
    mlp_path = layout.mlp_down.rpartition(".")[0] if layout.mlp_down else "mlp"
    attn: set[str] = set()
    mlp: set[str] = set()
    for layer in lm.layout.layers:
        attn |= _children(get_module(layer, layout.attn), ATTENTION_PROJECTIONS)
        if target == "all":
            mlp |= _children(get_module(layer, mlp_path), None)
    if not attn or (target == "all" and not mlp):
        part = "attention projections" if not attn else f"linear layers under {mlp_path!r}"
        raise WorkbenchError(
            f"found no {part} in {lm.name!r} (layout {layout}): pass a layout= override to load_model"
        )
    prefix = re.escape(layout.layers) + r"\.\d+\."
    pattern = f"{prefix}{re.escape(layout.attn)}\\.({'|'.join(sorted(attn))})"
    if mlp:
        pattern = f"(?:{pattern})|(?:{prefix}{re.escape(mlp_path)}\\.({'|'.join(sorted(mlp))}))"
    return pattern
