"""Replicated sweeps: the statistics, a tiny-model sweep, and the SmolLM2 report."""

from __future__ import annotations

import json

import pytest

from interventions import (
    intervention_factory,
    monotonicity,
    summarise,
    sweep,
    sweep_figure,
    temper,
    temper_sweep,
    write_sweep_report,
)
from workbench.core.errors import WorkbenchError
from workbench.labels.domains import check_item, make_split
from workbench.labels.verbal import classify_verbal
from workbench.model.generation import DecodingConfig, generate
from workbench.model.hooks import count_hooks


def test_summaries_spread_and_exceeds():
    recs = []
    for value, per_seed in ((0.0, (0.2, 0.3)), (0.5, (0.55, 0.65)), (1.0, (0.5, 0.7))):
        for seed, mean in enumerate(per_seed):
            recs += [(value, seed, {"m": mean - 0.1}), (value, seed, {"m": mean + 0.1})]
    sums, comps = summarise(recs, [1.0, 0.0, 0.5], [0, 1], ["m"], 1.0)
    assert [s.value for s in sums] == [0.0, 0.5, 1.0]
    ref = sums[2]
    assert ref.per_seed == pytest.approx((0.5, 0.7)) and ref.mean == pytest.approx(0.6)
    assert ref.spread == pytest.approx(0.2) and ref.std == pytest.approx(0.1414, abs=1e-4)
    by_value = {c.value: c for c in comps}
    assert by_value[0.0].delta == pytest.approx(-0.35) and by_value[0.0].exceeds is True
    assert by_value[0.0].paired == pytest.approx((-0.3, -0.4))
    assert by_value[0.5].exceeds is False  # 0.0 change, within a 0.2 seed range
    _, single = summarise([(v, 0, {"m": v}) for v in (0.0, 1.0)], [0.0, 1.0], [0], ["m"], 1.0)
    assert single[0].exceeds is None  # one seed: nothing to tell an RNG draw from an effect
    with pytest.raises(WorkbenchError, match="no responses for value/seed"):
        summarise(recs, [0.0, 2.0], [0, 1], ["m"], 0.0)


def test_monotonicity():
    assert monotonicity([0.1, 0.2, 0.2]) == "increasing"
    assert monotonicity([0.3, 0.2, 0.1]) == "decreasing"
    assert monotonicity([0.2, 0.2]) == "flat"
    assert monotonicity([0.1, 0.3, 0.2]) == "non-monotonic"


def test_tiny_sweep_regenerates_per_value_and_seed(tiny):
    lm = tiny("llama")
    items = [{"id": "a", "prompt": "Capital of Peru?"}, {"id": "b", "prompt": "2 + 2 ="}]
    decoding = DecodingConfig(max_new_tokens=3, do_sample=True)
    result = temper_sweep(
        lm, items, [(1, 0), (2, 3)], [0.0, 1.0], [0, 1], {"length": lambda it, r: len(r)},
        decoding=decoding,
    )  # fmt: skip
    assert len(result.responses) == 2 * 2 * 2
    assert result.metrics == ("length", "truncated", "n_tokens") and result.reference == 1.0
    # lambda = 1 is the identity and seeds are per item: the same draws as no intervention
    for seed in (0, 1):
        plain = generate(lm, items, max_new_tokens=3, do_sample=True, seed=seed)
        swept = [r.response for r in result.responses if r.value == 1.0 and r.seed == seed]
        assert swept == [g.response for g in plain]
    assert result.summary("truncated", 0.0).mean == pytest.approx(
        sum(r.truncated for r in result.responses if r.value == 0.0) / 4
    )
    assert {c.value for c in result.comparisons} == {0.0}
    assert set(result.monotonic) == set(result.metrics)
    assert any("truncated" in w for w in result.warnings)
    assert result.interventions["0.0"]["targets"][1] == {"layer": 2, "head": 3, "factor": 0.0}
    json.dumps(result.to_json(), allow_nan=False)
    fig = sweep_figure(result)
    assert len(fig.data) == 3 * (3 + 2)  # per metric: band (2 traces), mean, two seeds
    assert count_hooks(lm.model) == 0


def test_sweep_takes_any_intervention_factory(tiny):
    lm = tiny("gpt2")
    built = []

    def factory(lam: float):
        built.append(lam)
        return None if lam == 1.0 else temper(lm, {(0, 0): lam})

    result = sweep(
        lm,
        ["Hi"],
        factory,
        [1.0, 0.5],
        [3],
        {"n": lambda it, r: 1},
        decoding=DecodingConfig(max_new_tokens=2),
    )
    assert built == [1.0, 0.5]
    assert any("one seed" in w for w in result.warnings)
    assert result.comparisons[0].exceeds is None
    greedy = sweep(
        lm,
        ["Hi"],
        factory,
        [1.0],
        [0, 1],
        {"n": lambda it, r: 1},
        decoding=DecodingConfig(max_new_tokens=2),
    )
    assert any("greedy decoding" in w for w in greedy.warnings)
    mlp = intervention_factory(lm, "mlp", [0, 2])(0.5)
    assert mlp.to_json()["kind"] == "scale_mlp"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lambdas": [0.5, 0.5]}, "each once"),
        ({"lambdas": [-0.5, 1.0]}, "factor -0.5 must be finite and >= 0"),
        ({"lambdas": [float("nan")]}, "finite numbers"),
        ({"heads": [(1, 9)]}, "head 9 is out of range"),
        ({"heads": []}, "no targets"),
        ({"seeds": []}, "at least one integer seed"),
        ({"scorers": {"truncated": len}}, "reserved"),
        ({"scorers": {"bad": lambda it, r: "yes"}}, "scorer 'bad' returned 'yes' for item '0'"),
        ({"at": "q_proj"}, "unknown site 'q_proj'"),
        ({"reference": 0.3}, "reference 0.3 is not among"),
    ],
)
def test_sweep_bad_input(tiny, kwargs, message):
    lm = tiny("llama")
    args = {
        "heads": [(1, 0)],
        "lambdas": [0.0, 1.0],
        "seeds": [0],
        "scorers": {"n": lambda it, r: 1},
    }
    args.update(kwargs)
    extra = {k: args.pop(k) for k in ("at", "reference") if k in args}
    with pytest.raises(WorkbenchError, match=message):
        temper_sweep(lm, ["Hi"], args["heads"], args["lambdas"], args["seeds"], args["scorers"],
                     decoding=DecodingConfig(max_new_tokens=1), **extra)  # fmt: skip
    assert count_hooks(lm.model) == 0


@pytest.mark.slow
def test_smollm_sweep_writes_its_report(smollm, tmp_path):
    items = make_split("train", 2, seed=0)
    scorers = {"correct": check_item, "asserts": lambda it, r: classify_verbal(r) == "assert"}
    result = temper_sweep(
        smollm, items, [(10, 3), (20, 5)], [0.0, 1.0], [0, 1], scorers,
        decoding=DecodingConfig(max_new_tokens=4, do_sample=True, temperature=0.7),
    )  # fmt: skip
    paths = write_sweep_report(tmp_path / "run", result, meta={"model": smollm.name})
    assert sorted(p.name for p in paths.values()) == ["sweep.html", "sweep.json"]
    report = json.loads(paths["json"].read_text())
    sweep_json = report["sweep"]
    assert sweep_json["values"] == [0.0, 1.0] and sweep_json["seeds"] == [0, 1]
    assert len(sweep_json["responses"]) == 8
    assert {s["metric"] for s in sweep_json["summaries"]} == {
        "correct",
        "asserts",
        "truncated",
        "n_tokens",
    }
    assert isinstance(sweep_json["any_change_exceeds_seed_spread"], bool)
    assert all(r["truncated"] in (True, False) for r in sweep_json["responses"])
    assert "plotly" in paths["html"].read_text()[:200000].lower()
    assert count_hooks(smollm.model) == 0
