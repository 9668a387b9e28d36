"""The decoding loop: prefill, then one cached step per token, interventions told where they are.

:func:`decode_bucket` runs one left-padded batch of prompts: before every forward
pass it sets the :class:`~workbench.model.positions.Frame` (the prefill covers the
prompt; each cached step the newest token), so position-restricted interventions
act where they should, and it samples from one generator per item. A
:class:`Decoder` is one engine's forward step (the ``hf`` path here; backends bring
their own); with ``cached = False`` the loop re-runs the whole sequence each step.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import asdict, dataclass
from typing import Any

import torch

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.model.hooks import attach
from workbench.model.loaded import LoadedModel
from workbench.model.positions import Frame, item_key, using_frame
from workbench.model.readers import Positions, SiteReader
from workbench.model.tokens import collate

__all__ = ["Decoder", "DecodingConfig", "choose", "decode_bucket", "item_seed"]


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


def item_seed(seed: int, item_id: str) -> int:
    """A per-item seed: the same item gets the same random draws in every condition."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{item_id}".encode()).digest()[:8], "little") >> 1


#: Candidates a top-p nucleus is first looked for among (rows whose nucleus is wider
#: fall back to sorting the whole vocabulary): a full sort of 48 x 49,152 logits took
#: 162 ms on one CPU thread, more than half a decoding step of SmolLM2-135M at 48 rows.
NUCLEUS_CANDIDATES = 256


def _nucleus(probs: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept, index)``: per row, the smallest set of most likely tokens whose mass reaches
    ``top_p``, as probabilities (0 outside the set) over candidate token ids ``index``."""
    n, vocab = probs.shape
    k = min(NUCLEUS_CANDIDATES, vocab)
    p, index = torch.topk(probs, k, dim=-1)  # descending, as a sort's first k
    wide = (p.cumsum(-1)[:, -1] < top_p).nonzero().flatten()
    if len(wide):  # their nucleus reaches beyond the candidates: sort their whole vocabulary
        p = torch.cat([p, p.new_zeros(n, vocab - k)], dim=1)
        index = torch.cat([index, index.new_zeros(n, vocab - k)], dim=1)
        p[wide], index[wide] = torch.sort(probs[wide], descending=True, dim=-1)
    cum = p.cumsum(-1)
    return torch.where(cum - p > top_p, torch.zeros((), dtype=p.dtype), p), index


def choose(
    logits: torch.Tensor, config: DecodingConfig, generators: list[torch.Generator]
) -> torch.Tensor:
    """The next token of every row: argmax, or a draw from each row's own generator.

    Sampling: temperature, then top-k, then the top-p nucleus (the smallest set of most
    likely tokens whose probability reaches ``top_p``), renormalised; each row draws one
    uniform number from its own generator (inverse CDF over the vocabulary), so a row's
    tokens do not depend on the other rows.
    """
    if not config.do_sample:
        return logits.argmax(-1)
    logits = logits / config.temperature
    if config.top_k:
        kth = torch.topk(logits, min(config.top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    if config.top_p < 1.0:
        kept, index = _nucleus(probs, config.top_p)
        probs = torch.zeros_like(probs).scatter(-1, index, kept)
    # inverse CDF in vocabulary order: one uniform per row from the row's generator, so the
    # token drawn depends on the kept probabilities only, not on how the nucleus was found
    u = torch.stack([torch.rand((), generator=g, device=g.device) for g in generators])
    cdf = probs.cumsum(-1)
    point = (u.to(cdf.device, cdf.dtype) * cdf[:, -1])[:, None]
    return torch.searchsorted(cdf, point, right=True)[:, 0].clamp(max=probs.shape[-1] - 1)


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
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, keep: int = 0
    ) -> torch.Tensor:
        """Logits of one uncached pass (teacher forcing): at every position, or at the last
        ``keep`` (the unembedding then runs on those only, where the model allows it)."""
        kwargs: dict[str, Any] = {}
        if keep and "logits_to_keep" in inspect.signature(self.lm.model.forward).parameters:
            kwargs["logits_to_keep"] = keep
        out = self.lm.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False, **kwargs
        )
        return out.logits[:, -keep:] if keep else out.logits


def decode_bucket(
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
            chosen = choose(logits.float(), config, generators)
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
