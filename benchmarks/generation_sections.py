"""Sections 3 and 4: fused generate-and-capture, and tempered generation against peers.

Every response is forced to its full length: :func:`benchmarks.workload.eos_suppressed`
puts a forward hook on the LM head that sets the EOS logits to the dtype's
minimum, on every path alike, so all paths decode the same number of tokens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from benchmarks.flops import Flops, utilisation
from benchmarks.plan import Plan
from benchmarks.timing import alternate, summarize, target
from benchmarks.workload import bench_items, eos_suppressed
from interventions import temper
from workbench.core.items import Item
from workbench.core.sites import parse_site
from workbench.model.capture import capture, encode_items
from workbench.model.generation import Generations, eos_ids, generate
from workbench.model.loaded import LoadedModel
from workbench.model.tokens import collate, encode_prompt

__all__ = ["fused_section", "tempered_section"]


def _prompts(n: int) -> list[Item]:
    return [Item(it.id, it.prompt) for it in bench_items(n)]


def _forced_flops(lm: LoadedModel, items: list[Item], n_tokens: int) -> float:
    """Model FLOPs of greedy decoding forced to ``n_tokens`` per item (none ends early)."""
    prompts = [len(encode_prompt(lm.tokenizer, it.prompt)) for it in items]
    n = len(items)
    return Flops.of(lm).generation(prompts, [n_tokens] * n, [True] * n)


def _add_utilisation(rows: list[dict[str, Any]], flops: float, peak: dict[str, Any] | None) -> None:
    for row in rows:
        if peak is not None:
            row.update(utilisation(flops, row["median_s"], peak))


def fused_section(
    lm: LoadedModel,
    plan: Plan,
    *,
    sync: Callable[[], None],
    log: Callable[[str], None],
    peak: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Section 3: the paper's generate-then-forward against fused generate-and-capture.

    Two-pass: ``generate`` then ``capture`` over prompt + decoded response (early
    stop on, so the second pass skips the LM head: the strongest two-pass
    baseline). Fused: ``generate(..., capture=sites)``. Generate-only: the same
    decoding with no features at all; ``two_pass / generate_only`` is the
    ceiling on any fused method's speed-up (it can at most drop the second pass).
    """
    layer = lm.layout.n_layers // 2
    sites = ["h_last", f"head_in({layer},last=8)"]
    items, n_tokens, batch = _prompts(plan.gen_items), plan.gen_tokens, plan.gen_batch

    def two_pass() -> tuple[Generations, dict[str, np.ndarray]]:
        gens = generate(lm, items, max_new_tokens=n_tokens, batch_size=batch)
        pairs = [Item(g.id, g.prompt, g.response) for g in gens]
        return gens, dict(capture(lm, pairs, sites, batch_size=batch).features)

    def fused() -> tuple[Generations, dict[str, np.ndarray]]:
        gens = generate(lm, items, max_new_tokens=n_tokens, batch_size=batch, capture=sites)
        return gens, dict(gens.features)

    def generate_only() -> Generations:
        return generate(lm, items, max_new_tokens=n_tokens, batch_size=batch)

    with eos_suppressed([lm.model], eos_ids(lm)):
        log("section 3: warm-up")
        generate(lm, items[:1], max_new_tokens=2, capture=sites)
        capture(lm, items[:1], sites)
        log(f"section 3: {len(items)} prompts x {n_tokens} tokens, batch {batch}")
        paths = {"two_pass": two_pass, "fused": fused, "generate_only": generate_only}
        times, first = alternate(paths, plan.reps, sync, log)
    rows = summarize(times, "two_pass")
    _add_utilisation(rows, _forced_flops(lm, items, n_tokens), peak)  # generation's work only
    (gens, two), (_, one) = first["two_pass"], first["fused"]
    pairs = [Item(g.id, g.prompt, g.response) for g in gens]
    same = [
        list(e.ids[e.n_prompt :]) == list(g.token_ids)
        for e, g in zip(encode_items(lm, pairs), gens, strict=True)
    ]
    agree = np.array(same)
    key = str(parse_site("h_last"))  # features are keyed by canonical site names
    diff = float(np.abs(one[key][agree] - two[key][agree]).max()) if agree.any() else None
    ratio = {r["path"]: r["ratio"] for r in rows}
    speedup, ceiling = 1.0 / ratio["fused"], 1.0 / ratio["generate_only"]
    return {
        "sites": sites,
        "n_items": len(items),
        "batch_size": batch,
        "max_new_tokens": n_tokens,
        "all_full_length": all(g.n_tokens == n_tokens for g in gens),
        "forcing": "EOS logits set to the dtype minimum by a forward hook on the LM head",
        "retokenised_response_equals_generated": int(agree.sum()),
        "h_last_max_abs_diff_fused_vs_two_pass": diff,
        "rows": rows,
        "speedup": speedup,
        "ceiling": ceiling,
        "targets": [
            target(
                f"fused generate-and-capture >= 1.3x faster than generate-then-forward "
                f"({n_tokens}-token responses)",
                speedup,
                1.3,
                ">=",
                path="fused",
                section="fused",
            )
        ],
    }


def tempered_section(
    lm: LoadedModel,
    plan: Plan,
    *,
    nnm: Any,
    sync: Callable[[], None],
    log: Callable[[str], None],
    peak: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Section 4: greedy generation with one head tempered (lambda 0.5) against plain ``generate``.

    Paths: HF ``generate`` (floor), HF ``generate`` inside ``temper`` (a pre-hook
    on ``o_proj``), the workbench's ``generate`` plain and with
    ``interventions=[temper(...)]``, and nnsight's ``generate`` scaling the same
    slice of the ``o_proj`` input at every step (``tracer.iter[:T]``).
    """
    layer, head, lam = lm.layout.n_layers // 2, 1, 0.5
    dim = lm.layout.attention(layer).head_dim
    lo, hi = head * dim, (head + 1) * dim
    items, n_tokens = _prompts(plan.temper_items), plan.temper_tokens
    pad = int(lm.tokenizer.pad_token_id)
    b = collate([encode_prompt(lm.tokenizer, it.prompt) for it in items], pad, device=lm.device)
    hf_kwargs = dict(max_new_tokens=n_tokens, do_sample=False, pad_token_id=pad)
    model: Any = lm.model

    def hf(tempered: bool) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            ctx = temper(lm, {(layer, head): lam}) if tempered else contextlib.nullcontext()
            with ctx, torch.inference_mode():
                out = model.generate(
                    input_ids=b.input_ids, attention_mask=b.attention_mask, **hf_kwargs
                )
            return out[:, -n_tokens:].cpu()

        return run

    def wb(tempered: bool) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            extra = [temper(lm, {(layer, head): lam})] if tempered else []
            gens = generate(
                lm, items, max_new_tokens=n_tokens, batch_size=len(items), interventions=extra
            )
            return torch.tensor([list(g.token_ids) for g in gens])

        return run

    def nnsight_tempered() -> torch.Tensor:
        inputs = {"input_ids": b.input_ids, "attention_mask": b.attention_mask}
        with torch.inference_mode(), nnm.generate(inputs, **hf_kwargs) as tracer:
            for _ in tracer.iter[:n_tokens]:
                x = nnm.model.layers[layer].self_attn.o_proj.input
                x[..., lo:hi] *= lam
            out = tracer.result.save()
        return out[:, -n_tokens:].cpu()

    paths = {
        "hf_generate": hf(False),
        "hf_generate_tempered": hf(True),
        "workbench_generate": wb(False),
        "workbench_generate_tempered": wb(True),
        "nnsight_generate_tempered": nnsight_tempered,
    }
    with eos_suppressed([lm.model, nnm._module], eos_ids(lm)):
        log("section 4: warm-up")
        for fn in paths.values():
            fn()
        log(f"section 4: {len(items)} prompts x {n_tokens} tokens, head {layer}.{head} x {lam}")
        times, first = alternate(paths, plan.reps, sync, log)
    rows = summarize(times, "hf_generate", work=len(items) * n_tokens)
    _add_utilisation(rows, _forced_flops(lm, items, n_tokens), peak)
    by = {r["path"]: r for r in rows}
    ref = first["hf_generate_tempered"]
    targets = [
        target(
            "tempered generation >= 0.97x plain generation throughput",
            by[p]["median_s"] / by[f"{p}_tempered"]["median_s"],
            0.97,
            ">=",
            path=f"{p}_tempered vs {p}",
            section="tempered",
        )
        for p in ("workbench_generate", "hf_generate")
    ]
    return {
        "head": [layer, head],
        "factor": lam,
        "n_items": len(items),
        "max_new_tokens": n_tokens,
        "forcing": "EOS logits set to the dtype minimum by a forward hook on the LM head",
        "tokens_equal_to_hf_tempered": {
            "workbench_generate_tempered": bool(
                torch.equal(first["workbench_generate_tempered"], ref)
            ),
            "nnsight_generate_tempered": bool(torch.equal(first["nnsight_generate_tempered"], ref)),
        },
        "tempering_changed_tokens": not torch.equal(first["hf_generate"], ref),
        "rows": rows,
        "targets": targets,
    }
