"""The model side of the workbench: load a model, name sites, capture activations
through hooks, generate with interventions active, store features.

Attributes are imported on first use, so ``import workbench.store`` (used by the
torch-free ``probes`` package) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "WorkbenchError": "workbench.errors",
    "FeatureStore": "workbench.store",
    "StoreWriter": "workbench.store",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
