"""The demo's generation work, old loop against new: greedy throughput, the study's
generate-and-capture stage, and the tempering sweep's generate calls.

Items are the demo's (``workbench/configs/demo.toml``: its splits, families and seed),
decoded as the study decodes them (batch 48, up to 48 new tokens, EOS ends a row).
Paths: ``hf_generate`` (``transformers``' ``generate`` on the same length-sorted
batches of 48, left-padded), ``static`` (the workbench's bucket-by-bucket loop, the
one before continuous batching) and ``continuous`` (the default since the quiet run of 2026-12-01).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from benchmarks.flops import Flops, utilisation
from benchmarks.plan import Plan
from benchmarks.timing import alternate, summarize, target
from interventions import temper
from workbench.core.items import Item
from workbench.labels.domains import make_split
from workbench.model import decoding
from workbench.model.compile import head_scales
from workbench.model.decoding import DecodingConfig
from workbench.model.generation import Generations, eos_ids, generate
from workbench.model.grid import generate_grid
from workbench.model.loaded import LoadedModel
from workbench.model.tokens import collate, encode_prompts, length_buckets
from workbench.study.collect import format_items, study_sites
from workbench.study.config import load_config

__all__ = ["demo_generation_section", "demo_stage_section", "demo_sweep_section", "demo_splits"]


def demo_splits(limit: int | None = None) -> dict[str, list[Item]]:
    """The demo's items per split (the first ``limit`` of each when given)."""
    cfg = load_config()
    out = {}
    for split in ("train", "fresh", "fresh_hard"):
        n = cfg.items.count(split)
        if n:
            items = make_split(split, n, cfg.items.seed, families=cfg.items.families)
            out[split] = format_items(items, cfg.model.prompt_template)[:limit]
    return out


def _hf_generate(lm: LoadedModel, items: Sequence[Item], batch: int, n: int) -> list[list[int]]:
    prompts = encode_prompts(lm.tokenizer, items, max_new_tokens=n)
    eos, pad = eos_ids(lm), lm.pad_id
    model: Any = lm.model
    out: list[list[int]] = [[] for _ in items]
    for bucket in length_buckets([len(p) for p in prompts], batch):
        b = collate([prompts[i] for i in bucket], pad, device=lm.device)
        with torch.inference_mode():
            ids = model.generate(
                input_ids=b.input_ids, attention_mask=b.attention_mask, max_new_tokens=n,
                do_sample=False, pad_token_id=pad, eos_token_id=eos,
            )[:, b.input_ids.shape[1] :].tolist()  # fmt: skip
        for row, i in enumerate(bucket):
            cut = [k for k, t in enumerate(ids[row]) if t in eos]
            out[i] = ids[row][: cut[0]] if cut else ids[row]
    return out


def _near_ties(lm: LoadedModel, items: Sequence[Item], a: list[list[int]], b: list[list[int]]
               ) -> dict[str, int]:  # fmt: skip
    """Items whose tokens differ, and how many first differ where the top two logits
    (of an unpadded single forward over the common prefix) are within 1e-5."""
    prompts = encode_prompts(lm.tokenizer, items, max_new_tokens=1)
    differ = ties = 0
    for p, x, y in zip(prompts, a, b, strict=True):
        if x == y:
            continue
        differ += 1
        k = next(
            (i for i, (s, t) in enumerate(zip(x, y, strict=False)) if s != t), min(len(x), len(y))
        )
        ids = torch.tensor([p + x[:k]], device=lm.device)
        with torch.inference_mode():
            top = lm.model(input_ids=ids).logits[0, -1].float().topk(2).values
        ties += int(float(top[0] - top[1]) <= 1e-5)
    return {"items_differing": differ, "first_difference_at_near_tie": ties}


def _flops(lm: LoadedModel, items: Sequence[Item], gens: Generations, n: int) -> float:
    prompts = encode_prompts(lm.tokenizer, items, max_new_tokens=n)
    return Flops.of(lm).generation(
        [len(p) for p in prompts], [g.n_tokens for g in gens], [g.truncated for g in gens]
    )


def demo_generation_section(
    lm: LoadedModel, plan: Plan, *, peak: dict[str, Any], sync: Callable[[], None],
    log: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    """Greedy throughput on the demo's items (all splits in one call), three loops."""
    items = [it for split in demo_splits(plan.demo_limit).values() for it in split]
    batch, n = plan.demo_batch, plan.demo_tokens
    paths: dict[str, Callable[[], Any]] = {
        "hf_generate": lambda: _hf_generate(lm, items, batch, n),
        "static": lambda: generate(lm, items, max_new_tokens=n, batch_size=batch, loop="static"),
        "continuous": lambda: generate(
            lm, items, max_new_tokens=n, batch_size=batch, loop="continuous"
        ),
    }
    log(f"demo generation: {len(items)} items, batch {batch}, up to {n} tokens")
    generate(lm, items[:2], max_new_tokens=2)
    times, first = alternate(paths, plan.reps_demo, sync, log)
    hf_tokens = first["hf_generate"]
    rows = summarize(times, "hf_generate", work=sum(len(t) for t in hf_tokens))
    agreement = {}
    for name in ("static", "continuous"):
        gens = first[name]
        agreement[name] = _near_ties(lm, items, hf_tokens, [list(g.token_ids) for g in gens])
        row = next(r for r in rows if r["path"] == name)
        row.update(utilisation(_flops(lm, items, gens, n), row["median_s"], peak))
        row["generated_tokens"] = sum(g.n_tokens for g in gens)
        row["loop"] = gens.loop
    by = {r["path"]: r for r in rows}
    by["hf_generate"]["generated_tokens"] = sum(len(t) for t in hf_tokens)
    cont = by["continuous"]
    return {
        "n_items": len(items),
        "batch_size": batch,
        "max_new_tokens": n,
        "agreement_with_hf_generate": agreement,
        "rows": rows,
        "targets": [
            target(
                "greedy generation >= 1.5x transformers' generate (demo workload)",
                cont["throughput_ratio"],
                1.5,
                ">=",
                path="continuous",
                section="demo_generation",
            ),
            target(
                "generation >= 40% of the matmul peak",
                cont["fraction_of_peak"],
                0.4,
                ">=",
                path="continuous",
                section="demo_generation",
            ),
        ],  # fmt: skip
    }


def demo_stage_section(
    lm: LoadedModel, plan: Plan, *, sync: Callable[[], None], log: Callable[[str], None]
) -> dict[str, Any]:
    """The study's generate-and-capture stage: per split, generate with the demo's sites."""
    cfg = load_config()
    splits = demo_splits(plan.demo_limit)
    sites = study_sites(
        lm.layout.n_layers, lm.layout.layers_with_attention,
        head_last_n=cfg.capture.head_last_n, pooled_last_n=cfg.capture.pooled_last_n,
        depth_curve=cfg.capture.depth_curve,
    )  # fmt: skip

    def stage(loop: str) -> Callable[[], dict[str, Generations]]:
        def run() -> dict[str, Generations]:
            return {
                s: generate(
                    lm,
                    items,
                    max_new_tokens=plan.demo_tokens,
                    batch_size=plan.demo_batch,
                    capture=sites,
                    loop=loop,
                )  # fmt: skip
                for s, items in splits.items()
            }

        return run

    log(f"demo stage: {sum(len(v) for v in splits.values())} items, {len(sites)} sites")
    times, first = alternate({"static": stage("static"), "continuous": stage("continuous")},
                             plan.reps_demo, sync, log)  # fmt: skip
    rows = summarize(times, "static")
    worst = 0.0
    for s in splits:
        old, new = first["static"][s], first["continuous"][s]
        same = [a.token_ids == b.token_ids for a, b in zip(old, new, strict=True)]
        for name, arr in old.features.items():
            diff = abs(arr[same] - new.features[name][same])
            worst = max(worst, float(diff[~(diff != diff)].max()) if diff.size else 0.0)
    ratio = next(r["ratio"] for r in rows if r["path"] == "continuous")
    return {
        "n_sites": len(sites),
        "splits": {s: len(v) for s, v in splits.items()},
        "max_abs_feature_diff_where_tokens_equal": worst,
        "rows": rows,
        "targets": [
            target(
                "the demo's generation stage <= 0.5x its current time",
                ratio,
                0.5,
                "<=",
                path="continuous vs static",
                section="demo_stage",
            )
        ],  # fmt: skip
    }


@contextlib.contextmanager
def full_sort_sampler() -> Iterator[None]:
    """The sampler before issue 18: top-p sorts every row's whole vocabulary (the same
    tokens, found among all of them instead of the top candidates first)."""
    saved = decoding.NUCLEUS_CANDIDATES
    decoding.NUCLEUS_CANDIDATES = sys.maxsize
    try:
        yield
    finally:
        decoding.NUCLEUS_CANDIDATES = saved


def demo_sweep_section(
    lm: LoadedModel, plan: Plan, *, sync: Callable[[], None], log: Callable[[str], None]
) -> dict[str, Any]:
    """The tempering sweep's generations: lambdas x seeds, sampled; one call per condition
    (``static``: the loop and sampler before issue 18; ``continuous``) or every condition in
    shared batches (``shared``, per-row interventions: what :func:`interventions.temper_sweep`
    runs)."""
    cfg = load_config().tempering
    items = demo_splits()[cfg.split][: cfg.n_items if plan.demo_limit is None else 2]
    layer = lm.layout.layers_with_attention[len(lm.layout.layers_with_attention) // 2]
    heads = [(layer, 0), (layer, 1), (layer, 2)]
    n = cfg.max_new_tokens if plan.demo_limit is None else plan.demo_tokens

    def sweep(loop: str) -> Callable[[], list[Generations]]:
        def run() -> list[Generations]:
            with full_sort_sampler() if loop == "static" else contextlib.nullcontext():
                return calls()

        def calls() -> list[Generations]:
            return [
                generate(
                    lm,
                    items,
                    max_new_tokens=cfg.max_new_tokens,
                    do_sample=True,
                    temperature=cfg.temperature,
                    top_p=cfg.top_p,
                    seed=seed,
                    batch_size=plan.demo_batch,
                    loop=loop,
                    interventions=[temper(lm, dict.fromkeys(heads, lam))],
                )  # fmt: skip
                for lam in cfg.lambdas
                for seed in cfg.seeds
            ]

        return run

    def shared() -> list[Generations]:  # every lambda x seed in shared batches
        conditions = [head_scales(lm.layout, dict.fromkeys(heads, lam)) for lam in cfg.lambdas]
        config = DecodingConfig(
            max_new_tokens=cfg.max_new_tokens, do_sample=True, temperature=cfg.temperature,
            top_p=cfg.top_p,
        )  # fmt: skip
        grid = generate_grid(
            lm, items, conditions, list(cfg.seeds), decoding=config, batch_size=plan.demo_batch
        )
        return [grid.cell(c, s) for c in range(len(cfg.lambdas)) for s in cfg.seeds]

    log(f"demo sweep: {len(items)} items x {len(cfg.lambdas)} lambdas x {len(cfg.seeds)} seeds")
    times, first = alternate(
        {"static": sweep("static"), "continuous": sweep("continuous"), "shared": shared},
        plan.reps_demo, sync, log,
    )  # fmt: skip
    rows = summarize(times, "static")

    def differing(a: list[Generations], b: list[Generations]) -> int:
        return sum(
            x.token_ids != y.token_ids
            for ga, gb in zip(a, b, strict=True)
            for x, y in zip(ga, gb, strict=True)
        )

    live = [g.n_tokens for gens in first["shared"] for g in gens]
    ratio = next(r["ratio"] for r in rows if r["path"] == "shared")
    return {
        "n_items": len(items),
        "max_new_tokens": n,
        "heads": [list(h) for h in heads],
        "lambdas": list(cfg.lambdas),
        "seeds": list(cfg.seeds),
        "responses_differing_static_vs_continuous": differing(first["static"], first["continuous"]),
        # sampled: a float difference between batch layouts can flip a draw; counted, not hidden
        "responses_differing_shared_vs_static": differing(first["static"], first["shared"]),
        "responses": len(live),
        "mean_generated_tokens": sum(live) / len(live),
        "rows": rows,
        "targets": [
            target(
                "the demo's tempering sweep <= 0.5x its current time",
                ratio,
                0.5,
                "<=",
                path="shared vs static",
                section="demo_sweep",
            )
        ],  # fmt: skip
    }
