"""The causal step of the study, and tempering by the causal rule, run on the tiny study."""

from __future__ import annotations

import hashlib
import json

import pytest

from workbench.study.config import StudyConfig
from workbench.study.runner import run_study


def half_right(item, response) -> bool:
    return int(hashlib.sha256(item.id.encode()).hexdigest(), 16) % 2 == 0


def small_config(model, **causal) -> StudyConfig:
    """The tiny study with everything off but the pipeline, attribution and the causal step."""
    return StudyConfig.from_dict({
        "run": {"threads": 1},
        "model": {"name": str(model), "batch_size": 8},
        "items": {"train": 24, "fresh": 20, "fresh_hard": 0},
        "generation": {"max_new_tokens": 10, "short_max_new_tokens": 5},
        "capture": {"pooled_last_n": 2},
        "probe": {"folds": 3, "n_boot": 50, "n_perm": 50, "n_control": 1, "depth_n_boot": 10,
                  "depth_n_null": 0, "head_n_null": 0},
        "second_model": {"enabled": False}, "hedged": {"enabled": False},
        "controls": {"positive": False, "negative": False},
        "attribution": {"min_cohort": 3}, "tempering": {"enabled": False},
        "traces": {"n_examples": 0}, "causal": {"enabled": True, **causal},
    })  # fmt: skip


def test_causal_step_on_the_tiny_study(tmp_path, tiny_dir):
    cfg = small_config(tiny_dir, n_items=4, max_new_tokens=3, regenerate=2)
    result = run_study(cfg, tmp_path / "run", checker=half_right, progress=False)
    causal = result.causal
    assert causal is not None and causal["site"] == f"resid({result.n_layers - 1})"
    assert sorted(causal["direction"]) == ["last", "response"]
    for pos, direction in causal["direction"].items():
        assert direction["settings"]["positions"] == pos
        assert direction["n_random"] == 20 and direction["target"]["name"] == "gold answer log-prob"
        counts = direction["settings"]["controls_per_metric"]
        assert counts == {"gold answer log-prob": 20, "n_tokens": 2, "truncated": 2, "asserts": 2,
                          "correct": 2}  # fmt: skip
        assert direction["verdict"].split(":")[0] in ("moves the target", "moves nothing") or (
            direction["verdict"].startswith("moves only")
        )
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert (
        report["causal"]["direction"]["last"]["verdict"] == causal["direction"]["last"]["verdict"]
    )
    verdicts = report["decision"]["correct"]["verdicts"]["causal"]
    assert verdicts["direction_last"] == causal["direction"]["last"]["verdict"].split(":")[0]
    assert verdicts["overall"] in ("moves the target", "moves only", "moves nothing")
    numbers = report["decision"]["correct"]["numbers"]["causal"]["direction_response"]
    e = numbers["necessity / gold answer log-prob"]
    assert e["n_controls"] == 20 and not e["descriptive"]
    assert numbers["necessity / n_tokens"]["n_controls"] == 2
    statement = report["decision"]["correct"]["statement"]
    assert (
        "Causal test of the probe direction" in statement and "at the final token it" in statement
    )
    assert "against 20 random directions; side effects regenerated against 2" in statement
    assert report["plain"]["causal"].startswith("Causal step:")
    control = causal["positive_control"]
    assert control["settings"]["controls_per_metric"]["gold answer log-prob"] == 20
    # the logit direction must move the target: if it did not, the decision would warn
    assert control["verdict"].startswith("moves the target"), control["verdict"]
    assert report["decision"]["controls"]["causal_positive"]["outcome"] == "moves the target"
    # re-running reuses the stage
    again = run_study(cfg, tmp_path / "run", checker=half_right, progress=False)
    assert again.cache["causal"] == "reused" and again.causal == causal


def test_tempering_is_judged_by_the_causal_rule(tmp_path, tiny_dir):
    cfg = StudyConfig.from_dict({
        **small_config(tiny_dir).to_json(),
        "causal": {"enabled": False},
        "tempering": {"enabled": True, "n_items": 4, "lambdas": [0.0, 0.5, 1.0],
                      "seeds": [0, 1, 2], "max_new_tokens": 3, "n_random": 19, "regenerate": 1},
    })  # fmt: skip
    result = run_study(cfg, tmp_path / "run", checker=half_right, progress=False)
    heads = result.causal["heads"]
    assert result.skipped["causal"] == "[causal] enabled = false"
    assert heads["seeds"] == [0, 1, 2] and heads["n_random"] == 19
    assert heads["settings"]["scales"] == [0.5]
    assert {e["test"] for e in heads["effects"]} == {"necessity (zero ablation)",
                                                     "tempering (lambda 0.5)"}  # fmt: skip
    assert heads["settings"]["controls_per_metric"]["correct"] == 1
    assert [tuple(h) for h in heads["settings"]["heads"]] == sorted(result.attribution.heads)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert (
        "By the causal rule (against 19 draws of as many random heads"
        in report["plain"]["tempering"]
    )
    assert heads["verdict"] in report["plain"]["tempering"]
    assert (
        report["decision"]["correct"]["verdicts"]["causal"]["heads"]
        == heads["verdict"].split(":")[0]
    )


def test_the_sweep_stands_for_the_regenerations_it_already_made(tiny):
    """Fed the sweep, the tempering test gives the same effects as regenerating everything."""
    from interventions import temper_sweep
    from workbench.core.items import Item
    from workbench.model.generation import DecodingConfig
    from workbench.study.config import ModelConfig, TemperingConfig
    from workbench.study.heads import checker_scorers, tempering_causal

    lm = tiny("llama")
    items = [Item(f"q{i}", p, labels={"gold": g}) for i, (p, g) in
             enumerate([("What is 2+2?", "4"), ("Name a colour", "Blue"), ("Hi", "Hello")])]  # fmt: skip
    cfg = TemperingConfig(n_items=3, seeds=(0, 1, 2), max_new_tokens=4, n_random=19, regenerate=1)
    decoding = DecodingConfig(max_new_tokens=4, do_sample=True, temperature=0.8, top_p=0.95)
    heads = [(1, 0), (2, 1)]
    scorers = checker_scorers(half_right)
    sweep = temper_sweep(lm, items, heads, cfg.lambdas, cfg.seeds, scorers, decoding=decoding,
                         progress=False)  # fmt: skip
    model = ModelConfig(batch_size=8)
    fed = tempering_causal(lm, items, heads, cfg, decoding, scorers["correct"], model, sweep=sweep)
    full = tempering_causal(lm, items, heads, cfg, decoding, scorers["correct"], model)
    assert fed["baseline"] == full["baseline"]
    by = {(e["test"], e["metric"]): e for e in full["effects"]}
    assert sorted(by) == sorted((e["test"], e["metric"]) for e in fed["effects"])
    for a in fed["effects"]:
        b = by[(a["test"], a["metric"])]
        assert a["change"] == pytest.approx(b["change"], abs=1e-9), a
        assert a["controls"] == pytest.approx(b["controls"], abs=1e-9), a


def test_second_model_in_its_own_words_gets_its_own_2x2(tmp_path, tiny_dir):
    cfg = StudyConfig.from_dict({
        **small_config(tiny_dir).to_json(),
        "causal": {"enabled": False},
        "second_model": {"enabled": True, "name": str(tiny_dir), "responses": "own",
                         "max_new_tokens": 4, "batch_size": 8},
    })  # fmt: skip
    result = run_study(cfg, tmp_path / "run", checker=half_right, progress=False)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    table = report["deciding"]["conditions"]["second model"]
    assert sorted(table) == ["fresh", "train"]
    for split, t in table.items():
        second = result.second[split]
        # independent count of the 2x2 from the second model's own responses and labels
        from workbench.labels.verbal import classify_verbal

        asserts = [classify_verbal(r) == "assert" for r in second.responses]
        right = second.correct.astype(bool)
        assert t["confident_right"] == sum(a and c for a, c in zip(asserts, right, strict=True))
        assert t["confident_wrong"] == sum(a and not c for a, c in zip(asserts, right, strict=True))
        assert "asymmetry_lo" in t and split in ("train", "fresh")
    assert "second model in its own words, fresh:" in report["plain"]["conditions"]
