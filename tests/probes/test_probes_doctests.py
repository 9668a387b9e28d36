"""The >>> examples in the probes docstrings run and hold."""

import doctest
import importlib
import pkgutil

import pytest

import probes

MODULES = ["probes", *(f"probes.{m.name}" for m in pkgutil.iter_modules(probes.__path__))]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
