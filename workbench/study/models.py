"""Models of a study, loaded on first use and kept for the run.

A re-run whose stages are all cached never loads a model.

>>> pool = ModelPool(dtype="float32", device="cpu")
>>> pool.loaded
{}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from workbench.model.loaded import LoadedModel, unwrap
from workbench.model.options import LoadOptions

__all__ = ["ModelPool"]


class ModelPool:
    """Load each model once, on first :meth:`get`; ``loaded`` describes those loaded.

    Args:
        dtype: float32, bfloat16 or float16.
        device: cpu, cuda, cuda:N or auto.
        say: called with one line before a load (a console print).
        options: placement per model name (``[model]``, ``[second_model]``); a name
            without an entry loads on ``device`` in ``dtype``.
    """

    def __init__(
        self,
        *,
        dtype: str,
        device: str,
        say: Callable[[str], None] | None = None,
        options: Mapping[str, LoadOptions] | None = None,
    ) -> None:
        self.dtype, self.device = dtype, device
        self._say = say or (lambda _msg: None)
        self._options = dict(options or {})
        self._models: dict[str, Any] = {}

    def engine(self, name: str) -> Any:
        """What ``load_model`` returned: the :class:`LoadedModel`, or its backend
        (``backend = "nnsight"`` ...), which runs the study's captures and generations."""
        if name not in self._models:
            from rich.markup import escape

            from workbench.model.loading import load_model

            options = self._options.get(name) or LoadOptions(self.device, self.dtype)
            self._say(f"loading model {escape(name)}")
            self._models[name] = load_model(
                name, **options.load_kwargs(), progress=lambda m: self._say(escape(m))
            )
        return self._models[name]

    def get(self, name: str) -> LoadedModel:
        """The :class:`LoadedModel` (layout, tokenizer; hooks run on it directly)."""
        return unwrap(self.engine(name))[0]

    @property
    def loaded(self) -> dict[str, dict[str, Any]]:
        return {name: unwrap(lm)[0].describe() for name, lm in self._models.items()}
