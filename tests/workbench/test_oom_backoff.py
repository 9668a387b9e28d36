"""The out-of-memory back-off keeps the batch size that fit, for capture and generation.

Out-of-memory is simulated: the forward pass (capture) or the decoding of a bucket
(generation) raises ``torch.OutOfMemoryError`` for batches above a size.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench.model.capture as capture_module
import workbench.model.generation as generation_module
from workbench.model.capture import capture, capture_to_store
from workbench.model.generation import generate

PROMPTS = [f"Question number {i}: what is {i} + {i}?" for i in range(12)]


def _limit_rows(monkeypatch, module, name: str, limit: int) -> list[int]:
    """Make ``module.name`` fail above ``limit`` rows; return the sizes it was called with."""
    real = getattr(module, name)
    sizes: list[int] = []

    def fake(lm, batch, *args, **kwargs):
        sizes.append(len(batch))
        if len(batch) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate (simulated)")
        return real(lm, batch, *args, **kwargs)

    monkeypatch.setattr(module, name, fake)
    return sizes


def test_capture_remembers_the_size_that_fit(tiny, monkeypatch, capsys):
    lm = tiny("llama")
    expected = capture(lm, PROMPTS, ["h_last", "head_in(1)"], batch_size=8)
    sizes = _limit_rows(monkeypatch, capture_module, "forward_sites", 2)
    got = capture(lm, PROMPTS, ["h_last", "head_in(1)"], batch_size=8)
    # 8 fails, 4 fails, 2 fits; every later batch goes straight to 2 (no retry at 8 or 4)
    assert sizes[:3] == [8, 4, 2]
    assert sizes[3:] == [2] * (len(sizes) - 3) and sum(sizes[2:]) == len(PROMPTS)
    for site in ("h_last", "head_in(1)"):
        np.testing.assert_allclose(got[site], expected[site], atol=1e-5)
    err = capsys.readouterr().err
    assert err.count("out of memory at capture batch size") == 2  # once per drop: 8->4, 4->2
    assert "continuing with batches of 2 for the rest of this run" in err


def test_store_capture_keeps_the_size_across_shards(tiny, monkeypatch, tmp_path, capsys):
    lm = tiny("llama")
    sizes = _limit_rows(monkeypatch, capture_module, "forward_sites", 3)
    capture_to_store(lm, PROMPTS, ["h_last"], tmp_path / "s", shard_size=6, batch_size=6)
    assert sizes[:2] == [6, 3] and set(sizes[2:]) == {3}  # the second shard starts at 3
    assert capsys.readouterr().err.count("out of memory") == 1


def test_generation_remembers_the_size_that_fit(tiny, monkeypatch, capsys):
    lm = tiny("llama")
    expected = generate(
        lm, PROMPTS, max_new_tokens=4, batch_size=6, capture=["h_last"], loop="static"
    )
    sizes = _limit_rows(monkeypatch, generation_module, "decode_bucket", 3)
    got = generate(lm, PROMPTS, max_new_tokens=4, batch_size=6, capture=["h_last"], loop="static")
    assert sizes == [6, 3, 3, 3, 3]  # the second bucket of 6 goes straight to 3
    assert [g.token_ids for g in got] == [g.token_ids for g in expected]
    assert [g.truncated for g in got] == [g.truncated for g in expected]
    np.testing.assert_allclose(
        got.features["resid(-1,normed)"], expected.features["resid(-1,normed)"], atol=1e-5
    )
    err = capsys.readouterr().err
    assert err.count("out of memory") == 1
    assert "at generate batch size 6: continuing with batches of 3" in err


def test_other_errors_and_single_rows_are_not_retried(tiny, monkeypatch):
    lm = tiny("llama")
    _limit_rows(monkeypatch, capture_module, "forward_sites", 0)
    with pytest.raises(torch.OutOfMemoryError):
        capture(lm, PROMPTS[:3], ["h_last"], batch_size=2)

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(capture_module, "forward_sites", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        capture(lm, PROMPTS[:3], ["h_last"], batch_size=2)
