"""LEACE concept erasure of confounds from features (Belrose et al., 2023).

LEACE (``concept_erasure.LeaceEraser``, which needs torch: imported here,
inside :func:`leace_erase`, so ``import probes`` stays torch-free) is fitted on
the training features and the confounds' design columns (one-hot for a
categorical confound), then applied to the training and the fresh features.
On the training set it guarantees that no linear read-out of the erased
features predicts the confounds better than a constant: their
cross-covariance is zero. The exact guarantee is kept by fitting with
``constrain_cov_trace=False`` (the trace constraint mixes in an orthogonal
projection that can leave some covariance) and a tiny ``svd_tol``.

Erasure also removes whatever label information is linearly collinear with
the confounds, so a drop in the probe's AUC after erasure is evidence about
overlap, not proof that the probe read the confound.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(size=(200, 1)); X = rng.normal(size=(200, 5)) + z
>>> Xe, _ = leace_erase(X, X[:10], z)
>>> decodability(X, z) > 0.5, round(decodability(Xe, z), 6)
(True, 0.0)
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

__all__ = ["SVD_TOL", "decodability", "leace_erase"]

SVD_TOL = 1e-9
"""Singular values of the whitened cross-covariance under this are treated as zero."""


def leace_erase(
    train_X: np.ndarray, fresh_X: np.ndarray, Z_train: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Train and fresh features with the confounds ``Z_train`` erased (fitted on train).

    Args:
        train_X: training features ``(n_train, d)``.
        fresh_X: fresh features ``(n_fresh, d)``.
        Z_train: the confounds' design columns for the training items ``(n_train, k)``.
    """
    import torch
    from concept_erasure import LeaceFitter

    x = torch.as_tensor(np.ascontiguousarray(train_X, dtype=np.float64))
    z = torch.as_tensor(np.ascontiguousarray(Z_train, dtype=np.float64))
    fitter = LeaceFitter(
        x.shape[1], z.shape[1], dtype=torch.float64, constrain_cov_trace=False, svd_tol=SVD_TOL
    )
    eraser = fitter.update(x, z).eraser
    fresh = torch.as_tensor(np.ascontiguousarray(fresh_X, dtype=np.float64))
    return eraser(x).numpy().copy(), eraser(fresh).numpy().copy()


def decodability(X: np.ndarray, Z: np.ndarray, *, alpha: float = 1.0) -> float:
    """In-sample R² of a ridge read-out of the confound columns ``Z`` from ``X``.

    The share of the confounds' variance (all columns pooled) that a linear
    read-out fitted and scored on the same items explains: 0 means no linear
    read-out beats the mean, LEACE's guarantee on its training set.
    """
    Xs = StandardScaler().fit_transform(X)
    Zc = Z - Z.mean(axis=0)
    pred = Ridge(alpha=alpha).fit(Xs, Zc).predict(Xs).reshape(Zc.shape)
    total = float((Zc**2).sum())
    return 0.0 if total == 0 else max(0.0, 1.0 - float(((Zc - pred) ** 2).sum()) / total)
