"""A loaded causal LM as one value: the module, its tokenizer and its resolved layout.

This module imports no backend, so capture, generation and every backend can take a
:class:`LoadedModel` without an import cycle through :func:`workbench.model.loading.load_model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from workbench.core.errors import WorkbenchError
from workbench.model.layouts import Layout, ResolvedLayout, resolve_layout

__all__ = ["LoadedModel", "resolve_dtype", "unwrap", "wrap_model"]
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A causal LM, its tokenizer and its resolved layout.

    Attributes:
        model: the ``transformers`` causal-LM module (possibly PEFT-wrapped).
        tokenizer: its tokenizer (a pad token is set when it had none).
        layout: where layers, attention and ``o_proj`` are, per-layer head geometry.
        name: the alias, hub id or path the user gave.
        source: provenance written into every manifest (revision or file hashes,
            quantisation, adapter).
        backend: ``hf``; the other backends wrap this object.
    """

    model: nn.Module
    tokenizer: Any
    layout: ResolvedLayout
    name: str
    source: Mapping[str, Any] = field(default_factory=dict)
    backend: str = "hf"

    @property
    def device(self) -> torch.device:
        """Where inputs go: the input embedding's device.

        Under accelerate dispatch (``device_map``) with offloading, weights can sit
        on ``meta`` until their hook loads them; the embedding's entry in
        ``hf_device_map`` then names the execution device.
        """
        weight = _embedding_weight(self.model)
        if weight is not None and weight.device.type != "meta":
            return weight.device
        placed = _mapped_device(getattr(self.model, "hf_device_map", None))
        if placed is not None:
            return placed
        return next(
            (p.device for p in self.model.parameters() if p.device.type != "meta"),
            torch.device("cpu"),
        )

    @property
    def dtype(self) -> torch.dtype:
        weight = _embedding_weight(self.model)
        if weight is not None and weight.is_floating_point():
            return weight.dtype
        return next(p.dtype for p in self.model.parameters() if p.is_floating_point())

    @property
    def has_chat_template(self) -> bool:
        return getattr(self.tokenizer, "chat_template", None) is not None

    @property
    def pad_id(self) -> int:
        """The padding id: the tokenizer's pad token (``wrap_model`` sets it to EOS when missing)."""
        pad = self.tokenizer.pad_token_id
        pad = self.tokenizer.eos_token_id if pad is None else pad
        if pad is None:
            raise WorkbenchError(
                f"the tokenizer of {self.name!r} has neither a pad nor an EOS token: "
                "set tokenizer.pad_token before wrap_model"
            )
        return int(pad)

    @property
    def max_positions(self) -> int | None:
        config = self.model.config
        get_text = getattr(config, "get_text_config", None)
        text = get_text() if callable(get_text) else config
        value = getattr(text, "max_position_embeddings", None) or getattr(text, "n_positions", None)
        return int(value) if value else None

    def describe(self) -> dict[str, Any]:
        """What a manifest records about the model."""
        return {
            "name": self.name,
            "class": type(self.model).__name__,
            "dtype": str(self.dtype).removeprefix("torch."),
            "n_layers": self.layout.n_layers,
            "d_model": self.layout.d_model,
            **dict(self.source),
        }


def _embedding_weight(model: nn.Module) -> torch.Tensor | None:
    get = getattr(model, "get_input_embeddings", None)
    module = get() if callable(get) else None
    weight = getattr(module, "weight", None)
    return weight if isinstance(weight, torch.Tensor) else None


def _mapped_device(device_map: Mapping[str, Any] | None) -> torch.device | None:
    """The first on-device placement in an accelerate ``hf_device_map`` (the embedding
    comes first in every HF model's map); ``None`` when all is offloaded to disk."""
    for placement in (device_map or {}).values():
        if isinstance(placement, int):
            return torch.device("cuda", placement)
        if placement not in ("disk", "meta"):
            return torch.device(placement)
    return None


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    from workbench.model.options import check_dtype

    return _DTYPES[check_dtype(dtype)]


def _prepare_tokenizer(tokenizer: Any) -> Any:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def wrap_model(
    model: nn.Module,
    tokenizer: Any,
    *,
    name: str | None = None,
    layout: Layout | None = None,
    source: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """Wrap an already-loaded HF causal LM (GGUF-loaded, PEFT-wrapped, ...)."""
    model.eval()
    resolved = resolve_layout(model, layout)
    return LoadedModel(
        model=model,
        tokenizer=_prepare_tokenizer(tokenizer),
        layout=resolved,
        name=name or getattr(model.config, "_name_or_path", "") or type(model).__name__,
        source=dict(source or {}),
    )


def unwrap(model: Any) -> tuple[LoadedModel, Any | None]:
    """The :class:`LoadedModel` under anything ``load_model(..., backend=...)`` returns.

    Returns ``(lm, None)`` for a :class:`LoadedModel` or an ``hf`` backend, and
    ``(lm, backend)`` for another backend, whose own methods then run the call.
    """
    if isinstance(model, LoadedModel):
        return model, None
    lm = getattr(model, "lm", None)
    if isinstance(lm, LoadedModel) and callable(getattr(model, "capture", None)):
        return lm, (None if getattr(model, "name", "hf") == "hf" else model)
    raise WorkbenchError(
        f"expected a model from workbench.load_model (a LoadedModel or a backend), got "
        f"{type(model).__name__}: load it with load_model(name, backend=...) or wrap_model(model, tokenizer)"
    )
