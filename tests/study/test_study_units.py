"""The study's parts: the short cap as a greedy prefix, token traces, labels, verdict wording."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interventions import SweepResult, temper_sweep
from workbench.core.items import Item
from workbench.labels.domains import make_split
from workbench.model.generation import generate
from workbench.study.collect import study_sites
from workbench.study.heads import cohort_reason
from workbench.study.labels import SplitLabels, label_row, truncation_json
from workbench.study.second import cut_answer
from workbench.study.traces import PROMPT_END, pick_examples, trace_tokens
from workbench.study.verdicts import disposition_plain, truncation_plain


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_short_cap_is_the_prefix_of_the_greedy_answer(tiny):
    """The study derives the short-cap condition from the long greedy answers: check it is exact."""
    lm = tiny("llama")
    items = make_split("train", 6, seed=0)
    long = generate(lm, items, max_new_tokens=10, batch_size=4)
    short = generate(lm, items, max_new_tokens=4, batch_size=4)
    for a, b in zip(long, short, strict=True):
        assert b.token_ids == a.token_ids[:4]
        assert b.truncated == (a.n_tokens >= 4)


def test_token_trace_ends_at_the_fused_h_last(tiny):
    lm = tiny("llama")
    items = make_split("fresh", 3, seed=1)
    gens = generate(lm, items, max_new_tokens=6, batch_size=3, capture=["h_last", "head_norm(1)"])
    traces = trace_tokens(
        lm, [it.prompt for it in items], [g.token_ids for g in gens], [it.id for it in items],
        ["x"] * 3,
    )  # fmt: skip
    for i, (t, g) in enumerate(zip(traces, gens, strict=True)):
        assert t.tokens[0] == PROMPT_END and len(t.tokens) == g.n_tokens + 1
        assert t.hidden.shape == (g.n_tokens + 1, lm.layout.d_model)
        np.testing.assert_allclose(t.hidden[-1], gens.features["resid(-1,normed)"][i], atol=1e-4)
        np.testing.assert_allclose(
            t.head_norms[1][-1], gens.features["head_norm(1)"][i], rtol=1e-4, atol=1e-4
        )


def test_study_sites_cover_every_layer():
    sites = study_sites(3, [0, 1, 2], head_last_n=1, pooled_last_n=2, depth_curve=True)
    assert sites == [
        "resid(-1,normed)", "mean_last_n(2)", "resid(0)", "resid(1)", "resid(2)",
        "head_in(0)", "head_in(1)", "head_in(2)",
    ]  # fmt: skip


def test_labels_and_truncation_counts():
    item = make_split("train", 2, seed=0)[1]  # arithmetic
    gold = str(item.labels["gold"])
    full = label_row(item, f"So the answer is {gold}.", False, 12, short=("So the", True))
    assert full["correct"] and not full["short_correct"] and full["short_truncated"]
    same = label_row(item, "I think it is 3.", False, 5, short=("I think it is 3.", False))
    assert same["verbal"] == "hedge" and "i think" in same["cues"]
    summary = truncation_json([SplitLabels("train", (full, same))], 64, 8)
    per = summary["per_split"]["train"]
    assert per["correct_changed"] == 1 and per["correct_gained_with_longer_cap"] == 1
    assert per["truncated_short"] == 1 and summary["correct_changed"] == 1
    assert "1 become correct" in truncation_plain(summary)


def test_pick_examples_prefers_each_kind_once():
    rows = [
        {"id": "r", "correct": True, "verbal": "assert", "truncated": False},
        {"id": "h", "correct": False, "verbal": "hedge", "truncated": False},
        {"id": "w", "correct": False, "verbal": "assert", "truncated": True},
        {"id": "o", "correct": True, "verbal": "assert", "truncated": False},
    ]
    assert pick_examples(rows, 4) == [
        ("w", "confident wrong"), ("r", "confident right"), ("h", "hedged"), ("o", "other"),
    ]  # fmt: skip
    assert pick_examples(rows, 1) == [("w", "confident wrong")]


def test_cut_answer_and_cohort_reason():
    assert cut_answer("  Lilongwe.\nQuestion: next") == "Lilongwe."
    assert cut_answer("") == ""
    assert cohort_reason({"cw": 9, "cr": 9}, ("cw", "cr"), 5) is None
    assert "cohort cr has 1 items" in cohort_reason({"cw": 9, "cr": 1}, ("cw", "cr"), 5)


def test_disposition_wording_follows_the_asymmetry():
    table = {"confident_right": 10, "hedged_right": 0, "confident_wrong": 2, "hedged_wrong": 8}
    assert "tracks correctness" in disposition_plain("s", {**table, "assertion_asymmetry": -0.8})
    assert "decoupled" in disposition_plain("s", {**table, "assertion_asymmetry": 0.0})
    assert "runs against" in disposition_plain("s", {**table, "assertion_asymmetry": 0.5})
    assert "undefined" in disposition_plain("s", {**table, "assertion_asymmetry": None})


def test_sweep_round_trips_through_json(tiny):
    lm = tiny("llama")
    items = [Item(str(i), f"Say {i}.") for i in range(3)]
    result = temper_sweep(
        lm, items, [(1, 0)], [0.0, 1.0], [0, 1], {"len": lambda it, r: len(r)},
        decoding=None, batch_size=3,
    )  # fmt: skip
    assert SweepResult.from_json(result.to_json()) == result
    assert SweepResult.from_json(json.loads(json.dumps(result.to_json()))) == result


def _rows(correct, lengths, families):
    return tuple(
        {"id": str(i), "family": f, "correct": bool(c), "truncated": n >= 40, "n_tokens": n,
         "verbal": "assert"}
        for i, (c, n, f) in enumerate(zip(correct, lengths, families, strict=True))
    )  # fmt: skip


def test_confound_check_is_context_and_step_6_decides():
    from probes.baselines import confound_check
    from workbench.study.verdicts import confound_plain, overall_plain

    rng = np.random.default_rng(0)
    y = np.r_[np.ones(30), np.zeros(30)].astype(int)
    length = np.where(y == 1, 10, 45) + rng.integers(0, 5, 60)  # wrong answers ramble
    fam = ["capitals", "arithmetic"] * 30
    train = SplitLabels("train", _rows(y, length, fam))
    fresh = SplitLabels("fresh", _rows(y, length, fam))
    weak = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.3, 60), 0, 1)  # AUC ~0.75
    check = confound_check(train, {"fresh": (fresh, weak)}, n_boot=0)
    assert check.best_baseline("fresh")[0] == "response length (tokens)"
    assert check.beats_baselines("fresh") is False
    assert "best one-feature baseline response length (tokens) 1.000" in confound_plain(check)
    assert "the verdict on confounds is step 6" in confound_plain(check)
    perfect = check.probe["fresh"]
    assert perfect is not None and set(check.within["fresh"]) == {
        "family = arithmetic", "family = capitals", "not truncated",
    }  # fmt: skip
    # a probe that ranks perfectly beats a baseline that cannot
    flat = SplitLabels("fresh", _rows(y, rng.integers(5, 50, 60), ["capitals"] * 60))
    check2 = confound_check(
        SplitLabels("train", _rows(y, rng.integers(5, 50, 60), ["capitals"] * 60)),
        {"fresh": (flat, y * 0.9 + 0.05)}, n_boot=0,
    )  # fmt: skip
    assert check2.beats_baselines("fresh") is True
    assert "task family" not in check2.baselines["fresh"]  # one family: no family baseline
    explained = _Report("explained by response length (tokens)")
    text = overall_plain(explained, {}, check)  # type: ignore[arg-type]
    assert text.startswith("All five steps pass, but step 6 decides against it")
    assert "explained by response length (tokens)" in text
    assert "beyond response length" in overall_plain(_Report("survives"), {}, check)  # type: ignore[arg-type]


class _Report:
    """Five passing steps and a step 6 with the given verdict."""

    def __init__(self, sixth: str) -> None:
        from probes import StepResult

        names = ("cv", "fresh", "axes", "layers", "second_model", "confounds")
        self.steps = tuple(
            StepResult(i + 1, n, n, "pass" if i < 5 else sixth, "", "numbers")
            for i, n in enumerate(names)
        )

    def step(self, name: str):
        return next(s for s in self.steps if s.name == name)


def test_auto_threads_leaves_a_core_free():
    import os

    from workbench.study.runner import auto_threads

    n = auto_threads()
    assert n >= 1 and n <= max(1, (os.cpu_count() or 1))
