"""A run killed mid-way keeps what it finished; the API key never reaches disk or logs."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workbench.labels.judge import ChatClient, JudgeConfig, score_items

SCRIPT = """
import json, sys
from workbench.labels.judge import JudgeConfig, score_items
config = JudgeConfig.from_dict(json.loads(sys.argv[1]))
items = json.loads(sys.argv[2])
score_items(items, config, out=sys.argv[3])
"""


def test_killed_run_keeps_completed_items(
    server: Any,
    make_config: Callable[..., JudgeConfig],
    make_items: Callable[..., list[dict[str, str]]],
    tmp_path: Path,
) -> None:
    server.behaviour = lambda hit, n: {**server.judge_like(hit, n), "delay": 0.05}
    cfg = make_config(max_concurrency=1)
    items = make_items(20)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, json.dumps(cfg.to_json()), json.dumps(items), str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = out / "results.jsonl"
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            if log.is_file() and log.read_text().count("\n") >= 3:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.01)
    finally:
        proc.kill()  # SIGKILL: no cleanup runs
        proc.wait()
    lines = log.read_text().split("\n")
    done = [json.loads(x) for x in lines[:-1]]  # complete lines only
    assert 3 <= len(done) < len(items)
    assert all(d["ok"] for d in done)
    assert not (out / "judge_run.json").exists()

    server.reset_counts()
    server.behaviour = server.judge_like
    run = score_items(items, cfg, out=out)
    assert run.n_ok == len(items)
    finished = {d["id"] for d in done}
    assert all(r.cached for r in run.results if r.id in finished)
    # only the unfinished items cost requests (at most two each)
    assert server.n_hits <= 2 * (len(items) - len(finished))


SECRET = "sk-test-SECRET-7f3a9c0e55d1"


def test_api_key_is_sent_but_never_written(
    server: Any,
    make_config: Callable[..., JudgeConfig],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WORKBENCH_JUDGE_API_KEY", SECRET)
    handler = logging.StreamHandler(sys.stderr)
    logger = logging.getLogger("workbench.labels.judge")
    logger.addHandler(handler)
    caplog.set_level(logging.DEBUG, logger="workbench.labels.judge")

    def behaviour(hit: Any, n: int) -> dict[str, Any]:
        auth = hit.headers.get("Authorization", "")
        text = hit.user_text
        if "ECHO500" in text and not hit.is_reference:  # a server that leaks the header back
            return {"status": 500, "body": f"bad auth header {auth}".encode()}
        if "ECHO401" in text:
            return {"status": 401, "body": json.dumps({"error": f"invalid key {auth}"}).encode()}
        if "ECHOTEXT" in text and not hit.is_reference:
            return {"content": f"{auth} is your key. " + server.judge_like(hit, n)["content"]}
        if "ECHOBODY" in text and not hit.is_reference:
            return {"body": f"<html>{auth}</html>".encode()}
        return server.judge_like(hit, n)

    server.behaviour = behaviour
    items = [
        {"id": m, "prompt": f"Prompt {m} {m}", "response": f"response {m}"}
        for m in ("fine", "ECHO500", "ECHO401", "ECHOTEXT", "ECHOBODY")
    ]
    out = tmp_path / "out"
    cfg = make_config(cache_dir=str(tmp_path / "cache"), max_retries=1)
    run = score_items(items, cfg, out=out)
    assert {k: f.kind for k, f in run.failures.items()} == {
        "ECHO500": "server_error",
        "ECHO401": "http_error",
        "ECHOBODY": "bad_response",
    }
    assert run.results[0].ok and run.results[3].ok
    # the key was sent, as a bearer token, on every request
    assert server.n_hits > 0
    assert all(h.headers.get("Authorization") == f"Bearer {SECRET}" for h in server.hits)
    # ... and it appears nowhere we wrote, logged or raised
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "judge_run.json" for p in written)
    assert len([p for p in written if p.parent.name == "cache"]) >= 5
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), f"the key leaked into {path}"
    captured = capsys.readouterr()
    logger.removeHandler(handler)
    assert "HTTP 500" in captured.err  # the retry was logged...
    assert SECRET not in captured.err and SECRET not in captured.out  # ...without the key
    assert "HTTP 500" in caplog.text and SECRET not in caplog.text
    assert "[redacted]" in run.failures["ECHO500"].message
    assert SECRET not in json.dumps(run.to_json())
    assert SECRET not in repr(run) and SECRET not in repr(ChatClient(cfg))
