"""Smoke test: ``benchmarks/run.py --quick`` runs every section end to end (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("transformer_lens")
pytest.importorskip("nnsight")

pytestmark = pytest.mark.slow  # about a minute: loads three stacks and spawns a child


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.with_suffix(".md").read_text().startswith("# Benchmarks")
    return json.loads(out.read_text())


def test_machine_and_settings_are_recorded(results):
    machine = results["machine"]
    for key in ("cpu_model", "cpu_count", "torch", "transformers", "transformer_lens", "nnsight"):
        assert machine[key] is not None, key
    assert results["settings"]["device"] == "cpu"
    assert results["settings"]["dtype"] == "float32"
    assert results["settings"]["threads"] >= 1
    assert len(results["load_average"]["before"]) == 3
    assert len(results["load_average"]["after"]) == 3
    assert results["started"] and results["wall_s"] > 0


def test_every_section_ran_without_error(results):
    sections = results["models"]["tiny-random"]["sections"]
    assert set(sections) == {
        "capture", "early_stop", "fused", "tempered", "demo_generation", "demo_stage",
        "demo_sweep", "memory",
    }  # fmt: skip
    for name, section in sections.items():
        assert "error" not in section, (name, section.get("error"))


def test_capture_sections_have_every_path_and_agree_with_the_floor(results):
    sections = results["models"]["tiny-random"]["sections"]
    runs = sections["capture"]["runs"]
    assert [r["batch_size"] for r in runs] == [1, 4]
    expected = {
        "floor",
        "hidden_states",
        "workbench",
        "workbench_no_early_stop",
        "transformer_lens",
        "nnsight",
    }
    for run in runs:
        assert {r["path"] for r in run["rows"]} == expected
        for row in run["rows"]:
            assert {"median_s", "min_s", "max_s", "ratio", "paired_ratio_min"} <= set(row)
            assert row["max_abs_diff_vs_floor"] < 1e-3, row
    early = sections["early_stop"]
    assert {r["path"] for r in early["rows"]} == {
        "floor",
        "workbench",
        "transformer_lens_early_stop",
        "nnsight_early_stop",
    }
    assert all(r["max_abs_diff_vs_floor"] < 1e-3 for r in early["rows"])


def test_generation_sections_force_full_length_and_match_tokens(results):
    sections = results["models"]["tiny-random"]["sections"]
    fused = sections["fused"]
    assert fused["all_full_length"]
    assert {r["path"] for r in fused["rows"]} == {"two_pass", "fused", "generate_only"}
    assert fused["ceiling"] > 0 and fused["speedup"] > 0
    tempered = sections["tempered"]
    assert all(tempered["tokens_equal_to_hf_tempered"].values())
    assert {r["path"] for r in tempered["rows"]} == {
        "hf_generate",
        "hf_generate_tempered",
        "workbench_generate",
        "workbench_generate_tempered",
        "nnsight_generate_tempered",
    }
    assert all(r["throughput"] > 0 for r in tempered["rows"])


def test_memory_padding_and_targets(results):
    memory = results["models"]["tiny-random"]["sections"]["memory"]
    paths = {r["path"] for r in memory["rows"]}
    assert paths == {
        "floor",
        "hidden_states",
        "workbench",
        "transformer_lens",
        "nnsight",
        "stream_1x",
        "stream_10x",
    }
    assert all(r["peak_rss_mb"] > 0 for r in memory["rows"])
    padding = results["padding"]["rows"]
    assert {r["mix"] for r in padding} >= {"mixed"}
    for row in padding:
        assert 0 <= row["pad_fraction_bucketed"] <= row["pad_fraction_unbucketed"] < 1
    names = {t["target"] for t in results["targets"]}
    # batch 1, large batch, capture MFU, early stop, fused, tempered, demo throughput,
    # generation MFU, demo stage, demo sweep, streamed
    assert len(names) == 11
    for t in results["targets"]:
        assert {"model", "value", "threshold", "met"} <= set(t)


def test_matmul_peak_and_utilisation_are_reported(results):
    model = results["models"]["tiny-random"]
    peaks = model["matmul_peak"]["before_and_after"]
    assert len(peaks) == 2 and all(p["peak_flops"] >= p["median_flops"] > 0 for p in peaks)
    sections = model["sections"]
    rows = [r for run in sections["capture"]["runs"] for r in run["rows"]]
    rows += sections["fused"]["rows"] + sections["tempered"]["rows"]
    rows += [r for r in sections["demo_generation"]["rows"] if r["path"] != "hf_generate"]
    for row in rows:
        assert row["model_flops"] > 0 and row["fraction_of_peak"] > 0, row["path"]
        assert row["achieved_flops"] == pytest.approx(row["model_flops"] / row["median_s"])


def test_demo_sections_compare_the_loops(results):
    sections = results["models"]["tiny-random"]["sections"]
    demo = sections["demo_generation"]
    assert {r["path"] for r in demo["rows"]} == {"hf_generate", "static", "continuous"}
    assert {r["loop"] for r in demo["rows"] if r["path"] != "hf_generate"} == {
        "static",
        "continuous",
    }
    assert demo["agreement_with_hf_generate"]["continuous"]["items_differing"] == 0
    sweep = sections["demo_sweep"]
    # sampled from a random-init model's near-flat distributions, a float difference between
    # batch layouts can flip a draw: the counts are reported (SmolLM2: 0 of 180), not hidden
    assert {r["path"] for r in sweep["rows"]} == {"static", "continuous", "shared"}
    for key in ("responses_differing_static_vs_continuous", "responses_differing_shared_vs_static"):
        assert 0 <= sweep[key] <= sweep["responses"] == 18
    assert sections["demo_stage"]["max_abs_feature_diff_where_tokens_equal"] < 1e-4
