"""Head attribution: which heads' ``o_proj`` inputs differ between two cohorts.

Two cohorts of items (the paper's: confident-wrong ``cw`` against
confident-right ``cr``) are compared head by head over the last N tokens:

* **Magnitude**: per item, the head's L2 norm averaged over its real tokens;
  cohort means, their difference, and Cohen's d with the pooled SD.
* **Directional**: per item, the head's mean vector; the direction
  ``mu_a - mu_b`` between the cohort means; each item's projection on it;
  Cohen's d of the projections. Because the direction is fitted on the same
  items, this d is optimistic; ``directional_d_heldout`` projects each item on
  a direction fitted without it (k folds) and is the honest number.
* ``cos(mu_a, mu_b)`` per head, and ``collinear`` when it is at least
  ``collinear_cos`` (default 0.99): the cohort means point the same way, so a
  large d is a variance artifact, not an axis (the paper's d > 1.3 at cos 0.99).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(40, 4, 3, 8))
>>> x[:20, :, 1] *= 3.0  # head 1 is louder in cohort a
>>> a = np.arange(40) < 20
>>> attr = attribute_heads({7: x}, a, ~a)
>>> attr.export(k=1)
[(7, 1, 9.5323)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from interventions.activations import as_layers, pool_tokens
from interventions.cohorts import as_mask, check_cohorts
from workbench.core.errors import WorkbenchError

__all__ = [
    "RANKINGS",
    "HeadAttribution",
    "HeadScore",
    "MaxDNull",
    "attribute_heads",
    "cohens_d",
    "max_magnitude_d_null",
]

Ranking = Literal["magnitude", "directional", "directional_heldout"]
RANKINGS: tuple[Ranking, ...] = ("magnitude", "directional", "directional_heldout")


def cohens_d(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Cohen's d of ``a`` against ``b`` along axis 0 (pooled SD, ddof 1); NaN when the SD is 0.

    >>> float(cohens_d([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]))
    1.0
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = a.shape[0], b.shape[0]
    pooled = np.sqrt(((na - 1) * a.var(0, ddof=1) + (nb - 1) * b.var(0, ddof=1)) / (na + nb - 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pooled > 0, (a.mean(0) - b.mean(0)) / pooled, np.nan)


def _none_if_nan(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


@dataclass(frozen=True)
class HeadScore:
    """One head's attribution numbers (cohort ``a`` against cohort ``b``).

    Attributes:
        layer: original layer number; head: head index.
        mean_a, mean_b: cohort means of the per-item L2 norm.
        diff: ``mean_a - mean_b`` (the paper's ``overconf_score``).
        magnitude_d: Cohen's d of the norms.
        directional_d: Cohen's d of projections on ``mu_a - mu_b`` (in-sample).
        directional_d_heldout: the same with out-of-fold directions (None: too few items).
        cos: ``cos(mu_a, mu_b)``.
        collinear: ``cos >= collinear_cos``: a large d here is not an axis.
    """

    layer: int
    head: int
    mean_a: float
    mean_b: float
    diff: float
    magnitude_d: float
    directional_d: float
    directional_d_heldout: float | None
    cos: float
    collinear: bool

    def score(self, by: Ranking = "magnitude") -> float:
        """The ranking score (NaN when undefined)."""
        if by not in RANKINGS:
            raise WorkbenchError(f"unknown ranking {by!r}: use one of {', '.join(RANKINGS)}")
        value = {"magnitude": self.magnitude_d, "directional": self.directional_d}.get(
            by, self.directional_d_heldout
        )
        return float("nan") if value is None else float(value)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = _none_if_nan(value)
        return out


@dataclass(frozen=True)
class HeadAttribution:
    """Attribution of every head in the given layers; rank, take top-k, export.

    Attributes:
        heads: one :class:`HeadScore` per (layer, head), in layer then head order.
        names: the cohorts' names (``a``, ``b``), e.g. ``("cw", "cr")``.
        n_a, n_b: cohort sizes.
        n_tokens: N, the tokens per item the captures hold.
        collinear_cos: the cosine at which ``collinear`` fires.
        folds: folds behind ``directional_d_heldout`` (0: not computed).
    """

    heads: tuple[HeadScore, ...]
    names: tuple[str, str]
    n_a: int
    n_b: int
    n_tokens: int
    collinear_cos: float
    folds: int

    @property
    def layers(self) -> list[int]:
        return sorted({h.layer for h in self.heads})

    def head(self, layer: int, head: int) -> HeadScore:
        for h in self.heads:
            if (h.layer, h.head) == (layer, head):
                return h
        raise WorkbenchError(f"no head {layer}.{head} in this attribution (layers {self.layers})")

    def ranked(self, by: Ranking = "magnitude", *, absolute: bool = False) -> list[HeadScore]:
        """Heads by descending score (``absolute``: by |score|); undefined scores last."""

        def key(h: HeadScore) -> tuple[bool, float]:
            s = h.score(by)
            return (bool(np.isnan(s)), -(abs(s) if absolute else s) if not np.isnan(s) else 0.0)

        return sorted(self.heads, key=key)

    def top(self, k: int, by: Ranking = "magnitude", *, absolute: bool = False) -> list[HeadScore]:
        if k < 1:
            raise WorkbenchError(f"top k={k} must be >= 1")
        return self.ranked(by, absolute=absolute)[:k]

    def export(
        self, by: Ranking = "magnitude", k: int | None = None, *, absolute: bool = False
    ) -> list[tuple[int, int, float]]:
        """A plain list of ``(layer, head, score)`` (score rounded to 4 places), best first."""
        heads = (
            self.ranked(by, absolute=absolute) if k is None else self.top(k, by, absolute=absolute)
        )
        return [(h.layer, h.head, round(h.score(by), 4)) for h in heads]

    @property
    def collinear_heads(self) -> list[tuple[int, int]]:
        return [(h.layer, h.head) for h in self.heads if h.collinear]

    def to_json(self, top_k: int = 20) -> dict[str, Any]:
        k = min(top_k, len(self.heads))
        return {
            "cohorts": {
                "a": {"name": self.names[0], "n": self.n_a},
                "b": {"name": self.names[1], "n": self.n_b},
            },
            "n_tokens": self.n_tokens,
            "collinear_cos": self.collinear_cos,
            "folds": self.folds,
            "layers": self.layers,
            "top": {
                by: [list(t) for t in self.export(by, k)]
                for by in RANKINGS
                if by != "directional_heldout" or self.folds
            },
            "collinear_heads": [list(h) for h in self.collinear_heads],
            "heads": [h.to_json() for h in self.heads],
        }


def _fold_ids(mask: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    ids = np.full(mask.size, -1)
    where = rng.permutation(np.flatnonzero(mask))
    ids[where] = np.arange(where.size) % folds
    return ids


def _unit(d: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(d, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, d / norm, np.nan)


def _heldout_d(vec: np.ndarray, a: np.ndarray, b: np.ndarray, folds: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fold = np.maximum(_fold_ids(a, folds, rng), _fold_ids(b, folds, rng))
    proj = np.full(vec.shape[:2], np.nan)
    for k in range(folds):
        train, test = fold != k, fold == k
        u = _unit(vec[a & train].mean(0) - vec[b & train].mean(0))
        proj[test] = np.einsum("nhd,hd->nh", vec[test], u)
    return cohens_d(proj[a], proj[b])


def attribute_heads(
    activations: Mapping[int, ArrayLike],
    cohort_a: ArrayLike,
    cohort_b: ArrayLike,
    *,
    names: tuple[str, str] = ("cw", "cr"),
    collinear_cos: float = 0.99,
    folds: int = 5,
    seed: int = 0,
) -> HeadAttribution:
    """Magnitude and directional attribution of every head, cohort ``a`` against ``b``.

    Args:
        activations: ``{layer: (n_items, N, n_heads, head_dim)}`` (or 3-D), NaN = padding.
        cohort_a: boolean mask or indices of cohort ``a`` (e.g. confident-wrong).
        cohort_b: the same for ``b`` (e.g. confident-right); disjoint from ``a``.
        names: the cohorts' names for reports.
        collinear_cos: ``collinear`` fires at ``cos(mu_a, mu_b) >= collinear_cos``.
        folds: folds of ``directional_d_heldout``; 0 skips it (so does a cohort
            with fewer items than folds).
        seed: seed of the fold assignment.

    >>> store = FeatureStore("runs/feats")  # doctest: +SKIP
    >>> acts = layers_from_features({s: store.load(s) for s in store.sites}, n_layers=30)  # doctest: +SKIP
    >>> cohorts = cohorts_from_labels(correct, verbal)  # doctest: +SKIP
    >>> attr = attribute_heads(acts, cohorts["cw"], cohorts["cr"])  # doctest: +SKIP
    >>> attr.export("magnitude", k=3)  # doctest: +SKIP
    [(16, 5, 0.599), (20, 7, 0.5965), (3, 3, 0.4369)]
    """
    if not -1.0 <= collinear_cos <= 1.0:  # also refuses NaN
        raise WorkbenchError(
            f"collinear_cos={collinear_cos}: a cosine threshold lies in [-1, 1] (default 0.99)"
        )
    layers = as_layers(activations)
    n = next(iter(layers.values())).shape[0]
    a, b = as_mask(cohort_a, n, names[0]), as_mask(cohort_b, n, names[1])
    check_cohorts(a, b, names)
    use_folds = folds if folds >= 2 and min(a.sum(), b.sum()) >= folds else 0
    heads: list[HeadScore] = []
    n_tokens = 0
    for layer, x in layers.items():
        n_tokens = max(n_tokens, x.shape[1])
        keep = a | b
        norms, vec = pool_tokens(x[keep], layer=layer)
        ka, kb = a[keep], b[keep]
        mag_d = cohens_d(norms[ka], norms[kb])
        mu_a, mu_b = vec[ka].mean(0), vec[kb].mean(0)
        proj = np.einsum("nhd,hd->nh", vec, _unit(mu_a - mu_b))
        dir_d = cohens_d(proj[ka], proj[kb])
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = (mu_a * mu_b).sum(-1) / (
                np.linalg.norm(mu_a, axis=-1) * np.linalg.norm(mu_b, axis=-1)
            )
        held = _heldout_d(vec, ka, kb, use_folds, seed) if use_folds else None
        for h in range(x.shape[2]):
            heads.append(
                HeadScore(
                    layer=layer,
                    head=h,
                    mean_a=float(norms[ka, h].mean()),
                    mean_b=float(norms[kb, h].mean()),
                    diff=float(norms[ka, h].mean() - norms[kb, h].mean()),
                    magnitude_d=float(mag_d[h]),
                    directional_d=float(dir_d[h]),
                    directional_d_heldout=None if held is None else _none_if_nan(held[h]),
                    cos=float(cos[h]),
                    collinear=bool(cos[h] >= collinear_cos),
                )
            )
    return HeadAttribution(
        heads=tuple(heads),
        names=names,
        n_a=int(a.sum()),
        n_b=int(b.sum()),
        n_tokens=n_tokens,
        collinear_cos=collinear_cos,
        folds=use_folds,
    )


@dataclass(frozen=True)
class MaxDNull:
    """How large the largest magnitude d over all heads gets when cohorts are shuffled.

    Attributes:
        observed: the largest magnitude d (cohort ``a`` louder) over every head.
        null: that maximum under each shuffle of the cohort labels (sizes kept).
        p_value: ``(1 + #(null >= observed)) / (1 + n_shuffles)``: the top head's
            family-wise adjusted p.
        adjusted_p: every head's max-statistic adjusted p, in ``names`` order.
        names: ``"L<layer>.H<head>"`` per head.
    """

    observed: float
    null: tuple[float, ...]
    p_value: float
    adjusted_p: tuple[float, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def quantile_95(self) -> float:
        return float(np.quantile(self.null, 0.95))

    def to_json(self) -> dict[str, Any]:
        return {
            "observed": self.observed,
            "n_shuffles": len(self.null),
            "null_median": float(np.median(self.null)),
            "null_95": self.quantile_95,
            "null_max": float(max(self.null)),
            "p_value": self.p_value,
            "adjusted_p": dict(zip(self.names, self.adjusted_p, strict=True)),
        }


def max_magnitude_d_null(
    activations: Mapping[int, ArrayLike],
    cohort_a: ArrayLike,
    cohort_b: ArrayLike,
    *,
    n_shuffles: int = 200,
    seed: int = 0,
) -> MaxDNull:
    """A permutation null for the top head of a magnitude attribution.

    With hundreds of heads the largest Cohen d is large by chance alone; this
    reshuffles which items of ``a | b`` belong to ``a`` (same sizes) and records
    the largest d each time (:func:`probes.max_statistic_null`), so every
    head's d is read against the maximum chance gives, not against zero.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(40, 4, 3, 8))
    >>> a = np.arange(40) < 20
    >>> max_magnitude_d_null({7: x}, a, ~a, n_shuffles=50).p_value > 0.05
    True
    """
    from probes.familywise import max_statistic_null

    if n_shuffles < 1:
        raise WorkbenchError(f"n_shuffles {n_shuffles} must be >= 1")
    layers = as_layers(activations)
    n = next(iter(layers.values())).shape[0]
    a, b = as_mask(cohort_a, n, "a"), as_mask(cohort_b, n, "b")
    check_cohorts(a, b, ("a", "b"))
    keep = a | b
    norms = np.concatenate(
        [pool_tokens(x[keep], layer=layer)[0] for layer, x in layers.items()], axis=1
    )
    names = [f"L{layer}.H{h}" for layer, x in layers.items() for h in range(x.shape[2])]

    def magnitude_d(rows: np.ndarray) -> np.ndarray:
        return np.stack([cohens_d(norms[r], norms[~r]) for r in rows.astype(bool)])

    null = max_statistic_null(
        magnitude_d, a[keep], n_perm=n_shuffles, seed=seed, names=names
    )  # fmt: skip
    observed = float(np.nanmax(null.observed))
    return MaxDNull(
        observed=observed,
        null=null.null_max,
        p_value=null.adjusted_p[int(np.nanargmax(null.observed))],
        adjusted_p=null.adjusted_p,
        names=tuple(names),
    )
