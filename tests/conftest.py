"""Shared fixtures: tiny models per architecture, the real embedded SmolLM2-135M."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import build_tiny


@pytest.fixture(scope="session")
def tiny() -> Callable[[str], object]:
    """``tiny(arch)``: a cached tiny LoadedModel per architecture."""
    cache: dict[str, object] = {}

    def get(arch: str):
        if arch not in cache:
            cache[arch] = build_tiny(arch)
        return cache[arch]

    return get


@pytest.fixture(scope="session")
def smollm():
    """The real embedded SmolLM2-135M-Instruct (dequantised GGUF, float32)."""
    from workbench.model.loading import load_model

    try:
        return load_model("smollm2-135m-instruct")
    except Exception as e:  # the package is installed by `make install`
        pytest.skip(f"embedded model unavailable: {e}")


@pytest.fixture
def items_file(tmp_path: Path) -> Callable[[list[dict]], Path]:
    import json

    def write(rows: list[dict], name: str = "items.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    return write


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tiny) -> Path:
    """The tiny Llama saved as a local HF directory (loadable by ``--model PATH``)."""
    path = tmp_path_factory.mktemp("tiny-llama")
    lm = tiny("llama")
    lm.model.save_pretrained(path)
    lm.tokenizer.save_pretrained(path)
    return path
