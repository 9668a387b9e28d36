"""Where in the network the signal lives: probe AUC at every layer.

At each layer ``L`` the residual stream ``resid(L)`` at the final response token
gets the same linear probe: a stratified k-fold CV AUC on the training set, and
the AUC of a probe fitted on all training items and scored on each fresh set.
Intervals are bootstrap intervals. With ``n_null > 0`` each fresh set also gets
a max-statistic permutation null over the layers (:func:`probes.screen_null`:
labels shuffled, every layer's probe refitted on the train split and scored
on the fresh one, the maximum kept), so each layer's fresh AUC has a
family-wise adjusted p and the best layer is reported with it, never as a
bare best of many.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = np.r_[np.zeros(20), np.ones(20)]
>>> layers = [rng.normal(size=(40, 3)) + k * y[:, None] for k in range(3)]
>>> curve = depth_curve(layers, y, {"fresh": (layers, y)}, C=1.0, folds=4, n_boot=0)
>>> [round(r.auc, 2) for r in curve.cv][2] > 0.9
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone

from probes.crossval import out_of_fold_scores
from probes.estimators import LinearProbe
from probes.familywise import FamilywiseNull, screen_null
from probes.metrics import AUCResult, auc_with_ci
from workbench.core.progress import progress_bar

__all__ = ["DepthCurve", "depth_curve"]


@dataclass(frozen=True)
class DepthCurve:
    """CV AUC and transfer AUC per layer (``None`` where a fresh set has one class)."""

    layers: tuple[int, ...]
    cv: tuple[AUCResult, ...]
    transfer: Mapping[str, tuple[AUCResult | None, ...]]
    C: float
    folds: int
    nulls: Mapping[str, FamilywiseNull] = field(default_factory=dict)

    def best_layer(self) -> int:
        """The layer with the highest CV AUC."""
        return self.layers[int(np.argmax([r.auc for r in self.cv]))]

    def best_fresh(self, name: str) -> tuple[int, float, float | None]:
        """(layer, fresh AUC, family-wise adjusted p or None) of the best layer on ``name``."""
        aucs = [-1.0 if r is None else r.auc for r in self.transfer[name]]
        k = int(np.argmax(aucs))
        null = self.nulls.get(name)
        return self.layers[k], aucs[k], None if null is None else null.adjusted_p[k]

    def to_json(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "C": self.C,
            "folds": self.folds,
            "cv": [r.to_json() for r in self.cv],
            "transfer": {
                k: [None if r is None else r.to_json() for r in v] for k, v in self.transfer.items()
            },
            "best_cv_layer": self.best_layer(),
            "familywise": {k: v.to_json() for k, v in self.nulls.items()},
        }


def depth_curve(
    train: Sequence[np.ndarray],
    y_train: np.ndarray,
    fresh: Mapping[str, tuple[Sequence[np.ndarray], np.ndarray]],
    *,
    C: float,
    folds: int = 5,
    seed: int = 0,
    n_boot: int = 200,
    layers: Sequence[int] | None = None,
    progress: bool = False,
    n_null: int = 0,
) -> DepthCurve:
    """Probe AUC at every layer.

    Args:
        train: one ``(n_train, d)`` array per layer.
        y_train: 0/1 training labels (each class at least ``folds`` times).
        fresh: name -> (one array per layer, 0/1 labels) for each held-out set.
        C: the probe's regularisation (the one the pipeline chose).
        folds: CV folds.
        seed: fold split and bootstrap seed.
        n_boot: bootstrap resamples per interval.
        layers: the layer numbers (default 0..n-1).
        progress: show a progress bar.
        n_null: label shuffles of the family-wise null per fresh set (0: none;
            :data:`probes.familywise.DEFAULT_N_PERM` is 200).
    """
    numbers = tuple(range(len(train)) if layers is None else layers)
    y = np.asarray(y_train).astype(np.int8)
    probe = LinearProbe(C=C)
    cv: list[AUCResult] = []
    transfer: dict[str, list[AUCResult | None]] = {name: [] for name in fresh}
    with progress_bar("depth curve", len(train), progress) as bar:
        for i, X in enumerate(train):
            scores, _ = out_of_fold_scores(probe, X, y, folds=folds, seed=seed)
            cv.append(auc_with_ci(y, scores, n_boot=n_boot, seed=seed))
            fitted = clone(probe).fit(X, y)
            for name, (Xs, yf) in fresh.items():
                yf = np.asarray(yf).astype(np.int8)
                if yf.min() == yf.max():
                    transfer[name].append(None)
                    continue
                p = fitted.predict_proba(Xs[i])[:, 1]
                transfer[name].append(auc_with_ci(yf, p, n_boot=n_boot, seed=seed))
            bar.advance(1)
    nulls = {}
    if n_null > 0:
        names = [f"L{k}" for k in numbers]
        for name, (Xs, yf) in fresh.items():
            if transfer[name] and transfer[name][0] is not None:
                nulls[name] = screen_null(
                    train, y, Xs, yf, C=C, n_perm=n_null, seed=seed, names=names
                )
    return DepthCurve(
        numbers, tuple(cv), {k: tuple(v) for k, v in transfer.items()}, float(C), folds, nulls
    )
