"""The causal step of the study, run on the tiny study (off by default in the demo)."""

from __future__ import annotations

import hashlib
import json

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
    cfg = small_config(tiny_dir, n_items=4, max_new_tokens=3)
    result = run_study(cfg, tmp_path / "run", checker=half_right, progress=False)
    causal = result.causal
    assert causal is not None and causal["site"] == f"resid({result.n_layers - 1})"
    direction = causal["direction"]
    assert direction["n_random"] == 20 and direction["target"]["name"] == "gold answer log-prob"
    assert direction["verdict"].split(":")[0] in ("moves the target", "moves nothing") or (
        direction["verdict"].startswith("moves only")
    )
    metrics = {e["metric"] for e in direction["effects"]}
    assert {"gold answer log-prob", "n_tokens", "truncated", "asserts"} <= metrics
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["causal"]["direction"]["verdict"] == direction["verdict"]
    assert report["decision"]["correct"]["verdicts"]["causal"] == direction["verdict"].split(":")[0]
    assert "Causal test of the probe direction" in report["decision"]["correct"]["statement"]
    assert report["plain"]["causal"].startswith("Causal step:")
