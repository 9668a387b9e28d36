"""The default backend: plain ``transformers`` with PyTorch hooks.

Capture and generation are :func:`workbench.model.capture.capture` and
:func:`workbench.model.generation.generate`; interventions (tempering included)
are PyTorch hooks built by :func:`workbench.model.compile.hf_hooks`, attached
for the duration of the context and removed in ``finally``.

Scaling past one machine: load with ``device_map="auto"`` (accelerate places
the layers over every visible GPU, then CPU), and this backend works unchanged,
hooks included, since each hook runs on its module's device::

    lm = load_model("Qwen/Qwen3-32B", dtype="bfloat16", device_map="auto")
    backend = HFBackend(lm)

>>> backend = HFBackend(lm)  # doctest: +SKIP
>>> with backend.temper({(3, 1): 0.5}):  # doctest: +SKIP
...     gens = backend.generate(["What is 2+2?"], max_new_tokens=8)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from workbench.core.sites import Site
from workbench.model.backends.base import ItemsLike, final_token, logits_via
from workbench.model.backends.intervenes import Intervenes
from workbench.model.capture import CaptureResult, capture
from workbench.model.compile import hf_hooks
from workbench.model.hooks import attach, stop_forward_allowed
from workbench.model.intervention import Intervention
from workbench.model.loaded import LoadedModel
from workbench.model.readers import SiteReader
from workbench.model.tokens import DEFAULT_MAX_RESPONSE_TOKENS, Batch

__all__ = ["HFBackend"]


class HFBackend(Intervenes):
    """PyTorch hooks on the ``transformers`` module tree (see the module docstring).

    Args:
        lm: a loaded model (:func:`workbench.model.loading.load_model` or ``wrap_model``).
    """

    name = "hf"

    def __init__(self, lm: LoadedModel) -> None:
        self.lm = lm

    def __repr__(self) -> str:
        return f"HFBackend({self.lm.name!r})"

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
        """:func:`workbench.model.capture.capture` (tempering applies when active)."""
        return capture(
            self.lm,
            items,
            sites,
            batch_size=batch_size,
            max_response_tokens=max_response_tokens,
            chat_template=chat_template,
            padding_side=padding_side,
        )

    def _forward(
        self, batch: Batch, reader: SiteReader | None, want_logits: bool
    ) -> torch.Tensor | None:
        hooks = reader.hooks() if reader is not None else []
        with torch.inference_mode(), attach(hooks), stop_forward_allowed():
            out = self.lm.model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=batch.position_ids,
                use_cache=False,
            )
            return final_token(out.logits, batch) if want_logits else None

    def logits(
        self, items: ItemsLike, *, batch_size: int = 8, chat_template: bool | None = None
    ) -> np.ndarray:
        """Final-token logits of prompt + response, ``(n_items, vocab)`` float32."""
        return logits_via(
            self.lm, items, self._forward, batch_size=batch_size, chat_template=chat_template
        )

    @contextlib.contextmanager
    def intervene(self, values: Sequence[Intervention]) -> Iterator[None]:
        """Apply intervention values through PyTorch hooks while active (removed in ``finally``).

        >>> with HFBackend(lm).intervene(head_scales(lm.layout, {(3, 1): 0.0})):  # doctest: +SKIP
        ...     ablated = HFBackend(lm).logits(items)
        """
        with attach(hf_hooks(self.lm.layout, values)):
            yield
