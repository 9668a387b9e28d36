"""The causal step: can an intervention on the probe's direction or the top heads move correctness?

Runs :func:`interventions.causal_test` and :func:`interventions.causal_heads`
on the first ``[causal] n_items`` fresh items:

* *direction*: a probe fitted on ``resid(L)`` of the training items (``L`` the
  last decoder layer unless ``layer`` says otherwise; ``h_last`` itself is read
  after the final norm, where no intervention writes) gives the direction;
  necessity (project it out) and sufficiency (add +/- ``alpha`` sigma) at
  ``positions``, against ``n_random`` random directions of equal norm;
* *heads*: the top attributed heads zero-ablated against as many random heads,
  ``n_random`` draws.

The target is the cheap read: the teacher-forced log-probability of the
checker's gold answer (one forward pass per condition, so twenty controls are
affordable); the causal test regenerates every condition for the side effects
(length, truncation, assertion), greedily with ``max_new_tokens``, so those are
reported against the same controls. Results are cached in ``causal/``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from workbench.core.store import atomic_write_json
from workbench.study.cache import Stage, model_identity, stage_key
from workbench.study.collect import SplitData, format_items
from workbench.study.config import ModelConfig, section_json
from workbench.study.context import StageContext
from workbench.study.labels import SplitLabels
from workbench.study.sections import CausalConfig

__all__ = ["run_causal"]


def _answers(items: Sequence[Any]) -> list[str]:
    return [str(it.labels.get("gold")) for it in items]


def run_causal(
    cfg: CausalConfig,
    model: ModelConfig,
    ctx: StageContext,
    *,
    train: SplitData,
    train_labels: SplitLabels,
    fresh: SplitData,
    heads: Sequence[tuple[int, int]],
    C: float | None,
    cache: dict[str, str],
    skipped: dict[str, str],
) -> dict[str, Any] | None:
    """Direction and head tests (or None, with the reason in ``skipped``)."""
    if not cfg.enabled:
        skipped["causal"] = "[causal] enabled = false"
        return None
    from interventions import CausalResult, Target, causal_heads, causal_test, probe_direction

    if C is None:
        skipped["causal"] = "no main probe, so no direction to test"
        return None
    layer = train.n_layers - 1 if cfg.layer < 0 else cfg.layer
    site = f"resid({layer})"
    key = stage_key("causal/1", model_identity(model.name), section_json(model), section_json(cfg),
                    ctx.items_key, fresh.key, [list(h) for h in heads], C)  # fmt: skip
    stage = Stage(ctx.out / "causal", key)
    reused = ctx.use_cache and stage.valid
    if not reused:
        from probes import LinearProbe
        from workbench.model.generation import DecodingConfig

        lm = ctx.models.get(model.name)
        items = format_items(list(fresh.items)[: cfg.n_items], model.prompt_template)
        target = Target.logprob(_answers(items), name="gold answer log-prob")
        probe = LinearProbe(C=C).fit(train.site(site), train_labels.array("correct").astype(int))
        decoding = DecodingConfig(max_new_tokens=cfg.max_new_tokens)
        out: dict[str, Any] = {"site": site}
        out["direction"] = causal_test(
            lm, items, site, probe_direction(probe), target, positions=cfg.positions,
            alpha=cfg.alpha, n_random=cfg.n_random, decoding=decoding,
            batch_size=model.batch_size,
        ).to_json()  # fmt: skip
        out["heads"] = (
            causal_heads(
                lm,
                items,
                [(int(h[0]), int(h[1])) for h in heads],
                target,
                kind="zero",
                n_random=cfg.n_random,
                decoding=decoding,
                batch_size=model.batch_size,
            ).to_json()
            if heads
            else None
        )
        path = stage.begin()
        atomic_write_json(path / "causal.json", out)
        stage.commit({"site": site})
    cache["causal"] = "reused" if reused else "computed"
    data = json.loads((stage.path / "causal.json").read_text())
    for k in ("direction", "heads"):  # round-trip through the result type: the schema is its own
        if data.get(k) is not None:
            data[k] = CausalResult.from_json(data[k]).to_json()
    return dict(data)


def causal_plain(causal: dict[str, Any] | None, reason: str | None) -> str:
    """The causal step's verdicts, with the metric each uses."""
    if causal is None:
        return f"Not run: {reason or 'disabled'}."
    parts = []
    for k, what in (("direction", f"the probe direction at {causal['site']}"),
                    ("heads", "the top attributed heads, zero-ablated")):  # fmt: skip
        r = causal.get(k)
        if r is not None:
            parts.append(f"{what}: {r['verdict']} (target: {r['target'].get('name')}, "
                         f"teacher-forced; side effects regenerated greedily)")  # fmt: skip
    return "Causal step: " + "; ".join(parts) + "."
