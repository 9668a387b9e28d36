"""The decision on planted data: statements follow the verdicts, failed controls warn plainly."""

from __future__ import annotations

import numpy as np
import pytest

from probes import disposition
from workbench.study.axis import FreshSet, run_axis
from workbench.study.config import ProbeConfig
from workbench.study.decision import decide

CFG = ProbeConfig(Cs=(1.0,), folds=3, n_boot=50, n_perm=50, n_control=0, erase_confounds=False)


def _rows(n: int, length: np.ndarray, rng: np.random.Generator) -> list[dict]:
    fam = rng.permutation(np.arange(n) % 2)
    return [
        {"n_tokens": float(length[i]), "truncated": bool(i % 3 == 0),
         "family": ("capitals", "arithmetic")[fam[i]]}
        for i in range(n)
    ]  # fmt: skip


def _set(rng: np.random.Generator, n: int, *, signal: str) -> FreshSet:
    """``label``: features carry the label, length is noise; ``length``: the label is length's;
    ``none``: features are noise."""
    y = (np.arange(n) % 2).astype(float)
    rng.shuffle(y)
    length = rng.normal(20, 5, n)
    X = rng.normal(size=(n, 6))
    if signal == "label":
        X[:, 0] += 2.5 * y
    elif signal == "length":
        length = 20 + 4 * y + rng.normal(0, 2, n)
        X[:, 0] += (length - 20) / 2
    return FreshSet(X, y, _rows(n, length, rng))


def _axis(name: str, signal: str, seed: int):
    rng = np.random.default_rng(seed)
    train, fresh = _set(rng, 120, signal=signal), _set(rng, 100, signal=signal)
    return run_axis(name, "plain", train, {"fresh": fresh}, CFG, seed=0)


@pytest.fixture(scope="module")
def runs():
    return {
        "label": _axis("correct", "label", 1),
        "length": _axis("correct", "length", 2),
        "positive": _axis("positive", "label", 3),
        "negative_ok": _axis("negative", "none", 4),
        "negative_bad": _axis("negative", "label", 5),
    }


def test_statements_follow_the_verdicts(runs):
    table = disposition([1, 0, 1, 0], ["assert", "assert", "hedge", "assert"], n_boot=20)
    d = decide(
        {"correct": runs["length"], "asserts": runs["label"]},
        {"positive": runs["positive"], "negative": runs["negative_ok"]},
        {"correct": table, "asserts": None},
    )
    assert d["trusted"] and d["warnings"] == []
    assert d["controls"]["positive"]["outcome"] == "survives"
    assert d["controls"]["negative"]["outcome"] == "fails"
    c, a = d["correct"], d["asserts"]
    assert c["verdicts"]["outcome"] == "explained by a confound"
    assert c["statement"].startswith("Not beyond a confound")
    assert "explained by response length (tokens)" in c["statement"]
    assert "assertion asymmetry" in c["statement"]  # the condition's 2x2 closes the sentence
    assert a["verdicts"]["confounds"] == "survives" and a["statement"].startswith(
        "Yes, as a read-out"
    )
    num = a["numbers"]
    assert f"{num['fresh_auc']:.3f}" in a["statement"] and num["confounds_fresh"]["lr_p"] < 0.05
    assert "No causal test ran" in a["statement"]


def test_a_failed_control_says_the_decision_cannot_be_trusted(runs):
    d = decide(
        {"correct": runs["label"]},
        {"positive": runs["negative_ok"], "negative": runs["negative_bad"]},
        {},
    )
    assert not d["trusted"] and len(d["warnings"]) == 2
    assert d["correct"]["statement"].startswith("The decision cannot be trusted:")
    assert "negative control" in d["correct"]["statement"]
    assert "'reads' where it must be 'fails'" in d["correct"]["statement"]
    assert d["correct"]["trusted"] is False
