"""The nnsight backend: traces over the loaded HF model, locally or on NDIF.

The loaded model is wrapped as an nnsight ``TransformersModel`` (the successor
of ``LanguageModel``; neither the weights nor ``lm.tokenizer`` are modified:
nnsight gets a copy of the tokenizer). Each forward pass is one
``model.trace(...)`` whose body visits the modules in execution order, reading
``o_proj`` inputs (``head_in``), layer outputs (``resid``) and the final norm's
output (``h_last``), and, while :meth:`NNsightBackend.intervene` is active,
replacing the edited sites' values with :func:`workbench.model.edits.apply`'s
result. Generation is the workbench's decoding loop with one trace per step
(the KV cache passed in and saved out), so sampling and per-position edits
behave as on the other backends.

Running on NDIF (cannot run on an offline machine): build the nnsight model
from a hub id, which loads only the config and tokenizer (the weights stay on
the meta device), and pass ``remote=True``; every trace and generation then
runs on NDIF's copy of the model::

    from nnsight import CONFIG, TransformersModel
    from workbench.model.backends import NNsightBackend

    CONFIG.set_default_api_key("<your NDIF API key>")  # from https://login.ndif.us
    remote = TransformersModel("meta-llama/Llama-3.1-70B-Instruct", task="text-generation")
    backend = NNsightBackend.from_nnsight(remote, remote=True)
    result = backend.capture(items, ["h_last", "head_in(40)"])

``remote="local"`` runs nnsight's local simulation of that path (the request is
serialised and executed in-process): the tests use it.

>>> backend = NNsightBackend(lm)  # doctest: +SKIP
>>> backend.capture(items, ["h_last", "head_in(3)"])["h_last"].shape  # doctest: +SKIP
(2, 576)
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from workbench.model.backends.base import (
    ENGINES,
    ForwardBackend,
    input_device,
    require_engine,
    require_extra,
)
from workbench.model.backends.names import point_of
from workbench.model.bound import Bound
from workbench.model.compile import by_site
from workbench.model.edits import terms
from workbench.model.generation import Decoder
from workbench.model.hooks import Hook
from workbench.model.intervention import Intervention
from workbench.model.layouts import Layout
from workbench.model.loaded import LoadedModel, wrap_model
from workbench.model.positions import Frame, current_frame
from workbench.model.readers import SiteReader
from workbench.model.tokens import Batch

__all__ = ["NNsightBackend", "wrap_nnsight"]


def wrap_nnsight(lm: LoadedModel) -> Any:
    """An nnsight model around ``lm.model`` (``TransformersModel``, else ``LanguageModel``)."""
    require_engine("nnsight")
    tokenizer = copy.deepcopy(lm.tokenizer)  # nnsight sets padding_side on its tokenizer
    try:
        from nnsight.modeling.transformers import TransformersModel
    except ImportError:  # nnsight < 0.6
        from nnsight import LanguageModel

        return LanguageModel(lm.model, tokenizer=tokenizer)
    return TransformersModel(lm.model, tokenizer=tokenizer, task="text-generation")


class NNsightBackend(ForwardBackend):
    """nnsight traces over the loaded model (see the module docstring).

    Args:
        lm: a loaded model.
        remote: passed to every ``trace``/``generate``: ``False`` (local), ``True``
            (NDIF) or ``"local"`` (nnsight's local simulation of a remote run).
        model: an existing nnsight model over ``lm.model`` (built when omitted).
    """

    name = "nnsight"

    def __init__(self, lm: LoadedModel, *, remote: bool | str = False, model: Any = None) -> None:
        self.nnsight = require_extra(*ENGINES["nnsight"])
        self.lm = lm
        self.remote = remote
        self.model = model if model is not None else wrap_nnsight(lm)
        self._active: list[list[Intervention]] = []

    @classmethod
    def from_nnsight(
        cls, model: Any, *, remote: bool | str = False, layout: Layout | None = None
    ) -> NNsightBackend:
        """A backend over an nnsight model, e.g. a meta-device one for ``remote=True``."""
        lm = wrap_model(
            model._module, model.tokenizer, name=str(getattr(model, "repo_id", "")) or None,
            layout=layout,
        )  # fmt: skip
        return cls(lm, remote=remote, model=model)

    def __repr__(self) -> str:
        return f"NNsightBackend({self.lm.name!r}, remote={self.remote!r})"

    def _envoy(self, path: str) -> Any:
        envoy = self.model
        for part in path.split("."):
            envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
        return envoy

    def _site_envoy(self, kind: str, layer: int) -> Any:
        paths = self.lm.layout.layout
        base = f"{paths.layers}.{layer}"
        if kind == "head_in":
            return self._envoy(f"{base}.{paths.attn}.{paths.o_proj}")
        if kind == "resid":
            return self._envoy(base)
        if kind == "mlp_out":
            return self._envoy(f"{base}.{paths.mlp_down}")
        return self._envoy(f"{base}.{paths.attn}.{paths.v_proj}")

    def _plan(self, hooks: list[Hook]) -> tuple[list[Step], list[Hook]]:
        """The trace's steps in execution order, and the reader hook fed by each read."""
        reads = {_ORDER_OF_POINT[p[1]](p[0], self.lm.layout.n_layers): h for h in hooks
                 for p in [point_of(self.lm.layout, h.module)]}  # fmt: skip
        edits: dict[tuple[int, int], list[Bound]] = {}
        for values in self._active:
            for (kind, layer), bounds in by_site(self.lm.layout, values).items():
                edits.setdefault((layer, _ORDER[kind]), []).extend(bounds)
        plan, fed = [], []
        for key in sorted(set(reads) | set(edits)):
            layer, order = key
            if layer == self.lm.layout.n_layers:
                envoy = self._envoy(self.lm.layout.layout.final_norm)
            else:
                envoy = self._site_envoy(_KIND_OF_ORDER[order], layer)
            plan.append(Step(envoy, order == _ORDER["head_in"], edits.get(key, []), key in reads))
            if key in reads:
                fed.append(reads[key])
        return plan, fed

    def _trace(
        self,
        plan: list[Step],
        frame: Frame,
        kwargs: dict[str, Any],
        want: Callable[[Any], Any] | None,
    ) -> tuple[list[torch.Tensor], Any]:
        """One trace running ``plan``; returns the saved reads and ``want(output)``."""
        nnsight = self.nnsight
        root = self.model
        result = None
        device, dtype = input_device(self.lm), self.lm.dtype
        # The body sees envoys, flags and tensors only (a remote run serialises them).
        steps = [
            (
                step.envoy,
                step.is_input,
                step.keep,
                [terms(b, frame, device, dtype) for b in step.edits],
            )
            for step in plan
        ]
        with root.trace(**kwargs, remote=self.remote):
            saved = []
            for envoy, is_input, keep, step_terms in steps:
                # The edit is run_terms() written out: the body may only use tensor operations.
                if is_input:
                    value = envoy.input
                else:
                    out = envoy.output
                    value = out[0] if isinstance(out, tuple) else out
                for mult, shift, u, h in step_terms:
                    y = value.reshape(*value.shape[:2], h, -1)
                    if u is not None:
                        y = y - (y * u).sum(-1, keepdim=True) * u
                    value = (y * mult + shift).reshape(value.shape)
                if step_terms and is_input:
                    envoy.input = value
                elif step_terms:
                    envoy.output = (value, *out[1:]) if isinstance(out, tuple) else value
                if keep:
                    saved.append(value)
            saved = nnsight.save(saved)
            if want is not None:
                result = nnsight.save(want(root.output))
        return saved, result

    def _forward(
        self, batch: Batch, reader: SiteReader | None, want_logits: bool
    ) -> torch.Tensor | None:
        plan, fed = self._plan(reader.hooks() if reader is not None else [])
        rows = torch.arange(batch.input_ids.shape[0], device=batch.last.device)
        last = batch.last
        kwargs = {
            "input_ids": batch.input_ids,
            "attention_mask": batch.attention_mask,
            "position_ids": batch.position_ids,
            "use_cache": False,
        }
        frame = current_frame(batch.input_ids)
        with torch.inference_mode():
            saved, logits = self._trace(
                plan, frame, kwargs, (lambda out: out.logits[rows, last]) if want_logits else None
            )
        for hook, value in zip(fed, saved, strict=True):
            if hook.kind == "pre":
                hook.fn(hook.module, (value,))
            else:
                hook.fn(hook.module, (), value)
        return logits

    @contextlib.contextmanager
    def intervene(self, values: Sequence[Intervention]) -> Iterator[None]:
        """Apply intervention values in every trace run while active.

        Values are bound (checked) on entry; nested contexts apply in order; the
        state is restored on exit, also after an error.

        >>> with NNsightBackend(lm).temper({(3, 1): 0.0}):  # doctest: +SKIP
        ...     ablated = backend.logits(items)
        """
        values = list(values)
        by_site(self.lm.layout, values)  # validate once, before anything runs
        self._active.append(values)
        try:
            yield
        finally:
            self._active.remove(values)

    def decoder(self) -> Decoder:
        """One cached decoding step as one nnsight trace (the active edits applied)."""
        return _TraceDecoder(self)


class _TraceDecoder(Decoder):
    def __init__(self, backend: NNsightBackend) -> None:
        super().__init__(backend.lm)
        self.backend = backend

    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, Any]:
        kwargs = {
            "input_ids": ids,
            "attention_mask": mask,
            "position_ids": positions,
            "cache": cache,
            "use_cache": True,
            "logits_to_keep": 1,
        }
        plan = self.backend._plan([])[0]  # the edits active now
        _, out = self.backend._trace(
            plan, current_frame(ids), kwargs, lambda o: (o.logits[:, -1, :], o.cache)
        )
        return out[0], out[1]

    def all_logits(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, keep: int = 0
    ) -> torch.Tensor:
        kwargs = {"input_ids": ids, "attention_mask": mask, "position_ids": positions,
                  "use_cache": False}  # fmt: skip
        plan = self.backend._plan([])[0]
        _, logits = self.backend._trace(plan, current_frame(ids), kwargs, lambda o: o.logits)
        return logits[:, -keep:] if keep else logits


@dataclass(frozen=True)
class Step:
    """One place a trace visits: read and/or edit an envoy's input or output."""

    envoy: Any
    is_input: bool
    edits: list[Bound]
    keep: bool


# Execution order within a layer: values, o_proj input, MLP output, layer output.
_ORDER = {"v_out": 0, "head_in": 1, "mlp_out": 2, "resid": 3}
_KIND_OF_ORDER = {v: k for k, v in _ORDER.items()}
_ORDER_OF_POINT: dict[int, Callable[[int, int], tuple[int, int]]] = {
    0: lambda layer, n: (layer, 0 if layer == n else _ORDER["head_in"]),
    1: lambda layer, n: (layer, _ORDER["resid"]),
}
