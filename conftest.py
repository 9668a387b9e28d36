"""Doctest setup for ``pytest --doctest-modules`` over workbench, probes and interventions.

Every ``>>>`` example runs. Examples that need a model get ``lm``, a tiny random-init
Llama (the SmolLM2 layout: 3 layers, 4 heads of width 16, built from a real config),
and ``items``, two items with prompt and response; ``np`` is numpy. The namespace is
built only for doctests, and the model only for examples that name ``lm``.
"""

from __future__ import annotations

import re
from typing import Any

import beartype  # noqa: F401  # first, before nnsight patches builtins its import-time tables read
import numpy as np
import pytest
from _pytest.doctest import DoctestItem

collect_ignore = ["workbench/__main__.py", "benchmarks", "scripts", "notebooks", "docs"]

_USES_LM = re.compile(r"\blm\b")


@pytest.fixture(scope="session")
def _doctest_lm() -> Any:
    from support import build_tiny

    return build_tiny("llama")


@pytest.fixture(autouse=True)
def _doctest_globals(request: pytest.FixtureRequest) -> None:
    if not isinstance(request.node, DoctestItem):
        return
    namespace = request.getfixturevalue("doctest_namespace")
    namespace["np"] = np
    if _USES_LM.search(request.node.dtest.docstring or ""):
        namespace["lm"] = request.getfixturevalue("_doctest_lm")
        namespace["items"] = [
            {"id": "q1", "prompt": "What is 2 + 2?", "response": "4."},
            {"id": "q2", "prompt": "Capital of France?", "response": "Paris."},
        ]
