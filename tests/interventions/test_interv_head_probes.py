"""One linear probe per head, ranked by held-out AUC."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interventions import head_probe_figure, head_probes
from workbench.core.errors import WorkbenchError


def _data(n: int, seed: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(float)
    acts = {layer: rng.normal(size=(n, 3, 3, 6)) for layer in (1, 5)}
    acts[5][y == 1, :, 0, 2] += 1.5  # head 5.0 carries the label
    return acts, y


def test_planted_head_ranks_first_under_cv_and_fresh():
    acts, y = _data(60, 0)
    result = head_probes(acts, y, n_boot=50)
    assert result.held_out == "cv" and (result.n_pos, result.n_neg) == (30, 30)
    best = result.ranked()[0]
    assert (best.layer, best.head) == (5, 0) and best.auc > 0.85
    others = [p.auc for p in result.probes if (p.layer, p.head) != (5, 0)]
    assert max(others) < 0.8
    fresh_acts, fresh_y = _data(40, 1)
    fresh = head_probes(acts, y, fresh=fresh_acts, fresh_labels=fresh_y, n_boot=0)
    assert fresh.held_out == "fresh"
    top = fresh.ranked()[0]
    assert (top.layer, top.head) == (5, 0) and top.fresh is not None and top.auc == top.fresh.auc
    out = json.loads(json.dumps(fresh.to_json(), allow_nan=False))
    assert out["ranked"][0][:2] == [5, 0] and len(out["heads"]) == 6
    fig = head_probe_figure(fresh)
    assert list(fig.data[0].y) == ["L1", "L5"] and "fresh AUC" in fig.data[0].text[1][0]


def test_unlabelled_items_are_left_out():
    acts, y = _data(60, 0)
    y[:6] = np.nan
    result = head_probes(acts, y, n_boot=0, folds=3)
    assert result.n_pos + result.n_neg == 54


def test_bad_input():
    acts, y = _data(12, 0)
    with pytest.raises(
        WorkbenchError, match="6 positives and 6 negatives: each class needs at least 8"
    ):
        head_probes(acts, y, folds=8)
    with pytest.raises(WorkbenchError, match="11 labels for 12 items"):
        head_probes(acts, y[:11])
    with pytest.raises(WorkbenchError, match="pass both fresh and fresh_labels"):
        head_probes(acts, y, fresh=acts, folds=2)
    with pytest.raises(WorkbenchError, match="must be 0/1"):
        head_probes(acts, y * 2, folds=2)


def test_family_wise_null_over_heads():
    """Head 2 of layer 5 carries the label in both sets: its adjusted p is the smallest
    possible; the other heads' are not significant; the null needs the fresh set."""
    from workbench.core.errors import WorkbenchError

    rng = np.random.default_rng(0)
    y, fy = np.arange(60) % 2, np.arange(50) % 2
    acts = {4: rng.normal(size=(60, 2, 3, 4)), 5: rng.normal(size=(60, 2, 3, 4))}
    fresh = {4: rng.normal(size=(50, 2, 3, 4)), 5: rng.normal(size=(50, 2, 3, 4))}
    acts[5][y == 1, :, 2, 0] += 1.5
    fresh[5][fy == 1, :, 2, 0] += 1.5
    r = head_probes(acts, y, fresh=fresh, fresh_labels=fy, n_boot=0, n_null=99)
    by = {(p.layer, p.head): p for p in r.probes}
    assert by[5, 2].adjusted_p == pytest.approx(0.01)
    assert all(p.adjusted_p > 0.05 for k, p in by.items() if k != (5, 2))
    # the null's observed AUCs are the heads' fresh AUCs (exact optimum vs lbfgs: same ranking)
    np.testing.assert_allclose(r.null.observed, [p.fresh.auc for p in r.probes], atol=0.01)
    doc = r.to_json()
    assert doc["familywise"]["best_name"] == "L5.H2" and doc["heads"][0]["adjusted_p"] is not None
    with pytest.raises(WorkbenchError, match="n_null=10: the family-wise null refits"):
        head_probes(acts, y, n_null=10)
