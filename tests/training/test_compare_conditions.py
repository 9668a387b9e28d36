"""Condition directories and ``workbench compare``: refusal of apples-to-oranges comparisons
(every difference on one line, exit 2), truncated fraction per condition, the judge-prompt
asymmetry, and the truncation artifact undone by rescoring at a larger max_new_tokens."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch
from support import run_cli

from workbench.conditions.compare import ComparisonRefused, compare_conditions, rescore_condition
from workbench.conditions.condition import read_condition, write_condition
from workbench.core.items import Item, read_items
from workbench.core.store import sha256_text
from workbench.labels.domains import make_split
from workbench.labels.judge import ItemScore, JudgeConfig, JudgeRun, Rubric
from workbench.model.generation import DecodingConfig, Generation, Generations, generate

ITEMS = make_split("train", 2, seed=0, families=("arithmetic",))  # 1 + 8 = 9, 94 - 79 = 15


def _verbose(item: Item) -> str:
    return f"Adding them up gives {item.labels['gold']}"


@pytest.fixture(scope="module")
def verbose_dir(tmp_path_factory):
    """A tiny Llama overfit to answer ITEMS verbosely: cut at 8 tokens the answer is lost."""
    from support import build_tiny

    from workbench.model.tokens import encode_prompt

    torch.set_num_threads(1)
    lm = build_tiny("llama", seed=1)
    tok, model = lm.tokenizer, lm.model
    seqs = []
    for it in ITEMS:
        prompt = encode_prompt(tok, it.prompt)
        response = tok(_verbose(it), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        seqs.append(
            (torch.tensor([prompt + response]), torch.tensor([[-100] * len(prompt) + response]))
        )
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(200):
        loss = sum(model(input_ids=ids, labels=labels).loss for ids, labels in seqs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    model.eval()
    path = tmp_path_factory.mktemp("verbose-llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _gens(
    responses,
    *,
    truncated=None,
    config=DecodingConfig(max_new_tokens=8, chat_template=True),
    items=ITEMS,
):
    truncated = truncated or [False] * len(items)
    rows = tuple(
        Generation(it.id, it.prompt, r, (), t)
        for it, r, t in zip(items, responses, truncated, strict=True)
    )
    return Generations(items=rows, config=config)


def _one_line_error(code: int, err: str, pattern: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def test_condition_round_trip_and_item_file(tiny, tmp_path):
    gens = _gens(["9", "I think 14"], truncated=[False, True])
    cond = write_condition(
        tmp_path / "c", gens, tiny("llama"), items=ITEMS, scores={ITEMS[0].id: {"x": 1.0}}
    )
    meta = json.loads((tmp_path / "c/condition.json").read_text())
    assert meta["max_new_tokens"] == 8 and meta["decoding"]["chat_template"] is True
    assert meta["items"]["n"] == 2 and meta["truncated_fraction"] == 0.5
    assert meta["model"]["name"] == "tiny-llama" and meta["judge"] is None
    back = read_condition(tmp_path / "c")
    assert back.identity() == cond.identity() and back.scores == {ITEMS[0].id: {"x": 1.0}}
    assert [g.truncated for g in back.generations] == [False, True]
    assert back.items[0].labels["gold"] == 9
    rows = read_items(tmp_path / "c/generations.jsonl")  # an item file for `workbench capture`
    assert [r.response for r in rows] == ["9", "I think 14"]
    cmp = compare_conditions(back, back, scorer="domain")
    assert cmp.delta.delta == 0 and cmp.a.mean_score == 0.5 and cmp.a.truncated_fraction == 0.5
    with pytest.raises(ValueError, match="already holds a condition"):
        write_condition(tmp_path / "c", gens, tiny("llama"), items=ITEMS)


def test_refuses_every_difference_in_one_line(tiny, tmp_path):
    sampled = DecodingConfig(max_new_tokens=8, do_sample=True, seed=3, chat_template=True)
    a_gens = _gens(["9", "15"], config=sampled)
    a = write_condition(tmp_path / "a", a_gens, tiny("llama"), items=ITEMS)
    other = make_split("train", 3, seed=0, families=("arithmetic",))[1:]
    hotter = dataclasses.replace(sampled, max_new_tokens=16, temperature=0.7)
    write_condition(tmp_path / "b", _gens(["9", "15"], config=hotter, items=other),
                    tiny("qwen3"), items=other)  # fmt: skip
    out = tmp_path / "out"
    code, _, err = run_cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out))
    line = _one_line_error(code, err, r"refusing to compare a with b")
    for key in ("max_new_tokens: 8 vs 16", "temperature: 1.0 vs 0.7", "item_set: '2 items"):
        assert key in line, line
    assert "seed" not in line and "do_sample" not in line and "model" not in line
    assert "--allow max_new_tokens --allow temperature --allow item_set)" in line
    assert not out.exists()
    with pytest.raises(ComparisonRefused):
        compare_conditions(a, read_condition(tmp_path / "b"), allow=["max_new_tokens"])

    keys = ("max_new_tokens", "temperature", "item_set")
    allow = [x for k in keys for x in ("--allow", k)]
    code, stdout, err = run_cli(
        "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), *allow
    )
    assert code == 0, err
    report = json.loads((out / "comparison.json").read_text())
    assert set(report["allowed_differences"]) == set(keys)
    assert report["delta"]["n_paired"] == 1  # only the shared item is paired
    assert "Differences accepted with `--allow`" in (out / "report.md").read_text()

    # Greedy decoding: a different seed (or temperature) changes nothing, so it is no difference.
    greedy = [_gens(["9", "15"], config=DecodingConfig(max_new_tokens=8, seed=s)) for s in (0, 1)]
    ga, gb = (
        write_condition(tmp_path / f"g{s}", g, tiny("llama"), items=ITEMS)
        for s, g in enumerate(greedy)
    )
    assert compare_conditions(ga, gb).delta.delta == 0.0
    sampled_b = write_condition(
        tmp_path / "s", _gens(["9", "15"], config=sampled), tiny("llama"), items=ITEMS
    )
    with pytest.raises(ComparisonRefused, match="do_sample: False vs True; temperature: 'unused"):
        compare_conditions(ga, sampled_b)

    code, _, err = run_cli(
        "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), "--allow", "colour"
    )
    _one_line_error(code, err, r"--allow 'colour' is not a comparison key")


def _judge_run(rubric: Rubric, responses: list[str], scores: list[int]) -> JudgeRun:
    config = JudgeConfig(base_url="http://127.0.0.1:9/v1", model="judge", rubric=rubric)
    results = tuple(
        ItemScore(it.id, {ax: s for ax in rubric.axis_names}, response_sha256=sha256_text(r))
        for it, r, s in zip(ITEMS, responses, scores, strict=True)
    )
    return JudgeRun(
        config, rubric.judge_prompt("two_pass"), rubric.prompt_sha256("two_pass"), results
    )


def test_judge_prompt_asymmetry_is_refused(tiny, tmp_path):
    rubric = Rubric.from_axes(["completeness"])
    lenient = dataclasses.replace(rubric, score_template=rubric.score_template + "\nBe generous.")
    responses = ["9", "15"]
    write_condition(tmp_path / "a", _gens(responses), tiny("llama"), items=ITEMS,
                    judge=_judge_run(rubric, responses, [3, 3]))  # fmt: skip
    write_condition(tmp_path / "b", _gens(responses), tiny("llama"), items=ITEMS,
                    judge=_judge_run(lenient, responses, [5, 5]))  # fmt: skip
    args = ("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "o"))
    code, _, err = run_cli(*args, "--score", "judge:completeness")
    _one_line_error(code, err, r"judge_prompt_sha256: '[0-9a-f]{64}' vs '[0-9a-f]{64}'")
    code, _, err = run_cli(
        *args, "--score", "judge:completeness>=4", "--allow", "judge_prompt_sha256"
    )
    assert code == 0, err
    assert json.loads((tmp_path / "o/comparison.json").read_text())["delta"]["delta"] == 1.0
    code, _, err = run_cli(*args, "--score", "domain")  # the judge plays no part in this score
    assert code == 0, err

    with pytest.raises(ValueError, match="scored a different response for item"):
        write_condition(tmp_path / "c", _gens(["9", "16"]), tiny("llama"), items=ITEMS,
                        judge=_judge_run(rubric, responses, [3, 3]))  # fmt: skip


def test_rescoring_undoes_a_truncation_artifact(verbose_dir, tiny, tmp_path):
    """A (verbose base) is cut at 8 tokens and scores 0; B (terse adapter) is right on one
    item: B "gains" +50 points. At 64 tokens A completes its answers and the delta flips to -50."""
    from workbench.model.loading import load_model

    verbose = load_model(str(verbose_dir))
    gens_a = generate(verbose, ITEMS, max_new_tokens=8)
    assert all(g.truncated for g in gens_a) and gens_a[0].response == "Adding t"
    a = write_condition(tmp_path / "base", gens_a, verbose, items=ITEMS)
    b = write_condition(
        tmp_path / "adapter", _gens(["9", "14"], config=gens_a.config), tiny("qwen3"), items=ITEMS
    )

    before = compare_conditions(a, b)
    assert (before.a.truncated_fraction, before.b.truncated_fraction) == (1.0, 0.0)
    assert before.delta.delta == 0.5
    ra, rb = rescore_condition(a, verbose, 64), rescore_condition(b, None, 64)
    assert [g.response for g in ra.generations] == [_verbose(it) for it in ITEMS]
    after = compare_conditions(a, b, rescored=(ra, rb))
    assert after.rescored is not None and after.rescored[0].truncated_fraction == 0.0
    assert after.rescored[2].delta == -0.5 and after.delta_shift == -1.0

    out = tmp_path / "cmp"
    code, stdout, err = run_cli(
        "compare", str(tmp_path / "base"), str(tmp_path / "adapter"), "--out", str(out),
        "--rescore-max-new-tokens", "64",
    )  # fmt: skip
    assert code == 0, err
    assert "truncated 2/2 (100.0%)" in stdout and "(moved -100.0 points)" in stdout
    report = json.loads((out / "comparison.json").read_text())
    assert report["delta"]["delta"] == 0.5 and report["rescored"]["delta"]["delta"] == -0.5
    assert report["rescored"]["a"]["n_regenerated"] == 2
    markdown = (out / "report.md").read_text()
    assert "truncation artifact" in markdown and "its sign flipped" in markdown
    assert read_condition(out / "rescored/a").max_new_tokens == 64
    from probes.labels import load_labels  # the rescored rows are a label source for falsify

    assert load_labels(f"{out}/rescored/a/generations.jsonl:scores.domain").tolist() == [1.0, 1.0]

    with pytest.raises(ValueError, match="rescoring model is not the one"):
        rescore_condition(a, load_model(str(verbose_dir), dtype="bfloat16"), 64)
    with pytest.raises(ValueError, match="must exceed .*'s 8: pass a larger budget"):
        rescore_condition(a, verbose, 8)


def test_generate_cli_writes_a_condition(tiny_dir, tmp_path, items_file):
    items = items_file([it.to_json() for it in ITEMS])
    out = tmp_path / "cond"
    code, stdout, err = run_cli(
        "generate", "--model", str(tiny_dir), "--items", str(items), "--max-new-tokens", "4",
        "--out", str(out), "--no-progress", "--score", "domain", "--score", "verbal",
    )  # fmt: skip
    assert code == 0, err
    cond = read_condition(out)
    assert cond.max_new_tokens == 4 and len(cond.items) == 2 and "truncated" in stdout
    assert cond.model["fingerprint_sha256"] and cond.items[1].labels["gold"] == 15
    assert all(set(v) == {"domain", "verbal"} for v in cond.scores.values())
    assert "domain: mean 0.000 over 2 items" in stdout  # a random tiny model is never right
    code, _, err = run_cli("generate", "--model", str(tiny_dir), "--items", str(items),
                           "--max-new-tokens", "4", "--out", str(out), "--no-progress")  # fmt: skip
    _one_line_error(code, err, r"already holds a condition")


def test_bad_inputs_are_one_line(tiny, tmp_path):
    write_condition(tmp_path / "a", _gens(["9", "15"]), tiny("llama"), items=ITEMS)
    args = ("--out", str(tmp_path / "o"))
    code, _, err = run_cli("compare", str(tmp_path / "a"), str(tmp_path / "missing"), *args)
    _one_line_error(code, err, r"condition .*missing has no condition.json")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/condition.json").write_text((tmp_path / "a/condition.json").read_text())
    (tmp_path / "bad/generations.jsonl").write_text('{"id": "x"}\n{"id": \n')
    code, _, err = run_cli("compare", str(tmp_path / "a"), str(tmp_path / "bad"), *args)
    _one_line_error(code, err, r"generations.jsonl:1: missing field 'prompt'")
    (tmp_path / "bad/generations.jsonl").write_text('{"id": \n')
    code, _, err = run_cli("compare", str(tmp_path / "a"), str(tmp_path / "bad"), *args)
    _one_line_error(code, err, r"generations.jsonl:1: malformed JSON")
    for score, pattern in [("bleu", r"unknown score 'bleu'"), ("judge", r"write it as judge:NAME"),
                           ("judge:completeness", r"has no judge run"), ("score:x", r"stores no score 'x'")]:  # fmt: skip
        code, _, err = run_cli(
            "compare", str(tmp_path / "a"), str(tmp_path / "a"), *args, "--score", score
        )
        _one_line_error(code, err, pattern)
    code, _, err = run_cli("compare", str(tmp_path / "a"), str(tmp_path / "a"), *args,
                           "--rescore-max-new-tokens", "4")  # fmt: skip
    _one_line_error(code, err, r"must exceed a's 8")
    # truncated responses need the model, but a budget too small is refused before it loads
    cut = write_condition(tmp_path / "cut", _gens(["9", "1"], truncated=[False, True]),
                          tiny("llama"), items=ITEMS)  # fmt: skip
    cut_json = json.loads((tmp_path / "cut/condition.json").read_text())
    cut_json["model"]["name"] = str(tmp_path / "no-such-model")
    (tmp_path / "cut/condition.json").write_text(json.dumps(cut_json))
    assert cut.n_truncated == 1
    code, _, err = run_cli("compare", str(tmp_path / "cut"), str(tmp_path / "cut"), *args,
                           "--rescore-max-new-tokens", "8")  # fmt: skip
    _one_line_error(code, err, r"must exceed cut's 8")


def test_scorers(tiny, tmp_path):
    from workbench.conditions.scorers import Scorer

    items = [
        Item("a", "Capital of France?", labels={"checklist": ["Paris", "Seine"]}),
        Item("b", "Capital of Italy?", labels={"checklist": ["Rome"]}),
    ]
    gens = _gens(["Paris, I think.", "Rome."], items=items)
    cond = write_condition(tmp_path / "c", gens, tiny("llama"), items=items,
                           scores={"a": {"len": 15}, "b": {"len": 5}})  # fmt: skip
    assert Scorer.parse("coverage")(cond) == {"a": 0.5, "b": 1.0}
    assert Scorer.parse("coverage>=0.6")(cond) == {"a": 0.0, "b": 1.0}
    assert Scorer.parse("verbal")(cond) == {"a": 0.0, "b": 1.0}  # "I think" hedges
    assert Scorer.parse("score:len>=10")(cond) == {"a": 1.0, "b": 0.0}
    with pytest.raises(ValueError, match="has no 'family' label"):
        Scorer.parse("domain")(cond)


class _Judge:
    """A real OpenAI-compatible judge on 127.0.0.1 (direct mode): 5 when the answer holds a
    digit, else 1, whatever the question. Enough to show judge scores of cut answers move."""

    def __enter__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][-1]["content"]
                answer = text.split("Answer:\n<<<\n", 1)[1].split("\n>>>", 1)[0]
                score = 5 if re.search(r"\d", answer) else 1
                content = json.dumps({"completeness": score})
                reply = {
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]
                }
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.config = JudgeConfig(
            base_url=f"http://127.0.0.1:{self.server.server_address[1]}/v1",
            model="digit-judge",
            mode="direct",
            rubric=Rubric.from_axes(["completeness"]),
        )
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_judge_scores_are_rescored_with_the_same_judge(verbose_dir, tiny, tmp_path):
    from workbench.labels.judge import score_items
    from workbench.model.loading import load_model

    verbose = load_model(str(verbose_dir))
    gens_a = generate(verbose, ITEMS, max_new_tokens=8)
    terse = _gens(["9", "14"], config=gens_a.config)
    with _Judge() as judge:
        for name, gens, lm in (("base", gens_a, verbose), ("adapter", terse, tiny("qwen3"))):
            items = [
                dataclasses.replace(it, response=g.response)
                for it, g in zip(ITEMS, gens, strict=True)
            ]
            write_condition(
                tmp_path / name, gens, lm, items=ITEMS, judge=score_items(items, judge.config)
            )
        config_file = tmp_path / "judge.json"
        config_file.write_text(json.dumps({"judge": {
            "base_url": judge.config.base_url, "model": "digit-judge", "mode": "direct",
            "rubric": {"axes": ["completeness"]},
        }}))  # fmt: skip
        args = ("compare", str(tmp_path / "base"), str(tmp_path / "adapter"), "--out", str(tmp_path / "o"),
                "--score", "judge:completeness", "--rescore-max-new-tokens", "64")  # fmt: skip
        code, _, err = run_cli(*args)
        _one_line_error(code, err, r"rescoring judge scores needs the judge: pass --judge-config")
        code, stdout, err = run_cli(*args, "--judge-config", str(config_file))
    assert code == 0, err
    report = json.loads((tmp_path / "o/comparison.json").read_text())
    assert report["delta"]["delta"] == 4.0  # cut answers hold no number: judged 1 vs 5
    assert report["rescored"]["delta"]["delta"] == 0.0
    rescored = read_condition(tmp_path / "o/rescored/a")
    assert rescored.judge is not None and rescored.judge.scores("completeness") == {
        it.id: 5 for it in ITEMS
    }
