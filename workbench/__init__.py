"""The workbench: load a model, name sites, capture activations through hooks, generate
with interventions active, store features; the study and the command line on top.

The public API is imported on first use, so ``import workbench`` (and the torch-free
``probes``, which imports ``workbench.core``) loads no torch:

>>> import workbench
>>> "load_model" in workbench.__all__
True
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "WorkbenchError": "workbench.core.errors",
    "FeatureStore": "workbench.core.store",
    "StoreWriter": "workbench.core.store",
    "load_model": "workbench.model.loading",
    "capture": "workbench.model.capture",
    "capture_to_store": "workbench.model.capture",
    "generate": "workbench.model.generation",
    "DecodingConfig": "workbench.model.generation",
    "Item": "workbench.core.items",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
