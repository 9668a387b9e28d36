"""Sweeps with replication: regenerate under each intervention strength and each seed.

The paper's one apparent positive was a single-seed draw that did not
replicate. A sweep therefore regenerates every item for each value (lambda,
alpha, ...) *and* each seed. Sampling draws per item from ``(seed, item id)``
(``workbench.model.generation.item_seed``), so for a fixed seed every condition sees
the same random stream. Each response records ``truncated`` and is scored by
the user's scorers (content, disposition, ...); the summary gives, per value
and metric, the mean over seeds and the seed-to-seed spread, whether the means
are monotonic in the value, and whether each change from the reference value
(1.0 when swept, else the first) exceeds that spread.

When every value's intervention is data (:class:`~workbench.model.intervention.Intervention`
values, as every constructor in :mod:`interventions` builds), all values x seeds are
generated in shared batches (:func:`~workbench.model.grid.generate_grid`: per-row
interventions, the same responses as one run per cell up to floating-point ties);
a context manager that is not data runs one generation per cell.
``decoding["loop"]`` says which ran.

>>> from workbench.labels.domains import check_item
>>> from workbench.labels.verbal import classify_verbal
>>> result = temper_sweep(  # doctest: +SKIP
...     lm, items, heads=[(3, 1), (5, 2)], lambdas=[0.0, 0.5, 1.0], seeds=[0, 1, 2],
...     scorers={"correct": check_item, "asserts": lambda it, r: classify_verbal(r) == "assert"},
... )
>>> result.comparison("asserts", 0.0).exceeds  # doctest: +SKIP
False
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from interventions.stats import Comparison, MetricSummary, monotonicity, summarise
from interventions.temper import Site, intervention_factory
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.core.progress import progress_bar
from workbench.model.generation import DecodingConfig, Generations, generate
from workbench.model.grid import generate_grid
from workbench.model.intervention import values_of

__all__ = ["SweepResponse", "SweepResult", "sweep", "temper_sweep"]

Scorer = Callable[[Item, str], float | bool]
BUILTIN = ("truncated", "n_tokens")


@dataclass(frozen=True)
class SweepResponse:
    """One response of the sweep and its scores (``truncated`` and ``n_tokens`` included)."""

    value: float
    seed: int
    item_id: str
    response: str
    truncated: bool
    scores: Mapping[str, float]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "scores": dict(self.scores)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepResponse:
        """Rebuild from :meth:`to_json`."""
        return cls(**{**data, "scores": dict(data["scores"])})


@dataclass(frozen=True)
class SweepResult:
    """Everything a sweep measured. ``to_json`` gives the report's JSON.

    Attributes:
        parameter: the swept quantity's name (``lambda``, ``alpha``).
        values, seeds, metrics: the grid and the metrics (scorers, then ``truncated``, ``n_tokens``).
        reference: the value changes are measured from.
        summaries: per (metric, value): mean over seeds and spread.
        comparisons: per (metric, value != reference): the change and whether it exceeds the spread.
        monotonic: per metric: ``increasing``, ``decreasing``, ``flat`` or ``non-monotonic``.
        responses: every response with its scores.
        decoding: the decoding config (its seed replaced by each sweep seed).
        interventions: per value, what was attached.
        warnings: what limits the reading (one seed, greedy decoding, truncation).
    """

    parameter: str
    values: tuple[float, ...]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    reference: float
    summaries: tuple[MetricSummary, ...]
    comparisons: tuple[Comparison, ...]
    monotonic: Mapping[str, str]
    responses: tuple[SweepResponse, ...]
    decoding: Mapping[str, Any]
    interventions: Mapping[str, Any]
    warnings: tuple[str, ...]

    def summary(self, metric: str, value: float) -> MetricSummary:
        for s in self.summaries:
            if s.metric == metric and s.value == value:
                return s
        raise WorkbenchError(
            f"no summary for metric {metric!r} at {self.parameter}={value}: metrics are {self.metrics}"
        )

    def comparison(self, metric: str, value: float) -> Comparison:
        for c in self.comparisons:
            if c.metric == metric and c.value == value:
                return c
        raise WorkbenchError(
            f"no comparison for metric {metric!r} at {self.parameter}={value} "
            f"(the reference is {self.reference})"
        )

    @property
    def any_exceeds(self) -> bool:
        """Whether any scorer's change from the reference exceeds the seed-to-seed spread."""
        return any(c.exceeds for c in self.comparisons if c.metric not in BUILTIN)

    def to_json(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "values": list(self.values),
            "seeds": list(self.seeds),
            "metrics": list(self.metrics),
            "reference": self.reference,
            "any_change_exceeds_seed_spread": self.any_exceeds,
            "monotonic": dict(self.monotonic),
            "summaries": [s.to_json() for s in self.summaries],
            "comparisons": [c.to_json() for c in self.comparisons],
            "warnings": list(self.warnings),
            "decoding": dict(self.decoding),
            "interventions": dict(self.interventions),
            "responses": [r.to_json() for r in self.responses],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepResult:
        """Rebuild a result from :meth:`to_json` (derived keys such as
        ``any_change_exceeds_seed_spread`` are recomputed, not read)."""
        return cls(
            parameter=data["parameter"],
            values=tuple(data["values"]),
            seeds=tuple(data["seeds"]),
            metrics=tuple(data["metrics"]),
            reference=data["reference"],
            summaries=tuple(MetricSummary.from_json(s) for s in data["summaries"]),
            comparisons=tuple(Comparison.from_json(c) for c in data["comparisons"]),
            monotonic=dict(data["monotonic"]),
            responses=tuple(SweepResponse.from_json(r) for r in data["responses"]),
            decoding=dict(data["decoding"]),
            interventions=dict(data["interventions"]),
            warnings=tuple(data["warnings"]),
        )


def _score(name: str, scorer: Scorer, item: Item, response: str) -> float:
    value = scorer(item, response)
    if isinstance(value, bool | np.bool_):
        return float(value)
    if not isinstance(value, int | float | np.integer | np.floating) or not np.isfinite(value):
        raise WorkbenchError(
            f"scorer {name!r} returned {value!r} for item {item.id!r}: a scorer must return a "
            "finite number or a bool"
        )
    return float(value)


def _describe(intervention: AbstractContextManager[Any] | None) -> Any:
    to_json = getattr(intervention, "to_json", None)
    return to_json() if callable(to_json) else repr(intervention)


def _check_grid(
    values: Sequence[float], seeds: Sequence[int], scorers: Mapping[str, Scorer]
) -> None:
    if not values or len(set(values)) != len(values):
        raise WorkbenchError(f"values {list(values)!r}: pass at least one value, each once")
    numeric = (int, float, np.integer, np.floating)
    if not all(
        isinstance(v, numeric) and not isinstance(v, bool) and np.isfinite(v) for v in values
    ):
        raise WorkbenchError(f"values {list(values)!r} must be finite numbers")
    if (
        not seeds
        or len(set(seeds)) != len(seeds)
        or not all(isinstance(s, int | np.integer) for s in seeds)
    ):
        raise WorkbenchError(f"seeds {list(seeds)!r}: pass at least one integer seed, each once")
    clash = [name for name in scorers if name in BUILTIN]
    if clash:
        raise WorkbenchError(
            f"scorer name {clash[0]!r} is reserved (recorded for every response): rename it"
        )
    if not all(callable(s) for s in scorers.values()):
        raise WorkbenchError("every scorer must be a callable (item, response) -> float | bool")


def sweep(
    lm: Any,
    items: Sequence[Item | str | Mapping[str, Any]],
    factory: Callable[[float], AbstractContextManager[Any] | None],
    values: Sequence[float],
    seeds: Sequence[int],
    scorers: Mapping[str, Scorer],
    *,
    parameter: str = "lambda",
    reference: float | None = None,
    decoding: DecodingConfig | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> SweepResult:
    """Regenerate ``items`` for every value x seed with ``factory(value)`` active; score and summarise.

    Args:
        lm: a ``LoadedModel``.
        items: items (or prompts) to answer.
        factory: ``value -> context manager`` (an intervention) or None for none;
            every value's intervention is built (and so validated) before generating.
        values: the strengths to sweep.
        seeds: base seeds; each item draws from ``(seed, item id)``.
        scorers: ``name -> (item, response) -> float | bool``.
        parameter: the swept quantity's name for reports.
        reference: the value changes are measured from (default 1.0 when swept, else the first).
        decoding: max_new_tokens, sampling...; default ``DecodingConfig(do_sample=True)``.
        batch_size: prompts per batch.
        progress: show a progress bar.

    >>> v = mass_mean_direction(X_layer10, correct)  # doctest: +SKIP
    >>> result = sweep(lm, items, lambda a: steer(lm, 10, v, alpha=a), [0.0, 4.0], [0, 1],  # doctest: +SKIP
    ...                scorers, parameter="alpha", reference=0.0)
    >>> result.monotonic["asserts"]  # doctest: +SKIP
    'increasing'
    """
    items = as_items(items)
    _check_grid(values, seeds, scorers)
    values = [float(v) for v in values]
    ref = reference if reference is not None else (1.0 if 1.0 in values else values[0])
    if ref not in values:
        raise WorkbenchError(f"reference {ref} is not among the swept values {values}")
    config = decoding or DecodingConfig(do_sample=True)
    interventions = {v: factory(v) for v in values}
    responses: list[SweepResponse] = []

    def score(v: float, seed: int, gens: Generations) -> None:
        for item, g in zip(items, gens, strict=True):
            scores = {name: _score(name, s, item, g.response) for name, s in scorers.items()}
            scores.update(truncated=float(g.truncated), n_tokens=float(g.n_tokens))
            responses.append(SweepResponse(v, seed, item.id, g.response, g.truncated, scores))

    conditions = [values_of(interventions[v]) for v in values]
    if all(c is not None for c in conditions):  # data: every cell shares the batches
        grid = generate_grid(
            lm, items, [c or [] for c in conditions], list(seeds), decoding=config,
            batch_size=batch_size, progress=progress,
        )  # fmt: skip
        loop = grid.loop
        for c, v in enumerate(values):
            for seed in seeds:
                score(v, seed, grid.cell(c, seed))
    else:  # a context manager that is not data: one generation per cell, under it
        loop = "sequential (an intervention is a context manager, not Intervention values)"
        with progress_bar("sweep", len(values) * len(seeds), progress) as bar:
            for v in values:
                iv = interventions[v]
                for seed in seeds:
                    gens = generate(
                        lm, items, **{**config.to_json(), "seed": seed}, batch_size=batch_size,
                        interventions=[iv] if iv is not None else [],
                    )  # fmt: skip
                    score(v, seed, gens)
                    bar.advance(1)
    metrics = (*scorers, *BUILTIN)
    summaries, comparisons = summarise(
        [(r.value, r.seed, r.scores) for r in responses], values, list(seeds), metrics, ref
    )
    warnings = []
    if len(seeds) < 2:
        warnings.append(
            "one seed: no seed-to-seed spread is measured, so no change can be told from an RNG draw"
        )
    if not config.do_sample and len(seeds) > 1:
        warnings.append(
            "greedy decoding: every seed gives the same responses (spread 0); sample to measure it"
        )
    cut = np.mean([r.truncated for r in responses])
    if cut > 0:
        warnings.append(
            f"{cut:.0%} of responses hit max_new_tokens (truncated): a score change may come from cut responses"
        )
    specs = {str(v): _describe(iv) for v, iv in interventions.items()}
    return SweepResult(
        parameter=parameter,
        values=tuple(values),
        seeds=tuple(seeds),
        metrics=metrics,
        reference=ref,
        summaries=tuple(summaries),
        comparisons=tuple(comparisons),
        monotonic={m: monotonicity([s.mean for s in summaries if s.metric == m]) for m in metrics},
        responses=tuple(responses),
        decoding={**config.to_json(), "seed": list(seeds), "batch_size": batch_size, "loop": loop},
        interventions=specs,
        warnings=tuple(warnings),
    )


def temper_sweep(
    lm: Any,
    items: Sequence[Item | str | Mapping[str, Any]],
    heads: Sequence[Any],
    lambdas: Sequence[float],
    seeds: Sequence[int],
    scorers: Mapping[str, Scorer],
    *,
    at: Site = "o_proj",
    reference: float | None = None,
    decoding: DecodingConfig | None = None,
    batch_size: int = 8,
    progress: bool = False,
    positions: Any = "all",
    ablation: str = "zero",
    reference_items: Sequence[Any] | None = None,
) -> SweepResult:
    """The paper's tempering sweep: every head in ``heads`` scaled by each lambda, per seed.

    ``at`` moves the same sweep to the value projection or the MLP (see
    :func:`intervention_factory`), ``positions`` restricts it to part of each row,
    ``ablation="mean"`` interpolates towards the heads' mean over ``reference_items``;
    everything else is :func:`sweep`.

    >>> r = temper_sweep(lm, items, [(3, 1)], [0.5, 1.0], [0, 1], {"len": lambda i, r: len(r)})  # doctest: +SKIP
    >>> r.summary("len", 0.5).mean  # doctest: +SKIP
    41.5
    """
    factory = intervention_factory(
        lm, at, heads, positions=positions, ablation=ablation, reference=reference_items
    )
    return sweep(
        lm,
        items,
        factory,
        lambdas,
        seeds,
        scorers,
        parameter="lambda",
        reference=reference,
        decoding=decoding,
        batch_size=batch_size,
        progress=progress,
    )
