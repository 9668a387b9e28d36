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

Two loops run the steps. ``loop="continuous"`` (the default) keeps one batch of
``batch_size`` rows running: a finished row leaves at once and a waiting item
takes its slot, and a prompt prefix shared by every item (the chat template's
system turn) is prefilled once (:mod:`workbench.model.continuous`). Models whose
cache cannot be cut per row (sliding-window layers: Gemma; recurrent layers:
Qwen3.5) fall back to ``loop="static"``, which decodes length buckets one after
another, each until its longest row ends; ``Generations.loop`` says which ran.

>>> gens = generate(lm, ["What is 2+2?"], max_new_tokens=4)
>>> len(gens), gens[0].n_tokens <= 4, isinstance(gens[0].response, str)
(1, True, True)
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.core.progress import progress_bar
from workbench.core.sites import Site, parse_sites
from workbench.model.continuous import Step, decode_continuous
from workbench.model.hooks import attach
from workbench.model.kvcache_rows import empty_cache, unsupported_layers
from workbench.model.loaded import LoadedModel, unwrap
from workbench.model.readers import Positions, SiteReader
from workbench.model.tokens import collate, encode_prompts, length_buckets

__all__ = ["DecodingConfig", "Generation", "Generations", "eos_ids", "generate", "item_seed"]


@dataclass(frozen=True)
class DecodingConfig:
    """Decoding parameters; recorded with every generation run so comparisons can check them."""

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0
    chat_template: bool | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise WorkbenchError(f"max_new_tokens {self.max_new_tokens} must be >= 1")
        if not self.temperature > 0:
            raise WorkbenchError(
                f"temperature {self.temperature} must be > 0 (use do_sample=False for greedy)"
            )
        if not 0 < self.top_p <= 1:
            raise WorkbenchError(f"top_p {self.top_p} must be in (0, 1]")
        if self.top_k < 0:
            raise WorkbenchError(f"top_k {self.top_k} must be >= 0 (0 disables it)")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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


def item_seed(seed: int, item_id: str) -> int:
    """A per-item seed: the same item gets the same random draws in every condition."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{item_id}".encode()).digest()[:8], "little") >> 1


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


def _choose(
    logits: torch.Tensor, config: DecodingConfig, generators: list[torch.Generator]
) -> torch.Tensor:
    if not config.do_sample:
        return logits.argmax(-1)
    logits = logits / config.temperature
    if config.top_k:
        kth = torch.topk(logits, min(config.top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if config.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = (
            cum - sorted_logits.softmax(-1) > config.top_p
        )  # keep the smallest set reaching top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    probs = logits.softmax(-1)
    return torch.stack(
        [torch.multinomial(probs[i], 1, generator=g)[0] for i, g in enumerate(generators)]
    )


class _Fused:
    """Keeps, per row, the sites at the latest token that belongs to prompt + response."""

    def __init__(self, reader: SiteReader) -> None:
        self.reader = reader
        self.sizes = {str(s): s.n if s.is_head else 1 for s in reader.sites}
        self.windowed = {str(s) for s in reader.sites if s.is_head and s.n > 1}
        self.state: dict[str, torch.Tensor] = {}

    def update(self, active: torch.Tensor) -> None:
        for name, new in self.reader.take_on_device().items():
            old = self.state.get(name)
            if name in self.windowed:
                new = new if old is None else torch.cat([old, new], dim=1)[:, -self.sizes[name] :]
            if old is not None:
                mask = active.view(-1, *([1] * (new.dim() - 1)))
                new = torch.where(mask, new, old)
            self.state[name] = new


def _decode_bucket(
    lm: LoadedModel,
    prompts: list[list[int]],
    seeds: list[int],
    config: DecodingConfig,
    eos: set[int],
    reader: SiteReader | None,
) -> tuple[list[list[int]], list[bool], dict[str, torch.Tensor]]:
    device = lm.device
    pad = lm.pad_id
    batch = collate(prompts, pad, side="left", device=device)
    generators = [_generator(s, device) for s in seeds]
    n = len(prompts)
    mask, positions = batch.attention_mask, batch.position_ids
    inputs, cache = batch.input_ids, None
    done = torch.zeros(n, dtype=torch.bool, device=device)
    eos_tensor = torch.tensor(sorted(eos), device=device)
    tokens: list[list[int]] = [[] for _ in range(n)]
    fused = _Fused(reader) if reader is not None else None
    if reader is not None:
        reader.positions = Positions.final(batch.last, batch.first, reader.max_n)
    hooks = reader.hooks() if reader is not None else []
    with torch.inference_mode(), attach(hooks):
        for step in range(config.max_new_tokens + 1):
            out = lm.model(
                input_ids=inputs,
                attention_mask=mask,
                position_ids=positions,
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            cache = out.cache
            if fused is not None:
                fused.update(~done)  # the token just processed belongs to prompt + response
                fused.reader.positions = Positions(
                    index=torch.zeros((n, 1), dtype=torch.long, device=device),
                    valid=torch.ones((n, 1), dtype=torch.bool, device=device),
                )
            if step == config.max_new_tokens:
                break  # this extra step only fed truncated rows' last tokens to the reader
            chosen = _choose(out.logits[:, -1, :].float(), config, generators)
            chosen = torch.where(done, torch.full_like(chosen, pad), chosen)
            is_eos = torch.isin(chosen, eos_tensor) & ~done
            for row in (~done & ~is_eos).nonzero().flatten().tolist():
                tokens[row].append(int(chosen[row]))
            done = done | is_eos
            if bool(done.all()) or (fused is None and step == config.max_new_tokens - 1):
                break
            inputs = chosen[:, None]
            mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=device)], dim=1)
            positions = positions[:, -1:] + 1
    truncated = [
        len(t) >= config.max_new_tokens and not bool(d)
        for t, d in zip(tokens, done.tolist(), strict=True)
    ]
    features = {k: v.detach().cpu() for k, v in fused.state.items()} if fused is not None else {}
    return tokens, truncated, features


def _generator(seed: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def _forward(lm: LoadedModel) -> Callable[..., torch.Tensor]:
    """One cached forward pass of the continuous loop: the last position's logits."""

    def run(
        ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any, step: Step
    ) -> torch.Tensor:
        out = lm.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1, :]

    return run


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
    interventions: Sequence[AbstractContextManager[Any]] = (),
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
        batch_size: rows decoded at once (the continuous loop refills freed rows; the
            static loop decodes length buckets of this size).
        chat_template: render prompts with the chat template (default: when available).
        interventions: context managers entered around the whole generation
            (tempering, steering); equivalent to wrapping the call in ``with``.
        capture: sites to read at the final response token as tokens pass
            (returned in ``Generations.features``; same values as capturing
            prompt + response in a second pass).
        progress: show a progress bar.
        loop: ``"continuous"`` (rows leave and join one batch of ``batch_size``) or
            ``"static"`` (length buckets, each decoded until its longest row ends).

    ``lm`` may be anything ``load_model(..., backend=...)`` returns; a TransformerLens
    or nnsight backend decodes greedily through its own engine (sampling, interventions
    and fused capture run on the ``hf`` backend).
    """
    lm, backend = unwrap(lm)
    if backend is not None:
        extras = {"do_sample": do_sample, "interventions": bool(interventions), "capture": capture}
        used = [k for k, v in extras.items() if v]
        if used:
            raise WorkbenchError(
                f"generate on the {backend.name} backend decodes greedily only; {', '.join(used)} "
                "need the hf backend: load_model(..., backend='hf')"
            )
        return backend.generate(
            items, max_new_tokens=max_new_tokens, batch_size=batch_size, chat_template=chat_template
        )
    if loop not in ("continuous", "static"):
        raise WorkbenchError(f"loop {loop!r} unknown: use 'continuous' or 'static'")
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
    seeds = [item_seed(seed, it.id) for it in items]
    if loop == "continuous":
        blocked = unsupported_layers(empty_cache(lm.model))
        if blocked:
            loop = f"static (fallback: {', '.join(blocked)} cannot be cut per row)"
    results: list[Generation | None] = [None] * len(items)
    features: dict[str, np.ndarray] = {}

    def keep(
        i: int, tokens: list[int], truncated: bool, values: Mapping[str, torch.Tensor]
    ) -> None:
        text = lm.tokenizer.decode(tokens, skip_special_tokens=True)
        results[i] = Generation(items[i].id, items[i].prompt, text, tuple(tokens), truncated)
        for name, tensor in values.items():
            if name not in features:
                features[name] = np.empty((len(items), *tensor.shape), dtype=np.float32)
            features[name][i] = tensor.numpy()

    with contextlib.ExitStack() as stack, progress_bar("generate", len(items), progress) as bar:
        for intervention in interventions:
            stack.enter_context(intervention)
        if loop == "continuous":
            with torch.inference_mode(), attach(reader.hooks() if reader is not None else []):
                decoded = decode_continuous(
                    lm.model, _forward(lm), prompts, [_generator(s, lm.device) for s in seeds],
                    lambda logits, gens: _choose(logits, config, gens), batch_size=batch_size,
                    max_new_tokens=max_new_tokens, eos=eos, pad=lm.pad_id, device=lm.device,
                    reader=reader, on_done=lambda _: bar.advance(1),
                )  # fmt: skip
            for i in range(len(items)):
                keep(i, decoded.tokens[i], decoded.truncated[i], decoded.features[i])
        else:
            for bucket in length_buckets([len(p) for p in prompts], batch_size):
                tokens, truncated, values = _decode_bucket(
                    lm, [prompts[i] for i in bucket], [seeds[i] for i in bucket], config, eos,
                    reader,
                )  # fmt: skip
                for row, i in enumerate(bucket):
                    keep(i, tokens[row], truncated[row], {k: v[row] for k, v in values.items()})
                bar.advance(len(bucket))
    return Generations(
        items=tuple(r for r in results if r is not None),
        config=config,
        features=features,
        loop=loop,
    )
