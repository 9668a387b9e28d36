"""The nnsight backend: traces over the loaded HF model, locally or on NDIF.

The loaded model is wrapped as an nnsight ``TransformersModel`` (the successor
of ``LanguageModel``; neither the weights nor ``lm.tokenizer`` are modified:
nnsight gets a copy of the tokenizer). Each forward pass is one
``model.trace(...)`` whose body visits the modules in execution order, reading
``o_proj`` inputs (``head_in``), layer outputs (``resid``) and the final norm's
output (``h_last``), and, while :meth:`NNsightBackend.temper` is active,
replacing tempered layers' ``o_proj`` input with its scaled value. Generation
is nnsight's ``model.generate`` with the same edit applied at every step
(``tracer.all()``). The trace body uses only envoys, tensors and
``nnsight.save``, so it also runs remotely.

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
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from workbench.model.backends.base import (
    ENGINES,
    ForwardBackend,
    Heads,
    ItemsLike,
    input_device,
    require_engine,
    require_extra,
)
from workbench.model.backends.decode import encode_prompts, eos_ids, to_generations
from workbench.model.backends.heads import HeadScales, combine
from workbench.model.backends.names import Point, point_of
from workbench.model.generation import Generations
from workbench.model.hooks import Hook
from workbench.model.layouts import Layout
from workbench.model.loaded import LoadedModel, wrap_model
from workbench.model.readers import SiteReader
from workbench.model.tokens import Batch, collate, length_buckets

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
        self._active: list[HeadScales] = []

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

    def _point_envoy(self, point: Point) -> Any:
        layer, kind = point
        paths = self.lm.layout.layout
        if layer == self.lm.layout.n_layers:
            return self._envoy(paths.final_norm)
        if kind == 0:
            return self._envoy(f"{paths.layers}.{layer}.{paths.attn}.{paths.o_proj}")
        return self._envoy(f"{paths.layers}.{layer}")

    def _vectors(self) -> dict[int, torch.Tensor]:
        out = {}
        for layer, v in combine(self._active).items():
            device = next(self.lm.layout.o_proj(layer).parameters()).device
            device = torch.device("cpu") if device.type == "meta" else device
            out[layer] = v.to(device=device, dtype=self.lm.dtype)
        return out

    def _plan(self, hooks: list[Hook]) -> tuple[list[tuple[Any, bool, Any, bool]], list[Hook]]:
        """The trace's steps in execution order, and the reader hook fed by each step."""
        by_point = {point_of(self.lm.layout, h.module): h for h in hooks}
        vectors = self._vectors()
        points = sorted(set(by_point) | {(layer, 0) for layer in vectors})
        plan, fed = [], []
        for point in points:
            is_input = point[1] == 0 and point[0] < self.lm.layout.n_layers
            vector = vectors.get(point[0]) if is_input else None
            plan.append((self._point_envoy(point), is_input, vector, point in by_point))
            if point in by_point:
                fed.append(by_point[point])
        return plan, fed

    def _forward(
        self, batch: Batch, reader: SiteReader | None, want_logits: bool
    ) -> torch.Tensor | None:
        nnsight = self.nnsight
        root = self.model
        plan, fed = self._plan(reader.hooks() if reader is not None else [])
        rows = torch.arange(batch.input_ids.shape[0], device=batch.last.device)
        last = batch.last
        logits = None
        with (
            torch.inference_mode(),
            root.trace(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=batch.position_ids,
                use_cache=False,
                remote=self.remote,
            ),
        ):
            saved = []
            for envoy, is_input, vector, keep in plan:
                if is_input:
                    if vector is not None:
                        envoy.input = envoy.input * vector
                    value = envoy.input if keep else None
                else:
                    out = envoy.output
                    value = out[0] if isinstance(out, tuple) else out
                if keep:
                    saved.append(value)
            saved = nnsight.save(saved)
            if want_logits:
                logits = nnsight.save(root.output.logits[rows, last])
        for hook, value in zip(fed, saved, strict=True):
            if hook.kind == "pre":
                hook.fn(hook.module, (value,))
            else:
                hook.fn(hook.module, (), value)
        return logits

    @contextlib.contextmanager
    def temper(self, heads: Heads) -> Iterator[None]:
        """Set tempered heads' ``o_proj`` input slices in every trace run while active.

        Nested contexts multiply; the state is restored on exit, also after an error.

        >>> with NNsightBackend(lm).temper({(3, 1): 0.0}):  # doctest: +SKIP
        ...     ablated = backend.logits(items)
        """
        scales = HeadScales.build(self.lm.layout, heads)
        self._active.append(scales)
        try:
            yield
        finally:
            self._active.remove(scales)

    def _generate_batch(self, batch: Batch, max_new_tokens: int) -> list[list[int]]:
        nnsight = self.nnsight
        root = self.model
        steps = [(self._point_envoy((layer, 0)), v) for layer, v in sorted(self._vectors().items())]
        remote = {"remote": self.remote} if self.remote else {}
        with warnings.catch_warnings():
            # An open tracer.all() loop ends with a "was never reached" warning by design.
            warnings.filterwarnings("ignore", message=".*was never reached.*")
            with (
                torch.inference_mode(),
                root.generate(
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.lm.pad_id,
                    eos_token_id=eos_ids(self.lm),
                    **remote,
                ) as tracer,
            ):
                with tracer.invoke(input_ids=batch.input_ids, attention_mask=batch.attention_mask):
                    if steps:
                        for _ in tracer.all():
                            for envoy, vector in steps:
                                envoy.input = envoy.input * vector
                with tracer.invoke():
                    ids = nnsight.save(tracer.result)
        width = batch.input_ids.shape[1]
        return [row[width:] for row in ids.tolist()]

    def generate(
        self,
        items: ItemsLike,
        *,
        max_new_tokens: int = 16,
        batch_size: int = 8,
        chat_template: bool | None = None,
    ) -> Generations:
        """Greedy generation with nnsight's ``generate`` (tempering applied at every step)."""
        parsed, prompts = encode_prompts(self.lm, items, max_new_tokens, chat_template)
        new: list[list[int]] = [[] for _ in parsed]
        for bucket in length_buckets([len(p) for p in prompts], batch_size):
            batch = collate(
                [prompts[i] for i in bucket],
                self.lm.pad_id,
                side="left",
                device=input_device(self.lm),
            )
            for i, row in zip(bucket, self._generate_batch(batch, max_new_tokens), strict=True):
                new[i] = row
        return to_generations(self.lm, parsed, new, max_new_tokens, chat_template)
