"""Family-wise nulls for screens: the best of many layers or heads, read against chance.

A screen (a probe per layer of a depth curve, per attention head, an
attribution score per head) reports its best member; with 30 or 270 members
the best is large by chance alone. The max-statistic permutation null
(Westfall and Young) shuffles the labels, recomputes *every* member's
statistic, and keeps the maximum; each member's adjusted p-value is the share
of shuffles whose maximum reaches its observed statistic,
``(1 + #{max_b >= observed_j}) / (1 + n_perm)``, which controls the
family-wise error rate (the chance that any member of a pure-noise screen
comes out significant) at the nominal level.

:func:`max_statistic_null` takes any statistic over label rows;
:func:`screen_null` is the common case, a :class:`~probes.LinearProbe` per
member refitted on the train split under every shuffle and scored on the
fresh split (fresh AUC), with the refits batched
(:mod:`probes.batched_logistic`).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y, yf = np.arange(60) % 2, np.arange(50) % 2
>>> train = [rng.normal(size=(60, 4)) for _ in range(5)]
>>> fresh = [rng.normal(size=(50, 4)) for _ in range(5)]
>>> train[3][:, 0] += 2 * y; fresh[3][:, 0] += 2 * yf
>>> r = screen_null(train, y, fresh, yf, n_perm=50)
>>> r.best, r.best_p < 0.05, r.adjusted_p[0] > 0.05
(3, True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata
from threadpoolctl import threadpool_limits

from probes._checks import as_features, check_C
from probes.batched_logistic import fit_batched
from probes.metrics import _auc_from_ranks
from workbench.core.errors import WorkbenchError

__all__ = ["DEFAULT_N_PERM", "FamilywiseNull", "max_statistic_null", "screen_null"]

DEFAULT_N_PERM = 200
"""Label shuffles of a screen's null: the smallest adjusted p is 1/201."""


@dataclass(frozen=True)
class FamilywiseNull:
    """Each member's statistic with its max-statistic adjusted p-value.

    Attributes:
        observed: the statistic of every member on the real labels.
        adjusted_p: per member, ``(1 + #{null_max >= observed}) / (1 + n_perm)``.
        null_max: the maximum over members under each shuffle.
        names: a name per member (e.g. ``"L12"`` or ``"L12.H3"``), or None.
    """

    observed: tuple[float, ...]
    adjusted_p: tuple[float, ...]
    null_max: tuple[float, ...]
    names: tuple[str, ...] | None = None

    @property
    def best(self) -> int:
        """Index of the member with the largest observed statistic."""
        return int(np.nanargmax(self.observed))

    @property
    def best_p(self) -> float:
        """The adjusted p-value of the best member."""
        return self.adjusted_p[self.best]

    @property
    def n_perm(self) -> int:
        return len(self.null_max)

    def to_json(self) -> dict[str, Any]:
        null = np.asarray(self.null_max)
        return {
            "n_perm": self.n_perm,
            "best": self.best,
            "best_name": None if self.names is None else self.names[self.best],
            "best_observed": self.observed[self.best],
            "best_adjusted_p": self.best_p,
            "null_max_median": float(np.median(null)),
            "null_max_95": float(np.quantile(null, 0.95)),
            "observed": list(self.observed),
            "adjusted_p": list(self.adjusted_p),
            "names": None if self.names is None else list(self.names),
        }


def _shuffles(y: np.ndarray, groups: np.ndarray, n_perm: int, seed: int) -> np.ndarray:
    """``n_perm`` rows of ``y`` shuffled within each group (class counts per group kept)."""
    rng = np.random.default_rng(seed)
    out = np.broadcast_to(y, (n_perm, y.size)).copy()
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        out[:, idx] = rng.permuted(out[:, idx], axis=1)
    return out


def max_statistic_null(
    statistic: Callable[[np.ndarray], ArrayLike],
    labels: ArrayLike,
    *,
    groups: ArrayLike | None = None,
    n_perm: int = DEFAULT_N_PERM,
    seed: int = 0,
    chunk: int = 50,
    names: Sequence[str] | None = None,
) -> FamilywiseNull:
    """Max-statistic permutation null of any screen.

    Args:
        statistic: label rows ``(k, n)`` -> statistics ``(k, m)``, one per
            member (larger = stronger; NaN = undefined, never the maximum).
        labels: the real labels ``(n,)``.
        groups: shuffle only within each group (e.g. 0 for train items, 1 for
            fresh ones, so each set keeps its class counts); default one group.
        n_perm: label shuffles.
        seed: seed of the shuffles.
        chunk: shuffles passed to ``statistic`` at once.
        names: a name per member.

    >>> import numpy as np
    >>> y = np.r_[np.zeros(10), np.ones(10)]
    >>> x = np.c_[y, np.random.default_rng(0).normal(size=(20, 3))]
    >>> diff = lambda Y: (Y @ x) / 10 - ((1 - Y) @ x) / 10
    >>> r = max_statistic_null(diff, y, n_perm=99)
    >>> r.best, r.best_p < 0.05, r.adjusted_p[1] > 0.05
    (0, True, True)
    """
    if n_perm < 1:
        raise WorkbenchError(f"n_perm={n_perm}: a permutation null needs at least 1 shuffle")
    y = np.asarray(labels)
    obs = np.asarray(statistic(y[None, :]), dtype=np.float64).reshape(-1)
    if names is not None and len(names) != obs.size:
        raise WorkbenchError(f"{len(names)} names for {obs.size} members: pass one name each")
    g = np.zeros(y.size, int) if groups is None else np.asarray(groups)
    perms = _shuffles(y, g, n_perm, seed)
    maxima = []
    for start in range(0, n_perm, chunk):
        stats = np.asarray(statistic(perms[start : start + chunk]), dtype=np.float64)
        with np.errstate(invalid="ignore"):
            maxima.append(np.where(np.isnan(stats), -np.inf, stats).max(axis=1))
    null = np.concatenate(maxima)
    adj = (1 + (null[None, :] >= obs[:, None] - 1e-12).sum(axis=1)) / (1 + n_perm)
    adj = np.where(np.isnan(obs), np.nan, adj)
    return FamilywiseNull(
        tuple(obs.tolist()),
        tuple(adj.tolist()),
        tuple(null.tolist()),
        None if names is None else tuple(names),
    )


def screen_null(
    train: Sequence[ArrayLike],
    y_train: ArrayLike,
    fresh: Sequence[ArrayLike],
    y_fresh: ArrayLike,
    *,
    C: float = 1.0,
    n_perm: int = DEFAULT_N_PERM,
    seed: int = 0,
    names: Sequence[str] | None = None,
    blas_threads: int | None = 1,
) -> FamilywiseNull:
    """Fresh AUC of a :class:`~probes.LinearProbe` per member, with a max-statistic null.

    Each shuffle permutes the training labels and the fresh labels (each set
    keeps its class counts), refits every member's probe on the shuffled
    training labels and scores it against the shuffled fresh labels.

    Args:
        train: one ``(n_train, d_j)`` feature matrix per member (layer, head).
        y_train: 0/1 training labels.
        fresh: the members' fresh matrices, same order.
        y_fresh: 0/1 fresh labels.
        C: the probe's inverse regularisation.
        n_perm: label shuffles.
        seed: seed of the shuffles.
        names: a name per member.
        blas_threads: BLAS threads while fitting (one is fastest for these sizes).
    """
    check_C(C)
    if len(train) != len(fresh) or not train:
        raise WorkbenchError(
            f"{len(train)} training and {len(fresh)} fresh matrices: pass one of each per member"
        )
    y = np.asarray(y_train).astype(np.int8).ravel()
    yf = np.asarray(y_fresh).astype(np.int8).ravel()
    for what, labels in (("train", y), ("fresh", yf)):
        if not 0 < int(labels.sum()) < labels.size:
            raise WorkbenchError(f"{what} labels have one class: a screen needs both classes")
    mats = [(as_features(a, f"member {j} train"), as_features(b, f"member {j} fresh"))
            for j, (a, b) in enumerate(zip(train, fresh, strict=True))]  # fmt: skip
    for j, (a, b) in enumerate(mats):
        if a.shape[0] != y.size or b.shape[0] != yf.size or a.shape[1] != b.shape[1]:
            raise WorkbenchError(
                f"member {j}: train {a.shape} and fresh {b.shape} features for {y.size} train "
                f"and {yf.size} fresh labels: pass matching rows and widths"
            )
    n, n_pos_f = y.size, int(yf.sum())

    def fresh_aucs(rows: np.ndarray) -> np.ndarray:
        Yt, Yf = rows[:, :n], rows[:, n:]
        out = np.empty((rows.shape[0], len(mats)))
        for j, (a, b) in enumerate(mats):
            scores = fit_batched(a, Yt, C=C).decision(b)
            out[:, j] = _auc_from_ranks(rankdata(scores, axis=1), Yf, n_pos_f, yf.size - n_pos_f)
        return out

    groups = np.r_[np.zeros(n, int), np.ones(yf.size, int)]
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        return max_statistic_null(
            fresh_aucs, np.r_[y, yf], groups=groups, n_perm=n_perm, seed=seed,
            chunk=n_perm, names=names,
        )  # fmt: skip
