"""The jaxtyping shape annotations on the probe functions hold, checked at runtime."""

from __future__ import annotations

import numpy as np
import pytest
from beartype import beartype
from jaxtyping import TypeCheckError, jaxtyped
from sklearn.linear_model import LogisticRegression

from probes.crossval import out_of_fold_scores
from probes.transfer import fit_and_score

checked_oof = jaxtyped(typechecker=beartype)(out_of_fold_scores)
checked_transfer = jaxtyped(typechecker=beartype)(fit_and_score)


def _data(n: int, d: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), np.arange(n) % 2


def test_annotated_shapes_accept_matching_inputs() -> None:
    X, y = _data(20)
    scores, folds = checked_oof(LogisticRegression(), X, y, folds=2, seed=0)
    assert scores.shape == (20,) and len(folds) == 2
    Xf, yf = _data(10, seed=1)
    result = checked_transfer(LogisticRegression(), X, y, Xf, yf, n_boot=10, n_perm=10)
    assert 0.0 <= result.auc.auc <= 1.0


def test_annotated_shapes_refuse_mismatched_rows_and_widths() -> None:
    X, y = _data(20)
    with pytest.raises(TypeCheckError):
        checked_oof(LogisticRegression(), X, y[:-1], folds=2, seed=0)  # 20 rows, 19 labels
    Xf, yf = _data(10, d=4, seed=1)
    with pytest.raises(TypeCheckError):
        checked_transfer(LogisticRegression(), X, y, Xf, yf)  # width 3 on train, 4 on fresh
