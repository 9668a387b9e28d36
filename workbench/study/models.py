"""Models of a study, loaded on first use and kept for the run.

A re-run whose stages are all cached never loads a model.

>>> pool = ModelPool(dtype="float32", device="cpu")
>>> pool.loaded
{}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.model.loaded import LoadedModel

__all__ = ["ModelPool"]


class ModelPool:
    """Load each model once, on first :meth:`get`; ``loaded`` describes those loaded.

    Args:
        dtype: float32, bfloat16 or float16.
        device: cpu, cuda, cuda:N or auto.
        say: called with one line before a load (a console print).
    """

    def __init__(
        self, *, dtype: str, device: str, say: Callable[[str], None] | None = None
    ) -> None:
        self.dtype, self.device = dtype, device
        self._say = say or (lambda _msg: None)
        self._models: dict[str, LoadedModel] = {}

    def get(self, name: str) -> LoadedModel:
        if name not in self._models:
            from rich.markup import escape

            from workbench.model.loading import load_model

            self._say(f"loading model {escape(name)}")
            self._models[name] = load_model(
                name,
                dtype=self.dtype,
                device=self.device,
                progress=lambda m: self._say(escape(m)),
            )
        return self._models[name]

    @property
    def loaded(self) -> dict[str, dict[str, Any]]:
        return {name: lm.describe() for name, lm in self._models.items()}
