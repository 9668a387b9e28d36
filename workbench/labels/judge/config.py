"""Where the judge is and how to call it: a frozen :class:`JudgeConfig`.

A config names an OpenAI-compatible endpoint (``POST {base_url}/chat/completions``)
and a model; the API key is read only from the environment variable whose *name*
the config holds (``api_key_env``), so no config, manifest, cache or log ever
holds the key. A missing key is allowed (local servers need none).

A config file is TOML, JSON or YAML, with the keys at the top level or under a
``judge`` table::

    [judge]
    base_url = "http://127.0.0.1:8000/v1"
    model = "qwen2.5-7b-instruct"
    max_concurrency = 8
    cache_dir = "runs/judge-cache"

    [judge.rubric]
    axes = ["factual_accuracy", "completeness"]

>>> cfg = JudgeConfig(base_url="http://127.0.0.1:8000/v1/", model="m")
>>> cfg.chat_url
'http://127.0.0.1:8000/v1/chat/completions'
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workbench.core.errors import WorkbenchError
from workbench.labels.judge.rubric import MODES, Mode, Rubric

__all__ = ["DEFAULT_API_KEY_ENV", "JudgeConfig", "load_judge_config"]

DEFAULT_API_KEY_ENV = "WORKBENCH_JUDGE_API_KEY"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _env_name(value: object) -> bool:
    """Whether ``value`` reads as the name of a variable, not a pasted key: a name
    that is not set in the environment and looks random (4 or more digits, lower-
    and upper-case letters mixed with digits, or over 40 characters) is taken for
    a key, so it is never written to a judge run."""
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        return False
    if value in os.environ:
        return True
    digits = sum(c.isdigit() for c in value)
    mixed = value != value.upper() and value != value.lower() and digits > 0
    return not (mixed or digits >= 4 or len(value) > 40)


_SECRET_KEYS = {"api_key", "apikey", "key", "token", "authorization", "secret", "password"}


@dataclass(frozen=True)
class JudgeConfig:
    """An LLM judge behind an OpenAI-compatible chat endpoint, and how to call it.

    Args:
        base_url: the API root, e.g. ``https://api.openai.com/v1``; requests go to
            ``{base_url}/chat/completions``.
        model: the judge model's name at that endpoint.
        api_key_env: the NAME of the environment variable holding the key.
        mode: ``two_pass`` (response-blind reference, then scoring) or ``direct``.
        rubric: the axes and prompt templates.
        temperature: sampling temperature of every judge request.
        score_max_tokens: ``max_tokens`` of the scoring request (None: not sent).
        reference_max_tokens: ``max_tokens`` of the pass-1 request (None: not sent).
        timeout_s: per-request timeout (connect and each read).
        max_retries: retries after the first attempt on 429, 5xx, timeouts and
            connection errors.
        backoff_base_s: the first retry waits about this long, doubling after.
        backoff_max_s: the longest single wait, a server's ``Retry-After`` included.
        max_concurrency: requests in flight at once.
        cache_dir: directory of cached replies (None: no cache).
    """

    base_url: str
    model: str
    api_key_env: str = DEFAULT_API_KEY_ENV
    mode: Mode = "two_pass"
    rubric: Rubric = field(default_factory=Rubric)
    temperature: float = 0.0
    score_max_tokens: int | None = None
    reference_max_tokens: int | None = None
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_concurrency: int = 4
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.cache_dir, os.PathLike):
            object.__setattr__(self, "cache_dir", os.fspath(self.cache_dir))
        object.__setattr__(self, "base_url", _check_base_url(self.base_url))
        if not _env_name(self.api_key_env):
            # The value is not echoed: a user may have pasted the key itself here.
            raise WorkbenchError(
                "judge config api_key_env must be the NAME of an environment variable "
                f"(letters, digits, underscores), e.g. {DEFAULT_API_KEY_ENV}; the value given is "
                "not a valid name (not shown, in case it is the key itself)"
            )
        for name, (ok, want) in _RULES.items():
            value = getattr(self, name)
            if not ok(value):
                raise WorkbenchError(f"judge config {name}={value!r} is invalid: it must be {want}")

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def api_key(self) -> str | None:
        """The key from the environment variable ``api_key_env``; None when unset or empty."""
        return os.environ.get(self.api_key_env) or None

    def max_tokens(self, stage: str) -> int | None:
        return self.reference_max_tokens if stage == "reference" else self.score_max_tokens

    def to_json(self) -> dict[str, Any]:
        """Every field (the key's variable NAME, never the key)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["rubric"] = self.rubric.to_json()
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> JudgeConfig:
        """A config from a mapping (a parsed file, or :meth:`to_json` output)."""
        if not isinstance(obj, Mapping):
            raise WorkbenchError(
                f"a judge config must be a table of keys, got {type(obj).__name__}"
            )
        data = dict(obj["judge"]) if isinstance(obj.get("judge"), Mapping) else dict(obj)
        secret = sorted(k for k in data if str(k).lower().replace("-", "_") in _SECRET_KEYS)
        if secret:
            raise WorkbenchError(
                f"judge config key {secret[0]!r} is refused: never put the API key in a config; "
                f"export it in the environment variable named by api_key_env (default {DEFAULT_API_KEY_ENV})"
            )
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(k) for k in data if k not in fields)
        if unknown:
            raise WorkbenchError(
                f"unknown judge config key {unknown[0]!r}: valid keys are {', '.join(fields)}"
            )
        for required in ("base_url", "model"):
            if required not in data:
                raise WorkbenchError(
                    f"judge config lacks {required!r}: add it (e.g. {_EXAMPLE[required]})"
                )
        rubric = data.get("rubric")
        if isinstance(rubric, Mapping):
            data["rubric"] = Rubric.from_json(rubric)
        elif rubric is None:
            data.pop("rubric", None)
        return cls(**data)


def _positive_int_or_none(value: Any) -> bool:
    return value is None or (_integer(value) and value > 0)


def _seconds(value: Any) -> bool:
    return _number(value) and value > 0


# field -> (check, what a valid value is); base_url and api_key_env have their own checks.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model": (lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string"),
    "mode": (lambda v: v in MODES, f"one of {', '.join(MODES)}"),
    "rubric": (lambda v: isinstance(v, Rubric), "a Rubric or a table with an axes list"),
    "temperature": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "score_max_tokens": (_positive_int_or_none, "a positive integer or absent"),
    "reference_max_tokens": (_positive_int_or_none, "a positive integer or absent"),
    "timeout_s": (_seconds, "a number of seconds > 0"),
    "backoff_base_s": (_seconds, "a number of seconds > 0"),
    "backoff_max_s": (_seconds, "a number of seconds > 0"),
    "max_retries": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "max_concurrency": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "cache_dir": (lambda v: v is None or isinstance(v, str), "a directory path or absent"),
}
_EXAMPLE = {"base_url": 'base_url = "http://127.0.0.1:8000/v1"', "model": 'model = "my-judge"'}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_base_url(url: Any) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise WorkbenchError(
            f"judge config base_url={url!r} is invalid: give an http(s) URL such as "
            "http://127.0.0.1:8000/v1"
        )
    parts = urlsplit(url)
    if parts.username or parts.password or parts.query or parts.fragment:
        # Not echoed: credentials may be in it.
        raise WorkbenchError(
            "judge config base_url holds credentials, a query or a fragment (not shown): give the "
            "bare API root and put the key in the environment variable named by api_key_env"
        )
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        raise WorkbenchError(
            f"judge config base_url={url!r} ends with /chat/completions: give the API root "
            f"({url.removesuffix('/chat/completions')!r}); the client appends the path"
        )
    return url


def load_judge_config(source: str | Path | Mapping[str, Any]) -> JudgeConfig:
    """A :class:`JudgeConfig` from a ``.toml``, ``.json`` or ``.yaml`` file, or a mapping.

    >>> load_judge_config({"base_url": "http://127.0.0.1:8000/v1", "model": "m"}).mode
    'two_pass'
    """
    if isinstance(source, Mapping):
        return JudgeConfig.from_dict(source)
    path = Path(source)
    if not path.is_file():
        raise WorkbenchError(
            f"judge config {path} does not exist: pass a .toml, .json or .yaml file"
        )
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".toml":
            import tomllib

            data: Any = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise WorkbenchError(
                f"judge config {path} has suffix {suffix or '(none)'!r}: use .toml, .json, .yaml or .yml"
            )
    except WorkbenchError:
        raise
    except Exception as e:  # each parser has its own error type
        raise WorkbenchError(
            f"judge config {path} is not valid {suffix[1:].upper()} ({e}): fix the file"
        ) from None
    try:
        return JudgeConfig.from_dict(data)
    except TypeError as e:
        raise WorkbenchError(f"judge config {path}: {e}") from None
