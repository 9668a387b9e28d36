"""score_items end to end against a real judge server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.labels.judge import (
    JudgeConfig,
    Rubric,
    judge_differences,
    read_judge_run,
    score_items,
)

Config = Callable[..., JudgeConfig]
Items = Callable[..., list[dict[str, str]]]


def test_two_pass_scores_every_item(server: Any, make_config: Config, make_items: Items) -> None:
    items = make_items(3, response="Paris, SCORE=5")
    items[1]["response"] = "Lyon, SCORE=2"
    run = score_items(items, make_config())
    assert [r.id for r in run.results] == ["q0", "q1", "q2"]
    assert run.n_ok == 3 and not run.failures
    assert run.results[0].scores == dict.fromkeys(make_config().rubric.axis_names, 5)
    assert run.scores("factual_accuracy") == {"q0": 5, "q1": 2, "q2": 5}
    assert run.labels("completeness") == {"q0": True, "q1": False, "q2": True}
    assert run.results[0].reference and run.results[0].reference.startswith("Reference answer for")
    # pass 1 then pass 2 per item; pass 1 is response-blind
    assert server.n_hits == 6
    refs = [h for h in server.hits if h.is_reference]
    assert len(refs) == 3
    assert all("SCORE=" not in h.user_text and "Paris" not in h.user_text for h in refs)
    scoring = [h for h in server.hits if not h.is_reference]
    assert all("Reference answer for" in h.user_text for h in scoring)


def test_direct_mode_is_one_pass(server: Any, make_config: Config, make_items: Items) -> None:
    run = score_items(make_items(2), make_config(mode="direct"))
    assert run.n_ok == 2 and server.n_hits == 2
    assert run.results[0].reference is None
    assert set(run.judge_prompt) == {"system", "direct"}


def test_custom_axes(server: Any, make_config: Config, make_items: Items) -> None:
    cfg = make_config(rubric=Rubric.from_axes({"correct": "Right?", "concise": "Short?"}))
    run = score_items(make_items(1), cfg)
    assert run.results[0].scores == {"correct": 5, "concise": 5}


def test_malformed_replies_fail_per_item_and_the_rest_is_scored(
    server: Any, make_config: Config, make_items: Items, tmp_path: Path
) -> None:
    bad = {
        "nojson": ({"content": "It is a decent answer, I would say good."}, "no_json"),
        "partial": ({"content": '{"factual_accuracy": 4}'}, "missing_axes"),
        "range": ({"content": '{"factual_accuracy": 9}'}, "out_of_range"),
        "htmlbody": ({"body": b"<html>502 Bad Gateway</html>"}, "bad_response"),
        "slow": ({"content": "{}", "delay": 0.6}, "timeout"),
        "down": ({"status": 500, "body": b"internal error"}, "server_error"),
    }

    def behaviour(hit: Any, n: int) -> dict[str, Any]:
        if not hit.is_reference:
            for marker, (reply, _) in bad.items():
                if f"MARK-{marker}" in hit.user_text:
                    if marker == "range":
                        return {"content": json.dumps(dict.fromkeys(_axes(hit), 9))}
                    return reply
        return server.judge_like(hit, n)

    server.behaviour = behaviour
    items = make_items(3) + [
        {"id": m, "prompt": f"Prompt {m}", "response": f"MARK-{m}"} for m in bad
    ]
    out = tmp_path / "out"
    run = score_items(items, make_config(timeout_s=0.3, max_retries=1), out=out)
    assert run.n_ok == 3
    assert {k: f.kind for k, f in run.failures.items()} == {m: kind for m, (_, kind) in bad.items()}
    assert all(f.stage == "score" for f in run.failures.values())
    assert run.results[3].reply == "It is a decent answer, I would say good."
    # everything is on disk: the log of results and the run
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(x["id"] for x in lines) == sorted(it["id"] for it in items)
    saved = read_judge_run(out)
    assert saved.failures == run.failures and saved.n_ok == 3
    # failed replies are not cached: a re-run asks again for those (pass 2) only
    server.reset_counts()
    server.behaviour = server.judge_like
    again = score_items(items, make_config(timeout_s=0.3, max_retries=1), out=out)
    assert again.n_ok == len(items)
    assert server.n_hits == len(bad)
    assert all(not h.is_reference for h in server.hits)


def _axes(hit: Any) -> list[str]:
    text = hit.user_text
    return list(json.loads(text[text.rindex("e.g. ") + 5 :]))


def test_failure_in_pass_one_is_reported_as_reference_stage(
    server: Any, make_config: Config, make_items: Items
) -> None:
    server.behaviour = lambda hit, n: (
        {"content": "   "}
        if hit.is_reference and "Question 1" in hit.user_text
        else server.judge_like(hit, n)
    )
    run = score_items(make_items(2), make_config())
    assert run.failures["q1"].kind == "empty_reference"
    assert run.failures["q1"].stage == "reference"
    assert run.results[0].ok


def test_rerun_costs_nothing(
    server: Any, make_config: Config, make_items: Items, tmp_path: Path
) -> None:
    items = make_items(5)
    first = score_items(items, make_config(), out=tmp_path / "a")
    assert server.n_hits == 10 and not any(r.cached for r in first.results)
    second = score_items(items, make_config(), out=tmp_path / "b")
    assert server.n_hits == 10, "a re-run must be served from the cache"
    assert all(r.cached for r in second.results)
    assert [r.scores for r in second.results] == [r.scores for r in first.results]
    # the cache is keyed by model, temperature and messages
    score_items(items, make_config(temperature=0.7))
    assert server.n_hits == 20


def test_cache_defaults_to_out_dir(
    server: Any, make_config: Config, make_items: Items, tmp_path: Path
) -> None:
    cfg = make_config(cache_dir=None)
    score_items(make_items(2), cfg, out=tmp_path / "out")
    assert len(list((tmp_path / "out" / "cache").glob("*.json"))) == 4
    score_items(make_items(2), cfg, out=tmp_path / "out")
    assert server.n_hits == 4


def test_two_conditions_share_the_reference_and_the_judge_prompt(
    server: Any, make_config: Config, make_items: Items
) -> None:
    base = score_items(make_items(4, response="base answer SCORE=2"), make_config())
    hits_base = server.n_hits
    adapter = score_items(make_items(4, response="adapter answer SCORE=4"), make_config())
    # pass 1 is response-blind, so it is cached across conditions: only pass 2 is asked
    assert server.n_hits - hits_base == 4
    assert [r.reference for r in base.results] == [r.reference for r in adapter.results]
    assert judge_differences(base, adapter) == []
    assert base.judge_prompt_sha256 == adapter.judge_prompt_sha256
    other = score_items(make_items(4), make_config(rubric=Rubric(system="Be lenient.")))
    diff = judge_differences(base, other)
    assert len(diff) == 1 and diff[0].startswith("judge_prompt_sha256:")
    assert judge_differences(base, score_items(make_items(1), make_config(mode="direct")))[
        0
    ].startswith("mode:")


def test_concurrency_limit_is_respected(
    server: Any, make_config: Config, make_items: Items
) -> None:
    server.behaviour = lambda hit, n: {**server.judge_like(hit, n), "delay": 0.1}
    run = score_items(make_items(12), make_config(max_concurrency=3, mode="direct"))
    assert run.n_ok == 12
    assert server.max_in_flight == 3
    server.reset_counts()
    run = score_items(make_items(6, prefix="p", response="other"), make_config(max_concurrency=2))
    assert run.n_ok == 6
    assert server.max_in_flight == 2


def test_same_prompt_twice_asks_pass_one_once(server: Any, make_config: Config) -> None:
    items = [Item(id=str(i), prompt="Same question", response=f"answer {i}") for i in range(4)]
    run = score_items(items, make_config(max_concurrency=4))
    assert run.n_ok == 4
    assert sum(h.is_reference for h in server.hits) == 1


def test_items_need_responses(make_config: Config) -> None:
    with pytest.raises(WorkbenchError, match="item 'q0' has no response"):
        score_items([{"id": "q0", "prompt": "Hi"}], make_config())
    with pytest.raises(WorkbenchError, match="duplicate item id"):
        score_items([{"id": "a", "prompt": "x", "response": "y"}] * 2, make_config())


def test_run_json_records_the_judge_but_not_the_key(
    server: Any, make_config: Config, make_items: Items, tmp_path: Path
) -> None:
    cfg = make_config(score_max_tokens=300, reference_max_tokens=200)
    run = score_items(make_items(2), cfg, out=tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "judge_run.json").read_text())
    assert saved["format"] == "workbench-judge-run/1"
    assert saved["judge"]["model"] == "test-judge"
    assert saved["judge"]["api_key_env"] == "WORKBENCH_JUDGE_API_KEY"
    assert saved["judge_prompt_sha256"] == cfg.rubric.prompt_sha256("two_pass")
    assert set(saved["judge_prompt"]) == {"system", "reference", "score"}
    assert saved["n_items"] == 2 and saved["n_ok"] == 2 and saved["n_failed"] == 0
    first = saved["results"][0]
    assert first["scores"]["factual_accuracy"] == 5
    assert first["prompt_sha256"] and first["response_sha256"]
    assert read_judge_run(tmp_path / "out" / "judge_run.json") == run
    # max_tokens per pass were sent
    assert {h.body.get("max_tokens") for h in server.hits if h.is_reference} == {200}
    assert {h.body.get("max_tokens") for h in server.hits if not h.is_reference} == {300}
