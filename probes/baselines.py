"""Confound checks: does the probe beat what a trivial feature of the answer already gives?

The five steps rule out generator quirks, a wrong target, a wrong read-out and
one model's idiosyncrasy, but not a confound that every split shares: a
wrong answer may simply be *longer* (a rambling, truncated calculation) or
belong to the harder *task family*. So beside the probe's fresh AUC this
module reports

* baselines: a logistic regression on one trivial feature (response length in
  tokens, the truncated flag, the task family), fitted on the training split
  and scored on each fresh split, like the probe;
* the probe's AUC *within* each family and among untruncated answers, where
  those confounds are held fixed.

A probe that does not beat the best baseline is reported as possibly reading
the confound, whatever the five steps say.

>>> import numpy as np
>>> y = np.array([1, 1, 0, 0]); length = np.array([5.0, 6.0, 30.0, 40.0])
>>> round(baseline_auc(length, y, length, y).auc, 2)
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sklearn.linear_model import LogisticRegression

from probes.metrics import AUCResult, auc_with_ci

__all__ = ["ConfoundCheck", "baseline_auc", "confound_check"]


class SplitLabels(Protocol):
    """One split's labels: per-item rows (``family``, ``n_tokens``, ``truncated``) and 0/1 arrays."""

    @property
    def rows(self) -> Sequence[Mapping[str, Any]]: ...

    def array(self, axis: str) -> np.ndarray: ...


MARGIN = 0.02
"""The probe must beat the best baseline's fresh AUC by more than this to count as beating it."""


def _features(labels: SplitLabels) -> dict[str, np.ndarray]:
    rows = labels.rows
    families = sorted({str(r["family"]) for r in rows})
    out = {
        "response length (tokens)": np.array([r["n_tokens"] for r in rows], dtype=np.float64),
        "truncated": np.array([r["truncated"] for r in rows], dtype=np.float64),
    }
    if len(families) > 1:
        out["task family"] = np.array([families.index(str(r["family"])) for r in rows], float)
    return out


def baseline_auc(
    x_train: np.ndarray, y_train: np.ndarray, x_fresh: np.ndarray, y_fresh: np.ndarray, *,
    n_boot: int = 0, seed: int = 0,
) -> AUCResult:  # fmt: skip
    """AUC on fresh of a one-feature logistic regression fitted on train (direction learned there)."""
    model = LogisticRegression().fit(x_train.reshape(-1, 1), y_train.astype(int))
    scores = model.predict_proba(x_fresh.reshape(-1, 1))[:, 1]
    return auc_with_ci(y_fresh.astype(int), scores, n_boot=n_boot, seed=seed)


def _both(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < y.size


@dataclass(frozen=True)
class ConfoundCheck:
    """Per fresh split: the probe's AUC, each baseline's, and the probe within groups."""

    probe: Mapping[str, AUCResult | None]
    baselines: Mapping[str, Mapping[str, AUCResult | None]]
    within: Mapping[str, Mapping[str, AUCResult | None]]

    def best_baseline(self, split: str) -> tuple[str, AUCResult] | None:
        found = [(n, r) for n, r in self.baselines[split].items() if r is not None]
        return max(found, key=lambda t: t[1].auc) if found else None

    def beats_baselines(self, split: str) -> bool | None:
        """Whether the probe's AUC exceeds the best baseline's by more than ``MARGIN``."""
        best, probe = self.best_baseline(split), self.probe.get(split)
        if best is None or probe is None:
            return None
        return probe.auc > best[1].auc + MARGIN

    def to_json(self) -> dict[str, Any]:
        def j(r: AUCResult | None) -> dict[str, Any] | None:
            return None if r is None else r.to_json()

        return {
            "margin": MARGIN,
            "splits": {
                split: {
                    "probe": j(self.probe[split]),
                    "baselines": {k: j(v) for k, v in self.baselines[split].items()},
                    "within": {k: j(v) for k, v in self.within[split].items()},
                    "best_baseline": (self.best_baseline(split) or (None,))[0],
                    "probe_beats_baselines": self.beats_baselines(split),
                }
                for split in self.probe
            },
        }


def confound_check(
    train: SplitLabels,
    fresh: Mapping[str, tuple[SplitLabels, np.ndarray]],
    *,
    n_boot: int = 200,
    seed: int = 0,
) -> ConfoundCheck:
    """Baselines and within-group AUCs for each fresh split.

    Args:
        train: the training split's labels (the baselines are fitted there).
        fresh: split name -> (its labels, the probe's p_correct on its items).
        n_boot: bootstrap resamples per interval.
        seed: bootstrap seed.
    """
    y_tr = train.array("correct")
    f_tr = _features(train)
    probe: dict[str, AUCResult | None] = {}
    baselines: dict[str, dict[str, AUCResult | None]] = {}
    within: dict[str, dict[str, AUCResult | None]] = {}
    for split, (labels, scores) in fresh.items():
        y = labels.array("correct")
        scores = np.asarray(scores, dtype=np.float64)
        probe[split] = auc_with_ci(y, scores, n_boot=n_boot, seed=seed) if _both(y) else None
        feats = _features(labels)
        baselines[split] = {
            name: baseline_auc(f_tr[name], y_tr, feats[name], y, n_boot=n_boot, seed=seed)
            if _both(y) and _both(f_tr[name] > f_tr[name].min()) and name in feats
            else None
            for name in f_tr
        }
        groups = {f"family = {f}": np.array([r["family"] == f for r in labels.rows])
                  for f in sorted({str(r["family"]) for r in labels.rows})}  # fmt: skip
        groups["not truncated"] = ~labels.array("truncated").astype(bool)
        within[split] = {
            name: auc_with_ci(y[m], scores[m], n_boot=n_boot, seed=seed) if _both(y[m]) else None
            for name, m in groups.items()
        }
    return ConfoundCheck(probe, baselines, within)
