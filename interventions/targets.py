"""What a causal test measures: cheap teacher-forced reads, or scored regenerations.

A :class:`Target` is the metric whose change decides a causal test:

* ``Target.logprob(answers)``: the teacher-forced log-probability of each item's
  answer (e.g. the checker's gold answer) after its prompt; one forward pass per
  condition, so twenty random controls are affordable;
* ``Target.probe(site, direction, bias)``: the probe's own read (its logit) at
  ``site`` over prompt + response;
* ``Target.scorer(name, fn)``: ``fn(item, response) -> float`` on regenerated
  responses (the checker's label, the verbal label), for every seed.

In the teacher-forced pass, positions count as during generation: the prompt is
the prefill and each answer token counts as the newest token of its own step, so
``last`` writes the prompt's last token and every answer token, as decoding would.

:func:`answer_logprob_grid` reads the log-prob under many conditions at once
(a causal test's real intervention and its random controls): the rows of every
condition share batches (per-row interventions), and when no condition writes
the prompt before its last token (positions ``last`` or ``response``), that
part is computed once per item, without interventions, and its keys and values
reused by every condition (a prefix cache), so each condition pays only for its
last prompt token and the answer.

>>> t = Target.logprob(["Paris", "4"])
>>> t.needs_generation
False
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache

from interventions.base import Applied
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.model.capture import capture
from workbench.model.compile import hf_hooks
from workbench.model.generation import Decoder
from workbench.model.hooks import attach, count_hooks
from workbench.model.intervention import Intervention as Value
from workbench.model.kvcache_rows import empty_cache, rows_supported, take_rows
from workbench.model.loaded import unwrap
from workbench.model.positions import Frame, item_key, using_frame
from workbench.model.tokens import collate, encode_prompts, length_buckets

__all__ = ["Target", "answer_logprob", "answer_logprob_grid", "probe_read"]

Scorer = Callable[[Item, str], float | bool]


@dataclass(frozen=True)
class Target:
    """The metric a causal test moves (see the module docstring)."""

    name: str
    kind: str
    answers: tuple[str, ...] = ()
    site: str = "h_last"
    direction: tuple[float, ...] = ()
    bias: float = 0.0
    fn: Scorer | None = None

    @classmethod
    def logprob(cls, answers: Sequence[str], name: str = "answer log-prob") -> Target:
        if not answers or any(not isinstance(a, str) or not a for a in answers):
            raise WorkbenchError("Target.logprob: pass one non-empty answer string per item")
        return cls(name, "logprob", answers=tuple(answers))

    @classmethod
    def probe(
        cls, site: str, direction: Any, bias: float = 0.0, name: str = "probe read"
    ) -> Target:
        v = np.asarray(direction, dtype=np.float64).ravel()
        if not np.isfinite(v).all() or not v.size:
            raise WorkbenchError("Target.probe: the direction must be a finite vector")
        return cls(name, "probe", site=site, direction=tuple(v.tolist()), bias=float(bias))

    @classmethod
    def scorer(cls, name: str, fn: Scorer) -> Target:
        return cls(name, "scorer", fn=fn)

    @property
    def needs_generation(self) -> bool:
        return self.kind == "scorer"

    def read(self, model: Any, items: Sequence[Item], batch_size: int = 8) -> np.ndarray:
        """Per item, the metric under whatever interventions are active (cheap kinds)."""
        if self.kind == "logprob":
            return answer_logprob(model, items, self.answers, batch_size=batch_size)
        if self.kind == "probe":
            return probe_read(model, items, self.site, np.array(self.direction), self.bias)
        raise WorkbenchError(f"target {self.name!r} scores regenerated responses: generate first")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "logprob":
            out["answers"] = list(self.answers)
        if self.kind == "probe":
            out.update(site=self.site, bias=self.bias, norm=float(np.linalg.norm(self.direction)))
        return out


def answer_logprob(
    model: Any,
    items: Sequence[Item | str | Any],
    answers: Sequence[str],
    *,
    batch_size: int = 8,
    chat_template: bool | None = None,
) -> np.ndarray:
    """Teacher-forced ``log p(answer | prompt)`` per item, through ``model``'s backend."""
    lm, backend = unwrap(model)
    parsed = as_items(items)
    if len(answers) != len(parsed):
        raise WorkbenchError(
            f"{len(answers)} answers for {len(parsed)} items: pass one answer per item"
        )
    decoder = backend.decoder() if backend is not None else Decoder(lm)
    prompts = encode_prompts(
        lm.tokenizer, parsed, max_new_tokens=1, chat_template=chat_template,
        max_positions=lm.max_positions,
    )  # fmt: skip
    targets = [list(lm.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers]
    out = np.empty(len(parsed))
    device = lm.device if lm.device.type != "meta" else torch.device("cpu")
    seqs = [p + t for p, t in zip(prompts, targets, strict=True)]
    for bucket in length_buckets([len(s) for s in seqs], batch_size):
        batch = collate([seqs[i] for i in bucket], lm.pad_id, device=device)
        frame = Frame.of_batch(
            batch.attention_mask,
            [len(prompts[i]) for i in bucket],
            [item_key(parsed[i].id) for i in bucket],
        ).regenerated(batch.attention_mask)
        keep = 1 + max(len(targets[i]) for i in bucket)  # the answers sit at the right edge
        with torch.inference_mode(), using_frame(frame):
            logits = decoder.all_logits(
                batch.input_ids, batch.attention_mask, batch.position_ids, keep=keep
            )
        logp = torch.log_softmax(logits.float(), dim=-1)  # column j: position width - keep + j
        for row, i in enumerate(bucket):
            n = len(targets[i])
            cols = torch.arange(keep - n, keep)
            tok = torch.tensor(targets[i])
            out[i] = float(logp[row, cols - 1, tok].sum())
    return out


def _prefix_free(conditions: Sequence[Sequence[Value]]) -> bool:
    """Whether no condition writes a prompt token before the last (the prefix is shared)."""
    return all(v.positions.kind in ("last", "response") for c in conditions for v in c)


def answer_logprob_grid(
    model: Any,
    items: Sequence[Item | str | Any],
    answers: Sequence[str],
    conditions: Sequence[Sequence[Value]],
    *,
    batch_size: int = 8,
    chat_template: bool | None = None,
) -> np.ndarray:
    """``(conditions, items)``: :func:`answer_logprob` under each condition's values.

    On the ``hf`` path with no other hook on the model, the conditions' rows share
    batches, and the prompt before its last token is shared when no condition
    writes it (see the module docstring); elsewhere (another backend, a cache that
    cannot be cut per row, hooks already attached) one read per condition.
    """
    lm, backend = unwrap(model)
    parsed = as_items(items)
    if len(answers) != len(parsed):
        raise WorkbenchError(
            f"{len(answers)} answers for {len(parsed)} items: pass one answer per item"
        )
    hooks = [h for c, values in enumerate(conditions) for h in hf_hooks(lm.layout, values, c)]
    prompts = encode_prompts(
        lm.tokenizer, parsed, max_new_tokens=1, chat_template=chat_template,
        max_positions=lm.max_positions,
    )  # fmt: skip
    if (
        backend is not None
        or count_hooks(lm.model)
        or not _prefix_free(conditions)
        or not rows_supported(lm.model)
        or min(len(p) for p in prompts) < 2
    ):
        out = np.empty((len(conditions), len(parsed)))
        for c, values in enumerate(conditions):
            with Applied(model, values) if values else contextlib.nullcontext():
                out[c] = answer_logprob(
                    model, parsed, answers, batch_size=batch_size, chat_template=chat_template
                )
        return out
    targets = [list(lm.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers]
    device = lm.device if lm.device.type != "meta" else torch.device("cpu")
    out = np.empty((len(conditions), len(parsed)))
    rows = [(c, i) for c in range(len(conditions)) for i in range(len(parsed))]
    with torch.inference_mode(), attach(hooks):
        for bucket in length_buckets([len(prompts[i]) for i in range(len(parsed))], batch_size):
            prefix, mask = _prefill(lm, [prompts[i][:-1] for i in bucket], parsed, bucket, device)
            mine = [(c, i) for c, i in rows if i in bucket]
            for start in range(0, len(mine), batch_size):
                chunk = mine[start : start + batch_size]
                logp = _continue(lm, prefix, mask, bucket, chunk, prompts, targets, parsed, device)
                for row, (c, i) in enumerate(chunk):
                    out[c, i] = logp[row]
    return out


def _prefill(
    lm: Any, heads: list[list[int]], parsed: list[Item], bucket: list[int], device: torch.device
) -> tuple[DynamicCache, torch.Tensor]:
    """The KV cache of every prompt but its last token (left-padded), under no condition."""
    batch = collate(heads, lm.pad_id, side="left", device=device)
    cache = empty_cache(lm.model)
    frame = Frame.of_batch(
        batch.attention_mask, [len(h) + 1 for h in heads], [item_key(parsed[i].id) for i in bucket]
    )
    with using_frame(replace(frame, groups=(-1,) * len(bucket))):
        lm.model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask,
            position_ids=batch.position_ids, cache=cache, use_cache=True,
            logits_to_keep=1,
        )  # fmt: skip
    return cache, batch.attention_mask


def _continue(
    lm: Any,
    prefix: DynamicCache,
    prefix_mask: torch.Tensor,
    bucket: list[int],
    chunk: list[tuple[int, int]],
    prompts: list[list[int]],
    targets: list[list[int]],
    parsed: list[Item],
    device: torch.device,
) -> list[float]:
    """Per ``(condition, item)`` row: the answer's log-prob, fed after the shared prefix
    (the prompt's last token, then the answer; right-padded), the condition's edits on."""
    index = [bucket.index(i) for _, i in chunk]
    cache = take_rows(prefix, torch.tensor(index, device=device), lm.model)
    tails = [[prompts[i][-1], *targets[i]] for _, i in chunk]
    width = max(len(t) for t in tails)
    ids = torch.full((len(chunk), width), lm.pad_id, dtype=torch.long, device=device)
    tail_mask = torch.zeros((len(chunk), width), dtype=torch.long, device=device)
    for row, t in enumerate(tails):
        ids[row, : len(t)] = torch.tensor(t)
        tail_mask[row, : len(t)] = 1
    offset = prefix_mask[index].sum(-1)  # prompt tokens before the last, per row
    pos = offset[:, None] + torch.arange(width, device=device)[None]
    n_prompt = torch.tensor([len(prompts[i]) for _, i in chunk], device=device)
    length = n_prompt + torch.tensor([len(targets[i]) for _, i in chunk], device=device)
    frame = Frame(
        pos=pos.masked_fill(tail_mask == 0, -1),
        n_prompt=n_prompt,
        length=length,
        capacity=length,
        keys=tuple(item_key(parsed[i].id) for _, i in chunk),
        seen=torch.maximum(pos + 1, n_prompt[:, None]),  # each answer token the newest
        groups=tuple(c for c, _ in chunk),
    )
    with using_frame(frame):
        logits = lm.model(
            input_ids=ids, attention_mask=torch.cat([prefix_mask[index], tail_mask], dim=1),
            position_ids=pos.masked_fill(tail_mask == 0, 0), cache=cache,
            use_cache=True,
        ).logits  # fmt: skip
    logp = torch.log_softmax(logits.float(), dim=-1)
    out = []
    for row, (_, i) in enumerate(chunk):
        n = len(targets[i])
        out.append(float(logp[row, torch.arange(n), torch.tensor(targets[i])].sum()))
    return out


def probe_read(
    model: Any, items: Sequence[Item], site: str, direction: np.ndarray, bias: float = 0.0
) -> np.ndarray:
    """The probe's logit, ``features(site) @ direction + bias``, per item."""
    feats = capture(model, items, [site])[site].reshape(len(items), -1)
    if feats.shape[1] != direction.size:
        raise WorkbenchError(
            f"probe direction has {direction.size} values, site {site} has {feats.shape[1]}: "
            "pass the probe fitted at this site"
        )
    return feats.astype(np.float64) @ direction + bias
