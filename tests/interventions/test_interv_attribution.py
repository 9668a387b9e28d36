"""Head attribution on synthetic activations: planted heads, collinear means, padding, errors."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest

from interventions import (
    attribute_heads,
    attribution_figure,
    cohens_d,
    cohorts_from_labels,
    layers_from_features,
)
from workbench.core.errors import WorkbenchError

N_ITEMS, N_TOK, N_HEADS, DIM = 80, 6, 4, 8
LAYERS = (3, 7, 11)  # a hybrid model's attention layers keep their original numbers


def _planted(seed: int = 0) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Noise everywhere; head 7.2 shifted along one direction in cohort a (a real axis);
    head 11.1 with a large shared mean, 10% louder in cohort a (collinear means)."""
    rng = np.random.default_rng(seed)
    a = np.arange(N_ITEMS) < N_ITEMS // 2
    acts = {layer: rng.normal(size=(N_ITEMS, N_TOK, N_HEADS, DIM)) for layer in LAYERS}
    u = rng.normal(size=DIM)
    u /= np.linalg.norm(u)
    acts[7][a, :, 2] += 1.5 * u
    m = 6.0 * rng.normal(size=DIM)
    acts[11][:, :, 1] = m + 0.3 * rng.normal(size=(N_ITEMS, N_TOK, DIM))
    acts[11][a, :, 1] *= 1.1
    return acts, a


def test_planted_head_is_recovered_first_by_both_rankings():
    acts, a = _planted()
    attr = attribute_heads(acts, a, ~a)
    planted = attr.head(7, 2)
    for by in ("magnitude", "directional", "directional_heldout"):
        ranked = [(h.layer, h.head) for h in attr.ranked(by) if not h.collinear]
        assert ranked[0] == (7, 2), by
    assert planted.directional_d > 2 and planted.directional_d_heldout > 2
    assert planted.magnitude_d > 0.8
    assert not planted.collinear and planted.cos < 0.5
    assert attr.layers == [3, 7, 11]
    top2 = {(layer, head) for layer, head, _ in attr.export("directional", k=2)}
    assert top2 == {(7, 2), (11, 1)}  # unfiltered, the collinear head ranks high too


def test_collinear_cohort_means_are_flagged():
    acts, a = _planted()
    attr = attribute_heads(acts, a, ~a)
    collinear = attr.head(11, 1)
    assert collinear.collinear and collinear.cos > 0.99
    assert collinear.directional_d > 1.3  # large d, but no axis: the paper's variance artifact
    assert attr.collinear_heads == [(11, 1)]
    assert all(not h.collinear for h in attr.heads if (h.layer, h.head) != (11, 1))
    strict = attribute_heads(acts, a, ~a, collinear_cos=0.999999)
    assert not strict.head(11, 1).collinear


def test_noise_heads_have_small_heldout_d():
    acts, a = _planted()
    attr = attribute_heads(acts, a, ~a)
    noise = [h for h in attr.heads if (h.layer, h.head) not in {(7, 2), (11, 1)}]
    assert max(abs(h.directional_d_heldout) for h in noise) < 1.0
    # the in-sample directional d is biased upwards: never below the held-out one on average
    assert np.mean([h.directional_d for h in noise]) > np.mean(
        [h.directional_d_heldout for h in noise]
    )


def test_magnitude_numbers_match_an_independent_computation_with_nan_padding():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 5, 2, 4))
    lengths = [5, 2, 3, 5, 1, 4, 5, 5, 2, 3, 4, 5]
    for i, n in enumerate(lengths):
        x[i, : 5 - n] = np.nan  # left: positions before a short sequence's start
    a = np.array([True] * 6 + [False] * 6)
    h = attribute_heads({0: x}, a, ~a, folds=0).head(0, 1)

    def item_norm(i: int) -> float:
        tokens = [x[i, t, 1] for t in range(5 - lengths[i], 5)]
        return sum(float(np.sqrt(sum(v * v for v in tok))) for tok in tokens) / len(tokens)

    na = [item_norm(i) for i in range(6)]
    nb = [item_norm(i) for i in range(6, 12)]
    pooled = np.sqrt((5 * statistics.variance(na) + 5 * statistics.variance(nb)) / 10)
    assert h.mean_a == pytest.approx(statistics.mean(na))
    assert h.mean_b == pytest.approx(statistics.mean(nb))
    assert h.diff == pytest.approx(statistics.mean(na) - statistics.mean(nb))
    assert h.magnitude_d == pytest.approx((statistics.mean(na) - statistics.mean(nb)) / pooled)
    assert h.directional_d_heldout is None


def test_three_dim_input_and_index_cohorts():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 3, 4))
    by_mask = attribute_heads({2: x}, np.arange(10) < 5, np.arange(10) >= 5)
    by_index = attribute_heads({2: x[:, None]}, np.arange(5), np.arange(5, 10))
    assert by_mask.heads == by_index.heads
    assert by_mask.n_tokens == 1


def test_cohens_d_and_cohorts_from_labels():
    assert float(cohens_d([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])) == pytest.approx(1.0)
    assert np.isnan(cohens_d([1.0, 1.0], [1.0, 1.0]))
    c = cohorts_from_labels([1, 0, 0, 1, None], ["assert", "assert", "hedge", "hedge", "assert"])
    assert c["cr"].tolist() == [True, False, False, False, False]
    assert c["cw"].tolist() == [False, True, False, False, False]
    assert c["hw"].tolist() == [False, False, True, False, False]
    assert c["hr"].tolist() == [False, False, False, True, False]
    assert c["right"].sum() + c["wrong"].sum() == 4  # the unlabelled item is in no cohort
    assert sorted(cohorts_from_labels([1, 0])) == ["right", "wrong"]
    with pytest.raises(WorkbenchError, match="'maybe' at item 0"):
        cohorts_from_labels([1], ["maybe"])


def test_json_export_and_heatmap():
    acts, a = _planted()
    attr = attribute_heads(acts, a, ~a, names=("cw", "cr"))
    out = json.loads(json.dumps(attr.to_json(top_k=3), allow_nan=False))
    assert out["cohorts"] == {"a": {"name": "cw", "n": 40}, "b": {"name": "cr", "n": 40}}
    assert out["collinear_heads"] == [[11, 1]]
    assert len(out["top"]["magnitude"]) == 3 and len(out["heads"]) == 12
    assert set(out["heads"][0]) >= {
        "layer",
        "head",
        "mean_a",
        "mean_b",
        "diff",
        "magnitude_d",
        "cos",
        "collinear",
    }
    exported = attr.export("magnitude")
    assert all(isinstance(t, tuple) and len(t) == 3 for t in exported)
    assert [s for _, _, s in exported] == sorted((s for _, _, s in exported), reverse=True)
    fig = attribution_figure(attr, "directional")
    heat = fig.data[0]
    assert list(heat.y) == ["L3", "L7", "L11"] and list(heat.x) == ["H0", "H1", "H2", "H3"]
    assert "collinear" in heat.text[2][1] and "cos(mu_cw, mu_cr)" in heat.text[1][2]
    assert "n cw=40, cr=40" in heat.text[0][0]


def test_layers_from_capture_site_names():
    x = np.zeros((4, 2, 3, 5))
    layers = layers_from_features(
        {"head_in(1,last=2)": x, "head_in(-1,last=2)": x, "h_last": x}, n_layers=30
    )
    assert sorted(layers) == [1, 29]
    with pytest.raises(WorkbenchError, match="negative layer"):
        layers_from_features({"head_in(-1)": x})
    with pytest.raises(WorkbenchError, match="no head_in site"):
        layers_from_features({"h_last": x})


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.zeros(10, bool), np.ones(10, bool), r"cohort 'cw' is empty"),
        (
            np.arange(10) == 0,
            np.arange(10) > 0,
            r"cohort 'cw' has 1 item: Cohen's d needs at least 2",
        ),
        (np.arange(10) < 5, np.arange(10) == 9, r"cohort 'cr' has 1 item"),
        (np.arange(10) < 6, np.arange(10) > 3, r"share 2 items: they must be disjoint"),
        (
            np.ones(9, bool),
            np.ones(9, bool),
            r"mask has shape \(9,\), the activations hold 10 items",
        ),
        (np.array([0, 12]), np.array([1, 2]), r"holds index 12 but there are 10 items"),
    ],
)
def test_bad_cohorts_are_clear_errors(a, b, message):
    x = np.random.default_rng(0).normal(size=(10, 2, 3, 4))
    with pytest.raises(WorkbenchError, match=message):
        attribute_heads({0: x}, a, b)


def test_bad_activations_are_clear_errors():
    a = np.arange(10) < 5
    x = np.zeros((10, 2, 3, 4))
    with pytest.raises(WorkbenchError, match="non-empty mapping"):
        attribute_heads({}, a, ~a)
    with pytest.raises(WorkbenchError, match=r"shape \(10, 4\)"):
        attribute_heads({0: np.zeros((10, 4))}, a, ~a)
    with pytest.raises(WorkbenchError, match="layer 2 has 9 items but an earlier layer has 10"):
        attribute_heads({0: x, 2: np.zeros((9, 2, 3, 4))}, a, ~a)
    bad = x.copy()
    bad[4, :, 1] = np.nan
    with pytest.raises(WorkbenchError, match="layer 0: item 4 head 1 has no real token"):
        attribute_heads({0: bad}, a, ~a)
    with pytest.raises(WorkbenchError, match="unknown ranking 'loud'"):
        attribute_heads({0: x + np.arange(4)}, a, ~a).ranked("loud")  # type: ignore[arg-type]


def _max_d_by_hand(x, a):
    """Largest Cohen d (pooled SD, a louder) of per-item head norms, written out directly."""
    norms = np.linalg.norm(x, axis=-1).mean(axis=1)  # (n, heads): mean L2 norm over tokens
    na, nb = a.sum(), (~a).sum()
    va, vb = norms[a].var(axis=0, ddof=1), norms[~a].var(axis=0, ddof=1)
    pooled = np.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    return float(((norms[a].mean(0) - norms[~a].mean(0)) / pooled).max())


def test_max_d_null_separates_a_planted_head_from_chance():
    from interventions import max_magnitude_d_null

    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 4, 6, 8))
    a = np.arange(60) < 25
    null = max_magnitude_d_null({3: x}, a, ~a, n_shuffles=100, seed=0)
    assert null.observed == pytest.approx(_max_d_by_hand(x, a), rel=1e-6)
    assert null.p_value > 0.05  # no signal: the top d is what shuffles give
    assert 0.2 < float(np.median(null.null)) < 1.2  # max of 6 heads' |d| at n = 25 / 35

    x[a, :, 4] *= 1.5  # head 4 louder in cohort a
    planted = max_magnitude_d_null({3: x}, a, ~a, n_shuffles=100, seed=0)
    assert planted.observed == pytest.approx(_max_d_by_hand(x, a), rel=1e-6)
    assert planted.p_value == pytest.approx(1 / 101)
    assert planted.observed > max(planted.null)
    assert set(planted.to_json()) == {
        "observed",
        "n_shuffles",
        "null_median",
        "null_95",
        "null_max",
        "p_value",
        "adjusted_p",
    }
    # every head gets its family-wise adjusted p: the planted head's is the smallest possible
    adj = planted.to_json()["adjusted_p"]
    assert adj["L3.H4"] == pytest.approx(1 / 101)
    assert all(p > 0.05 for name, p in adj.items() if name != "L3.H4")
    with pytest.raises(WorkbenchError, match="n_shuffles 0 must be >= 1"):
        max_magnitude_d_null({3: x}, a, ~a, n_shuffles=0)
