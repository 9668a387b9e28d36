"""The causal step: can an intervention on the probe's direction or the top heads move correctness?

Runs :func:`interventions.causal_test` on the first ``[causal] n_items`` fresh
items: a probe fitted on ``resid(L)`` of the training items (``L`` the last
decoder layer unless ``layer`` says otherwise; ``h_last`` itself is read after
the final norm, where no intervention writes) gives the direction; necessity
(project it out) and sufficiency (add +/- ``alpha`` sigma), once per entry of
``positions`` (``last``, the final token; ``response``, the response tokens),
against ``n_random`` random directions of equal norm.

Metrics, and what each is measured against:

* the *target* is the cheap read: the teacher-forced log-probability of the
  checker's gold answer, one forward pass per condition, so all ``n_random``
  controls are read and its p can reach 0.05;
* the *side effects* (response length, truncation, assertion, and the
  checker's label of the regenerated answer) are regenerated greedily with
  ``max_new_tokens`` for the real direction and the first ``regenerate``
  controls only, so their p is descriptive.

*Positive control*: sufficiency+ alone on the direction that raises each gold
answer's first-token log-prob (:func:`interventions.answer_direction`, the
gradient through the final norm and unembedding at the last layer), applied at
the prompt tokens (at the last layer only the prompt's final token reaches the
first answer token's logits, and the answer tokens are left alone), which must
come out ``moves the target``; the decision warns when it does not.

The heads' causal test is the tempering stage's (:func:`~workbench.study.heads.run_tempering`):
the top attributed heads tempered at each lambda against random heads; it is
reported here beside the direction as ``heads``. Results are cached in ``causal/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.core.sites import parse_site
from workbench.core.store import atomic_write_json
from workbench.study.cache import Stage, model_identity, stage_key
from workbench.study.collect import SplitData, format_items
from workbench.study.config import ModelConfig, section_json
from workbench.study.context import StageContext
from workbench.study.heads import checker_scorers
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
    heads: Mapping[str, Any] | None,
    C: float | None,
    cache: dict[str, str],
    skipped: dict[str, str],
) -> dict[str, Any] | None:
    """Direction tests per position, with the tempering stage's ``heads`` test beside them
    (or None, with the reason in ``skipped``)."""
    from interventions import CausalResult, Target, answer_direction, causal_test, probe_direction

    if not cfg.enabled or C is None:
        skipped["causal"] = (
            "[causal] enabled = false"
            if not cfg.enabled
            else "no main probe, so no direction to test"
        )
        return _heads_only(heads)
    layer = train.n_layers - 1 if cfg.layer < 0 else cfg.layer
    site = f"resid({layer})"
    if str(parse_site(site)) not in train.features:
        skipped["causal"] = (f"{site} was not captured on train ([capture] depth_curve = false): "
                             "set depth_curve = true to run the causal step")  # fmt: skip
        return _heads_only(heads)
    key = stage_key("causal/4", model_identity(model.name), section_json(model), section_json(cfg),
                    ctx.items_key, fresh.key, C,
                    getattr(ctx.checker, "__qualname__", repr(ctx.checker)))  # fmt: skip
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
        out: dict[str, Any] = {"site": site, "direction": {}}
        for positions in cfg.positions:
            out["direction"][positions] = causal_test(
                lm, items, site, probe_direction(probe), target, positions=positions,
                alpha=cfg.alpha, n_random=cfg.n_random, decoding=decoding,
                batch_size=model.batch_size, regenerate=cfg.regenerate,
                scorers={"correct": checker_scorers(ctx.checker)["correct"]},
            ).to_json()  # fmt: skip
        control_site, control = answer_direction(
            lm, items, target.answers, batch_size=model.batch_size
        )
        out["positive_control"] = causal_test(
            lm, items, control_site, control, target, positions="prompt", alpha=cfg.alpha,
            n_random=cfg.n_random, batch_size=model.batch_size, regenerate=0,
            tests=("sufficiency+",),
        ).to_json()  # fmt: skip
        path = stage.begin()
        atomic_write_json(path / "causal.json", out)
        stage.commit({"site": site})
    cache["causal"] = "reused" if reused else "computed"
    data = json.loads((stage.path / "causal.json").read_text())
    # round-trip through the result type: the schema is its own
    data["direction"] = {
        k: CausalResult.from_json(v).to_json() for k, v in data["direction"].items()
    }
    if heads is not None:
        data["heads"] = CausalResult.from_json(heads).to_json()
    return dict(data)


def _heads_only(heads: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The tempering stage's heads test alone, when the direction test did not run."""
    from interventions import CausalResult

    if heads is None:
        return None
    return {"site": None, "direction": {}, "heads": CausalResult.from_json(heads).to_json()}


def _metric_note(r: Mapping[str, Any]) -> str:
    counts = r.get("settings", {}).get("controls_per_metric", {})
    target = r["target"].get("name")
    regenerated = sorted({n for m, n in counts.items() if m != target})
    k = regenerated[0] if regenerated else 0
    side = (f"side effects regenerated against {k} controls, descriptive" if k
            else "side effects not regenerated under controls")  # fmt: skip
    return (f"target {target}, teacher-forced, against {counts.get(target, r['n_random'])} "
            f"controls; {side}")  # fmt: skip


def causal_plain(causal: Mapping[str, Any] | None, reason: str | None) -> str:
    """The causal step's verdicts, with the metric each uses and its controls."""
    if causal is None:
        return f"Not run: {reason or 'disabled'}."
    parts = [
        f"the probe direction at {causal['site']}, positions {pos}: {r['verdict']} ({_metric_note(r)})"
        for pos, r in causal.get("direction", {}).items()
    ]
    r = causal.get("positive_control")
    if r is not None:
        parts.append(f"positive control (the gold answers' logit direction at {r['settings']['site']}, "
                     f"which must move the target): {r['verdict']}")  # fmt: skip
    r = causal.get("heads")
    if r is not None:
        parts.append(f"the top attributed heads ({r['subject']}), tempered: {r['verdict']} "
                     f"({_metric_note(r)}; {len(r['seeds'])} sampling seeds)")  # fmt: skip
    return "Causal step: " + "; ".join(parts) + "."
