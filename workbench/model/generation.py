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

>>> gens = generate(lm, ["What is 2+2?"], max_new_tokens=16)  # doctest: +SKIP
>>> gens[0].response, gens[0].truncated  # doctest: +SKIP
('2 + 2 = 4.', False)
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.core.progress import progress_bar
from workbench.core.sites import Site, parse_sites
from workbench.model.compile import hf_hooks
from workbench.model.hooks import attach
from workbench.model.intervention import Intervention
from workbench.model.loaded import LoadedModel, unwrap
from workbench.model.positions import Frame, item_key, using_frame
from workbench.model.readers import Positions, SiteReader
from workbench.model.tokens import collate, encode_prompts, length_buckets

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


class Decoder:
    """One decoding step on the ``hf`` path: ``(ids, mask, positions, cache) -> (logits, cache)``.

    Backends supply their own (:meth:`decoder`); ``cached=False`` makes the loop
    feed the whole sequence at every step (an engine whose KV cache disagrees).
    """

    cached = True

    def __init__(self, lm: LoadedModel) -> None:
        self.lm = lm

    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, Any]:
        out = self.lm.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=self.cached,
            logits_to_keep=1,
        )
        return out.logits[:, -1, :], getattr(out, "cache", None)

    def all_logits(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """Logits at every position of one uncached pass (teacher forcing)."""
        out = self.lm.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False
        )
        return out.logits


def _decode_bucket(
    lm: LoadedModel,
    prompts: list[list[int]],
    items: list[Item],
    config: DecodingConfig,
    eos: set[int],
    reader: SiteReader | None,
    decoder: Decoder,
) -> tuple[list[list[int]], list[bool], dict[str, torch.Tensor]]:
    device = lm.device if lm.device.type != "meta" else torch.device("cpu")
    pad = lm.pad_id
    batch = collate(prompts, pad, side="left", device=device)
    generators = []
    for it in items:
        g = torch.Generator(device=device)
        g.manual_seed(item_seed(config.seed, it.id))
        generators.append(g)
    n = len(prompts)
    mask, positions = batch.attention_mask, batch.position_ids
    inputs, cache = batch.input_ids, None
    frame = Frame.of_batch(
        mask, [len(p) for p in prompts], [item_key(it.id) for it in items], config.max_new_tokens
    )
    length = frame.length
    done = torch.zeros(n, dtype=torch.bool, device=device)
    eos_tensor = torch.tensor(sorted(eos), device=device)
    tokens: list[list[int]] = [[] for _ in range(n)]
    fused = _Fused(reader) if reader is not None else None
    if reader is not None:
        reader.positions = Positions.final(batch.last, batch.first, reader.max_n)
    hooks = reader.hooks() if reader is not None else []
    with torch.inference_mode(), attach(hooks):
        for step in range(config.max_new_tokens + 1):
            with using_frame(frame):
                logits, cache = decoder(inputs, mask, positions, cache)
            if fused is not None:
                fused.update(~done)  # the token just processed belongs to prompt + response
                fused.reader.positions = Positions(
                    index=torch.zeros((n, 1), dtype=torch.long, device=device),
                    valid=torch.ones((n, 1), dtype=torch.bool, device=device),
                )
            if step == config.max_new_tokens:
                break  # this extra step only fed truncated rows' last tokens to the reader
            chosen = _choose(logits.float(), config, generators)
            chosen = torch.where(done, torch.full_like(chosen, pad), chosen)
            is_eos = torch.isin(chosen, eos_tensor) & ~done
            for row in (~done & ~is_eos).nonzero().flatten().tolist():
                tokens[row].append(int(chosen[row]))
            done = done | is_eos
            if bool(done.all()) or (fused is None and step == config.max_new_tokens - 1):
                break
            mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=device)], dim=1)
            length = length + 1
            if decoder.cached:
                inputs, positions = chosen[:, None], positions[:, -1:] + 1
                frame = frame.step(length)
            else:  # the whole sequence again, every step
                inputs = torch.cat([inputs, chosen[:, None]], dim=1)
                positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
                frame = frame.regenerated(mask)
    truncated = [
        len(t) >= config.max_new_tokens and not bool(d)
        for t, d in zip(tokens, done.tolist(), strict=True)
    ]
    features = {k: v.detach().cpu() for k, v in fused.state.items()} if fused is not None else {}
    return tokens, truncated, features


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

    ``lm`` may be anything ``load_model(..., backend=...)`` returns: every backend runs
    this decoding loop (sampling and interventions included) through its own engine's
    forward pass; fused capture runs on the ``hf`` backend.
    """
    lm, backend = unwrap(lm)
    if backend is not None and capture:
        raise WorkbenchError(
            f"fused capture during generation runs on the hf backend, not {backend.name}: "
            "load_model(..., backend='hf'), or capture the generations afterwards"
        )
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
    results: list[Generation | None] = [None] * len(items)
    features: dict[str, np.ndarray] = {}
    with contextlib.ExitStack() as stack, progress_bar("generate", len(items), progress) as bar:
        if edits:
            stack.enter_context(
                backend.intervene(edits)
                if backend is not None
                else attach(hf_hooks(lm.layout, edits))
            )
        for intervention in contexts:
            stack.enter_context(intervention)
        for bucket in length_buckets([len(p) for p in prompts], batch_size):
            tokens, truncated, values = _decode_bucket(
                lm,
                [prompts[i] for i in bucket],
                [items[i] for i in bucket],
                config,
                eos,
                reader,
                decoder,
            )
            for row, i in enumerate(bucket):
                text = lm.tokenizer.decode(tokens[row], skip_special_tokens=True)
                results[i] = Generation(
                    items[i].id, items[i].prompt, text, tuple(tokens[row]), truncated[row]
                )
            for name, tensor in values.items():
                if name not in features:
                    features[name] = np.empty((len(items), *tensor.shape[1:]), dtype=np.float32)
                features[name][bucket] = tensor.numpy()
            bar.advance(len(bucket))
    return Generations(
        items=tuple(r for r in results if r is not None), config=config, features=features
    )
