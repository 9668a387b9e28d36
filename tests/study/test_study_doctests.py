"""The ``>>>`` examples in the study's modules run (those needing a model are marked +SKIP)."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

MODULES = [
    "workbench.study.activation_plots",
    "workbench.study.cache",
    "workbench.study.collect",
    "workbench.study.config",
    "probes.baselines",
    "probes.depth",
    "workbench.study.falsification",
    "workbench.study.gating",
    "workbench.study.heads",
    "workbench.study.html",
    "workbench.study.labels",
    "workbench.study.models",
    "workbench.study.runner",
    "workbench.study.second",
    "workbench.study.traces",
    "workbench.study.verdicts",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
