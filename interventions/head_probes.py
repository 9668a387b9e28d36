"""One linear probe per head, ranked by held-out AUC.

Each head's features are its ``o_proj`` input averaged over the item's real
tokens (``head_dim`` wide). The probe is ``probes.LinearProbe`` (standardise,
then logistic regression). Held out means out-of-fold scores of a stratified
k-fold split (every item scored by a probe that never saw it), or, when a
fresh set is given, a probe fitted on all training items and scored on the
fresh set; the ranking uses the fresh AUC when there is one. With a fresh set
and ``n_null > 0``, a max-statistic permutation null over every head
(:func:`probes.screen_null`) gives each head a family-wise adjusted p, so the
best head is read against the best that chance gives among all of them.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(60, 2, 3, 4))
>>> y = np.arange(60) % 2
>>> x[y == 1, :, 2, 0] += 2.0  # head 2 carries the label
>>> result = head_probes({4: x}, y, n_boot=0)
>>> result.export(k=1)
[(4, 2, 0.9378)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from interventions.activations import as_layers, pool_tokens
from probes import AUCResult, LinearProbe, auc_with_ci
from probes._checks import check_C
from probes.crossval import out_of_fold_scores
from probes.familywise import FamilywiseNull, screen_null
from workbench.core.errors import WorkbenchError

__all__ = ["HeadProbe", "HeadProbes", "head_probes"]


@dataclass(frozen=True)
class HeadProbe:
    """A head's probe: out-of-fold CV AUC, and fresh AUC when a fresh set was given."""

    layer: int
    head: int
    cv: AUCResult
    fresh: AUCResult | None = None
    adjusted_p: float | None = None

    @property
    def auc(self) -> float:
        """The held-out AUC the ranking uses (fresh when available, else CV)."""
        return (self.fresh or self.cv).auc

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "head": self.head,
            "auc": self.auc,
            "cv": self.cv.to_json(),
            "fresh": None if self.fresh is None else self.fresh.to_json(),
            "adjusted_p": self.adjusted_p,
        }


@dataclass(frozen=True)
class HeadProbes:
    """Per-head probes; ``held_out`` says which AUC ranks them (``cv`` or ``fresh``)."""

    probes: tuple[HeadProbe, ...]
    held_out: str
    folds: int
    C: float
    n_pos: int
    n_neg: int
    null: FamilywiseNull | None = None

    def ranked(self) -> list[HeadProbe]:
        return sorted(self.probes, key=lambda p: -p.auc)

    def export(self, k: int | None = None) -> list[tuple[int, int, float]]:
        """``(layer, head, held-out AUC)`` best first (AUC rounded to 4 places)."""
        ranked = self.ranked() if k is None else self.ranked()[:k]
        return [(p.layer, p.head, round(p.auc, 4)) for p in ranked]

    def to_json(self) -> dict[str, Any]:
        return {
            "held_out": self.held_out,
            "folds": self.folds,
            "C": self.C,
            "n_pos": self.n_pos,
            "n_neg": self.n_neg,
            "ranked": [list(t) for t in self.export()],
            "heads": [p.to_json() for p in self.probes],
            "familywise": None if self.null is None else self.null.to_json(),
        }


def _labels(y: ArrayLike, n: int, what: str, folds: int) -> np.ndarray:
    arr = np.asarray(y, dtype=np.float64).ravel()
    if arr.size != n:
        raise WorkbenchError(f"{what} has {arr.size} labels for {n} items: pass one label per item")
    known = arr[~np.isnan(arr)]
    if not np.isin(known, (0.0, 1.0)).all():
        raise WorkbenchError(f"{what} must be 0/1 (NaN = unlabelled): binarise first")
    n_pos, n_neg = int(known.sum()), int((known == 0).sum())
    if min(n_pos, n_neg) < folds:
        raise WorkbenchError(
            f"{what} has {n_pos} positives and {n_neg} negatives: each class needs at least "
            f"{folds} items for {folds}-fold probes; lower folds or add items"
        )
    return arr


def head_probes(
    activations: Mapping[int, ArrayLike],
    labels: ArrayLike,
    *,
    fresh: Mapping[int, ArrayLike] | None = None,
    fresh_labels: ArrayLike | None = None,
    C: float = 1.0,
    folds: int = 5,
    seed: int = 0,
    n_boot: int = 200,
    n_null: int = 0,
) -> HeadProbes:
    """Fit one ``LinearProbe`` per head and score it on held-out items.

    Args:
        activations: ``{layer: (n_items, N, n_heads, head_dim)}`` (or 3-D); NaN = padding.
        labels: 0/1 per item (NaN: left out), e.g. 1 = confident-wrong, 0 = confident-right.
        fresh: activations of a fresh held-out set (same layers), optional.
        fresh_labels: its labels.
        C: inverse regularisation of the probe.
        folds: stratified folds of the CV scores.
        seed: seed of the fold split and the bootstrap.
        n_boot: bootstrap resamples of each AUC interval.
        n_null: label shuffles of the family-wise null over all heads (needs the
            fresh set: the null refits on the train/fresh split; 0: none).

    >>> result = head_probes(acts, cw_vs_cr, fresh=fresh_acts, fresh_labels=fresh_y)  # doctest: +SKIP
    >>> result.export(k=2)  # doctest: +SKIP
    [(12, 4, 0.71), (9, 0, 0.66)]
    """
    if folds < 2:
        raise WorkbenchError(f"folds={folds}: cross-validation needs at least 2 folds")
    check_C(C)
    if n_null > 0 and fresh is None:
        raise WorkbenchError(
            f"n_null={n_null}: the family-wise null refits every head on the train/fresh "
            "split; pass fresh and fresh_labels (or n_null=0)"
        )
    layers = as_layers(activations)
    n = next(iter(layers.values())).shape[0]
    y = _labels(labels, n, "labels", folds)
    keep = ~np.isnan(y)
    fresh_layers: dict[int, np.ndarray] | None = None
    if fresh is not None or fresh_labels is not None:
        if fresh is None or fresh_labels is None:
            raise WorkbenchError("pass both fresh and fresh_labels, or neither")
        fresh_layers = as_layers(fresh)
        if sorted(fresh_layers) != sorted(layers):
            raise WorkbenchError(
                f"fresh layers {sorted(fresh_layers)} differ from training layers {sorted(layers)}"
            )
        n_fresh = next(iter(fresh_layers.values())).shape[0]
        fy = _labels(fresh_labels, n_fresh, "fresh_labels", 1)
        fkeep = ~np.isnan(fy)
    out: list[HeadProbe] = []
    members: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for layer, x in layers.items():
        _, vec = pool_tokens(x[keep], layer=layer)
        fvec = None
        if fresh_layers is not None:
            _, fvec = pool_tokens(fresh_layers[layer][fkeep], layer=layer)
            members[0].extend(vec[:, h] for h in range(vec.shape[1]))
            members[1].extend(fvec[:, h] for h in range(fvec.shape[1]))
        for h in range(vec.shape[1]):
            probe = LinearProbe(C=C)
            scores, _ = out_of_fold_scores(
                probe, vec[:, h], y[keep].astype(int), folds=folds, seed=seed
            )
            cv = auc_with_ci(y[keep], scores, n_boot=n_boot, seed=seed)
            fresh_auc = None
            if fvec is not None:
                fitted = LinearProbe(C=C).fit(vec[:, h], y[keep].astype(int))
                p = fitted.predict_proba(fvec[:, h])[:, 1]
                fresh_auc = auc_with_ci(fy[fkeep], p, n_boot=n_boot, seed=seed)
            out.append(HeadProbe(layer=layer, head=h, cv=cv, fresh=fresh_auc))
    known = y[keep]
    null = None
    if n_null > 0:
        names = [f"L{p.layer}.H{p.head}" for p in out]
        null = screen_null(members[0], known, members[1], fy[fkeep], C=C, n_perm=n_null,
                           seed=seed, names=names)  # fmt: skip
        out = [replace(p, adjusted_p=q) for p, q in zip(out, null.adjusted_p, strict=True)]
    return HeadProbes(
        probes=tuple(out),
        held_out="fresh" if fresh_layers is not None else "cv",
        folds=folds,
        C=C,
        n_pos=int(known.sum()),
        n_neg=int((known == 0).sum()),
        null=null,
    )
