r"""Which modules LoRA wraps: ``attn`` (q, k, v, o projections) or ``all`` (+ MLP).

On a hybrid model (Qwen3.5: Gated DeltaNet linear attention in most layers,
full attention in a few), ``attn`` means the full-attention ``q/k/v/o``
projections *and* the linear-attention projections (``in_proj_qkv``,
``in_proj_z``, ``in_proj_a``, ``in_proj_b``, ``out_proj``; the depthwise
``conv1d`` is not a Linear and stays out), so every decoder layer is adapted.
A layer left with no adapted module is an error, never a silent partial LoRA;
:func:`lora_module_names` lists what the pattern matches, for the manifest.

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

__all__ = [
    "ATTENTION_PROJECTIONS",
    "LINEAR_ATTENTION",
    "TARGETS",
    "lora_module_names",
    "lora_target_modules",
]

TARGETS = ("attn", "all")
#: Leaf names of attention projections LoRA wraps (Llama/Qwen/Gemma, fused qkv, GPT-2).
ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "c_attn", "c_proj")
#: A hybrid layer's linear-attention module and the projections in it (Qwen3.5 Gated DeltaNet).
LINEAR_ATTENTION = (
    "linear_attn",
    ("in_proj_qkv", "in_proj_z", "in_proj_a", "in_proj_b", "out_proj"),
)


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
    linear_path, linear_names = LINEAR_ATTENTION
    attn: set[str] = set()
    linear: set[str] = set()
    mlp: set[str] = set()
    bare: list[int] = []
    for i, layer in enumerate(lm.layout.layers):
        full = _children(get_module(layer, layout.attn), ATTENTION_PROJECTIONS)
        lin = _children(get_module(layer, linear_path), linear_names)
        if not full and not lin:
            bare.append(i)
        attn |= full
        linear |= lin
        if target == "all":
            mlp |= _children(get_module(layer, mlp_path), None)
    if not (attn or linear) or (target == "all" and not mlp):
        part = (
            "attention projections" if not (attn or linear) else f"linear layers under {mlp_path!r}"
        )
        raise WorkbenchError(
            f"found no {part} in {lm.name!r} (layout {layout}): pass a layout= override to load_model"
        )
    if bare:
        raise WorkbenchError(
            f"decoder layer {bare[0]} of {lm.name!r} ({len(bare)} of {len(lm.layout.layers)}) has no "
            "attention projection LoRA could wrap: a partial adapter would be silent; pass a "
            "layout= override to load_model"
        )
    prefix = re.escape(layout.layers) + r"\.\d+\."
    parts = [(layout.attn, attn), (linear_path, linear)] + ([(mlp_path, mlp)] if mlp else [])
    alternatives = [
        f"(?:{prefix}{re.escape(module)}\\.({'|'.join(sorted(names))}))"
        for module, names in parts
        if names
    ]
    return alternatives[0][3:-1] if len(alternatives) == 1 else "|".join(alternatives)


def lora_module_names(model: nn.Module, pattern: str) -> list[str]:
    """The modules of ``model`` that the ``target_modules`` regex ``pattern`` adapts
    (what peft wraps: a full match of the module's name)."""
    rx = re.compile(pattern)
    return [n for n, m in model.named_modules() if rx.fullmatch(n) and _is_projection(m)]
