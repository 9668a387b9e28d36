"""Render results.json as the Markdown tables of results.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["render"]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out + [""]


def _s(x: float) -> str:
    return f"{x:.3f}"


def _x(x: float) -> str:
    return f"{x:.2f}x"


def _diff(x: float | None) -> str:
    return "-" if x is None else f"{x:.1e}"


def _mfu(r: dict[str, Any]) -> str:
    if "achieved_flops" not in r:
        return "-"
    return f"{r['achieved_flops'] / 1e9:.1f} ({r['fraction_of_peak'] * 100:.0f}%)"


def _timing_rows(rows: Sequence[dict[str, Any]], prefix: Sequence[Any] = ()) -> list[list[Any]]:
    return [
        [
            *prefix,
            r["path"],
            _s(r["median_s"]),
            f"{_s(r['min_s'])}-{_s(r['max_s'])}",
            _x(r["ratio"]),
            f"{_x(r['paired_ratio_min'])}-{_x(r['paired_ratio_max'])}",
            _mfu(r),
            _diff(r.get("max_abs_diff_vs_floor")),
        ]
        for r in rows
    ]


_TIMING = [
    "path", "median s", "min-max s", "ratio to floor", "paired ratios",
    "model GFLOP/s (of peak)", "max abs diff",
]  # fmt: skip


def _capture(sec: dict[str, Any]) -> list[str]:
    rows = []
    for run in sec["runs"]:
        rows += _timing_rows(run["rows"], [run["batch_size"], run["n_items"], run["n_tokens"]])
    lines = ["Floor: a plain forward (LM head included) with one PyTorch forward hook.", ""]
    return lines + _table(["batch", "items", "tokens", *_TIMING], rows)


def _early(sec: dict[str, Any]) -> list[str]:
    lines = [
        f"Site `{sec['site']}` of {sec['n_layers']} layers, batch {sec['batch_size']}; "
        f"floor: a full forward with a hook at that layer.",
        "",
    ]
    return lines + _table(_TIMING, _timing_rows(sec["rows"]))


def _ceiling(sec: dict[str, Any]) -> str:
    return f"{sec['ceiling']:.2f}x" if "ceiling" in sec else "not measured"


def _fused(sec: dict[str, Any]) -> list[str]:
    lines = [
        f"{sec['n_items']} prompts x {sec['max_new_tokens']} new tokens, batch {sec['batch_size']}, "
        f"sites {', '.join(f'`{s}`' for s in sec['sites'])}; responses forced to full length "
        f"({sec['forcing']}; all full length: {sec['all_full_length']}). Fused is "
        f"**{sec['speedup']:.2f}x** faster; the ceiling for any fused method (two-pass over "
        f"generation alone, i.e. dropping the second pass entirely) is {_ceiling(sec)}. h_last fused vs two-pass max abs diff "
        f"{_diff(sec['h_last_max_abs_diff_fused_vs_two_pass'])} over the "
        f"{sec['retokenised_response_equals_generated']} items whose decoded response "
        "re-tokenises to the generated ids.",
        "",
    ]
    return lines + _table(_TIMING[:-1], [r[:-1] for r in _timing_rows(sec["rows"])])


def _tempered(sec: dict[str, Any]) -> list[str]:
    layer, head = sec["head"]
    lines = [
        f"{sec['n_items']} prompts x {sec['max_new_tokens']} tokens (forced), one batch; head "
        f"{layer}.{head} x {sec['factor']}. Same tokens as HF tempered: "
        f"{sec['tokens_equal_to_hf_tempered']}; tempering changed tokens: "
        f"{sec['tempering_changed_tokens']}.",
        "",
    ]
    rows = [
        [
            r["path"],
            _s(r["median_s"]),
            f"{_s(r['min_s'])}-{_s(r['max_s'])}",
            f"{r['throughput']:.1f}",
            _x(r["throughput_ratio"]),
            _mfu(r),
        ]
        for r in sec["rows"]
    ]
    return lines + _table(
        ["path", "median s", "min-max s", "tokens/s", "throughput vs hf_generate",
         "model GFLOP/s (of peak)"],
        rows,
    )  # fmt: skip


def _demo_generation(sec: dict[str, Any]) -> list[str]:
    agree = "; ".join(
        f"{k}: {v['items_differing']} items differ, {v['first_difference_at_near_tie']} of them "
        "first where the top two logits are within 1e-5"
        for k, v in sec["agreement_with_hf_generate"].items()
    )
    lines = [
        f"{sec['n_items']} demo items, batch {sec['batch_size']}, up to {sec['max_new_tokens']} "
        f"new tokens, greedy, EOS ends a row. Tokens against `hf_generate`: {agree}.",
        "",
    ]
    rows = [
        [
            r["path"],
            r.get("loop", "-"),
            _s(r["median_s"]),
            f"{_s(r['min_s'])}-{_s(r['max_s'])}",
            r.get("generated_tokens", "-"),
            f"{r['throughput']:.1f}",
            _x(r["throughput_ratio"]),
            _mfu(r),
        ]
        for r in sec["rows"]
    ]
    header = ["path", "loop", "median s", "min-max s", "generated tokens", "tokens/s (hf count)",
              "throughput vs hf_generate", "model GFLOP/s (of peak)"]  # fmt: skip
    return lines + _table(header, rows)


def _demo_pair(sec: dict[str, Any]) -> list[str]:
    facts = {k: v for k, v in sec.items() if k not in ("rows", "targets", "wall_s")}
    lines = [", ".join(f"{k}: {v}" for k, v in facts.items()), ""]
    header = ["path", "median s", "min-max s", "ratio to static", "paired ratios"]
    return lines + _table(header, [r[:5] for r in _timing_rows(sec["rows"])])


def _memory(sec: dict[str, Any]) -> list[str]:
    cuda = sec["metric"] == "cuda_peak_mb"
    header = ["path", "items", "batch", "peak RSS MB", "RSS before MB", "peak - before MB"]
    header += ["CUDA peak MB", "CUDA peak - before MB"] if cuda else []
    rows = []
    for r in sec["rows"]:
        row = [r["path"], r["n_items"], r["batch_size"]]
        row += [f"{r['peak_rss_mb']:.0f}", f"{r['rss_before_mb']:.0f}"]
        row += [f"{r['peak_rss_delta_mb']:.0f}"]
        if cuda:
            row += [f"{r['cuda_peak_mb']:.0f}", f"{r['cuda_peak_delta_mb']:.0f}"]
        rows.append(row)
    resets = {r["peak_counter_reset"] for r in sec["rows"]}
    lines = [
        f"Streamed peak growth 1x -> 10x items: **{sec['stream_growth'] * 100:.1f}%**. "
        f"Peak counter reset after warm-up: {resets == {True}}.",
        "",
    ]
    return lines + _table(header, rows)


def _padding(sec: dict[str, Any]) -> list[str]:
    rows = [
        [
            r["mix"],
            r["batch_size"],
            r["n_items"],
            f"{r['min_tokens']}/{r['median_tokens']}/{r['max_tokens']}",
            f"{r['pad_fraction_unbucketed'] * 100:.1f}%",
            f"{r['pad_fraction_bucketed'] * 100:.1f}%",
        ]
        for r in sec["rows"]
    ]
    header = ["mix", "batch", "items", "tokens min/median/max", "pad unbucketed", "pad bucketed"]
    return _table(header, rows)


_SECTIONS = {
    "capture": ("1. h_last capture", _capture),
    "early_stop": ("2. Mid-layer capture with early stop", _early),
    "fused": ("3. Generate-then-forward vs fused generate-and-capture", _fused),
    "tempered": ("4. Tempered generation", _tempered),
    "demo_generation": ("7. Demo workload: greedy generation, three loops", _demo_generation),
    "demo_stage": ("8. Demo generate-and-capture stage, static vs continuous", _demo_pair),
    "demo_sweep": (
        "9. Demo tempering sweep (its generations): one call per condition vs shared batches",
        _demo_pair,
    ),
    "memory": ("5. Peak memory", _memory),
}


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    s = results["settings"]
    lines = [
        "# Benchmarks",
        "",
        f"Run {results['started']} on {m['cpu_model']} ({m['cpu_count']} cores, "
        f"{m['memory_gb']:.0f} GB), device `{s['device']}` {m.get('cuda_device') or ''}, "
        f"dtype {s['dtype']}, torch threads {s['threads']}; torch {m['torch']}, "
        f"transformers {m['transformers']}, transformer-lens {m['transformer_lens']}, "
        f"nnsight {m['nnsight']}. Load average (1/5/15 min) before "
        f"{results['load_average']['before']}, after {results['load_average']['after']}; "
        f"wall {results['wall_s'] / 60:.1f} min. Medians over alternating repetitions "
        "(A B C, B C A, ...; garbage collected before each call) after a warm-up; min-max "
        "over repetitions; paired ratios are path/floor within one repetition.",
        "",
        "## Targets",
        "",
    ]
    lines += _table(
        ["model", "target", "path", "value", "threshold", "met"],
        [
            [
                t["model"],
                t["target"],
                t["path"],
                f"{t['value']:.3f}",
                f"{t['direction']} {t['threshold']:.3g}",
                "yes" if t["met"] else "**MISSED**",
            ]
            for t in results["targets"]
        ],
    )
    for name, model in results["models"].items():
        lines += [f"## {name}", "", f"Plan: `{model['plan']}`", ""]
        if "matmul_peak" in model:
            pk = model["matmul_peak"]
            shown = ", ".join(
                f"{p['peak_flops'] / 1e9:.1f} (median {p['median_flops'] / 1e9:.1f})"
                for p in pk["before_and_after"]
            )
            lines += [
                f"Matmul peak ({pk['used']['shape'][0]}^3 {pk['used']['dtype']}, "
                f"{pk['used']['threads']} threads), GFLOP/s before and after the sections: "
                f"{shown}; {pk['note']}.",
                "",
            ]
        for key, sec in model["sections"].items():
            title, fn = _SECTIONS[key]
            lines += [f"### {title}", ""]
            lines += [f"Error: `{sec['error']}`", ""] if "error" in sec else fn(sec)
    lines += ["## 6. Padding waste", "", *_padding(results["padding"])]
    return "\n".join(lines)
