"""The whole study on tiny random-init models: report keys, every figure, caching, honesty.

A random-init model answers nothing correctly, so the plumbing test labels
items with a fixed pseudo-random checker (half right, half wrong by item id);
the honesty test keeps the real checker and expects every step that needs
both classes to say why it did not run. The screenshot test needs Chromium.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, run_cli

from workbench.study.config import StudyConfig
from workbench.study.report import SCHEMA
from workbench.study.runner import run_study

REPORT_KEYS = {
    "schema", "title", "created", "workbench_version", "run_dir", "config", "models", "items",
    "labels", "truncation", "verdict", "steps", "falsification", "depth_curve", "dispositions",
    "attribution", "tempering", "sidecar", "traces", "plain", "confounds", "skipped", "figures", "cache",
    "decision", "deciding", "causal",
    "timings", "environment", "files",
}  # fmt: skip
FIGURES = {
    "truncation", "disposition_train", "disposition_fresh", "disposition_fresh_hard",
    "auc_collapse", "roc", "axes", "pca", "probe_disposition", "confounds", "depth_curve",
    "attribution",
    "sweep", "sidecar_baseline", "sidecar_gated", "trace_0", "trace_1", "trace_2",
    "confound_step", "confound_step_correct_fresh_hard", "confound_step_negative",
    "confound_step_negative_fresh_hard", "confound_step_positive", "decision_axes",
    "disposition_hedged_train", "disposition_hedged_fresh",
}  # fmt: skip


def half_right(item, response) -> bool:
    return int(hashlib.sha256(item.id.encode()).hexdigest(), 16) % 2 == 0


def tiny_config(model: Path, second: Path, **overrides) -> StudyConfig:
    data = {
        "run": {"threads": 1},
        "model": {"name": str(model), "batch_size": 8},
        "items": {"train": 24, "fresh": 20, "fresh_hard": 12},
        "generation": {"max_new_tokens": 10, "short_max_new_tokens": 5},
        "capture": {"pooled_last_n": 2},
        "probe": {
            "folds": 3, "n_boot": 50, "n_perm": 50, "n_control": 1, "depth_n_boot": 10,
            "axes": ["correct", "asserts"],
        },
        "second_model": {"name": str(second), "max_new_tokens": 6},
        "attribution": {"min_cohort": 3},
        "tempering": {"n_items": 6, "max_new_tokens": 5, "lambdas": [0.0, 1.0]},
        "traces": {"n_examples": 3},
    }  # fmt: skip
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return StudyConfig.from_dict(data)


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory, tiny) -> Path:
    path = tmp_path_factory.mktemp("tiny-gemma3")
    lm = tiny("gemma3")
    lm.model.save_pretrained(path)
    lm.tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_dir, gemma_dir):
    out = tmp_path_factory.mktemp("study")
    config = tiny_config(tiny_dir, gemma_dir)
    result = run_study(config, out, checker=half_right, progress=False)
    return config, out, result


def test_report_has_every_key_and_figure(study):
    _, out, result = study
    report = json.loads((out / "report.json").read_text())
    assert set(report) == REPORT_KEYS and report["schema"] == SCHEMA
    assert set(report["figures"]) == FIGURES
    assert [s["name"] for s in report["steps"]] == [
        "cv", "fresh", "axes", "layers", "second_model", "confounds"
    ]  # fmt: skip
    five, sixth = report["steps"][:5], report["steps"][5]
    assert all(s["verdict"] in ("pass", "fail", "not run") and s["plain"] for s in five)
    assert sixth["plain"] and (
        sixth["verdict"] in ("survives", "not run", "degenerate confound")
        or sixth["verdict"].startswith("explained by ")
    )
    for key in ("overall", "truncation", "step1", "step5", "fresh_hard", "depth_curve", "confounds",
                "dispositions", "attribution", "tempering", "sidecar"):  # fmt: skip
        assert report["plain"][key], key
    decision = report["decision"]
    for axis in ("correct", "asserts"):
        entry = decision[axis]
        assert entry["statement"] and set(entry) == {"statement", "verdicts", "numbers", "trusted"}
    # the causal step runs by default on the correct axis; asserts has none
    causal = decision["correct"]["verdicts"]["causal"]
    assert set(causal) >= {"direction_last", "direction_response", "overall"}, causal
    assert causal["overall"] in ("moves the target", "moves only", "moves nothing")
    assert decision["asserts"]["verdicts"]["causal"] == "not run"
    assert "Causal test of the probe direction" in decision["correct"]["statement"]
    main = result.falsification.report.trial("main").best
    assert decision["correct"]["numbers"]["cv_auc"] == main.cv.auc.auc
    assert f"CV AUC {main.cv.auc.auc:.3f}" in decision["correct"]["statement"]
    assert set(decision["controls"]) == {"positive", "negative", "causal_positive"}
    # a random-init model represents nothing: the positive control fails, and the report says so
    assert decision["controls"]["positive"]["as_expected"] is False and not decision["trusted"]
    assert decision["correct"]["statement"].startswith("The decision cannot be trusted")
    summary = (out / "summary.md").read_text().splitlines()
    assert summary[2] == f"**correct:** {decision['correct']['statement']}"
    deciding = report["deciding"]
    assert set(deciding["conditions"]) == {"plain", "hedged", "second model"}  # own words
    assert "asymmetry_lo" in deciding["conditions"]["hedged"]["fresh"]
    assert deciding["head_screen"]["familywise"]["n_perm"] == 200
    assert report["depth_curve"]["familywise"]["fresh"]["n_perm"] == 200
    assert report["steps"][5]["verdict"] != "not run"  # step 6 ran with the named confounds
    assert report["labels"]["lexicon"]["agreement"]["n"] == 93
    assert "i think" in report["labels"]["lexicon"]["hedge_phrases"]
    assert set(report["truncation"]["per_split"]) == {"train", "fresh", "fresh_hard"}
    assert report["falsification"]["fresh_hard"]["diagnosis"]["verdict"]
    assert len(report["depth_curve"]["layers"]) == result.n_layers
    conf = report["confounds"]["splits"]["fresh"]
    assert set(conf["baselines"]) == {"response length (tokens)", "truncated", "task family"}
    assert set(conf["within"]) == {"family = arithmetic", "family = capitals", "not truncated"}
    assert report["attribution"]["result"]["cohorts"]["a"]["name"] == "cw"
    null = report["attribution"]["max_d_null"]
    assert null["n_shuffles"] == 200 and 0 < null["p_value"] <= 1
    top = report["attribution"]["result"]["top"]["magnitude"][0][2]
    assert null["observed"] == pytest.approx(top, abs=1e-4)  # the ranked top head's d
    assert "Shuffling the cohort labels 200 times" in report["plain"]["attribution"]
    assert report["tempering"]["seeds"] == [0, 1, 2]
    assert (
        "By the causal rule (against 20 draws of as many random heads"
        in report["plain"]["tempering"]
    )
    assert len(report["traces"]) == 3 and report["traces"][0]["p_correct"]
    assert report["timings"]["total"] > 0 and report["environment"]["torch_threads"] == 1
    for name in ("labels/train.jsonl", "splits/train/generations.jsonl",
                 "splits/train/features/manifest.json", "second/fresh/features/manifest.json",
                 "sweep/sweep.json", "sweep/causal.json", "causal/causal.json", "traces/traces.npz",
                 "report.html"):  # fmt: skip
        assert name in report["files"], name


def test_html_is_self_contained_with_every_figure(study):
    _, out, _ = study
    html = (out / "report.html").read_text()
    first = html.index('id="decision"')
    assert first < html.index("<nav>") and first < html.index('class="plain"')
    for name in FIGURES:
        assert f'id="fig-{name}"' in html, name
    assert html.count("Copyright (c) Plotly") <= 1 and "plotly.js" in html.lower()
    assert "<script src=" not in html  # nothing fetched from the network
    assert "plotly_click" in html and 'id="head-details"' in html
    for verdict in re.findall(r"badge badge-([a-z-]+)", html):
        assert verdict in ("pass", "fail", "not-run", "incomplete"), verdict


def test_rerun_reuses_caches_and_recomputes_only_what_changed(study, tiny_dir, gemma_dir):
    config, out, first = study
    again = run_study(config, out, checker=half_right, progress=False, write=False)
    assert set(again.cache.values()) == {"reused"}
    for split in first.data:
        for site, x in first.data[split].features.items():
            assert (again.data[split].features[site] == x).all()
    changed = config.replace("tempering", lambdas=(0.5, 1.0))
    third = run_study(changed, out, checker=half_right, progress=False, write=False)
    assert third.cache["sweep"] == "computed"
    assert {v for k, v in third.cache.items() if k != "sweep"} == {"reused"}


def test_cli_run_reports_an_honest_null_when_nothing_is_right(tmp_path, tiny_dir, gemma_dir):
    """The real checker on a random model: no correct answers, so no probe can be fitted."""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        f"""[run]\nthreads = 1\n[model]\nname = "{tiny_dir}"\nbatch_size = 8
[items]\ntrain = 12\nfresh = 10\nfresh_hard = 0
[generation]\nmax_new_tokens = 6\nshort_max_new_tokens = 3
[capture]\npooled_last_n = 2\ndepth_curve = false
[second_model]\nenabled = false
[tempering]\nn_items = 4\nmax_new_tokens = 4
[traces]\nn_examples = 2\n"""
    )
    code, stdout, stderr = run_cli("run", str(cfg), "--out", str(tmp_path / "run"), "--no-progress")
    assert code == 0, stderr
    assert "verdict: not run" in stdout and "report:" in stdout
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["verdict"] == "not run"
    assert "could not run" in report["plain"]["overall"]
    assert "train has 0 positive" in report["falsification"]["skipped"]["main"]
    assert (
        report["attribution"]["result"] is None
        and "cohort cr has 0" in report["attribution"]["skipped"]
    )
    assert report["tempering"] is None and report["sidecar"] is None
    assert "fig-truncation" in (tmp_path / "run" / "report.html").read_text()


def test_cli_bad_config_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[items]\ntrain = 1\n")
    code, _, stderr = run_cli("run", str(bad), "--out", str(tmp_path / "x"))
    assert code == 2 and stderr.startswith("error: config [items]: train = 1")
    code, _, stderr = run_cli("run", str(tmp_path / "missing.toml"))
    assert code == 2 and "does not exist" in stderr


def test_demo_command_is_registered():
    code, stdout, _ = run_cli("demo", "--help")
    assert code == 0 and "--out" in stdout and "--threads" in stdout


def _chromium() -> str | None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from screenshot_report import find_chromium
    finally:
        sys.path.pop(0)
    return find_chromium()


@pytest.mark.slow
def test_headless_browser_screenshot(study, tmp_path):
    """Every plotly figure of report.html draws in headless Chromium. Skipped without
    Chromium on a developer's machine; in CI (``CI=true``, where ``.ci/run`` installs
    Debian's chromium) a missing browser fails instead."""
    if _chromium() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but no Chromium found: .ci/run installs Debian's chromium")
        pytest.skip("no Chromium (apt-get install -y chromium)")
    _, out, _ = study
    png = tmp_path / "report.png"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "screenshot_report.py"), str(out / "report.html"),
         str(png), "--height", "1600", "--budget-ms", "8000"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a drawn page, not a blank one
    drawn, total = (int(x) for x in re.search(r"(\d+) of (\d+) plots drawn", proc.stdout).groups())
    assert drawn == total >= 5, proc.stdout  # plotly.js filled every figure
