"""Fixtures for the interventions tests: fixed inputs, plain logits, and an
independent head ablation that rebuilds ``o_proj``'s output from per-head slices."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread while these tests run (restored after each): on a shared 2-core
    machine, OpenMP threads spin against other processes and small forwards run ~50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def input_ids() -> torch.Tensor:
    """Two unpadded rows of 10 ordinary byte tokens."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(5, 261, (2, 10), generator=g)


@pytest.fixture(scope="session")
def logits_of() -> Callable[..., torch.Tensor]:
    def run(lm, ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return lm.model(input_ids=ids, use_cache=False).logits

    return run


@pytest.fixture(scope="session")
def attn_layer() -> Callable[..., int]:
    """A layer with attention, from the middle of the model (original numbering)."""

    def pick(lm) -> int:
        layers = lm.layout.layers_with_attention
        return layers[len(layers) // 2]

    return pick


def _head_projection(o_proj: torch.nn.Module, x: torch.Tensor, cols: slice) -> torch.Tensor:
    """One head's share of ``o_proj(x)``: its input slice times its weight columns (no bias)."""
    w = o_proj.weight
    if type(o_proj).__name__ == "Conv1D":  # GPT-2 stores (in, out)
        return x[..., cols] @ w[cols, :]
    return x[..., cols] @ w[:, cols].T


@pytest.fixture(scope="session")
def manual_ablation() -> Callable[..., torch.Tensor]:
    """Logits with ``heads`` of ``layer`` removed, computed without the interventions package:
    the attention module's output is replaced by the sum of the other heads' projections
    (``o_proj.weight[:, cols] @ x[cols]``) plus the bias."""

    def run(lm, ids: torch.Tensor, layer: int, heads: set[int]) -> torch.Tensor:
        info = lm.layout.info[layer]
        o_proj = lm.layout.o_proj(layer)
        attn = lm.layout.attn_module(layer)
        seen: dict[str, torch.Tensor] = {}

        def read(module, args):
            seen["x"] = args[0]

        def rebuild(module, args, output):
            x = seen.pop("x")
            total = torch.zeros_like(output[0] if isinstance(output, tuple) else output)
            for h in range(info.n_heads):
                if h not in heads:
                    cols = slice(h * info.head_dim, (h + 1) * info.head_dim)
                    total = total + _head_projection(o_proj, x, cols)
            if getattr(o_proj, "bias", None) is not None:
                total = total + o_proj.bias
            return (total, *output[1:]) if isinstance(output, tuple) else total

        handles = [o_proj.register_forward_pre_hook(read), attn.register_forward_hook(rebuild)]
        try:
            with torch.no_grad():
                return lm.model(input_ids=ids, use_cache=False).logits
        finally:
            for handle in handles:
                handle.remove()

    return run
