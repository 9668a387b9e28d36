"""The backend interface, and the capture loop the non-HF backends share.

A backend runs the workbench's sites and tempering through one engine's own
mechanism: PyTorch hooks (``hf``), TransformerLens hook points
(``transformer_lens``) or nnsight traces (``nnsight``). Every backend has the same
four methods and returns the same values, so a result can be checked across
engines:

* ``capture(items, sites)``: a :class:`~workbench.model.capture.CaptureResult`, same
  keys and shapes as :func:`workbench.model.capture.capture`;
* ``logits(items)``: the final-token logits, ``(n_items, vocab)`` float32;
* ``intervene([Intervention, ...])``: a context manager applying intervention
  values through the engine while active (capture, logits and generation);
  ``temper({(layer, head): factor})`` is ``scale`` at ``head_in``;
* ``generate(items, max_new_tokens=..., do_sample=...)``: the workbench's decoding
  loop, run through :meth:`decoder` (one engine forward per step).

Items are encoded once, by the workbench (chat template, response cut, padding
with explicit position ids), and token ids go to every engine, so differences
can only come from the engines.

>>> backend = wrap_backend(lm, "nnsight")  # doctest: +SKIP
>>> backend.capture(items, ["h_last", "head_in(3)"])["head_in(3)"].shape  # doctest: +SKIP
(2, 9, 64)
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from workbench.core.errors import MissingExtraError, WorkbenchError
from workbench.core.items import Item, as_items
from workbench.core.sites import Site, parse_sites
from workbench.model.backends.intervenes import Intervenes
from workbench.model.capture import CaptureResult, encode_items
from workbench.model.generation import Decoder, Generations
from workbench.model.intervention import Intervention
from workbench.model.loaded import LoadedModel
from workbench.model.positions import Frame, item_key, using_frame
from workbench.model.readers import Positions, SiteReader
from workbench.model.tokens import (
    DEFAULT_MAX_RESPONSE_TOKENS,
    Batch,
    Encoded,
    collate,
    length_buckets,
)

__all__ = [
    "Backend",
    "ItemsLike",
    "Heads",
    "require_extra",
    "input_device",
    "capture_via",
    "logits_via",
    "ForwardBackend",
    "Intervenes",
    "final_token",
]

ItemsLike = Sequence[Item | str | Mapping[str, Any]]
Heads = Mapping[tuple[int, int], float]
#: Runs one padded batch: reads sites into ``reader`` (when given) and returns the
#: logits at each row's final token, ``(batch, vocab)`` (when ``want_logits``).
Forward = Callable[[Batch, SiteReader | None, bool], torch.Tensor | None]


@runtime_checkable
class Backend(Protocol):
    """What every backend offers (see the module docstring)."""

    name: str
    lm: LoadedModel

    def capture(
        self,
        items: ItemsLike,
        sites: Sequence[str | Site],
        *,
        batch_size: int = 8,
        max_response_tokens: int = DEFAULT_MAX_RESPONSE_TOKENS,
        chat_template: bool | None = None,
        padding_side: str = "left",
    ) -> CaptureResult: ...

    def logits(
        self, items: ItemsLike, *, batch_size: int = 8, chat_template: bool | None = None
    ) -> np.ndarray: ...

    def temper(self, heads: Heads, positions: Any = "all") -> AbstractContextManager[None]: ...

    def intervene(self, values: Sequence[Intervention]) -> AbstractContextManager[None]: ...

    def decoder(self) -> Decoder: ...

    def generate(
        self,
        items: ItemsLike,
        *,
        max_new_tokens: int = 16,
        batch_size: int = 8,
        chat_template: bool | None = None,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int = 0,
        loop: str = "continuous",
    ) -> Generations: ...


# backend -> (module to import, PyPI package, extra that installs it)
ENGINES: dict[str, tuple[str, str, str]] = {
    "transformer_lens": ("transformer_lens", "transformer-lens", "lens"),
    "nnsight": ("nnsight", "nnsight", "nnsight"),
}


def require_engine(backend: str) -> ModuleType | None:
    """The engine module of ``backend`` (``None`` for ``hf``), or a one-line
    :class:`MissingExtraError` naming the extra to install."""
    return require_extra(*ENGINES[backend]) if backend in ENGINES else None


def require_extra(module: str, package: str, extra: str) -> ModuleType:
    """Import an optional engine, or raise a one-line :class:`MissingExtraError`.

    >>> require_extra("json", "json", "none").__name__
    'json'
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules[module] is None
        found = False
    if not found:
        raise MissingExtraError(package, extra)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and e.name.split(".")[0] == module.split(".")[0]:
            raise MissingExtraError(package, extra) from None
        raise


def input_device(lm: LoadedModel) -> torch.device:
    """Where input ids go: the model's device, or the CPU for a meta (remote-only) model."""
    device = lm.device
    return torch.device("cpu") if device.type == "meta" else device


def _check_padding(padding_side: str) -> None:
    if padding_side not in ("left", "right"):
        raise WorkbenchError(f"padding side {padding_side!r} is not 'left' or 'right'")


def _frame(
    batch: Batch, encoded: Sequence[Encoded], items: Sequence[Item], bucket: Sequence[int]
) -> Frame:
    return Frame.of_batch(
        batch.attention_mask,
        n_prompt=[encoded[i].n_prompt for i in bucket],
        keys=[item_key(items[i].id) for i in bucket],
    )


def capture_via(
    lm: LoadedModel,
    items: ItemsLike,
    sites: Sequence[str | Site],
    forward: Forward,
    *,
    batch_size: int,
    max_response_tokens: int,
    chat_template: bool | None,
    padding_side: str,
) -> CaptureResult:
    """:func:`workbench.model.capture.capture`, with the forward pass run by a backend.

    The backend's ``forward`` feeds the tensors at the reader's points (see
    :func:`workbench.model.backends.names.point_of`) to the reader's hook functions,
    so gathering, pooling and NaN-filling are the HF path's own code.
    """
    _check_padding(padding_side)
    items = as_items(items)
    reader = SiteReader(lm.layout, parse_sites(sites), early_stop=False)
    encoded = encode_items(
        lm, items, chat_template=chat_template, max_response_tokens=max_response_tokens
    )
    features: dict[str, np.ndarray] = {}
    for bucket in length_buckets([len(e) for e in encoded], batch_size):
        batch = collate(
            [encoded[i].ids for i in bucket], lm.pad_id, side=padding_side, device=input_device(lm)
        )
        reader.positions = Positions.final(batch.last, batch.first, reader.max_n)
        try:
            with using_frame(_frame(batch, encoded, items, bucket)):
                forward(batch, reader, False)
            values = reader.take()
        finally:
            reader.values.clear()
        for name, tensor in values.items():
            if name not in features:
                features[name] = np.empty((len(encoded), *tensor.shape[1:]), dtype=np.float32)
            features[name][bucket] = tensor.numpy()
    return CaptureResult(
        item_ids=tuple(it.id for it in items),
        features=features,
        n_tokens=np.array([len(e) for e in encoded]),
        cut=np.array([e.cut for e in encoded]),
    )


def logits_via(
    lm: LoadedModel,
    items: ItemsLike,
    forward: Forward,
    *,
    batch_size: int,
    chat_template: bool | None,
) -> np.ndarray:
    """Final-token logits of prompt + response per item, ``(n_items, vocab)`` float32."""
    parsed = as_items(items)
    encoded = encode_items(lm, parsed, chat_template=chat_template)
    out: np.ndarray | None = None
    for bucket in length_buckets([len(e) for e in encoded], batch_size):
        batch = collate(
            [encoded[i].ids for i in bucket], lm.pad_id, side="left", device=input_device(lm)
        )
        with using_frame(_frame(batch, encoded, parsed, bucket)):
            logits = forward(batch, None, True)
        assert logits is not None  # want_logits=True
        values = logits.detach().float().cpu().numpy()
        if out is None:
            out = np.empty((len(encoded), values.shape[-1]), dtype=np.float32)
        out[bucket] = values
    assert out is not None  # as_items refuses an empty list
    return out


def final_token(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Each row's logits at its final non-pad token, ``(batch, vocab)``."""
    rows = torch.arange(logits.shape[0], device=logits.device)
    return logits[rows, batch.last.to(logits.device)]


class ForwardBackend(Intervenes):
    """``capture`` and ``logits`` for a backend that only defines how one batch runs.

    A subclass sets ``lm`` and implements ``_forward`` (a :data:`Forward`); batching,
    tokenisation and site reading are the shared :func:`capture_via` / :func:`logits_via`.
    """

    lm: LoadedModel

    def _forward(
        self, batch: Batch, reader: SiteReader | None, want_logits: bool
    ) -> torch.Tensor | None:
        raise NotImplementedError

    def capture(
        self,
        items: ItemsLike,
        sites: Sequence[str | Site],
        *,
        batch_size: int = 8,
        max_response_tokens: int = DEFAULT_MAX_RESPONSE_TOKENS,
        chat_template: bool | None = None,
        padding_side: str = "left",
    ) -> CaptureResult:
        """Capture sites through this backend's forward pass (same result as the HF path)."""
        return capture_via(
            self.lm,
            items,
            sites,
            self._forward,
            batch_size=batch_size,
            max_response_tokens=max_response_tokens,
            chat_template=chat_template,
            padding_side=padding_side,
        )

    def logits(
        self, items: ItemsLike, *, batch_size: int = 8, chat_template: bool | None = None
    ) -> np.ndarray:
        """Final-token logits of prompt + response, ``(n_items, vocab)`` float32."""
        return logits_via(
            self.lm, items, self._forward, batch_size=batch_size, chat_template=chat_template
        )
