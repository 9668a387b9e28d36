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


def _causal(direction: str, control: str, n: int = 20) -> dict:
    """A causal step's JSON with the given verdicts (the shape CausalResult.to_json gives)."""

    def result(verdict: str, change: float, p: float) -> dict:
        counts = {"gold answer log-prob": n, "n_tokens": 3}
        effects = [{"test": "necessity", "metric": m, "change": change, "controls": [0.0] * k,
                    "p": p, "descriptive": k < 19, "beyond": p <= 0.05}
                   for m, k in counts.items()]  # fmt: skip
        return {"verdict": verdict, "target": {"name": "gold answer log-prob"}, "n_random": n,
                "seeds": [0], "subject": "direction at resid(2)", "effects": effects,
                "settings": {"site": "resid(2)", "controls_per_metric": counts}}  # fmt: skip

    return {
        "site": "resid(2)",
        "direction": {"last": result(direction, -1.5, 1 / 21)},
        "positive_control": result(control, 2.0, 1 / 21),
    }


def test_the_causal_step_enters_the_decision_and_its_positive_control_is_checked(runs):
    moved = (
        "moves the target: necessity changes gold answer log-prob by -1.5 (p = 0.048 against 20)"
    )
    nothing = "moves nothing: the largest target change, ..., is within the controls"
    controls = {"positive": runs["positive"], "negative": runs["negative_ok"]}
    d = decide({"correct": runs["label"]}, controls, {}, causal=_causal(moved, moved))
    c = d["correct"]
    assert d["trusted"] and d["controls"]["causal_positive"]["outcome"] == "moves the target"
    assert c["statement"].startswith("Yes, as a read-out and a handle")
    assert c["verdicts"]["causal"] == {"direction_last": "moves the target",
                                       "overall": "moves the target"}  # fmt: skip
    assert (
        c["numbers"]["causal"]["direction_last"]["necessity / gold answer log-prob"]["change"]
        == -1.5
    )
    assert "at the final token it moves the target" in c["statement"]
    # the same direction result with a positive control that did not move: not trusted
    bad = decide({"correct": runs["label"]}, controls, {}, causal=_causal(moved, nothing))
    assert not bad["trusted"] and bad["controls"]["causal_positive"]["as_expected"] is False
    assert bad["correct"]["statement"].startswith(
        "The decision cannot be trusted: the causal step's"
    )
    # a direction that moves nothing leaves a read-out without a handle
    plain = decide({"correct": runs["label"]}, controls, {}, causal=_causal(nothing, moved))
    assert plain["correct"]["statement"].startswith("Yes, as a read-out:")
    assert plain["correct"]["verdicts"]["causal"]["overall"] == "moves nothing"
