"""Causal tests: does intervening on a direction (or on heads) move the target, beyond chance?

:func:`causal_test` asks it of a direction read at a site (a probe's weights,
a mass-mean direction):

* *necessity*: project the direction out at the chosen positions;
* *sufficiency*: add ``+alpha * sigma`` and ``-alpha * sigma`` along it, ``sigma``
  the standard deviation of the activations' projection on it over a reference set;
* *controls*: the same three interventions along ``n_random`` random directions
  of equal norm (default 20, so that p can reach 0.05; fewer make p descriptive);
  ``p = (1 + #{controls with |change| >= |change|}) / (1 + n_random)``;
* *side effects*: response length, truncation rate and assertion rate of
  regenerated responses (and any ``scorers``), always measured; against every
  control, or, with ``regenerate=k``, against the first ``k`` controls only
  (the target, a cheap read, keeps all ``n_random``; the side effects' p is
  then descriptive, and the result says which metric used how many controls);
* a *verdict*: ``moves the target``, ``moves only <side effect>`` or ``moves
  nothing``, with the numbers. Three tests are run; p is per test, uncorrected.

Greedy decoding needs one seed; sampling needs at least three (the change is the
mean over seeds). :mod:`interventions.causal_heads` runs the same machinery on heads.

>>> result = causal_test(lm, items, "resid(10)", direction, Target.logprob(answers))  # doctest: +SKIP
>>> result.verdict  # doctest: +SKIP
'moves the target: necessity changes answer log-prob by -2.31 (p = 0.048 against 20 random directions)'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from interventions.base import Applied, model_and_layout
from interventions.ops import collect_site
from interventions.targets import Target, answer_logprob_grid
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.labels.verbal import classify_verbal
from workbench.model.bound import bind
from workbench.model.generation import DecodingConfig, Generations
from workbench.model.grid import generate_grid
from workbench.model.intervention import Intervention as Value
from workbench.model.positions import PositionSpec

__all__ = [
    "SIDE_EFFECTS",
    "TESTS",
    "CausalResult",
    "Effect",
    "causal_test",
    "check_controls",
    "check_regenerate",
    "control_counts",
    "run_tests",
]

SIDE_EFFECTS = ("n_tokens", "truncated", "asserts")
TESTS = ("necessity", "sufficiency+", "sufficiency-")
Scorer = Callable[[Item, str], float | bool]


@dataclass(frozen=True)
class Effect:
    """One test's change in one metric, against its controls."""

    test: str
    metric: str
    change: float
    controls: tuple[float, ...]
    p: float
    descriptive: bool

    @property
    def beyond(self) -> bool:
        """p <= 0.05 (with >= 19 controls), or beyond every control (descriptive)."""
        n = len(self.controls)
        if not n:
            return False
        return self.p <= 0.05 if not self.descriptive else self.p <= 1.0 / (n + 1)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "controls": list(self.controls), "beyond": self.beyond}


@dataclass(frozen=True)
class CausalResult:
    """Everything a causal test measured; ``to_json`` / ``from_json`` round-trip."""

    subject: str
    target: dict[str, Any]
    baseline: dict[str, float]
    effects: tuple[Effect, ...]
    n_random: int
    seeds: tuple[int, ...]
    decoding: dict[str, Any]
    settings: dict[str, Any]
    interventions: dict[str, list[dict[str, Any]]]
    verdict: str
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    def effect(self, test: str, metric: str) -> Effect:
        return next(e for e in self.effects if e.test == test and e.metric == metric)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["effects"] = [e.to_json() for e in self.effects]
        out["seeds"], out["warnings"] = list(self.seeds), list(self.warnings)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CausalResult:
        effects = tuple(
            Effect(e["test"], e["metric"], e["change"], tuple(e["controls"]), e["p"],
                   e["descriptive"])
            for e in data["effects"]
        )  # fmt: skip
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields.update(effects=effects, seeds=tuple(data["seeds"]), warnings=tuple(data["warnings"]))
        return cls(**fields)


def check_controls(n_random: Any, seeds: Sequence[int], decoding: DecodingConfig) -> list[str]:
    """Refuse zero controls and fewer than 3 seeds when sampling; warn when p is descriptive."""
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 1:
        raise WorkbenchError(
            f"n_random {n_random!r}: a causal test needs random controls; pass >= 19 (default 20)"
        )
    if not seeds:
        raise WorkbenchError("no seeds: pass at least one (three or more when sampling)")
    if decoding.do_sample and len(seeds) < 3:
        raise WorkbenchError(
            f"{len(seeds)} seed(s) with sampling: pass >= 3 seeds, or decode greedily"
        )
    if n_random < 19:
        return [f"{n_random} random controls: p cannot reach 0.05, so p values are descriptive"]
    return []


@dataclass
class _Run:
    model: Any
    items: list[Item]
    target: Target
    decoding: DecodingConfig
    seeds: tuple[int, ...]
    batch_size: int
    progress: Callable[[str], None] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    scorers: Mapping[str, Scorer] = field(default_factory=dict)

    def measure_all(
        self, conditions: Sequence[tuple[Sequence[Value], bool]]
    ) -> list[dict[str, float]]:
        """Mean target and side effects (over items and seeds) under each ``(values,
        regenerate)``; ``regenerate=False`` reads only the cheap target. The target is read under
        each in turn, and every regeneration (conditions x seeds) is generated at once, the
        conditions sharing batches (:func:`~workbench.model.grid.generate_grid`)."""
        out: list[dict[str, list[float]]] = [{} for _ in conditions]
        if self.target.kind == "logprob":  # every condition at once, the prompt prefix shared
            start = time.perf_counter()
            reads = answer_logprob_grid(
                self.model, self.items, self.target.answers, [list(c) for c, _ in conditions],
                batch_size=self.batch_size,
            )  # fmt: skip
            for row, read in zip(out, reads, strict=True):
                row[self.target.name] = [float(read.mean())]
            self.timings["target"] = self.timings.get("target", 0) + time.perf_counter() - start
        elif not self.target.needs_generation:
            start = time.perf_counter()
            for row, (values, _) in zip(out, conditions, strict=True):
                with Applied(self.model, values) if values else nullcontext():
                    read = self.target.read(self.model, self.items, batch_size=self.batch_size)
                row[self.target.name] = [float(read.mean())]
            self.timings["target"] = self.timings.get("target", 0) + time.perf_counter() - start
        regenerated = [i for i, (_, regenerate) in enumerate(conditions) if regenerate]
        if regenerated:
            start = time.perf_counter()
            grid = generate_grid(
                self.model, self.items, [list(conditions[i][0]) for i in regenerated],
                list(self.seeds), decoding=self.decoding, batch_size=self.batch_size,
            )  # fmt: skip
            for c, i in enumerate(regenerated):
                for seed in self.seeds:
                    for k, v in self._side(grid.cell(c, seed)).items():
                        out[i].setdefault(k, []).append(v)
            self.timings["generate"] = self.timings.get("generate", 0) + time.perf_counter() - start
        return [{k: float(np.mean(v)) for k, v in row.items()} for row in out]

    def _side(self, gens: Generations) -> dict[str, float]:
        """The side effects (and scored targets) of one seed's regenerations."""
        side = {
            "n_tokens": float(np.mean([g.n_tokens for g in gens])),
            "truncated": float(np.mean([g.truncated for g in gens])),
            "asserts": float(np.mean([classify_verbal(g.response) == "assert" for g in gens])),
        }
        scored = dict(self.scorers)
        if self.target.fn is not None:
            scored[self.target.name] = self.target.fn
        for name, fn in scored.items():
            side[name] = float(
                np.mean([float(fn(it, g.response)) for it, g in zip(self.items, gens, strict=True)])
            )
        return side


def _p(change: float, controls: Sequence[float]) -> float:
    return (1 + sum(abs(c) >= abs(change) - 1e-12 for c in controls)) / (1 + len(controls))


def check_regenerate(regenerate: Any, n_random: int, target: Target) -> int:
    """How many controls regenerate (all when ``regenerate`` is None); refused for a scored target."""
    if regenerate is None:
        return n_random
    if isinstance(regenerate, bool) or not isinstance(regenerate, int) or regenerate < 0:
        raise WorkbenchError(
            f"regenerate {regenerate!r}: give how many controls regenerate (>= 0), or None for all"
        )
    if target.needs_generation and regenerate < n_random:
        raise WorkbenchError(
            f"regenerate {regenerate} with target {target.name!r}, which scores regenerated "
            "responses: every control must regenerate; use a cheap target "
            "(Target.logprob, Target.probe) or regenerate=None"
        )
    return min(regenerate, n_random)


def run_tests(
    run: _Run,
    tests: Mapping[str, tuple[list[Value], list[list[Value]]]],
    n_random: int,
    regenerate: int | None = None,
    known: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[dict[str, float], tuple[Effect, ...]]:
    """Baseline, then per test the target's values and each control's; the effects.

    Every control is read for the target; only the first ``regenerate`` (all when
    None) regenerate, so the side effects have that many controls. ``known`` gives,
    by test name (or ``baseline``), regenerated metrics already measured under that
    very intervention with the same items, decoding and seeds (e.g. by a sweep):
    those are not regenerated again; the cheap target is still read.
    """
    k = n_random if regenerate is None else regenerate
    known = known or {}

    plan: list[tuple[Sequence[Value], bool]] = [([], "baseline" not in known)]
    for test, (values, controls) in tests.items():
        plan.append((values, test not in known))
        plan += [(c, i < k) for i, c in enumerate(controls)]
    measured = iter(run.measure_all(plan))  # every regeneration at once, in shared batches
    baseline = {**next(measured), **known.get("baseline", {})}
    effects = []
    for test, (_, controls) in tests.items():
        got = {**next(measured), **known.get(test, {})}
        control_runs = [next(measured) for _ in controls]
        for metric in baseline:
            change = got[metric] - baseline[metric]
            cs = tuple(c[metric] - baseline[metric] for c in control_runs if metric in c)
            effects.append(Effect(test, metric, change, cs, _p(change, cs), len(cs) < 19))
    return baseline, tuple(effects)


def control_counts(effects: Sequence[Effect]) -> dict[str, int]:
    """Per metric, how many controls its p counts (the report says which metric used how many)."""
    return {e.metric: len(e.controls) for e in effects}


def verdict(target: str, effects: Sequence[Effect], what: str) -> str:
    """One sentence from the effects: the target first, then the side effects.

    Side effects (length, truncation, assertion, extra scorers) beyond their
    controls are named after a moved target too, so a verdict never hides them.
    A side effect measured against fewer controls than the target (the
    ``regenerate`` budget) is descriptive: it is reported after the verdict, and
    never decides it (beating 3 controls is not evidence); when every effect is
    descriptive (``n_random < 19``), the verdict itself is descriptive.
    """

    def say(e: Effect) -> str:
        kind = "descriptive, " if e.descriptive else ""
        n = len(e.controls)
        return f"{e.test} changes {e.metric} by {e.change:+.3g} ({kind}p = {e.p:.3f} against {n} {what})"

    all_descriptive = all(e.descriptive for e in effects)
    moved = [e for e in effects if e.metric == target and e.beyond]
    side = [e for e in effects if e.metric != target and e.controls and e.beyond]
    deciding = [e for e in side if all_descriptive or not e.descriptive]
    budget = [e for e in side if e not in deciding]
    names = ", ".join(sorted({e.metric for e in deciding}))
    if moved:
        also = f"; it also moves {names}: " + "; ".join(map(say, deciding)) if deciding else ""
        text = "moves the target: " + "; ".join(say(e) for e in moved) + also
    elif deciding:
        text = f"moves only {names}: " + "; ".join(say(e) for e in deciding)
    else:
        largest = max((e for e in effects if e.metric == target), key=lambda e: abs(e.change))
        text = f"moves nothing: the largest target change, {say(largest)}, is within the controls"
    if budget:
        k = len(budget[0].controls)
        text += (f"; descriptive only (beyond all {k} regenerated controls, too few to decide): "
                 + "; ".join(f"{e.test} {e.metric} {e.change:+.3g}" for e in budget))  # fmt: skip
    return text


def causal_test(
    model: Any,
    items: Sequence[Item | str | Mapping[str, Any]],
    site: str,
    direction: Any,
    target: Target,
    *,
    positions: Any = "last",
    alpha: float = 2.0,
    n_random: int = 20,
    seeds: Sequence[int] = (0,),
    decoding: DecodingConfig | None = None,
    reference: Sequence[Item | str | Mapping[str, Any]] | None = None,
    random_seed: int = 0,
    batch_size: int = 8,
    regenerate: int | None = None,
    scorers: Mapping[str, Scorer] | None = None,
    tests: Sequence[str] = TESTS,
) -> CausalResult:
    """Necessity, sufficiency and random-direction controls for ``direction`` at ``site``.

    Args:
        model: a ``LoadedModel`` or any backend.
        items: the items whose target is measured (prompts; responses are regenerated).
        site: a writable site, e.g. ``resid(10)``.
        direction: ``(d_model,)``, e.g. :func:`~interventions.probe_direction`.
        target: what must move (:class:`~interventions.targets.Target`).
        positions: where to intervene in each row (default the final token,
            i.e. the newest token at every decoding step).
        alpha: the sufficiency step in units of ``sigma``.
        n_random: random directions of equal norm (>= 19 for p to reach 0.05).
        seeds: decoding seeds (>= 3 when sampling).
        decoding: how side effects (and scorer targets) regenerate (default greedy, 32 tokens).
        reference: items whose activations give ``sigma`` (default ``items``).
        regenerate: how many of the controls regenerate for the side effects
            (default all); the target, a cheap read, is read under every control.
        scorers: ``{name: fn(item, response)}`` scored on every regeneration,
            reported like the side effects (e.g. the checker's label).
        tests: which of ``necessity``, ``sufficiency+``, ``sufficiency-`` to run
            (all by default; a positive control of known sign needs one).
    """
    started = time.perf_counter()
    decoding = decoding or DecodingConfig(max_new_tokens=32)
    seeds = tuple(seeds)
    warnings = check_controls(n_random, seeds, decoding)
    k = check_regenerate(regenerate, n_random, target)
    unknown = [t for t in tests if t not in TESTS]
    if unknown or not tests:
        raise WorkbenchError(f"tests {list(tests)}: choose from {', '.join(TESTS)}")
    from interventions.steering import check_alpha

    alpha = check_alpha(alpha, "alpha")
    spec = PositionSpec.parse(positions)
    v = np.asarray(direction, dtype=np.float64).ravel()
    parsed = as_items(items)
    bind(Value(site, "project_out", v, positions=spec), model_and_layout(model)[1])  # once
    u = v / np.linalg.norm(v)
    try:
        bank = collect_site(model, reference or parsed, site, positions=spec)
    except WorkbenchError:  # e.g. "response" over prompts without responses
        bank = collect_site(model, reference or parsed, site, positions="all")
        warnings.append(
            f"the reference has no tokens at positions {spec}: sigma is read at every token"
        )
    sigma = float(np.std(bank @ u))
    rng = np.random.default_rng(random_seed)
    randoms = [r / np.linalg.norm(r) for r in rng.standard_normal((n_random, u.size))]

    def three(w: np.ndarray) -> dict[str, list[Value]]:
        return {
            "necessity": [Value(site, "project_out", w, positions=spec)],
            "sufficiency+": [Value(site, "add", alpha * sigma * w, positions=spec)],
            "sufficiency-": [Value(site, "add", -alpha * sigma * w, positions=spec)],
        }

    mine, controls = three(u), [three(r) for r in randoms]
    mine = {t: v for t, v in mine.items() if t in tests}
    chosen = {t: (mine[t], [c[t] for c in controls]) for t in mine}
    run = _Run(model, parsed, target, decoding, seeds, batch_size, scorers=dict(scorers or {}))
    return tested(
        run, chosen, f"direction at {site}", "random directions", n_random, k, random_seed,
        {"site": site, "positions": spec.to_json(), "alpha": alpha, "sigma": sigma},
        warnings, started,
    )  # fmt: skip


def tested(
    run: _Run,
    tests: Mapping[str, tuple[list[Value], list[list[Value]]]],
    subject: str,
    what: str,
    n_random: int,
    regenerate: int,
    random_seed: int,
    settings: Mapping[str, Any],
    warnings: Sequence[str],
    started: float,
    known: Mapping[str, Mapping[str, float]] | None = None,
) -> CausalResult:
    """Run ``tests`` (:func:`run_tests`) and assemble the result: one place for
    :func:`causal_test` and :func:`~interventions.causal_heads.causal_heads`."""
    baseline, effects = run_tests(run, tests, n_random, regenerate, known)
    return CausalResult(
        subject=subject,
        target=run.target.to_json(),
        baseline=baseline,
        effects=effects,
        n_random=n_random,
        seeds=run.seeds,
        decoding=run.decoding.to_json(),
        settings={
            **settings,
            "n_items": len(run.items),
            "random_seed": random_seed,
            "regenerated_controls": regenerate,
            "controls_per_metric": control_counts(effects),
            "timings_s": dict(run.timings),
        },
        interventions={t: [v.to_json() for v in vs] for t, (vs, _) in tests.items()},
        verdict=verdict(run.target.name, effects, what),
        warnings=tuple(warnings),
        seconds=time.perf_counter() - started,
    )
