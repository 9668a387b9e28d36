"""A real OpenAI-compatible judge server on 127.0.0.1, scripted per test.

The server answers ``POST /v1/chat/completions``. By default it plays a judge:
pass-1 (reference) requests get a reference text, scoring requests get a JSON
object with every axis the prompt's example names. A test replaces
``server.behaviour`` with a function ``(hit, hit_index) -> dict`` (the keys of
:class:`Reply`) to serve malformed bodies, errors, delays and ``Retry-After``. The server records every
hit (headers, body, time) and the largest number of requests in flight at once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from workbench.labels.judge import JudgeConfig

REFERENCE_MARKER = "You will not see any answer now"


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # the chat message content (wrapped in a completion)
    body: bytes | None = None  # a raw body, instead of a completion
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    time: float

    @property
    def user_text(self) -> str:
        return self.body["messages"][-1]["content"]

    @property
    def is_reference(self) -> bool:
        return REFERENCE_MARKER in self.user_text


def completion(content: str) -> bytes:
    return json.dumps(
        {
            "id": "cmpl-test",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
        }
    ).encode()


def axes_in(text: str) -> list[str]:
    """The axes a scoring prompt asks for, read from its JSON example."""
    match = re.search(r"e\.g\. (\{.*\})\s*$", text)
    assert match, "the scoring prompt ends with a JSON example"
    return list(json.loads(match.group(1)))


def judge_like(hit: Hit, n: int) -> dict[str, Any]:
    """A well-behaved judge; a response containing SCORE=<k> gets k on every axis."""
    text = hit.user_text
    if hit.is_reference:
        question = text.split("<<<\n", 1)[1].split("\n>>>", 1)[0]
        return {"content": f"Reference answer for: {question}\n1. claim one\n2. claim two"}
    match = re.search(r"SCORE=(\d)", text)
    score = int(match.group(1)) if match else 4
    return {"content": "```json\n" + json.dumps({a: score for a in axes_in(text)}) + "\n```"}


class JudgeServer:
    def __init__(self) -> None:
        self.behaviour: Callable[[Hit, int], dict[str, Any]] = judge_like
        self.judge_like = judge_like
        self.hits: list[Hit] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def n_hits(self) -> int:
        with self._lock:
            return len(self.hits)

    def reset_counts(self) -> None:
        with self._lock:
            self.hits.clear()
            self.max_in_flight = 0

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(server: JudgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # silence
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length))
            hit = Hit(self.path, dict(self.headers.items()), body, time.monotonic())
            with server._lock:
                n = len(server.hits)
                server.hits.append(hit)
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                if self.path != "/v1/chat/completions":
                    reply = Reply(status=404, body=b'{"error": "not found"}')
                else:
                    reply = Reply(**server.behaviour(hit, n))
                time.sleep(reply.delay)
                payload = reply.body if reply.body is not None else completion(reply.content or "")
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)
            finally:
                with server._lock:
                    server.in_flight -= 1

    return Handler


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_JUDGE_API_KEY", raising=False)
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[JudgeServer]:
    srv = JudgeServer()
    yield srv
    srv.close()


@pytest.fixture
def make_config(server: JudgeServer, tmp_path: Path) -> Callable[..., JudgeConfig]:
    """A config for ``server`` with test-sized timeouts and backoffs."""

    def make(**overrides: Any) -> JudgeConfig:
        settings: dict[str, Any] = {
            "base_url": server.url,
            "model": "test-judge",
            "timeout_s": 2.0,
            "max_retries": 2,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
            "max_concurrency": 4,
            "cache_dir": str(tmp_path / "cache"),
        }
        settings.update(overrides)
        return JudgeConfig(**settings)

    return make


def _make_items(
    n: int, *, response: str = "Paris. SCORE=5", prefix: str = "q"
) -> list[dict[str, str]]:
    return [
        {
            "id": f"{prefix}{i}",
            "prompt": f"Question {i}: what is the capital?",
            "response": response,
        }
        for i in range(n)
    ]


@pytest.fixture
def make_items() -> Callable[..., list[dict[str, str]]]:
    """``make_items(n, response=..., prefix=...)``: n items with distinct prompts."""
    return _make_items
