"""The TransformerLens 4.x backend: a ``TransformerBridge`` around the loaded HF model.

The bridge is built from the model already in memory (GGUF-loaded, local
directory or hub: no hub access), with the architecture adapter named by the
model's class (``LlamaForCausalLM``, ``Gemma3ForCausalLM``...). Sites are read
and heads tempered through TransformerLens hook points (``blocks.L.attn.hook_z``,
``blocks.L.hook_resid_post``, ``ln_final.hook_out``; see
:mod:`workbench.model.backends.names`), added with ``bridge.hooks(...)``, which removes
them on exit, also after an exception.

TransformerLens inserts its bridge components into the HF module tree *in
place*: after wrapping, ``lm.model`` runs through them (the HF path keeps
working and agrees to float tolerance). Pass ``copy_model=True`` to bridge a
deep copy and leave ``lm`` untouched, at the cost of a second copy of the weights.

Known pitfall, detected and fixed here: with transformers 5.x the attention
layers receive the KV cache as ``cache=``, while TransformerLens 4.3's attention
bridge reads only ``past_key_values=``/``layer_past=``, so cached decoding
attends to the current token alone and generation degenerates
(``"Paris---------"`` on SmolLM2). When it is built, the backend
compares a cached step with an uncached forward; on a mismatch it forwards
``cache`` to the bridge's cache update, and if that does not restore agreement
(Qwen3.5's linear-attention layers) it decodes without a cache.
:attr:`LensBackend.kv_cache` says which happened.

>>> backend = LensBackend(lm)  # doctest: +SKIP
>>> with backend.temper({(3, 1): 0.5}):  # doctest: +SKIP
...     result = backend.capture(items, ["h_last", "head_in(3)"])
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from workbench.core.errors import WorkbenchError
from workbench.model.backends.base import (
    ForwardBackend,
    final_token,
    require_engine,
    require_extra,
)
from workbench.model.backends.kvcache import check_and_fix
from workbench.model.backends.names import point_name, point_of
from workbench.model.bound import Bound
from workbench.model.compile import by_site
from workbench.model.edits import apply_all
from workbench.model.generation import Decoder
from workbench.model.hooks import Hook
from workbench.model.intervention import Intervention
from workbench.model.loaded import LoadedModel, wrap_model
from workbench.model.positions import current_frame
from workbench.model.readers import SiteReader
from workbench.model.tokens import Batch

__all__ = ["LensBackend", "build_bridge"]


def _architecture(model: torch.nn.Module) -> str:
    factory = require_extra(
        "transformer_lens.factories.architecture_adapter_factory", "transformer-lens", "lens"
    )
    supported = factory.SUPPORTED_ARCHITECTURES
    name = type(model).__name__
    if name in supported:
        return name
    from transformer_lens.model_bridge.sources._hf_format import (
        determine_architecture_from_hf_config,
    )

    try:
        return str(determine_architecture_from_hf_config(model.config))
    except ValueError:
        raise WorkbenchError(
            f"TransformerLens has no architecture adapter for {name} (model_type "
            f"{getattr(model.config, 'model_type', '?')!r}): use backend='hf' or 'nnsight'"
        ) from None


def build_bridge(lm: LoadedModel) -> Any:
    """A ``TransformerBridge`` around ``lm.model`` (modified in place; see the module docstring)."""
    require_engine("transformer_lens")
    from transformer_lens.model_bridge.sources._bridge_builder import (
        build_bridge_from_module,
        detect_tokenizer_bos_eos,
    )

    architecture = _architecture(lm.model)
    try:
        bridge = build_bridge_from_module(
            lm.model,
            architecture,
            hf_config=copy.deepcopy(lm.model.config),
            model_name=lm.name,
        )
    except (ValueError, KeyError, AttributeError, NotImplementedError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WorkbenchError(
            f"TransformerLens cannot bridge {type(lm.model).__name__} ({first}): "
            "use backend='hf' or 'nnsight'"
        ) from e
    # Set after construction so TransformerLens does not reload or re-pad our tokenizer.
    bridge.tokenizer = lm.tokenizer
    bridge.cfg.tokenizer_prepends_bos, bridge.cfg.tokenizer_appends_eos = detect_tokenizer_bos_eos(
        lm.tokenizer
    )
    return bridge


def _reader_hook(hook: Hook) -> Callable[..., None]:
    """A TransformerLens hook function feeding a workbench reader hook."""
    module, fn = hook.module, hook.fn
    if hook.kind == "pre":  # o_proj input; hook_z comes as (batch, pos, n_heads, head_dim)

        def read_input(tensor: torch.Tensor, hook: Any) -> None:
            fn(module, (tensor.reshape(*tensor.shape[:2], -1),))

        return read_input

    def read_output(tensor: torch.Tensor, hook: Any) -> None:
        fn(module, (), tensor)

    return read_output


def lens_hook_name(kind: str, layer: int) -> str:
    """The TransformerLens hook point of a writable site."""
    return {
        "head_in": f"blocks.{layer}.attn.hook_z",
        "resid": f"blocks.{layer}.hook_resid_post",
        "mlp_out": f"blocks.{layer}.mlp.hook_out",
        "v_out": f"blocks.{layer}.attn.hook_v",
    }[kind]


def _edit_hook(bounds: list[Bound]) -> Callable[..., torch.Tensor]:
    def edit(tensor: torch.Tensor, hook: Any) -> torch.Tensor:
        return apply_all(bounds, tensor, current_frame(tensor))

    return edit


class _Uncached(Decoder):
    """The whole sequence through the bridge at every step (its KV cache disagrees)."""

    cached = False

    def __init__(self, lm: LoadedModel, bridge: Any) -> None:
        super().__init__(lm)
        self.bridge = bridge

    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, Any]:
        logits = self.bridge(
            ids, attention_mask=mask, position_ids=positions, use_cache=False,
            return_type="logits",
        )  # fmt: skip
        return logits[:, -1, :], None

    def all_logits(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, keep: int = 0
    ) -> torch.Tensor:
        logits = self.bridge(
            ids, attention_mask=mask, position_ids=positions, use_cache=False,
            return_type="logits",
        )  # fmt: skip
        return logits[:, -keep:] if keep else logits


class LensBackend(ForwardBackend):
    """TransformerLens hook points on a ``TransformerBridge`` (see the module docstring).

    Args:
        lm: a loaded model; its module tree receives the bridge components.
        copy_model: bridge a deep copy of ``lm.model`` instead (``self.lm`` is then
            a new :class:`LoadedModel`).

    Attributes:
        bridge: the ``TransformerBridge``, for anything TransformerLens offers
            (``run_with_cache``, ``hooks``, weight views).
        kv_cache: ``"ok"``, ``"patched"`` (the ``cache=`` shim was needed) or
            ``"disabled"`` (decoding re-runs the sequence each step); checked when
            the backend is built, so the HF path on the bridged ``lm`` decodes
            correctly too (except when ``"disabled"``: a warning says so).
    """

    name = "transformer_lens"

    def __init__(self, lm: LoadedModel, *, copy_model: bool = False) -> None:
        require_engine("transformer_lens")
        if copy_model:
            lm = wrap_model(
                copy.deepcopy(lm.model),
                lm.tokenizer,
                name=lm.name,
                layout=lm.layout.layout,
                source=lm.source,
            )
        self.lm = lm
        self.bridge = build_bridge(lm)
        self.kv_cache = "unchecked"
        if self.check_kv_cache() == "disabled" and not copy_model:
            warnings.warn(
                f"{type(lm.model).__name__}: cached decoding through the TransformerLens bridge "
                "disagrees with an uncached forward, and lm.model now runs through the bridge: "
                "workbench.generate(lm) would be wrong; LensBackend.generate decodes without a "
                "cache. Pass copy_model=True to keep lm for the HF path.",
                stacklevel=2,
            )

    def __repr__(self) -> str:
        return f"LensBackend({self.lm.name!r}, kv_cache={self.kv_cache!r})"

    def _forward(
        self, batch: Batch, reader: SiteReader | None, want_logits: bool
    ) -> torch.Tensor | None:
        layout = self.lm.layout
        hooks = [
            (point_name(point_of(layout, h.module), self.name, layout), _reader_hook(h))
            for h in (reader.hooks() if reader is not None else [])
        ]
        with torch.inference_mode(), self.bridge.hooks(fwd_hooks=hooks):
            logits = self.bridge(
                batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=batch.position_ids,
                use_cache=False,
                return_type="logits",
            )
        return final_token(logits, batch) if want_logits else None

    @contextlib.contextmanager
    def intervene(self, values: Sequence[Intervention]) -> Iterator[None]:
        """Apply intervention values at TransformerLens hook points while active.

        ``head_in`` edits ``blocks.L.attn.hook_z`` (already split per head),
        ``resid`` ``blocks.L.hook_resid_post``, ``mlp_out`` ``blocks.L.mlp.hook_out``.

        >>> with LensBackend(lm).temper({(3, 1): 0.0}):  # doctest: +SKIP
        ...     ablated = backend.logits(items)
        """
        hooks = [
            (lens_hook_name(kind, layer), _edit_hook(bounds))
            for (kind, layer), bounds in by_site(self.lm.layout, values).items()
        ]
        with self.bridge.hooks(fwd_hooks=hooks):
            yield

    def check_kv_cache(self) -> str:
        """Detect (and work around) broken cached decoding; returns :attr:`kv_cache`."""
        if self.kv_cache == "unchecked":
            self.kv_cache = check_and_fix(self.lm)
        return self.kv_cache

    def decoder(self) -> Decoder:
        """The cached HF step through the bridged modules, or uncached when the
        bridge's cache is ``"disabled"`` (see :meth:`check_kv_cache`)."""
        if self.check_kv_cache() != "disabled":
            return Decoder(self.lm)
        return _Uncached(self.lm, self.bridge)
