"""The HTTP client against a real server on 127.0.0.1: statuses, timeouts, retries."""

from __future__ import annotations

import socket
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pytest

from workbench.labels.judge import ChatClient, JudgeCallError, JudgeConfig
from workbench.labels.judge.client import _retry_after

MESSAGES = [{"role": "user", "content": "Say hi"}]


def test_posts_a_chat_completion(server: Any, make_config: Callable[..., JudgeConfig]) -> None:
    server.behaviour = lambda hit, n: {"content": "hello"}
    client = ChatClient(make_config(temperature=0.3))
    assert client.complete(MESSAGES, max_tokens=7) == "hello"
    (hit,) = server.hits
    assert hit.path == "/v1/chat/completions"
    assert hit.body == {
        "model": "test-judge",
        "messages": MESSAGES,
        "temperature": 0.3,
        "max_tokens": 7,
    }
    assert "Authorization" not in hit.headers  # no key set: local servers need none


def test_sends_the_key_as_bearer(
    server: Any, make_config: Callable[..., JudgeConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTHER_KEY_VAR", "sk-unit-test")
    server.behaviour = lambda hit, n: {"content": "ok"}
    ChatClient(make_config(api_key_env="OTHER_KEY_VAR")).complete(MESSAGES)
    assert server.hits[0].headers["Authorization"] == "Bearer sk-unit-test"


def test_a_short_key_does_not_rewrite_replies(
    server: Any, make_config: Callable[..., JudgeConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    reply = '{"factual_accuracy": 4}'
    server.behaviour = lambda hit, n: {"content": reply}
    monkeypatch.setenv("OTHER_KEY_VAR", "4")  # a local server's throwaway key
    assert ChatClient(make_config(api_key_env="OTHER_KEY_VAR")).complete(MESSAGES) == reply
    monkeypatch.setenv("OTHER_KEY_VAR", "sk-long-enough-key")  # a real key echoed back is removed
    server.behaviour = lambda hit, n: {"content": "key sk-long-enough-key"}
    assert ChatClient(make_config(api_key_env="OTHER_KEY_VAR")).complete(MESSAGES) == (
        "key [redacted]"
    )


def test_429_with_retry_after_then_success(
    server: Any, make_config: Callable[..., JudgeConfig]
) -> None:
    def behaviour(hit: Any, n: int) -> dict[str, Any]:
        if n == 0:
            return {
                "status": 429,
                "body": b'{"error": "slow down"}',
                "headers": {"Retry-After": "1"},
            }
        return {"content": "finally"}

    server.behaviour = behaviour
    client = ChatClient(make_config(backoff_base_s=0.01, backoff_max_s=5.0))
    assert client.complete(MESSAGES) == "finally"
    assert server.n_hits == 2
    waited = server.hits[1].time - server.hits[0].time
    assert waited >= 0.95, f"Retry-After: 1 was not honoured (waited {waited:.2f}s)"


def test_retry_after_is_capped_by_backoff_max(
    server: Any, make_config: Callable[..., JudgeConfig]
) -> None:
    server.behaviour = lambda hit, n: (
        {"status": 503, "body": b"busy", "headers": {"Retry-After": "3600"}}
        if n == 0
        else {"content": "ok"}
    )
    assert ChatClient(make_config(backoff_max_s=0.1)).complete(MESSAGES) == "ok"
    assert server.hits[1].time - server.hits[0].time < 1.0


def test_persistent_500_fails_after_max_retries(
    server: Any, make_config: Callable[..., JudgeConfig]
) -> None:
    server.behaviour = lambda hit, n: {"status": 500, "body": b'{"error": "boom"}'}
    with pytest.raises(JudgeCallError) as info:
        ChatClient(make_config(max_retries=3)).complete(MESSAGES)
    assert server.n_hits == 4
    assert info.value.kind == "server_error" and info.value.status == 500
    assert "HTTP 500" in info.value.message and "after 4 attempts" in info.value.message
    assert "boom" in info.value.message


def test_persistent_429_is_rate_limited(
    server: Any, make_config: Callable[..., JudgeConfig]
) -> None:
    server.behaviour = lambda hit, n: {"status": 429, "body": b"{}"}
    with pytest.raises(JudgeCallError) as info:
        ChatClient(make_config(max_retries=1)).complete(MESSAGES)
    assert info.value.kind == "rate_limited" and "lower max_concurrency" in info.value.message


def test_timeout_is_retried_then_reported(
    server: Any, make_config: Callable[..., JudgeConfig]
) -> None:
    server.behaviour = lambda hit, n: {"content": "late", "delay": 0.8}
    with pytest.raises(JudgeCallError) as info:
        ChatClient(make_config(timeout_s=0.2, max_retries=1)).complete(MESSAGES)
    assert info.value.kind == "timeout"
    assert server.n_hits == 2
    assert "raise timeout_s" in info.value.message


def test_timeout_then_success(server: Any, make_config: Callable[..., JudgeConfig]) -> None:
    server.behaviour = lambda hit, n: {"content": "on time", "delay": 0.8 if n == 0 else 0.0}
    assert ChatClient(make_config(timeout_s=0.2)).complete(MESSAGES) == "on time"


def test_connection_refused(make_config: Callable[..., JudgeConfig]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ChatClient(make_config(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1))
    with pytest.raises(JudgeCallError) as info:
        client.complete(MESSAGES)
    assert info.value.kind == "connection"
    assert "check base_url" in info.value.message


@pytest.mark.parametrize(
    ("status", "needle"),
    [(401, "WORKBENCH_JUDGE_API_KEY (now not set)"), (404, "check base_url"), (400, "rejected")],
)
def test_client_errors_are_not_retried(
    server: Any, make_config: Callable[..., JudgeConfig], status: int, needle: str
) -> None:
    server.behaviour = lambda hit, n: {"status": status, "body": b'{"error": "no"}'}
    with pytest.raises(JudgeCallError) as info:
        ChatClient(make_config()).complete(MESSAGES)
    assert server.n_hits == 1
    assert info.value.kind == "http_error" and info.value.status == status
    assert needle in info.value.message


def test_redirects_are_not_followed(server: Any, make_config: Callable[..., JudgeConfig]) -> None:
    server.behaviour = lambda hit, n: {
        "status": 307,
        "body": b"",
        "headers": {"Location": "http://127.0.0.1:9/v1/chat/completions"},
    }
    with pytest.raises(JudgeCallError) as info:
        ChatClient(make_config()).complete(MESSAGES)
    assert server.n_hits == 1
    assert "redirects are not followed" in info.value.message


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        ({"body": b"<html>gateway says hi</html>"}, "is not JSON"),
        ({"body": b'{"error": {"message": "model overloaded"}}'}, "model overloaded"),
        ({"body": b'{"choices": [{"message": {"content": null}}]}'}, "no text content"),
    ],
)
def test_non_completion_bodies_are_bad_responses(
    server: Any, make_config: Callable[..., JudgeConfig], reply: dict[str, Any], needle: str
) -> None:
    server.behaviour = lambda hit, n: reply
    with pytest.raises(JudgeCallError) as info:
        ChatClient(make_config()).complete(MESSAGES)
    assert info.value.kind == "bad_response"
    assert needle in info.value.message


def test_content_parts_are_joined(server: Any, make_config: Callable[..., JudgeConfig]) -> None:
    server.behaviour = lambda hit, n: {
        "body": b'{"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"text": "b"}]}}]}'
    }
    assert ChatClient(make_config()).complete(MESSAGES) == "ab"


def test_retry_after_parsing() -> None:
    assert _retry_after("2") == 2.0
    assert _retry_after("0.5") == 0.5
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    in_the_past = formatdate(0, usegmt=True)
    assert _retry_after(in_the_past) == 0.0
