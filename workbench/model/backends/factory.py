"""``wrap_backend``: the backend ``load_model(..., backend=...)`` returns."""

from __future__ import annotations

from workbench.core.errors import WorkbenchError
from workbench.model.backends.base import Backend
from workbench.model.backends.hf import HFBackend
from workbench.model.backends.lens import LensBackend
from workbench.model.backends.names import BACKEND_NAMES
from workbench.model.backends.nnsight_backend import NNsightBackend
from workbench.model.loaded import LoadedModel

__all__ = ["wrap_backend"]


def wrap_backend(lm: LoadedModel, backend: str) -> Backend:
    """Wrap a loaded model in a backend: ``hf``, ``transformer_lens`` or ``nnsight``.

    >>> wrap_backend(lm, "nnsight").capture(items, ["h_last"])  # doctest: +SKIP
    """
    if backend == "hf":
        return HFBackend(lm)
    if backend == "transformer_lens":
        return LensBackend(lm)
    if backend == "nnsight":
        return NNsightBackend(lm)
    raise WorkbenchError(f"unknown backend {backend!r}: use one of {', '.join(BACKEND_NAMES)}")
