"""The compute floor: a matmul peak measured in the run, and the model FLOPs of a workload.

``matmul_peak`` times square matmuls of the run's device and dtype at the run's
thread count (the best of several calls: the machine's rate when nothing else
gets in the way). ``Flops`` counts what a path *had* to compute: every linear
layer of the decoder for each real token (prompt tokens and generated tokens of
live rows; never padding, never rows that already ended), the LM head only
where logits are needed (one per prompt, one per generated token that is fed
back), and the attention scores and weighted sums over each token's context
(causal). Achieved FLOP/s = that count / the path's median time; the fraction
of the peak is the model FLOPs utilisation (MFU) of the path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from workbench.model.loaded import LoadedModel

__all__ = ["Flops", "matmul_peak", "utilisation"]


def matmul_peak(
    device: torch.device, dtype: torch.dtype, *, n: int = 1024, calls: int = 20
) -> dict[str, Any]:
    """FLOP/s of an ``n x n`` matmul (best and median of ``calls`` timed calls)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync: Callable[[], None] = (
        (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    )
    for _ in range(3):
        a @ b
    sync()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - start)
    work = 2.0 * n**3
    times.sort()
    return {
        "shape": [n, n, n],
        "dtype": str(dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "calls": calls,
        "peak_flops": work / times[0],
        "median_flops": work / times[len(times) // 2],
    }


@dataclass(frozen=True)
class Flops:
    """Per-token FLOP counts of one model: decoder linears, LM head, attention width."""

    body: float  # 2 x decoder linear weights (every real token)
    head: float  # 2 x LM head weights (tokens whose logits are computed)
    attention: float  # 4 x sum over attention layers of n_heads x head_dim (per context token)

    @classmethod
    def of(cls, lm: LoadedModel) -> Flops:
        layout = lm.layout
        body = sum(
            m.weight.numel()
            for layer in layout.layers
            for m in layer.modules()
            if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D"
        )
        head_module: Any = lm.model.get_output_embeddings()
        width = 0
        for layer in layout.layers_with_attention:
            info = layout.attention(layer)
            width += info.n_heads * info.head_dim
        return cls(body=2.0 * body, head=2.0 * head_module.weight.numel(), attention=4.0 * width)

    def tokens(self, n: int, context: float, *, logits: int = 0) -> float:
        """``n`` tokens whose summed causal context lengths are ``context``."""
        return self.body * n + self.attention * context + self.head * logits

    def sequence(self, length: int, *, logits: int = 0) -> float:
        """One causal pass over ``length`` real tokens."""
        return self.tokens(length, length * (length + 1) / 2, logits=logits)

    def generation(
        self, prompt_lengths: Sequence[int], generated: Sequence[int], truncated: Sequence[bool]
    ) -> float:
        """Each prompt's prefill (logits at its last token) plus every generated token fed
        back (with its logits): all of them for a row that ended by EOS, all but the last
        for a row cut at the cap (its last token is never fed)."""
        total = 0.0
        for p, g, cut in zip(prompt_lengths, generated, truncated, strict=True):
            fed = g - 1 if cut else g
            context = p * (p + 1) / 2 + sum(p + k + 1 for k in range(fed))
            total += self.tokens(p + fed, context, logits=1 + fed)
        return total


def utilisation(flops: float, seconds: float, peak: dict[str, Any]) -> dict[str, float]:
    """Achieved FLOP/s and its fraction of the measured peak."""
    achieved = flops / seconds
    return {
        "model_flops": flops,
        "achieved_flops": achieved,
        "fraction_of_peak": achieved / peak["peak_flops"],
    }
