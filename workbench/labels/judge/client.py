"""One chat-completions call with a timeout, retries, backoff and ``Retry-After``.

:class:`ChatClient` posts ``{model, messages, temperature}`` to
``{base_url}/chat/completions`` with the standard library only. It retries
HTTP 429, 408 and 5xx, timeouts and connection errors up to ``max_retries``
times, waiting ``backoff_base_s * 2**n`` (with jitter, at most ``backoff_max_s``)
or the server's ``Retry-After`` if longer. Other statuses fail at once.
Redirects are not followed, so the key is never sent to another host. The key
goes only into the ``Authorization`` header; any text that comes back with the
key in it is redacted before it reaches a message, a log or the cache.

>>> client = ChatClient(JudgeConfig(base_url="http://127.0.0.1:8000/v1", model="m"))
>>> client.complete([{"role": "user", "content": "Hi"}])  # doctest: +SKIP
'Hello!'
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from workbench.labels.judge.config import JudgeConfig
from workbench.labels.judge.failure import FailureKind, JudgeCallError

__all__ = ["ChatClient"]

log = logging.getLogger("workbench.labels.judge")
_SNIPPET = 200


class _Transient(Exception):
    """A failure worth retrying."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


MIN_REDACTED_KEY = 8
"""Shortest API key that :meth:`ChatClient.redact` removes from text."""


class ChatClient:
    """Calls one judge endpoint; safe to share between threads.

    Args:
        config: the endpoint, model, timeouts and retry policy. The key is read
            from the environment variable ``config.api_key_env`` once, here.
    """

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self._key = config.api_key()
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        return f"ChatClient(url={self.config.chat_url!r}, model={self.config.model!r})"

    def redact(self, text: str) -> str:
        """``text`` with the API key, should it appear, replaced by ``[redacted]``.

        Keys shorter than :data:`MIN_REDACTED_KEY` characters are left alone: a
        local server's key such as ``"4"`` would otherwise rewrite ordinary reply
        text (a score of 4), and so short a key protects nothing anyway.
        """
        if self._key and len(self._key) >= MIN_REDACTED_KEY:
            return text.replace(self._key, "[redacted]")
        return text

    def body(
        self, messages: Sequence[dict[str, str]], max_tokens: int | None = None
    ) -> dict[str, Any]:
        """The request body: model, messages, temperature (and max_tokens when given)."""
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [dict(m) for m in messages],
            "temperature": self.config.temperature,
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return body

    def complete(self, messages: Sequence[dict[str, str]], max_tokens: int | None = None) -> str:
        """The reply text to ``messages``, after retries.

        Raises:
            JudgeCallError: the last failure once retries are spent, or at once
                for a non-retryable status or a body that is not a chat completion.
        """
        return self.send(self.body(messages, max_tokens))

    def send(self, body: dict[str, Any]) -> str:
        """Post a prepared request ``body``; see :meth:`complete`."""
        cfg = self.config
        attempts = cfg.max_retries + 1
        for attempt in range(attempts):
            try:
                return self._attempt(body)
            except _Transient as t:
                if attempt == attempts - 1:
                    raise JudgeCallError(
                        t.kind,
                        f"{t.message} (after {attempts} attempts): {self._hint(t.kind)}",
                        status=t.status,
                    ) from None
                delay = self._delay(attempt, t.retry_after)
                log.warning(
                    "judge request failed (%s); retry %d/%d in %.2fs",
                    t.message,
                    attempt + 1,
                    cfg.max_retries,
                    delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        cfg = self.config
        backoff = cfg.backoff_base_s * 2**attempt * random.uniform(0.5, 1.0)
        return min(cfg.backoff_max_s, max(backoff, retry_after or 0.0))

    def _hint(self, kind: FailureKind) -> str:
        cfg = self.config
        return {
            "rate_limited": "the judge is rate limiting: lower max_concurrency or raise max_retries",
            "server_error": "the judge server keeps failing: retry later (cached items are kept)",
            "timeout": f"raise timeout_s (now {cfg.timeout_s}) or check that the server answers",
            "connection": "check base_url and that the judge server is running",
        }.get(kind, "retry later")

    def _snippet(self, raw: bytes) -> str:
        text = " ".join(self.redact(raw.decode("utf-8", "replace")).split())
        return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."

    def _attempt(self, body: dict[str, Any]) -> str:
        url = self.config.chat_url
        req = urllib.request.Request(
            url,
            data=json.dumps(body).encode("utf-8"),
            method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        if self._key:
            req.add_unredirected_header("Authorization", f"Bearer {self._key}")
        try:
            with self._opener.open(req, timeout=self.config.timeout_s) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            raise self._http_error(e) from None
        except TimeoutError:
            raise _Transient(
                "timeout", f"no reply from {url} within {self.config.timeout_s}s"
            ) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise _Transient(
                    "timeout", f"no reply from {url} within {self.config.timeout_s}s"
                ) from None
            raise _Transient("connection", f"cannot reach {url} ({e.reason})") from None
        except (http.client.HTTPException, OSError) as e:
            raise _Transient(
                "connection", f"connection to {url} failed ({type(e).__name__}: {e})"
            ) from None
        return self._content(status, raw)

    def _http_error(self, e: urllib.error.HTTPError) -> Exception:
        url, code = self.config.chat_url, e.code
        try:
            raw = e.read()
        except (OSError, http.client.HTTPException):
            raw = b""
        finally:
            e.close()
        detail = f"HTTP {code} from {url}: {self._snippet(raw) or e.reason}"
        if code == 429 or code == 408 or code >= 500:
            kind: FailureKind = "rate_limited" if code == 429 else "server_error"
            return _Transient(kind, detail, code, _retry_after(e.headers.get("Retry-After")))
        env = self.config.api_key_env
        if code in (401, 403):
            state = "set" if self._key else "not set"
            fix = f"the judge refused the request: put a valid key in the environment variable {env} (now {state})"
        elif code == 404:
            fix = f"check base_url (requests go to {url}) and model {self.config.model!r}"
        elif 300 <= code < 400:
            fix = f"redirects are not followed: set base_url to the new location ({e.headers.get('Location')})"
        else:
            fix = "the judge rejected the request"
        return JudgeCallError("http_error", f"{detail}; {fix}", status=code)

    def _content(self, status: int, raw: bytes) -> str:
        url = self.config.chat_url
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise JudgeCallError(
                "bad_response",
                f"HTTP {status} from {url} is not JSON: {self._snippet(raw)!r}",
                status=status,
            ) from None
        try:
            content = obj["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise JudgeCallError(
                "bad_response",
                f"HTTP {status} from {url} is not a chat completion (no choices[0].message.content): "
                f"{self._snippet(raw)!r}",
                status=status,
            ) from None
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise JudgeCallError(
                "bad_response",
                f"HTTP {status} from {url} has no text content: {self._snippet(raw)!r}",
                status=status,
            )
        return self.redact(content)
