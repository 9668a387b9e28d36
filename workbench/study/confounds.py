"""Step 6 in the study: response length, truncation and task family as named confounds.

For every probe the study fits, the confounds come from the label rows of the
training split and of one fresh split: ``response length (tokens)`` (``num``),
``truncated`` and ``task family`` (``cat``). A confound that is constant on the
training split cannot confound anything there and is left out, with the
reason (e.g. no answer hit the cap). The main fresh set runs through
:func:`probes.falsify` (step 6 of its report); every further fresh set
(``fresh_hard``) runs :func:`probes.confound_step` on the same probe's
out-of-fold training scores and its scores on that set.

>>> rows = [{"n_tokens": n, "truncated": False, "family": f} for n, f in ((3, "a"), (5, "b"))]
>>> sorted(confound_values(rows))
['response length (tokens)', 'task family', 'truncated']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from probes import Confound, ConfoundStep, LinearProbe, confound_step
from probes.confound_inputs import check_confounds
from workbench.core.errors import WorkbenchError

__all__ = ["NAMES", "confound_values", "extra_confound_step", "study_confounds"]

NAMES = ("response length (tokens)", "truncated", "task family")


def confound_values(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[np.ndarray, str]]:
    """Per confound name: one value per row and its kind."""
    return {
        NAMES[0]: (np.array([float(r["n_tokens"]) for r in rows]), "num"),
        NAMES[1]: (np.array([str(bool(r["truncated"])) for r in rows], dtype=object), "cat"),
        NAMES[2]: (np.array([str(r["family"]) for r in rows], dtype=object), "cat"),
    }


def study_confounds(
    train: Sequence[Mapping[str, Any]], fresh: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, Confound], dict[str, str]]:
    """The named confounds of a train/fresh pair, and those left out with the reason."""
    tr, fr = confound_values(train), confound_values(fresh)
    kept: dict[str, Confound] = {}
    dropped: dict[str, str] = {}
    for name, (values, kind) in tr.items():
        c = Confound(values, fr[name][0], kind)
        try:
            kept.update(check_confounds({name: c}, len(train), len(fresh)))
        except WorkbenchError as e:
            dropped[name] = str(e)
    return kept, dropped


def extra_confound_step(
    train_X: np.ndarray,
    y_train: np.ndarray,
    oof: Sequence[float],
    fresh_X: np.ndarray,
    y_fresh: np.ndarray,
    scores: Sequence[float] | np.ndarray,
    confounds: Mapping[str, Confound],
    *,
    C: float,
    folds: int,
    seed: int,
    n_boot: int,
    n_perm: int,
    erase: bool,
) -> ConfoundStep | None:
    """Step 6 on a further fresh set (None without confounds or with one class there)."""
    yf = np.asarray(y_fresh).astype(int)
    if not confounds or yf.min() == yf.max():
        return None
    n_tr, n_fr = len(y_train), len(yf)
    return confound_step(
        {"X": train_X, "y": y_train, "Xf": fresh_X, "yf": yf,
         "oof": np.asarray(oof), "pf": np.asarray(scores)},
        confounds, estimator=LinearProbe(C=C),
        train_keep=np.ones(n_tr, bool), fresh_keep=np.ones(n_fr, bool),
        folds=folds, seed=seed, n_boot=n_boot, n_perm=n_perm, erase=erase,
    )  # fmt: skip
