"""What every backend shares around interventions (tempering, the decoding loop)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from workbench.model.compile import head_scales
from workbench.model.generation import Decoder, Generations, generate
from workbench.model.intervention import Intervention
from workbench.model.loaded import LoadedModel

__all__ = ["Intervenes"]

Heads = Mapping[tuple[int, int], float]


class Intervenes:
    """What every backend shares around interventions: tempering is ``scale`` at
    ``head_in``, generation is the workbench's decoding loop through :meth:`decoder`.

    A subclass implements :meth:`intervene` (compile values into its engine, active
    while the context is) and may override :meth:`decoder`.
    """

    lm: LoadedModel
    name: str

    def intervene(self, values: Sequence[Intervention]) -> AbstractContextManager[None]:
        raise NotImplementedError

    def temper(self, heads: Heads, positions: Any = "all") -> AbstractContextManager[None]:
        """Scale heads' ``o_proj`` inputs while active (``{(layer, head): factor}``).

        >>> with backend.temper({(3, 1): 0.0}):  # doctest: +SKIP
        ...     ablated = backend.logits(items)
        """
        return self.intervene(head_scales(self.lm.layout, heads, positions))

    def decoder(self) -> Decoder:
        """One step of the decoding loop through this engine."""
        return Decoder(self.lm)

    def generate(
        self,
        items: Sequence[Any],
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
    ) -> Generations:
        """:func:`workbench.model.generation.generate` through this backend."""
        return generate(
            self, items, max_new_tokens=max_new_tokens, batch_size=batch_size,
            chat_template=chat_template, do_sample=do_sample, temperature=temperature,
            top_p=top_p, top_k=top_k, seed=seed, loop=loop,
        )  # fmt: skip
