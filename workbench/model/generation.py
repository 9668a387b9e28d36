"""Generation with interventions active, truncation flags, and fused capture.

The decoding loop is the workbench's own (prefill, then one cached step per
token), so that:

* every response records ``truncated`` (hit ``max_new_tokens`` without EOS), the
  artifact behind the paper's false HumanEval gain;
* sampling uses one random generator per item, seeded from ``(seed, item id)``,
  so the same item gets the same draws under every condition compared;
* interventions (any context manager, e.g. ``interventions.temper``) stay
  active for the prompt and every generated token;
* ``capture=sites`` reads sites as the tokens pass (fused generate-and-capture):
  the value at the final response token, and ``head_in`` over the last N
  tokens, without a second forward pass over prompt + response.

Greedy decoding gives the same tokens as ``transformers``' ``generate``.

Two loops run the steps. ``loop="static"`` decodes length buckets one after
another, each until its longest row ends
(:func:`~workbench.model.decoding.decode_bucket`). ``loop="continuous"`` (the
default: 1.74x ``transformers``' ``generate`` on the demo workload, measured in
``benchmarks/results-quiet.md``) keeps one batch of ``batch_size`` rows running: a finished row leaves at once and a waiting
item takes its slot, and, when no intervention is active, a prompt prefix shared
by every item (the chat template's system turn) is prefilled once
(:mod:`workbench.model.continuous`). Both set the same
:class:`~workbench.model.positions.Frame` per forward pass (a row's prompt during
its prefill, its newest token at each step), so position-restricted interventions
act on the same tokens in both. Where the continuous loop cannot run (a cache
that cannot be cut per row: sliding-window layers, Gemma; recurrent layers,
Qwen3.5; or a backend whose decoder re-runs the whole sequence) the static loop
runs instead; ``Generations.loop`` says which ran.

>>> gens = generate(lm, ["What is 2+2?"], max_new_tokens=4)
>>> len(gens), gens[0].n_tokens <= 4, isinstance(gens[0].response, str)
(1, True, True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.core.progress import progress_bar
from workbench.core.sites import Site, parse_sites
from workbench.model.compile import hf_hooks
from workbench.model.continuous import Decoded, Step, decode_continuous
from workbench.model.decoding import Decoder, DecodingConfig, choose, decode_bucket, item_seed
from workbench.model.hooks import attach, count_hooks
from workbench.model.intervention import Intervention, prefix_invariant, values_of
from workbench.model.kvcache_rows import empty_cache, unsupported_layers
from workbench.model.loaded import LoadedModel, unwrap
from workbench.model.memory import BatchBudget, is_oom
from workbench.model.positions import Frame, item_key, using_frame
from workbench.model.readers import SiteReader
from workbench.model.tokens import encode_prompts, length_buckets

__all__ = [
    "Decoder",
    "DecodingConfig",
    "Generation",
    "Generations",
    "eos_ids",
    "generate",
    "item_seed",
]


@dataclass(frozen=True)
class Generation:
    """One response: its text, generated token ids (EOS excluded) and whether it was cut."""

    id: str
    prompt: str
    response: str
    token_ids: tuple[int, ...]
    truncated: bool

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prompt": self.prompt,
            "response": self.response,
            "n_tokens": self.n_tokens,
            "truncated": self.truncated,
            "token_ids": list(self.token_ids),
        }


@dataclass(frozen=True)
class Generations:
    """The responses in item order, the decoding config and any fused-capture features."""

    items: tuple[Generation, ...]
    config: DecodingConfig
    features: Mapping[str, np.ndarray] = field(default_factory=dict)
    loop: str = "static"

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Generation]:
        return iter(self.items)

    def __getitem__(self, i: int) -> Generation:
        return self.items[i]

    @property
    def truncated_fraction(self) -> float:
        return float(np.mean([g.truncated for g in self.items])) if self.items else 0.0


def eos_ids(lm: LoadedModel) -> list[int]:
    """End-of-sequence ids from the generation config and the tokenizer (as HF ``generate``)."""
    ids: set[int] = set()
    for source in (getattr(lm.model, "generation_config", None), lm.tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    if not ids:
        raise WorkbenchError(
            "the tokenizer has no EOS token: set tokenizer.eos_token before generating"
        )
    return sorted(ids)


def response(lm: LoadedModel, item: Item, tokens: Sequence[int], truncated: bool) -> Generation:
    """One item's :class:`Generation` from its generated ids."""
    text = lm.tokenizer.decode(list(tokens), skip_special_tokens=True)
    return Generation(item.id, item.prompt, text, tuple(tokens), truncated)


_Decoded = tuple[list[list[int]], list[bool], dict[str, torch.Tensor]]


def _join_decoded(parts: list[_Decoded]) -> _Decoded:
    """Pieces of one bucket (after an out-of-memory split), back in row order."""
    tokens = [t for p in parts for t in p[0]]
    truncated = [t for p in parts for t in p[1]]
    features = {k: torch.cat([p[2][k] for p in parts]) for k in parts[0][2]}
    return tokens, truncated, features


def _frame(step: Step, keys: Sequence[int]) -> Frame:
    """The :class:`Frame` of one pass of the continuous loop (what the static loop sets:
    a row's prompt in its prefill, its newest token at each step; ended rows, no token)."""
    return Frame(
        pos=step.pos,
        n_prompt=step.n_prompt,
        length=step.length,
        capacity=step.capacity,
        keys=tuple(keys[i] if i >= 0 else -1 for i in step.items),
        seen=step.length[:, None].expand_as(step.pos),
        groups=step.groups,
    )


def _forward(
    decoder: Decoder, keys: Sequence[int]
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Any, Step], torch.Tensor]:
    """One forward pass of the continuous loop through ``decoder``, its frame set."""

    def run(
        ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any, step: Step
    ) -> torch.Tensor:
        with using_frame(_frame(step, keys)):
            logits, out = decoder(ids, mask, positions, cache)
        if out is not cache:  # the loop cuts and joins rows of the cache it passed
            raise WorkbenchError(
                f"{type(decoder).__name__} did not fill the KV cache it was given in place: "
                "generate(..., loop='static')"
            )
        return logits

    return run


def static_fallback(lm: LoadedModel, decoder: Decoder) -> str | None:
    """Why the continuous loop cannot run for ``decoder`` (``None``: it can)."""
    if not decoder.cached:
        return f"static (fallback: {type(decoder).__name__} decodes without a KV cache)"
    try:
        blocked = unsupported_layers(empty_cache(lm.model))
    except Exception as e:  # a model transformers cannot build a DynamicCache for
        return f"static (fallback: no per-row KV cache: {type(e).__name__})"
    if blocked:
        return f"static (fallback: {', '.join(blocked)} cannot be cut per row)"
    return None


def generate(
    lm: LoadedModel | Any,
    items: Sequence[Item | str | Mapping[str, Any]],
    *,
    max_new_tokens: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    batch_size: int = 8,
    chat_template: bool | None = None,
    interventions: Sequence[AbstractContextManager[Any] | Intervention] = (),
    capture: Sequence[str | Site] | None = None,
    progress: bool = False,
    loop: str = "continuous",
) -> Generations:
    """Generate a response per item.

    Args:
        lm: a loaded model.
        items: items or bare prompts (a response field, if any, is ignored).
        max_new_tokens: cap per response; hitting it without EOS sets ``truncated``.
        do_sample, temperature, top_p, top_k: sampling (greedy by default).
        seed: base seed; each item draws from its own generator seeded by (seed, id).
        batch_size: prompts per batch (left padding, bucketed by length).
        chat_template: render prompts with the chat template (default: when available).
        interventions: :class:`~workbench.model.intervention.Intervention` values
            (compiled for ``lm``'s backend) or context managers (``interventions.temper``,
            ``steer``...) active for the prompt and every generated token; positions
            count per row: ``prompt`` is the prefill, ``last`` the newest token at each step.
        capture: sites to read at the final response token as tokens pass
            (returned in ``Generations.features``; same values as capturing
            prompt + response in a second pass).
        progress: show a progress bar.
        loop: ``"continuous"`` (default: rows leave and join one batch of
            ``batch_size``; falls back to static where it cannot run, see
            ``Generations.loop``) or ``"static"`` (length buckets of ``batch_size``, each
            decoded until its longest row ends). Both give the same tokens up to
            floating-point ties.

    ``lm`` may be anything ``load_model(..., backend=...)`` returns: every backend runs
    this decoding loop (sampling and interventions included) through its own engine's
    forward pass; fused capture runs on the ``hf`` backend.
    """
    lm, backend = unwrap(lm)
    # The shared prefix is prefilled as a row of its own, so a position-restricted edit
    # (last, indices) would land on the prefix's tokens: share it only under edits that
    # write it as they would inside each prompt, no hook already on the model (whose
    # positions are unknown), no other backend's engine.
    passed = [values_of(iv) for iv in interventions]
    share_prefix = (
        backend is None
        and count_hooks(lm.model) == 0
        and all(v is not None and prefix_invariant(v) for v in passed)
    )
    if backend is not None and capture:
        raise WorkbenchError(
            f"fused capture during generation runs on the hf backend, not {backend.name}: "
            "load_model(..., backend='hf'), or capture the generations afterwards"
        )
    if loop not in ("continuous", "static"):
        raise WorkbenchError(f"loop {loop!r} unknown: use 'continuous' or 'static'")
    decoder = backend.decoder() if backend is not None else Decoder(lm)
    edits = [iv for iv in interventions if isinstance(iv, Intervention)]
    contexts = [iv for iv in interventions if not isinstance(iv, Intervention)]
    config = DecodingConfig(
        max_new_tokens, do_sample, temperature, top_p, top_k, seed, chat_template
    )
    items = as_items(items)
    eos = set(eos_ids(lm))
    reader = SiteReader(lm.layout, parse_sites(capture), early_stop=False) if capture else None
    prompts = encode_prompts(
        lm.tokenizer, items, max_new_tokens=max_new_tokens, chat_template=chat_template,
        max_positions=lm.max_positions,
    )  # fmt: skip
    if loop == "continuous":
        loop = static_fallback(lm, decoder) or loop
    results: list[Generation | None] = [None] * len(items)
    features: dict[str, np.ndarray] = {}

    def keep(i: int, tokens: list[int], truncated: bool) -> None:
        results[i] = response(lm, items[i], tokens, truncated)

    with contextlib.ExitStack() as stack, progress_bar("generate", len(items), progress) as bar:
        if edits:
            stack.enter_context(
                backend.intervene(edits)
                if backend is not None
                else attach(hf_hooks(lm.layout, edits))
            )
        for intervention in contexts:
            stack.enter_context(intervention)
        budget = BatchBudget("generate")
        if loop == "continuous":
            decoded = run_continuous(
                lm, decoder, prompts, [it.id for it in items], [seed] * len(items), config,
                eos, reader, batch_size, share_prefix=share_prefix, advance=bar.advance,
                budget=budget,
            )  # fmt: skip
            for i in range(len(items)):
                keep(i, decoded.tokens[i], decoded.truncated[i])
            for name in decoded.features[0] if items else ():
                features[name] = torch.stack([f[name] for f in decoded.features]).float().numpy()
        else:
            for bucket in length_buckets([len(p) for p in prompts], batch_size):

                def step(rows: list[int]) -> _Decoded:
                    try:
                        return decode_bucket(
                            lm, [prompts[i] for i in rows], [items[i] for i in rows], config, eos,
                            reader, decoder,
                        )  # fmt: skip
                    except BaseException:
                        if reader is not None:
                            reader.values.clear()  # a failed pass leaves partial reads behind
                        raise

                tokens, truncated, values = budget.run(bucket, step, _join_decoded)
                for row, i in enumerate(bucket):
                    keep(i, tokens[row], truncated[row])
                for name, tensor in values.items():
                    if name not in features:
                        features[name] = np.empty((len(items), *tensor.shape[1:]), dtype=np.float32)
                    features[name][bucket] = tensor.numpy()
                bar.advance(len(bucket))
    return Generations(
        items=tuple(r for r in results if r is not None),
        config=config,
        features=features,
        loop=loop,
    )


def run_continuous(
    lm: LoadedModel,
    decoder: Decoder,
    prompts: Sequence[Sequence[int]],
    ids: Sequence[str],
    seeds: Sequence[int],
    config: DecodingConfig,
    eos: set[int],
    reader: SiteReader | None,
    batch_size: int,
    *,
    share_prefix: bool,
    advance: Callable[[int], Any],
    budget: BatchBudget | None = None,
    groups: Sequence[int] = (),
) -> Decoded:
    """The continuous loop over every row: row ``i`` is item ``ids[i]``'s prompt, drawing
    from its own generator seeded by ``(seeds[i], ids[i])``, under condition ``groups[i]``
    (empty: one condition). On out-of-memory it starts again with half the rows (the
    budget keeps the size that fit, as the static loop's buckets do)."""
    budget = budget or BatchBudget("generate")
    device = lm.device if lm.device.type != "meta" else torch.device("cpu")
    keys = [item_key(i) for i in ids]
    reported: set[int] = set()

    def done(i: int) -> None:
        if i not in reported:  # a retry after out-of-memory finishes items again
            reported.add(i)
            advance(1)

    size = batch_size if budget.limit is None else min(budget.limit, batch_size)
    while True:
        generators = []
        for item_id, seed in zip(ids, seeds, strict=True):
            g = torch.Generator(device=device)
            g.manual_seed(item_seed(seed, item_id))
            generators.append(g)
        try:
            with torch.inference_mode(), attach(reader.hooks() if reader is not None else []):
                return decode_continuous(
                    lm.model, _forward(decoder, keys), prompts, generators,
                    lambda logits, gens: choose(logits, config, gens), batch_size=size,
                    max_new_tokens=config.max_new_tokens, eos=eos, pad=lm.pad_id,
                    device=device, reader=reader, share_prefix=share_prefix, on_done=done,
                    groups=groups,
                )  # fmt: skip
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if reader is not None:
                reader.values.clear()  # a failed pass leaves partial reads behind
            if not is_oom(e) or size == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            size = budget.lower(size)
