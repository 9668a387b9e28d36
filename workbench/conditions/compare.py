"""Compare two conditions honestly: refuse apples to oranges, show truncation, rescore.

The paper's two false headline gains were artifacts a comparison can catch:

* **max-token truncation**: the base model's longer answers were cut at
  ``max_new_tokens`` and scored wrong, so the adapter "gained" +15.3 points,
  which became -8.0 once re-scored with a larger budget;
* **judge-prompt asymmetry**: the conditions were judged with different prompts.

:func:`compare_conditions` refuses (one :class:`ComparisonRefused` line listing
every difference) when the conditions differ in anything but the model:
decoding parameters, ``max_new_tokens``, the item set, or, when judge scores are
compared, the judge (prompt SHA256, model, mode, axes...). ``allow`` names the
differences to accept explicitly; they stay in the report. The report gives the
truncated fraction per condition and the paired score delta (B - A) with a
bootstrap CI. :func:`rescore_condition` regenerates only the truncated
responses at a larger budget (greedy and per-item-seeded sampling reproduce the
rest), so passing both rescored conditions shows how the delta moves.

Two conditions of one model at different caps are refused unless the
difference is allowed (the cap is exactly what produced the paper's false gain):

>>> import tempfile
>>> from workbench.conditions.condition import read_condition, write_condition
>>> from workbench.core.items import as_items
>>> from workbench.model.generation import generate
>>> root, its = tempfile.mkdtemp(), as_items(items)
>>> for name, cap in (("a", 2), ("b", 6)):
...     _ = write_condition(f"{root}/{name}", generate(lm, its, max_new_tokens=cap), lm, items=its)
>>> a, b = read_condition(f"{root}/a"), read_condition(f"{root}/b")
>>> compare_conditions(a, b, scorer="verbal", n_boot=10)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
workbench.conditions.compare.ComparisonRefused: ...max_new_tokens...
>>> cmp = compare_conditions(a, b, scorer="verbal", allow=["max_new_tokens"], n_boot=10)
>>> cmp.a.max_new_tokens, cmp.b.max_new_tokens
(2, 6)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.conditions.condition import Condition, model_record
from workbench.conditions.scorers import Scorer
from workbench.core.errors import WorkbenchError

__all__ = [
    "ComparisonRefused",
    "check_rescore_budget",
    "Comparison",
    "ConditionSummary",
    "Delta",
    "compare_conditions",
    "condition_differences",
    "rescore_condition",
]

_PATHS = ("name", "path", "adapter")  # where a model was loaded from may change; its hashes may not


class ComparisonRefused(WorkbenchError):
    """The two conditions differ in something other than the model."""


def condition_differences(a: Condition, b: Condition, *, judge: bool = False) -> dict[str, str]:
    """``{key: "A value vs B value"}`` for each comparability key that differs.

    Args:
        judge: also compare the judge runs (needed when judge scores are compared).
    """
    ia, ib = a.identity(), b.identity()
    if judge:
        for cond, ident in ((a, ia), (b, ib)):
            run = cond.judge.identity() if cond.judge is not None else {}
            named = {k if k.startswith("judge_") else f"judge_{k}": v for k, v in run.items()}
            ident.update(named or {"judge": "not judged"})
        if "judge" in ia or "judge" in ib:
            ia.setdefault("judge", "judged")
            ib.setdefault("judge", "judged")
    keys = list(dict.fromkeys([*ia, *ib]))
    return {k: f"{ia.get(k)!r} vs {ib.get(k)!r}" for k in keys if ia.get(k) != ib.get(k)}


@dataclass(frozen=True)
class ConditionSummary:
    """One condition in a comparison."""

    label: str
    model: str
    max_new_tokens: int
    n_items: int
    n_truncated: int
    truncated_fraction: float
    n_scored: int
    mean_score: float | None
    n_regenerated: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Delta:
    """Paired difference B - A over the items scored in both, with a bootstrap 95% CI."""

    n_paired: int
    mean_a: float
    mean_b: float
    delta: float
    ci_low: float
    ci_high: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare_conditions`; ``rescored`` when rescored conditions were given."""

    scorer: str
    scorer_description: str
    a: ConditionSummary
    b: ConditionSummary
    delta: Delta
    allowed: dict[str, str]
    rescored: tuple[ConditionSummary, ConditionSummary, Delta] | None = None

    @property
    def delta_shift(self) -> float | None:
        """How far the delta moved when rescored (None without rescoring)."""
        return None if self.rescored is None else self.rescored[2].delta - self.delta.delta

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scorer": self.scorer,
            "scorer_description": self.scorer_description,
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "delta": self.delta.to_json(),
            "allowed_differences": dict(self.allowed),
            "rescored": None,
        }
        if self.rescored is not None:
            ra, rb, rd = self.rescored
            out["rescored"] = {
                "max_new_tokens": ra.max_new_tokens,
                "a": ra.to_json(),
                "b": rb.to_json(),
                "delta": rd.to_json(),
                "delta_shift": self.delta_shift,
            }
        return out


def _summary(
    cond: Condition,
    scores: dict[str, float],
    *,
    label: str | None = None,
    regenerated: int | None = None,
) -> ConditionSummary:
    adapter = cond.model.get("adapter")
    model = str(cond.model.get("name")) + (f" + adapter {adapter}" if adapter else "")
    return ConditionSummary(
        label=label or cond.label,
        model=model,
        max_new_tokens=cond.max_new_tokens,
        n_items=len(cond.items),
        n_truncated=cond.n_truncated,
        truncated_fraction=cond.truncated_fraction,
        n_scored=len(scores),
        mean_score=float(np.mean(list(scores.values()))) if scores else None,
        n_regenerated=regenerated,
    )


def _delta(sa: dict[str, float], sb: dict[str, float], n_boot: int, seed: int) -> Delta:
    ids = [k for k in sa if k in sb]
    if not ids:
        raise WorkbenchError(
            "no item is scored in both conditions: check that they share items and that scoring succeeded"
        )
    xa = np.array([sa[k] for k in ids])
    xb = np.array([sb[k] for k in ids])
    diff = xb - xa
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(axis=1)
    low, high = np.quantile(boots, [0.025, 0.975])
    return Delta(
        len(ids), float(xa.mean()), float(xb.mean()), float(diff.mean()), float(low), float(high)
    )


def _check(a: Condition, b: Condition, scorer: Scorer, allow: Sequence[str]) -> dict[str, str]:
    """The allowed differences; raises :class:`ComparisonRefused` on any other."""
    diffs = condition_differences(a, b, judge=scorer.uses_judge)
    known = set(a.identity()) | {"judge"} | {k for k in diffs if k.startswith("judge_")}
    unknown = [k for k in allow if k not in known and not k.startswith("judge_")]
    if unknown:
        raise WorkbenchError(
            f"--allow {unknown[0]!r} is not a comparison key: use one of {', '.join(sorted(known))}"
        )
    refused = {k: v for k, v in diffs.items() if k not in allow}
    if refused:
        listed = "; ".join(f"{k}: {v}" for k, v in refused.items())
        keys = " ".join(f"--allow {k}" for k in refused)
        raise ComparisonRefused(
            f"refusing to compare {a.label} with {b.label}, they differ in {listed} "
            f"(regenerate under the same settings, or accept explicitly with {keys})"
        )
    return {k: v for k, v in diffs.items() if k in allow}


def compare_conditions(
    a: Condition,
    b: Condition,
    *,
    scorer: str | Scorer = "domain",
    allow: Sequence[str] = (),
    rescored: tuple[Condition, Condition] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Compare B against A; refuse unless only the model (and ``allow``-ed keys) differ.

    Args:
        a, b: the conditions (delta = B - A).
        scorer: a :class:`~workbench.conditions.scorers.Scorer` or its spec (``domain``, ``judge:AXIS``...).
        allow: difference keys to accept (e.g. ``max_new_tokens``); they stay in the report.
        rescored: ``(rescore_condition(a, lm_a, M), rescore_condition(b, lm_b, M))``.
        n_boot, seed: bootstrap of the paired delta's 95% CI.

    Raises:
        ComparisonRefused: listing every difference not allowed, on one line.
    """
    if n_boot < 1:
        raise WorkbenchError(f"n_boot {n_boot} must be >= 1")
    scorer = scorer if isinstance(scorer, Scorer) else Scorer.parse(scorer)
    allowed = _check(a, b, scorer, allow)
    sa, sb = scorer(a), scorer(b)
    result = Comparison(
        scorer=scorer.spec,
        scorer_description=scorer.describe(),
        a=_summary(a, sa),
        b=_summary(b, sb),
        delta=_delta(sa, sb, n_boot, seed),
        allowed=allowed,
    )
    if rescored is None:
        return result
    ra, rb = rescored
    _check(ra, rb, scorer, allow)
    ra_scores, rb_scores = scorer(ra), scorer(rb)
    return dataclasses.replace(
        result,
        rescored=(
            _summary(ra, ra_scores, label=a.label, regenerated=a.n_truncated),
            _summary(rb, rb_scores, label=b.label, regenerated=b.n_truncated),
            _delta(ra_scores, rb_scores, n_boot, seed),
        ),
    )


def _model_identity(record: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(record).items() if k not in _PATHS}


def check_rescore_budget(cond: Condition, max_new_tokens: int) -> None:
    """Raise unless ``max_new_tokens`` exceeds the budget ``cond`` was generated with."""
    if max_new_tokens <= cond.max_new_tokens:
        raise WorkbenchError(
            f"rescore max_new_tokens {max_new_tokens} must exceed {cond.label}'s "
            f"{cond.max_new_tokens}: pass a larger budget"
        )


def rescore_condition(
    cond: Condition,
    lm: Any | None,
    max_new_tokens: int,
    *,
    batch_size: int = 8,
    progress: bool = False,
) -> Condition:
    """The condition with its truncated responses regenerated at ``max_new_tokens``.

    ``lm`` must be the model that produced ``cond`` (same weights, adapter and
    dtype; paths may differ); it may be None when nothing was truncated. The
    other responses are kept: with greedy decoding, or sampling seeded per item,
    regenerating them gives the same tokens. A judge run is dropped (it scored
    the old responses): judge the result again.
    """
    from workbench.model.generation import generate

    check_rescore_budget(cond, max_new_tokens)
    decoding = dataclasses.replace(cond.decoding, max_new_tokens=max_new_tokens)
    todo = [it for it, g in zip(cond.items, cond.generations, strict=True) if g.truncated]
    new = {}
    if todo:
        if lm is None:
            raise WorkbenchError(
                f"{cond.label} has {len(todo)} truncated responses to regenerate: pass its model"
            )
        want, have = _model_identity(cond.model), _model_identity(model_record(lm))
        differ = sorted(
            f"{k}: {want.get(k)!r} vs {have.get(k)!r}"
            for k in {*want, *have}
            if want.get(k) != have.get(k)
        )
        if differ:
            raise WorkbenchError(
                f"the rescoring model is not the one that generated {cond.label} "
                f"({'; '.join(differ)}): load the same base model, adapter and dtype"
            )
        kwargs = decoding.to_json()
        kwargs.pop("max_new_tokens")
        fresh = generate(
            lm,
            todo,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            progress=progress,
            **kwargs,
        )
        new = {g.id: g for g in fresh}
    gens = tuple(new.get(g.id, g) for g in cond.generations)
    items = tuple(
        dataclasses.replace(it, response=g.response) for it, g in zip(cond.items, gens, strict=True)
    )
    return dataclasses.replace(
        cond, decoding=decoding, items=items, generations=gens, judge=None, path=None
    )
