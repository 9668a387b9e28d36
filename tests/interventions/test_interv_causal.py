"""Causal tests: a planted direction is found beyond all random controls, a random one is not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support import tiny_config, tiny_tokenizer

from interventions import causal_test
from interventions.causal import CausalResult
from interventions.targets import Target, answer_logprob
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.model.generation import DecodingConfig
from workbench.model.loaded import wrap_model

PROMPTS = ["Is it so?", "Yes or no", "Tell me", "Really now", "Maybe later", "Go on then"]


@pytest.fixture(scope="module")
def planted():
    """A tiny Llama whose unembedding reads one residual direction: after the final
    (RMS) norm, logit("Y") - logit("N") = 2 c (h . u); every other logit is 0."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    config = tiny_config("llama")
    config.tie_word_embeddings = False
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 0.2)
    tok = tiny_tokenizer()
    yes, no = (tok.convert_tokens_to_ids(c) for c in ("Y", "N"))
    u = torch.randn(config.hidden_size, generator=torch.Generator().manual_seed(1))
    u = u / u.norm()
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.weight[yes] = 3.0 * u
        model.lm_head.weight[no] = -3.0 * u
    lm = wrap_model(model, tok, name="tiny-planted")
    return lm, u.numpy()


def _items():
    return [Item(f"q{i}", p) for i, p in enumerate(PROMPTS)]


def test_planted_direction_moves_the_target_beyond_every_random_direction(planted):
    lm, u = planted
    target = Target.logprob(["Y"] * len(PROMPTS))
    result = causal_test(
        lm, _items(), f"resid({lm.layout.n_layers - 1})", u, target,
        positions="last", alpha=3.0, n_random=20, decoding=DecodingConfig(max_new_tokens=3),
    )  # fmt: skip
    assert result.verdict.startswith("moves the target"), result.verdict
    for test in ("necessity", "sufficiency+", "sufficiency-"):
        e = result.effect(test, target.name)
        assert e.p == pytest.approx(1 / 21), (test, e.change, e.controls)
        assert abs(e.change) > max(abs(c) for c in e.controls)
    assert result.effect("sufficiency+", target.name).change > 0  # towards "Y"
    assert result.effect("sufficiency-", target.name).change < 0
    for side in ("n_tokens", "truncated", "asserts"):
        result.effect("necessity", side)  # side effects always reported
    data = json.loads(json.dumps(result.to_json()))
    assert CausalResult.from_json(data).to_json() == data
    assert data["interventions"]["necessity"][0]["op"] == "project_out"
    print("planted:", result.verdict)


def test_random_direction_moves_nothing(planted):
    lm, u = planted
    rng = np.random.default_rng(123)
    r = rng.standard_normal(u.size)
    r -= (r @ u) * u  # orthogonal to the planted direction: it cannot decide the token
    target = Target.logprob(["Y"] * len(PROMPTS))
    result = causal_test(
        lm, _items(), f"resid({lm.layout.n_layers - 1})", r, target,
        positions="last", alpha=3.0, n_random=20, decoding=DecodingConfig(max_new_tokens=3),
    )  # fmt: skip
    assert not result.verdict.startswith("moves the target"), result.verdict
    nec = result.effect("necessity", target.name)
    # orthogonal to u: only the final RMS norm's rescaling reaches the logits
    assert nec.p > 0.05 and abs(nec.change) < 0.1
    print("random:", result.verdict)


def test_teacher_forced_logprob_matches_a_manual_forward(planted):
    lm, u = planted
    items = _items()[:2]
    got = answer_logprob(lm, items, ["YN", "N"])
    from workbench.model.tokens import encode_prompts

    prompts = encode_prompts(lm.tokenizer, items, max_new_tokens=1, chat_template=None)
    for i, (p, a) in enumerate(zip(prompts, ["YN", "N"], strict=True)):
        ids = p + list(lm.tokenizer(a, add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0], -1)
        n = len(ids) - len(p)
        manual = sum(float(logp[len(p) - 1 + k, ids[len(p) + k]]) for k in range(n))
        assert got[i] == pytest.approx(manual, abs=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_random": 0}, "needs random controls"),
        ({"alpha": float("nan")}, "alpha nan must be a finite number"),
        ({"seeds": (0,), "decoding": DecodingConfig(do_sample=True)}, "pass >= 3 seeds"),
        ({"direction": np.ones(5)}, r"shape \(5,\)"),
        ({"positions": [99]}, "outside a row"),
        ({"tests": ("sufficiency",)}, r"tests \['sufficiency'\]: choose from necessity"),
        ({"tests": ()}, "choose from"),
    ],
)
def test_causal_test_bad_input(planted, kwargs, message):
    lm, u = planted
    args = {"direction": u, **kwargs}
    direction = args.pop("direction")
    with pytest.raises(WorkbenchError, match=message) as info:
        causal_test(lm, _items(), "resid(2)", direction, Target.logprob(["Y"] * 6), **args)
    assert "\n" not in str(info.value)


def test_fewer_controls_are_descriptive(planted):
    lm, u = planted
    result = causal_test(
        lm, _items(), "resid(2)", u, Target.logprob(["Y"] * 6), n_random=4,
        decoding=DecodingConfig(max_new_tokens=2),
    )  # fmt: skip
    assert result.warnings and "descriptive" in result.verdict


def test_regenerate_budget_reads_every_control_but_regenerates_only_k(planted, monkeypatch):
    """With regenerate=3 the target keeps all 20 controls (and its p); each side effect
    and scorer has the first 3 controls' regenerations, marked descriptive."""
    import interventions.causal as causal

    lm, u = planted
    calls = []
    real = causal.generate_grid

    def counting(model, items, conditions, seeds, **kwargs):
        calls.append((len(conditions), len(seeds)))
        grid = real(model, items, conditions, seeds, **kwargs)
        assert grid.loop == "continuous (shared batches)"
        return grid

    monkeypatch.setattr(causal, "generate_grid", counting)
    target = Target.logprob(["Y"] * len(PROMPTS))
    result = causal_test(
        lm, _items(), f"resid({lm.layout.n_layers - 1})", u, target, alpha=3.0, n_random=20,
        decoding=DecodingConfig(max_new_tokens=3), regenerate=3,
        scorers={"says Y": lambda item, response: response.startswith("Y")},
    )  # fmt: skip
    # one run, in shared batches: baseline, then per test the real one and 3 controls
    assert calls == [(1 + 3 * (1 + 3), 1)]
    assert result.settings["controls_per_metric"] == {
        target.name: 20, "n_tokens": 3, "truncated": 3, "asserts": 3, "says Y": 3,
    }  # fmt: skip
    nec = result.effect("necessity", target.name)
    assert nec.p == pytest.approx(1 / 21) and not nec.descriptive
    side = result.effect("sufficiency+", "says Y")
    assert side.descriptive and len(side.controls) == 3
    # adding +alpha sigma along the planted direction makes "Y" the greedy token
    assert side.change > 0
    assert result.settings["regenerated_controls"] == 3
    assert CausalResult.from_json(result.to_json()).to_json() == result.to_json()


def test_regenerate_zero_reports_side_effects_without_controls(planted):
    lm, u = planted
    result = causal_test(
        lm, _items(), "resid(2)", u, Target.logprob(["Y"] * 6), n_random=19,
        decoding=DecodingConfig(max_new_tokens=2), regenerate=0,
    )  # fmt: skip
    e = result.effect("necessity", "n_tokens")
    assert e.controls == () and not e.beyond  # no controls: never "beyond"
    assert "n_tokens" not in result.verdict


@pytest.mark.parametrize(
    ("regenerate", "target", "message"),
    [
        (-1, Target.logprob(["Y"] * 6), "regenerate -1: give how many controls"),
        (True, Target.logprob(["Y"] * 6), "regenerate True"),
        (2, Target.scorer("y", lambda it, r: 1.0), "every control must regenerate"),
    ],
)
def test_regenerate_bad_input(planted, regenerate, target, message):
    lm, u = planted
    with pytest.raises(WorkbenchError, match=message):
        causal_test(lm, _items(), "resid(2)", u, target, n_random=19, regenerate=regenerate)


def test_answer_direction_is_the_gradient_and_moves_the_target(tiny):
    """Independent check: a finite step along the direction raises the first-token log-prob
    by about eps * |grad| (read by a bare forward with a hand-written hook); and the causal
    test, fed it as a positive control, finds it beyond every random direction."""
    from interventions import answer_direction

    lm = tiny("llama")
    items = [Item("a", "What is 2+2?"), Item("b", "Name a colour"), Item("c", "Hi there")]
    answers = ["4", "Blue", "Hello"]
    site, d = answer_direction(lm, items, answers)
    assert site == f"resid({lm.layout.n_layers - 1})" and abs(np.linalg.norm(d) - 1) < 1e-9
    from workbench.model.tokens import encode_prompts

    prompts = encode_prompts(lm.tokenizer, items, max_new_tokens=1, chat_template=None)
    first = [lm.tokenizer(a, add_special_tokens=False)["input_ids"][0] for a in answers]
    layer = lm.layout.layers[-1]

    def first_logp(eps: float) -> float:
        def hook(_module, _args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            hidden[:, -1] += eps * torch.tensor(d, dtype=hidden.dtype)
            return output

        handle = layer.register_forward_hook(hook)
        try:
            total = 0.0
            for ids, tok in zip(prompts, first, strict=True):
                with torch.no_grad():
                    logits = lm.model(torch.tensor([ids])).logits[0, -1]
                total += float(torch.log_softmax(logits.double(), -1)[tok])
            return total / len(prompts)
        finally:
            handle.remove()

    slope = (first_logp(1e-3) - first_logp(-1e-3)) / 2e-3
    _, raw = answer_direction(lm, items, answers, normalize=False)
    # the directional derivative along the unit mean gradient is the mean gradient's norm
    assert slope > 0 and slope == pytest.approx(np.linalg.norm(raw), rel=1e-2)
    result = causal_test(
        lm, items, site, d, Target.logprob(answers), alpha=3.0, n_random=19, regenerate=0,
        tests=("sufficiency+",),
    )  # fmt: skip
    assert {e.test for e in result.effects} == {"sufficiency+"}
    assert list(result.interventions) == ["sufficiency+"]
    assert result.effect("sufficiency+", "answer log-prob").p == pytest.approx(1 / 20)
    assert result.verdict.startswith("moves the target"), result.verdict
