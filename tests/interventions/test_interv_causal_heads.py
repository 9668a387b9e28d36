"""Heads: mean / resample ablation, ITI shifts, random-head controls; the CLI; SmolLM2-135M."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support import run_cli

from interventions import (
    ablate_heads,
    causal_heads,
    causal_test,
    collect_site,
    iti_directions,
    mass_mean_direction,
    temper,
    write_causal_report,
)
from interventions.targets import Target
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.model.capture import capture
from workbench.model.generation import DecodingConfig
from workbench.model.hooks import count_hooks

ITEMS = [Item("a", "What is 2+2?"), Item("b", "Name a colour"), Item("c", "Hi there")]


def test_zero_ablation_is_tempering_at_zero_and_mean_ablation_uses_the_reference(tiny):
    lm = tiny("llama")
    heads = [(1, 0), (2, 3)]
    with ablate_heads(lm, heads, "zero"):
        zero = capture(lm, ITEMS, ["h_last"])["h_last"]
    with temper(lm, dict.fromkeys(heads, 0.0)):
        np.testing.assert_array_equal(capture(lm, ITEMS, ["h_last"])["h_last"], zero)
    with ablate_heads(lm, heads, "mean", reference=ITEMS, positions="last"):
        got = capture(lm, ITEMS, ["head_in(1)", "h_last"])
    mean = collect_site(lm, ITEMS, "head_in(1)", heads=(0,), positions="last").mean(0)
    np.testing.assert_allclose(got["head_in(1)"][:, 0], np.tile(mean, (3, 1)), atol=1e-6)
    assert not np.allclose(got["h_last"], zero)
    with ablate_heads(lm, heads, "resample", reference=ITEMS, positions="last", seed=2):
        res = capture(lm, ITEMS, ["head_in(2)"])["head_in(2)"][:, 3]
    bank = collect_site(lm, ITEMS, "head_in(2)", heads=(3,), positions="last")
    assert all(np.abs(bank - r).max(1).min() < 1e-6 for r in res)
    assert count_hooks(lm.model) == 0
    with pytest.raises(WorkbenchError, match="head 7 is out of range for layer 1"):
        ablate_heads(lm, [(1, 7)], "zero")
    with pytest.raises(WorkbenchError, match="needs reference items"):
        ablate_heads(lm, heads, "mean")


def test_causal_heads_with_iti_and_random_head_controls(tiny):
    lm = tiny("llama")
    heads = [(1, 0), (2, 1)]
    six = [*ITEMS, *(Item(f"{it.id}2", it.prompt + " again") for it in ITEMS)]
    feats = capture(lm, six, ["head_in(1,last=2)", "head_in(2,last=2)"])
    acts = {1: feats["head_in(1,last=2)"], 2: feats["head_in(2,last=2)"]}
    from interventions import head_probes, heads_from_probes

    labels = [1, 0, 1, 0, 1, 0]
    ranked = heads_from_probes(head_probes(acts, labels, folds=2), 2)
    assert len(ranked) == 2 and all(layer in (1, 2) for layer, _ in ranked)
    directions = iti_directions(acts, labels, heads)
    target = Target.logprob(["4", "Blue", "Hello"])
    result = causal_heads(
        lm, ITEMS, heads, target, kind="mean", directions=directions, n_random=19,
        decoding=DecodingConfig(max_new_tokens=3),
    )  # fmt: skip
    tests = {e.test for e in result.effects}
    assert tests == {"necessity (mean ablation)", "sufficiency+ (ITI)", "sufficiency- (ITI)"}
    draws = result.settings["random_heads"]
    assert len(draws) == 19 and all(len(d) == 2 and [1, 0] not in d for d in draws)
    assert all(1 / 20 <= e.p <= 1 and len(e.controls) == 19 for e in result.effects)
    assert result.effect("necessity (mean ablation)", target.name).change != 0
    assert result.interventions["sufficiency+ (ITI)"][0]["op"] == "add"
    json.dumps(result.to_json(), allow_nan=False)


def test_causal_cli_writes_json_and_html(tiny_dir, items_file, tmp_path):
    rows = [{"id": f"q{i}", "prompt": p, "gold": g}
            for i, (p, g) in enumerate([("2+2?", "4"), ("Sky colour?", "blue"), ("Hi", "hello")])]  # fmt: skip
    items = items_file(rows)
    direction = tmp_path / "dir.json"
    direction.write_text(json.dumps(np.ones(64).tolist()))
    out = tmp_path / "causal"
    code, _, err = run_cli(
        "causal", "--model", str(tiny_dir), "--items", str(items), "--site", "resid(1)",
        "--direction", str(direction), "--n-random", "19", "--max-new-tokens", "2",
        "--positions", "last", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    data = json.loads((out / "causal.json").read_text())
    assert data["causal"]["interventions"]["necessity"][0]["positions"] == "last"
    assert (out / "causal.html").read_text().count("plotly") > 0
    for args, message in [
        (["--n-random", "0"], "needs random controls"),
        (["--alpha", "nan"], "--alpha nan must be a finite number"),
        (["--positions", "middle"], "positions 'middle' not understood"),
        (["--ablation", "half"], "--ablation 'half'"),
    ]:
        code, _, err = run_cli(
            "causal", "--model", str(tiny_dir), "--items", str(items), "--site", "resid(1)",
            "--direction", str(direction), "--out", str(tmp_path / "bad"), *args,
        )  # fmt: skip
        assert code == 2 and message in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_smollm_probe_direction_and_top_heads(smollm, tmp_path):
    """The causal test of a mass-mean direction and of two heads on SmolLM2-135M."""
    torch.set_num_threads(1)
    from workbench.labels.domains import make_split

    items = make_split("train", 3, seed=0)
    answers = [str(it.labels["gold"]) for it in items]
    layer = 10
    feats = capture(smollm, items, [f"resid({layer})"])[f"resid({layer})"]
    labels = np.array([it.labels["family"] == items[0].labels["family"] for it in items])
    if labels.all() or not labels.any():
        labels = np.arange(len(items)) % 2 == 0
    direction = mass_mean_direction(feats, labels)
    target = Target.logprob(answers, name="gold log-prob")
    decoding = DecodingConfig(max_new_tokens=3)
    result = causal_test(smollm, items, f"resid({layer})", direction, target,
                         n_random=19, decoding=decoding)  # fmt: skip
    paths = write_causal_report(tmp_path / "direction", result, meta={"model": "smollm2"})
    heads = causal_heads(smollm, items, [(19, 2), (18, 6)], target, kind="mean",
                         n_random=19, decoding=decoding)  # fmt: skip
    head_paths = write_causal_report(tmp_path / "heads", heads)
    for p in (*paths.values(), *head_paths.values()):
        assert p.stat().st_size > 0
    print(f"smollm direction: {result.verdict} ({result.seconds:.1f} s)")
    print(f"smollm heads: {heads.verdict} ({heads.seconds:.1f} s)")


def test_tempering_scales_are_tested_against_random_heads_at_the_same_lambda(tiny):
    """A 'tempering (lambda x)' test scales the chosen heads, and each control scales
    its random draw by the same lambda (checked against temper() by hand)."""
    lm = tiny("llama")
    heads = [(1, 0), (2, 1)]
    target = Target.logprob(["4", "Blue", "Hello"])
    result = causal_heads(
        lm, ITEMS, heads, target, scales=(0.5,), n_random=19, regenerate=2,
        seeds=(0, 1, 2), decoding=DecodingConfig(max_new_tokens=3, do_sample=True),
    )  # fmt: skip
    e = result.effect("tempering (lambda 0.5)", target.name)
    base = float(target.read(lm, ITEMS).mean())
    with temper(lm, dict.fromkeys(heads, 0.5)):
        by_hand = float(target.read(lm, ITEMS).mean())
    assert e.change == pytest.approx(by_hand - base, abs=1e-5)
    draw = [tuple(h) for h in result.settings["random_heads"][0]]
    with temper(lm, dict.fromkeys(draw, 0.5)):
        control = float(target.read(lm, ITEMS).mean())
    assert e.controls[0] == pytest.approx(control - base, abs=1e-5)
    assert (
        len(e.controls) == 19
        and len(result.effect("tempering (lambda 0.5)", "n_tokens").controls) == 2
    )
    assert result.settings["scales"] == [0.5]
    with pytest.raises(WorkbenchError, match="1 is the unchanged model"):
        causal_heads(lm, ITEMS, heads, target, scales=(1.0,), n_random=19)
