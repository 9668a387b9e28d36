"""The statistics of a replicated sweep: seed means, seed-to-seed spread, monotonicity.

For a metric at one value, each seed gives the mean over items (one number per
seed); the summary is the mean of those and their spread (``hi - lo``, the
range across seeds). A change from the reference value *exceeds the spread*
when ``|mean(value) - mean(reference)|`` is larger than the bigger of the two
ranges: a difference the seeds alone produce at either value is not an effect.
With one seed there is no spread and ``exceeds`` is None, never True.

>>> recs = [(1.0, 0, {"m": 0.5}), (1.0, 1, {"m": 0.7}), (0.0, 0, {"m": 0.2}), (0.0, 1, {"m": 0.3})]
>>> sums, comps = summarise(recs, [0.0, 1.0], [0, 1], ["m"], 1.0)
>>> [round(s.mean, 2) for s in sums], round(comps[0].delta, 2), comps[0].exceeds
([0.25, 0.6], -0.35, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError

__all__ = ["Comparison", "MetricSummary", "monotonicity", "summarise"]

Record = tuple[float, int, Mapping[str, float]]
_TOL = 1e-12  # float noise in a mean is not a change


@dataclass(frozen=True)
class MetricSummary:
    """One metric at one value: per-seed item means, their mean, SD and range."""

    metric: str
    value: float
    per_seed: tuple[float, ...]
    mean: float
    std: float
    lo: float
    hi: float

    @property
    def spread(self) -> float:
        """Seed-to-seed range ``hi - lo`` (0 with one seed)."""
        return self.hi - self.lo

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "per_seed": list(self.per_seed), "spread": self.spread}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricSummary:
        """Rebuild from :meth:`to_json` (``spread`` is derived, so it is dropped)."""
        kept = {k: v for k, v in data.items() if k not in ("spread", "per_seed")}
        return cls(**kept, per_seed=tuple(data["per_seed"]))


@dataclass(frozen=True)
class Comparison:
    """A value against the reference for one metric.

    Attributes:
        delta: ``mean(value) - mean(reference)``.
        paired: per seed, that seed's difference (same seed, same random stream).
        spread: the larger seed-to-seed range of the two values.
        exceeds: ``|delta| > spread``; None with one seed (nothing to compare against).
    """

    metric: str
    value: float
    reference: float
    delta: float
    paired: tuple[float, ...]
    spread: float
    exceeds: bool | None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "paired": list(self.paired)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Comparison:
        """Rebuild from :meth:`to_json`."""
        return cls(**{k: v for k, v in data.items() if k != "paired"}, paired=tuple(data["paired"]))


def monotonicity(means: Sequence[float]) -> str:
    """``increasing``/``decreasing`` (non-strict, at least one step), ``flat`` or ``non-monotonic``.

    >>> monotonicity([0.1, 0.1, 0.3]), monotonicity([0.3, 0.1, 0.2])
    ('increasing', 'non-monotonic')
    """
    steps = np.diff(np.asarray(means, dtype=np.float64))
    if not steps.size or np.all(steps == 0):
        return "flat"
    if np.all(steps >= 0):
        return "increasing"
    if np.all(steps <= 0):
        return "decreasing"
    return "non-monotonic"


def summarise(
    records: Sequence[Record],
    values: Sequence[float],
    seeds: Sequence[int],
    metrics: Sequence[str],
    reference: float,
) -> tuple[list[MetricSummary], list[Comparison]]:
    """Summaries (metric-major, values ascending) and comparisons against ``reference``.

    Args:
        records: ``(value, seed, {metric: score})`` per response.
        values, seeds, metrics: the grid; every cell needs at least one record.
        reference: the value the comparisons are measured from.
    """
    cells: dict[tuple[float, int], list[Mapping[str, float]]] = {}
    for value, seed, scores in records:
        cells.setdefault((value, seed), []).append(scores)
    missing = [(v, s) for v in values for s in seeds if (v, s) not in cells]
    if missing:
        raise WorkbenchError(
            f"no responses for value/seed {missing[0]}: every cell of the grid needs some"
        )
    summaries: list[MetricSummary] = []
    by_key: dict[tuple[str, float], MetricSummary] = {}
    for metric in metrics:
        for value in sorted(values):
            per_seed = tuple(float(np.mean([r[metric] for r in cells[(value, s)]])) for s in seeds)
            arr = np.asarray(per_seed)
            s = MetricSummary(
                metric=metric,
                value=value,
                per_seed=per_seed,
                mean=float(arr.mean()),
                std=float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
                lo=float(arr.min()),
                hi=float(arr.max()),
            )
            summaries.append(s)
            by_key[(metric, value)] = s
    comparisons = []
    for metric in metrics:
        ref = by_key[(metric, reference)]
        for value in sorted(values):
            if value == reference:
                continue
            cur = by_key[(metric, value)]
            delta = cur.mean - ref.mean
            spread = max(cur.spread, ref.spread)
            comparisons.append(
                Comparison(
                    metric=metric,
                    value=value,
                    reference=reference,
                    delta=delta,
                    paired=tuple(a - b for a, b in zip(cur.per_seed, ref.per_seed, strict=True)),
                    spread=spread,
                    exceeds=bool(abs(delta) > spread + _TOL) if len(seeds) > 1 else None,
                )
            )
    return summaries, comparisons
