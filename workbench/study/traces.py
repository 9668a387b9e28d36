"""Token traces: what the model holds at every token of a response.

One forward pass over prompt + response ids (the ids generation produced, so
nothing is re-tokenised) with two kinds of hooks, removed when it ends: the
final norm's output (what ``h_last`` is at the last token) and every attention
layer's ``o_proj`` input, reduced to a per-head L2 norm. A probe fitted on
``h_last`` can then be read at every token: its value at the last token is its
score on the item.

>>> pick_examples([
...     {"id": "a", "correct": True, "verbal": "assert", "truncated": False},
...     {"id": "b", "correct": False, "verbal": "assert", "truncated": True},
... ], 2)
[('b', 'confident wrong'), ('a', 'confident right')]
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from workbench.core.progress import progress_bar
from workbench.core.store import atomic_write_bytes, atomic_write_json
from workbench.model.hooks import Hook, attach
from workbench.model.loaded import LoadedModel
from workbench.model.tokens import encode_prompt
from workbench.study.cache import Stage, stage_key
from workbench.study.collect import SplitData, format_items
from workbench.study.config import ModelConfig, TracesConfig, chat_flag
from workbench.study.context import StageContext
from workbench.study.heads import AttributionOutcome
from workbench.study.labels import SplitLabels

__all__ = [
    "TokenTrace",
    "load_traces",
    "pick_examples",
    "save_traces",
    "study_traces",
    "trace_tokens",
]

PROMPT_END = "[end of prompt]"


@dataclass(frozen=True)
class TokenTrace:
    """One response, token by token.

    Attributes:
        id: the item id; kind: why it was picked (``confident wrong``...).
        tokens: the last prompt token (shown as ``[end of prompt]``) then each response token.
        hidden: ``(T, d_model)`` final-norm output at each of those positions.
        head_norms: per attention layer, ``(T, n_heads)`` L2 norm of each head's ``o_proj`` input.
    """

    id: str
    kind: str
    tokens: tuple[str, ...]
    hidden: np.ndarray
    head_norms: Mapping[int, np.ndarray]

    def head(self, layer: int, head: int) -> np.ndarray:
        return self.head_norms[layer][:, head]


def pick_examples(rows: Sequence[Mapping[str, Any]], n: int) -> list[tuple[str, str]]:
    """Up to ``n`` (id, kind): the first confident-wrong, confident-right, hedged and
    truncated answers, then further items in order."""
    kinds: list[tuple[str, Callable[[Mapping[str, Any]], bool]]] = [
        ("confident wrong", lambda r: r["verbal"] == "assert" and not r["correct"]),
        ("confident right", lambda r: r["verbal"] == "assert" and r["correct"]),
        ("hedged", lambda r: r["verbal"] == "hedge"),
        ("truncated", lambda r: bool(r["truncated"])),
    ]
    chosen: list[tuple[str, str]] = []
    taken: set[str] = set()
    for kind, test in kinds:
        row = next((r for r in rows if r["id"] not in taken and test(r)), None)
        if row is not None and len(chosen) < n:
            chosen.append((row["id"], kind))
            taken.add(row["id"])
    for r in rows:
        if len(chosen) >= n:
            break
        if r["id"] not in taken:
            chosen.append((r["id"], "other"))
            taken.add(r["id"])
    return chosen


def _keep_output(store: dict[str, torch.Tensor]) -> Callable[..., None]:
    def hook(module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        store["hidden"] = (output[0] if isinstance(output, tuple) else output).detach()

    return hook


def _keep_head_norms(
    store: dict[str, torch.Tensor], layer: int, n_heads: int
) -> Callable[..., None]:
    def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0].detach()
        store[f"norms_{layer}"] = rearrange(x, "... (h d) -> ... h d", h=n_heads).norm(dim=-1)

    return hook


def trace_tokens(
    lm: LoadedModel,
    prompts: Sequence[str],
    responses: Sequence[Sequence[int]],
    ids: Sequence[str],
    kinds: Sequence[str],
    *,
    chat_template: bool | None = None,
    progress: bool = False,
) -> list[TokenTrace]:
    """Trace each (prompt text, response token ids) pair in its own forward pass."""
    layers = lm.layout.layers_with_attention
    traces = []
    with progress_bar("token traces", len(prompts), progress) as bar:
        for prompt, response, item_id, kind in zip(prompts, responses, ids, kinds, strict=True):
            prompt_ids = encode_prompt(lm.tokenizer, prompt, chat_template)
            seq = torch.tensor([prompt_ids + list(response)], device=lm.device)
            store: dict[str, torch.Tensor] = {}
            hooks = [Hook(lm.layout.final_norm, "post", _keep_output(store))]
            hooks += [
                Hook(
                    lm.layout.o_proj(L),
                    "pre",
                    _keep_head_norms(store, L, lm.layout.attention(L).n_heads),
                )
                for L in layers
            ]
            with torch.inference_mode(), attach(hooks):
                lm.model(input_ids=seq, use_cache=False, logits_to_keep=1)
            start = len(prompt_ids) - 1
            words = [lm.tokenizer.decode([t], skip_special_tokens=False) for t in response]
            traces.append(
                TokenTrace(
                    id=item_id,
                    kind=kind,
                    tokens=(PROMPT_END, *words),
                    hidden=store["hidden"][0, start:].float().cpu().numpy(),
                    head_norms={
                        L: store[f"norms_{L}"][0, start:].float().cpu().numpy() for L in layers
                    },
                )
            )
            bar.advance(1)
    return traces


def save_traces(path: Path, traces: Sequence[TokenTrace]) -> None:
    """``traces.json`` (ids, kinds, tokens) and ``traces.npz`` (hidden states, head norms)."""
    arrays: dict[str, np.ndarray] = {}
    meta = []
    for i, t in enumerate(traces):
        arrays[f"{i}/hidden"] = t.hidden
        for layer, norms in t.head_norms.items():
            arrays[f"{i}/norms/{layer}"] = norms
        meta.append(
            {"id": t.id, "kind": t.kind, "tokens": list(t.tokens), "layers": list(t.head_norms)}
        )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(path / "traces.npz", buffer.getvalue())
    atomic_write_json(path / "traces.json", meta)


def load_traces(path: Path) -> list[TokenTrace]:
    meta = json.loads((path / "traces.json").read_text())
    with np.load(path / "traces.npz", allow_pickle=False) as z:
        return [
            TokenTrace(
                id=m["id"],
                kind=m["kind"],
                tokens=tuple(m["tokens"]),
                hidden=z[f"{i}/hidden"],
                head_norms={int(L): z[f"{i}/norms/{L}"] for L in m["layers"]},
            )
            for i, m in enumerate(meta)
        ]


def study_traces(
    cfg: TracesConfig,
    model: ModelConfig,
    data: dict[str, SplitData],
    labels: dict[str, SplitLabels],
    attribution: AttributionOutcome,
    ctx: StageContext,
    cache: dict[str, str],
) -> tuple[list[TokenTrace], tuple[int, int] | None]:
    """The example traces of ``[traces]`` (cached stage ``traces/``) and the head they show."""
    head = attribution.heads[0] if attribution.heads else None
    if cfg.split not in data or cfg.n_examples < 1:
        return [], head
    d = data[cfg.split]
    picks = pick_examples(labels[cfg.split].rows, cfg.n_examples)
    stage = Stage(ctx.out / "traces", stage_key("traces/1", d.key, picks))
    reused = ctx.use_cache and stage.valid
    if not reused:
        lm = ctx.models.get(model.name)
        by_id = {g.id: g for g in d.generations}
        items = {it.id: it for it in format_items(d.items, model.prompt_template)}
        traces = trace_tokens(
            lm,
            [items[i].prompt for i, _ in picks],
            [by_id[i].token_ids for i, _ in picks],
            [i for i, _ in picks],
            [k for _, k in picks],
            chat_template=chat_flag(model.chat_template),
            progress=ctx.progress,
        )
        save_traces(stage.begin(), traces)
        stage.commit({"examples": [list(p) for p in picks]})
    cache["traces"] = "reused" if reused else "computed"
    return load_traces(stage.path), head
