"""Where the layers, attention modules and ``o_proj`` live in a model.

A :class:`Layout` is data: dotted module paths, one table entry per
architecture (``LAYOUTS``, keyed by ``config.model_type``), plus a guesser for
anything not in the table. :func:`resolve_layout` turns a layout and a loaded
model into a :class:`ResolvedLayout` holding the actual modules and, per layer,
the head geometry of its ``o_proj`` input (``n_heads * head_dim`` wide, which
with grouped-query attention is *not* ``n_kv_heads * head_dim``).

Hybrid models (Qwen3.5: only some layers have full attention) keep their
original layer numbers: a layer without ``o_proj`` has ``has_attention=False``.
Models whose head width varies by layer (Gemma 4: full-attention layers use a
larger ``head_dim``) get the per-layer width from the ``o_proj`` module itself.

>>> layout = resolve_layout(lm.model)
>>> layout.layers_with_attention
[0, 1, 2]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from workbench.core.errors import WorkbenchError

__all__ = ["Layout", "LayerInfo", "ResolvedLayout", "LAYOUTS", "resolve_layout", "get_module"]


@dataclass(frozen=True)
class Layout:
    """Dotted paths, relative to the causal-LM module, of the parts capture needs.

    Attributes:
        layers: the ``nn.ModuleList`` of decoder layers.
        attn: attention module, relative to one layer.
        o_proj: output projection, relative to the attention module.
        final_norm: the norm applied after the last layer (its output is what
            HF returns as the last element of ``hidden_states``).
        v_proj: value projection relative to the attention module (None when fused).
        mlp_down: MLP down-projection relative to one layer.
    """

    layers: str
    attn: str = "self_attn"
    o_proj: str = "o_proj"
    final_norm: str = "model.norm"
    v_proj: str | None = "v_proj"
    mlp_down: str | None = "mlp.down_proj"


_DECODER = Layout(layers="model.layers")
_MULTIMODAL = Layout(layers="model.language_model.layers", final_norm="model.language_model.norm")
_GPT2 = Layout(
    layers="transformer.h",
    attn="attn",
    o_proj="c_proj",
    final_norm="transformer.ln_f",
    v_proj=None,
    mlp_down="mlp.c_proj",
)

#: Known layouts by ``config.model_type``. Add an entry (or pass ``layout=``) for new families.
LAYOUTS: dict[str, Layout] = {
    "llama": _DECODER,
    "mistral": _DECODER,
    "qwen2": _DECODER,
    "qwen3": _DECODER,
    "qwen3_moe": Layout(layers="model.layers", mlp_down=None),
    "qwen3_5_text": _DECODER,
    "qwen3_5": _MULTIMODAL,
    "gemma": _DECODER,
    "gemma2": _DECODER,
    "gemma3_text": _DECODER,
    "gemma3": _MULTIMODAL,
    "gemma4_text": _DECODER,
    "gemma4": _MULTIMODAL,
    "olmo2": _DECODER,
    "phi3": Layout(layers="model.layers", v_proj=None),
    "gpt2": _GPT2,
}

_LAYER_CANDIDATES = (
    "model.layers",
    "model.language_model.layers",
    "model.model.layers",
    "transformer.h",
    "gpt_neox.layers",
    "model.decoder.layers",
    "transformer.layers",
)
_ATTN_CANDIDATES = ("self_attn", "attn", "attention", "self_attention")
_OPROJ_CANDIDATES = ("o_proj", "c_proj", "out_proj", "dense", "o")
_NORM_CANDIDATES = (
    "model.norm",
    "model.language_model.norm",
    "transformer.ln_f",
    "gpt_neox.final_layer_norm",
    "model.decoder.final_layer_norm",
    "model.final_layernorm",
    "transformer.norm_f",
)
_OVERRIDE_HINT = (
    "pass layout=Layout(layers='model.layers', attn='self_attn', o_proj='o_proj', "
    "final_norm='model.norm') with your model's paths to load_model/wrap_model"
)


def get_module(root: nn.Module, path: str) -> nn.Module | None:
    """The submodule at a dotted path, or None when any part is missing."""
    module: Any = root
    for part in path.split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part, None)
        if module is None:
            return None
    return module if isinstance(module, nn.Module) else None


@dataclass(frozen=True)
class LayerInfo:
    """Geometry of one decoder layer's ``o_proj`` input."""

    index: int
    has_attention: bool
    n_heads: int
    head_dim: int


@dataclass(frozen=True, eq=False)
class ResolvedLayout:
    """A layout bound to one model's modules."""

    layout: Layout
    layers: tuple[nn.Module, ...]
    final_norm: nn.Module
    info: tuple[LayerInfo, ...]
    d_model: int

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def layers_with_attention(self) -> list[int]:
        return [i.index for i in self.info if i.has_attention]

    def layer_index(self, layer: int) -> int:
        """Normalise a possibly negative layer index, with a clear range error."""
        n = self.n_layers
        if not -n <= layer < n:
            raise WorkbenchError(
                f"layer {layer} is out of range: this model has layers 0..{n - 1} (or -{n}..-1)"
            )
        return layer % n

    def attention(self, layer: int) -> LayerInfo:
        """The attention geometry of a layer; an error if it has no ``o_proj``."""
        info = self.info[self.layer_index(layer)]
        if not info.has_attention:
            raise WorkbenchError(
                f"layer {layer} has no full-attention o_proj (hybrid model): "
                f"choose one of layers {self.layers_with_attention}"
            )
        return info

    def attn_module(self, layer: int) -> nn.Module:
        module = get_module(self.layers[self.layer_index(layer)], self.layout.attn)
        if module is None:
            raise WorkbenchError(f"layer {layer} has no attention module at {self.layout.attn!r}")
        return module

    def o_proj(self, layer: int) -> nn.Module:
        self.attention(layer)
        module = get_module(self.attn_module(layer), self.layout.o_proj)
        assert module is not None  # has_attention guarantees it
        return module

    def submodule(self, layer: int, path: str | None, what: str) -> nn.Module:
        """A module relative to a layer (e.g. the MLP down-projection)."""
        module = get_module(self.layers[self.layer_index(layer)], path) if path else None
        if module is None:
            raise WorkbenchError(
                f"layer {layer} has no {what} in this layout (path {path!r}): "
                f"set Layout({what}=...) for this model"
            )
        return module

    def check_head(self, layer: int, head: int) -> LayerInfo:
        info = self.attention(layer)
        if not 0 <= head < info.n_heads:
            raise WorkbenchError(
                f"head {head} is out of range for layer {layer}: valid heads are 0..{info.n_heads - 1}"
            )
        return info


def _in_features(module: nn.Module) -> int:
    weight = getattr(module, "weight", None)
    if isinstance(module, nn.Linear) or hasattr(module, "in_features"):
        return int(module.in_features)  # type: ignore[arg-type]
    if weight is not None and weight.ndim == 2:  # GPT-2 Conv1D stores (in, out)
        return int(weight.shape[0])
    raise WorkbenchError(
        f"cannot read the input width of {type(module).__name__}: {_OVERRIDE_HINT}"
    )


def _text_config(model: nn.Module) -> Any:
    config = model.config
    get_text = getattr(config, "get_text_config", None)
    return get_text() if callable(get_text) else config


def _guess_layout(model: nn.Module) -> Layout:
    layers_path = next(
        (p for p in _LAYER_CANDIDATES if isinstance(get_module(model, p), nn.ModuleList)), None
    )
    if layers_path is None:
        raise WorkbenchError(
            f"unsupported layout: cannot find the decoder layers of {type(model).__name__} "
            f"(model_type {getattr(model.config, 'model_type', '?')!r}): {_OVERRIDE_HINT}"
        )
    layers = get_module(model, layers_path)
    assert isinstance(layers, nn.ModuleList)
    attn = next(
        (a for a in _ATTN_CANDIDATES if any(get_module(layer, a) is not None for layer in layers)),
        None,
    )
    o_proj = None
    if attn is not None:
        o_proj = next(
            (
                o
                for o in _OPROJ_CANDIDATES
                if any(get_module(layer, f"{attn}.{o}") is not None for layer in layers)
            ),
            None,
        )
    norm = next((n for n in _NORM_CANDIDATES if get_module(model, n) is not None), None)
    if attn is None or o_proj is None or norm is None:
        missing = [
            n for n, v in (("attn", attn), ("o_proj", o_proj), ("final_norm", norm)) if v is None
        ]
        raise WorkbenchError(
            f"unsupported layout: found layers at {layers_path!r} but not {', '.join(missing)} in "
            f"{type(model).__name__}: {_OVERRIDE_HINT}"
        )
    return Layout(
        layers=layers_path, attn=attn, o_proj=o_proj, final_norm=norm, v_proj=None, mlp_down=None
    )


def _unwrap(model: nn.Module) -> nn.Module:
    """The causal-LM module inside a PEFT wrapper (same module objects)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def resolve_layout(model: nn.Module, layout: Layout | None = None) -> ResolvedLayout:
    """Bind a layout (given, from ``LAYOUTS``, or guessed) to a model's modules."""
    model = _unwrap(model)
    if layout is None:
        layout = LAYOUTS.get(getattr(model.config, "model_type", ""))
        if layout is not None and get_module(model, layout.layers) is None:
            layout = None  # e.g. a multimodal model_type loaded as its text-only CausalLM
        if layout is None:
            layout = _guess_layout(model)
    layers = get_module(model, layout.layers)
    final_norm = get_module(model, layout.final_norm)
    if not isinstance(layers, nn.ModuleList) or final_norm is None:
        bad = layout.layers if not isinstance(layers, nn.ModuleList) else layout.final_norm
        raise WorkbenchError(
            f"unsupported layout: {bad!r} is not a module of {type(model).__name__}: {_OVERRIDE_HINT}"
        )
    text_config = _text_config(model)
    n_heads = int(
        getattr(text_config, "num_attention_heads", 0) or getattr(text_config, "n_head", 0)
    )
    d_model = int(getattr(text_config, "hidden_size", 0) or getattr(text_config, "n_embd", 0))
    info = []
    for i, layer in enumerate(layers):
        attn = get_module(layer, layout.attn)
        o_proj = get_module(attn, layout.o_proj) if attn is not None else None
        if o_proj is None:
            info.append(LayerInfo(index=i, has_attention=False, n_heads=0, head_dim=0))
            continue
        width = _in_features(o_proj)
        heads = int(
            getattr(attn, "num_heads", 0) or getattr(attn, "num_attention_heads", 0) or n_heads
        )
        if heads <= 0 or width % heads:
            raise WorkbenchError(
                f"layer {i}: o_proj input width {width} is not a multiple of num_attention_heads {heads}: "
                f"{_OVERRIDE_HINT}"
            )
        info.append(LayerInfo(index=i, has_attention=True, n_heads=heads, head_dim=width // heads))
    if not any(i.has_attention for i in info):
        raise WorkbenchError(
            f"unsupported layout: no layer of {type(model).__name__} has {layout.attn}.{layout.o_proj}: {_OVERRIDE_HINT}"
        )
    return ResolvedLayout(
        layout=layout,
        layers=tuple(layers),
        final_norm=final_norm,
        info=tuple(info),
        d_model=d_model,
    )
