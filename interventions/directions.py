"""A direction whose effect is known: the causal step's positive control.

:func:`answer_direction` is the gradient of the answers' first-token log-prob
with respect to the last decoder layer's output at the prompt's final token,
through the final norm and the unembedding. Adding it must raise that log-prob
to first order, so a causal test that cannot find it cannot be trusted.

>>> site, d = answer_direction(lm, items[:2], ["Paris", "4"])
>>> site, round(float((d ** 2).sum()), 6)
('resid(2)', 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from interventions.ops import collect_site
from interventions.steering import unit
from workbench.core.errors import WorkbenchError
from workbench.core.items import as_items
from workbench.model.loaded import unwrap
from workbench.model.positions import item_key

__all__ = ["answer_direction"]


def answer_direction(
    model: Any, items: Any, answers: Any, *, normalize: bool = True, batch_size: int = 8
) -> tuple[str, np.ndarray]:
    """The last decoder layer's direction that raises each answer's first-token log-prob.

    The mean over items of the gradient of ``log p(first answer token)`` with
    respect to the last layer's output at the prompt's final token, through the
    final norm and the unembedding (the logit lens, made exact for the norm):
    adding it must raise the teacher-forced answer log-prob to first order, so it
    is the causal step's positive control, a direction whose effect is known.
    Returns ``(site, direction)`` with ``site`` = ``resid(L)``, ``L`` the last layer.
    """
    lm, _ = unwrap(model)
    parsed = as_items(items)
    if len(answers) != len(parsed) or not all(isinstance(a, str) and a for a in answers):
        raise WorkbenchError("answer_direction: pass one non-empty answer string per item")
    site = f"resid({lm.layout.n_layers - 1})"
    rows = collect_site(model, parsed, site, positions="last", batch_size=batch_size, per_item=True)
    bank = np.stack([rows[item_key(it.id)][-1] for it in parsed])  # item order, not bucket order
    first = [lm.tokenizer(a, add_special_tokens=False)["input_ids"][0] for a in answers]
    head = getattr(lm.model, "get_output_embeddings", lambda: None)()
    if not isinstance(head, torch.nn.Module):
        raise WorkbenchError(
            f"{lm.name}: no output embedding module to take the answer direction from"
        )
    param = next(head.parameters())
    h = torch.tensor(bank, dtype=param.dtype, device=param.device, requires_grad=True)
    with torch.enable_grad():
        logits = head(lm.layout.final_norm(h)).float()
        logp = torch.log_softmax(logits, -1)[torch.arange(len(first)), torch.tensor(first)]
        (grad,) = torch.autograd.grad(logp.sum(), h)
    return site, unit(grad.double().mean(0).cpu().numpy(), normalize, "the answer direction")
