"""Hooks and nnsight state are gone after exceptions; missing extras give a one-line error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from workbench.core.errors import MissingExtraError, WorkbenchError
from workbench.core.items import Item
from workbench.model.backends import HFBackend, LensBackend, NNsightBackend, wrap_backend
from workbench.model.hooks import Hook, attach, count_hooks

ITEMS = [Item("a", "Hello there", "General Kenobi"), Item("b", "Hi")]


@pytest.fixture(scope="module")
def backends(tiny):
    lm = tiny("llama")
    return [HFBackend(lm), NNsightBackend(lm), LensBackend(lm, copy_model=True)]


def _state(backend) -> tuple[int, int, int]:
    """Torch hooks on the model, TransformerLens hook functions, active nnsight temperings."""
    bridge = getattr(backend, "bridge", None)
    lens = sum(len(hp.fwd_hooks) for hp in bridge.hook_points()) if bridge is not None else 0
    return count_hooks(backend.lm.model), lens, len(getattr(backend, "_active", []))


def _boom(*args):
    raise RuntimeError("boom")


@pytest.mark.parametrize("index", [0, 1, 2], ids=["hf", "nnsight", "transformer_lens"])
def test_state_is_restored_after_exceptions(backends, index):
    backend = backends[index]
    layout = backend.lm.layout
    heads = {(2, 1): 0.0, (1, 3): 0.5}
    sites = ["h_last", "head_in(2,last=2)"]
    baseline = _state(backend)
    reference = backend.capture(ITEMS, sites)
    plain = backend.logits(ITEMS)
    with backend.temper(heads):
        tempered = backend.logits(ITEMS)

    with pytest.raises(RuntimeError, match="user error"), backend.temper(heads):
        backend.logits(ITEMS)
        raise RuntimeError("user error")
    assert _state(backend) == baseline

    failing = [Hook(layout.layers[-1], "post", _boom)]  # fails mid-forward, after the sites
    for run in (
        lambda: backend.capture(ITEMS, sites),
        lambda: backend.logits(ITEMS),
        lambda: backend.generate(ITEMS, max_new_tokens=3),
    ):
        with pytest.raises(Exception, match="boom"), attach(failing), backend.temper(heads):
            run()
        assert _state(backend) == baseline

    after = backend.capture(ITEMS, sites)
    for site in sites:
        np.testing.assert_array_equal(after[site], reference[site])
    np.testing.assert_array_equal(backend.logits(ITEMS), plain)
    with backend.temper(heads):
        np.testing.assert_array_equal(backend.logits(ITEMS), tempered)


@pytest.mark.parametrize(
    ("module", "cls", "line"),
    [
        ("transformer_lens", LensBackend, "transformer-lens is not installed: pip install 'disposition-workbench[lens]'"),
        ("nnsight", NNsightBackend, "nnsight is not installed: pip install 'disposition-workbench[nnsight]'"),
    ],
)  # fmt: skip
def test_missing_extra_is_one_line(tiny, monkeypatch, module, cls, line):
    lm = tiny("llama")
    hooks = count_hooks(lm.model)
    monkeypatch.setitem(sys.modules, module, None)  # as if the import failed
    with pytest.raises(MissingExtraError) as error:
        cls(lm)
    assert str(error.value) == line and "\n" not in str(error.value)
    with pytest.raises(MissingExtraError, match="disposition-workbench"):
        wrap_backend(lm, cls.name)
    assert count_hooks(lm.model) == hooks


def test_missing_extra_when_find_spec_finds_nothing(tiny, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.split(".")[0] == "nnsight" else real(name, *a),
    )
    with pytest.raises(MissingExtraError, match=r"\[nnsight\]"):
        NNsightBackend(tiny("llama"))


def test_importing_backends_imports_no_engine():
    code = (
        "import sys, workbench.model.backends; "
        "print('transformer_lens' in sys.modules, 'nnsight' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "False"]


def test_bad_input_errors_name_the_fix(backends):
    hf = backends[0]
    with pytest.raises(WorkbenchError, match="unknown backend 'pyvene'"):
        wrap_backend(hf.lm, "pyvene")
    for backend in backends:
        with pytest.raises(WorkbenchError, match=r"head 7 is out of range.*0\.\.3"):
            backend.temper({(1, 7): 0.5}).__enter__()
        with pytest.raises(WorkbenchError, match="must be finite and >= 0"):
            backend.temper({(1, 0): -1.0}).__enter__()
        with pytest.raises(WorkbenchError, match="non-empty mapping"):
            backend.temper({}).__enter__()
        with pytest.raises(WorkbenchError, match="padding side"):
            backend.capture(ITEMS, ["h_last"], padding_side="middle")
        assert _state(backend)[2] == 0
