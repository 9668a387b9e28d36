"""Many L2 logistic regressions on the same features at once (one per label row).

A permutation null refits the same probe on hundreds of shuffled label
vectors over the same features. :func:`fit_batched` solves all of them
together by damped Newton steps, for exactly the objective of
:class:`probes.LinearProbe` (``StandardScaler`` then scikit-learn's
``LogisticRegression(C)``: the log-loss summed over items plus
``||w||^2 / (2C)``, intercept unpenalised), so the fits agree with it to
solver tolerance. When features outnumber items the problem is first
reduced to the row space of the standardised training features (an SVD; the
penalised solution lies there), so a fit costs the same at width 576 as at
width 110. Fixed-curvature (Böhning) steps, one matrix for all rows, do most
of the work; exact Newton steps finish the rows they leave.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(60, 5)); y = (X[:, 0] > 0).astype(float)
>>> probe = fit_batched(X, np.stack([y, 1 - y]), C=1.0)
>>> s = probe.decision(X)
>>> bool(((s[0] > 0) == y).mean() > 0.9), bool(np.allclose(s[0], -s[1], atol=1e-6))
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BatchedProbe", "fit_batched"]

_MAX_ITER = 100
_BOUND_ITER = 50
_TOL = 1e-10


@dataclass(frozen=True, eq=False)
class BatchedProbe:
    """Fitted probes, one per label row: ``decision(X)`` gives their logits per row."""

    mean: np.ndarray
    scale: np.ndarray
    basis: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int

    def decision(self, X: np.ndarray) -> np.ndarray:
        """Logits ``(n_rows, n_items)`` of every probe on ``X``."""
        Z = ((np.asarray(X, dtype=np.float64) - self.mean) / self.scale) @ self.basis
        return np.asarray(self.coef @ Z.T + self.intercept[:, None])


def _objective(theta: np.ndarray, A: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    f = theta @ A.T  # (B, n) logits
    loss = np.logaddexp(0.0, f).sum(axis=1) - (Y * f).sum(axis=1)
    return np.asarray(loss + 0.5 * lam * (theta[:, :-1] ** 2).sum(axis=1))


def _converged(step: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(step).max(axis=1) < _TOL * (1 + np.abs(theta).max(axis=1)))


def _bound_steps(
    theta: np.ndarray, A: np.ndarray, Y: np.ndarray, penalty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Böhning's fixed-curvature steps: the logistic Hessian is at most ``A'A / 4``,
    so steps with that one matrix (factored once for every row) descend monotonically;
    cheap per step, they finish the near-chance fits of shuffled labels. Rows still
    moving after ``_BOUND_ITER`` steps are left to Newton (returned as active)."""
    bound = 0.25 * A.T @ A + np.diag(penalty)
    inv = np.linalg.inv(bound)
    active = np.ones(theta.shape[0], dtype=bool)
    for _ in range(_BOUND_ITER):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        th = theta[idx]
        p = 1.0 / (1.0 + np.exp(-(th @ A.T)))
        step = ((p - Y[idx]) @ A + penalty * th) @ inv
        theta[idx] = th - step
        active[idx[_converged(step, theta[idx])]] = False
    return theta, active


def fit_batched(X: np.ndarray, Y: np.ndarray, *, C: float = 1.0) -> BatchedProbe:
    """Fit one standardised L2 logistic regression per row of ``Y`` on the same ``X``.

    Args:
        X: training features ``(n, d)``.
        Y: 0/1 labels ``(n_rows, n)``, each row with both classes.
        C: inverse regularisation strength (as in :class:`probes.LinearProbe`).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.atleast_2d(np.asarray(Y, dtype=np.float64))
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0  # as StandardScaler
    Xs = (X - mean) / scale
    _, s, vt = np.linalg.svd(Xs, full_matrices=False)
    keep = s > s[0] * 1e-12 if s.size else s > 0
    basis = vt[keep].T  # (d, r): w = basis @ beta, same norm
    A = np.hstack([Xs @ basis, np.ones((X.shape[0], 1))])  # (n, r + 1)
    lam = 1.0 / C
    penalty = np.r_[np.full(A.shape[1] - 1, lam), 0.0]
    theta = np.zeros((Y.shape[0], A.shape[1]))
    rate = Y.mean(axis=1).clip(1e-6, 1 - 1e-6)
    theta[:, -1] = np.log(rate / (1 - rate))
    theta, active = _bound_steps(theta, A, Y, penalty)
    n_iter = 0
    while active.any() and n_iter < _MAX_ITER:
        n_iter += 1
        idx = np.flatnonzero(active)
        th, Yb = theta[idx], Y[idx]
        p = 1.0 / (1.0 + np.exp(-(th @ A.T)))
        grad = (p - Yb) @ A + penalty * th
        W = p * (1 - p)
        H = (A.T[None] * W[:, None, :]) @ A
        H[:, np.arange(A.shape[1]), np.arange(A.shape[1])] += penalty
        step = np.linalg.solve(H, grad[..., None])[..., 0]
        f0 = _objective(th, A, Yb, lam)
        t = np.ones(idx.size)
        new = th - step
        for _ in range(30):  # backtracking: halve where the objective did not decrease
            worse = _objective(new, A, Yb, lam) > f0 + 1e-12 * np.abs(f0)
            if not worse.any():
                break
            t[worse] /= 2
            new[worse] = th[worse] - t[worse, None] * step[worse]
        theta[idx] = new
        done = _converged(t[:, None] * step, new)
        active[idx[done]] = False
    return BatchedProbe(mean, scale, basis, theta[:, :-1], theta[:, -1], n_iter)
