"""The study: one command runs the honest-falsification study and writes a report.

The public names are imported on first use (the study pulls in every floor):

>>> import workbench.study
>>> "run_study" in workbench.study.__all__
True
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_study": "workbench.study.runner",
    "StudyResult": "workbench.study.result",
    "StudyConfig": "workbench.study.config",
    "load_config": "workbench.study.config",
    "depth_figure": "workbench.study.activation_plots",
    "token_trace_figure": "workbench.study.activation_plots",
    "head_attribution_heatmap": "workbench.study.activation_plots",
    "pick_examples": "workbench.study.traces",
    "trace_tokens": "workbench.study.traces",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'workbench.study' has no attribute {name!r}")
