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

>>> t = Target.logprob(["Paris", "4"])
>>> t.needs_generation
False
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.model.capture import capture
from workbench.model.generation import Decoder
from workbench.model.loaded import unwrap
from workbench.model.positions import Frame, item_key, using_frame
from workbench.model.tokens import collate, encode_prompts, length_buckets

__all__ = ["Target", "answer_logprob", "probe_read"]

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
