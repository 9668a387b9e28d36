from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.errors import WorkbenchError
from workbench.labels.judge import DEFAULT_AXES, JudgeConfig, Rubric, load_judge_config

BASE = {"base_url": "http://127.0.0.1:8000/v1", "model": "judge-7b"}


def test_defaults_follow_the_paper() -> None:
    cfg = JudgeConfig(**BASE)
    assert cfg.api_key_env == "WORKBENCH_JUDGE_API_KEY"
    assert cfg.mode == "two_pass"
    assert cfg.temperature == 0.0
    assert cfg.rubric.axis_names == tuple(DEFAULT_AXES)
    assert cfg.rubric.axis_names == (
        "factual_accuracy",
        "hedging_appropriateness",
        "pedagogical_framing",
        "self_verification",
        "completeness",
    )


def test_base_url_is_normalised() -> None:
    cfg = JudgeConfig(base_url="https://api.example.com/v1/", model="m")
    assert cfg.chat_url == "https://api.example.com/v1/chat/completions"


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("127.0.0.1:8000", "http(s) URL"),
        ("http://h/v1/chat/completions", "ends with /chat/completions"),
        ("http://user:hunter2@h/v1", "credentials"),
        ("http://h/v1?api-key=hunter2", "query"),
    ],
)
def test_bad_base_url_names_the_fix(url: str, needle: str) -> None:
    with pytest.raises(WorkbenchError, match="base_url") as info:
        JudgeConfig(base_url=url, model="m")
    assert needle in str(info.value)
    assert "hunter2" not in str(info.value)


def test_api_key_env_must_be_a_name_and_is_not_echoed() -> None:
    with pytest.raises(WorkbenchError, match="NAME of an environment variable") as info:
        JudgeConfig(**BASE, api_key_env="sk-live-abc123")
    assert "sk-live-abc123" not in str(info.value)


@pytest.mark.parametrize("key", ["api_key", "API-KEY", "token"])
def test_a_key_in_the_config_is_refused_without_echo(key: str) -> None:
    with pytest.raises(WorkbenchError, match="never put the API key in a config") as info:
        JudgeConfig.from_dict({**BASE, key: "sk-live-abc123"})
    assert "sk-live-abc123" not in str(info.value)


def test_api_key_comes_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = JudgeConfig(**BASE, api_key_env="MY_JUDGE_KEY")
    monkeypatch.delenv("MY_JUDGE_KEY", raising=False)
    assert cfg.api_key() is None
    monkeypatch.setenv("MY_JUDGE_KEY", "")
    assert cfg.api_key() is None
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-abc")
    assert cfg.api_key() == "sk-abc"
    assert "sk-abc" not in json.dumps(cfg.to_json()) and "sk-abc" not in repr(cfg)


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("temperature", -1, "temperature=-1"),
        ("max_concurrency", 0, "max_concurrency=0"),
        ("max_retries", 1.5, "max_retries=1.5"),
        ("timeout_s", 0, "timeout_s=0"),
        ("mode", "three_pass", "two_pass, direct"),
        ("score_max_tokens", True, "score_max_tokens=True"),
        ("model", "", "model=''"),
    ],
)
def test_invalid_values_name_value_and_fix(key: str, value: object, needle: str) -> None:
    with pytest.raises(WorkbenchError, match="must be") as info:
        JudgeConfig.from_dict({**BASE, key: value})
    assert needle in str(info.value)


def test_unknown_and_missing_keys() -> None:
    with pytest.raises(WorkbenchError, match="unknown judge config key 'modle'.*valid keys are"):
        JudgeConfig.from_dict({**BASE, "modle": "x"})
    with pytest.raises(WorkbenchError, match="lacks 'model'"):
        JudgeConfig.from_dict({"base_url": BASE["base_url"]})


def test_round_trip_through_json() -> None:
    cfg = JudgeConfig(
        **BASE,
        mode="direct",
        rubric=Rubric.from_axes({"correct": "Is it right?", "brief": "Is it short?"}),
        score_max_tokens=300,
        reference_max_tokens=30,
        cache_dir=Path("runs/cache"),
    )
    again = JudgeConfig.from_dict(json.loads(json.dumps(cfg.to_json())))
    assert again == cfg
    assert again.cache_dir == "runs/cache"


TOML = """
[judge]
base_url = "http://127.0.0.1:8000/v1"
model = "judge-7b"
max_concurrency = 8
api_key_env = "MY_KEY"

[judge.rubric]
axes = ["factual_accuracy", "completeness"]
"""

YAML = """
judge:
  base_url: http://127.0.0.1:8000/v1
  model: judge-7b
  max_concurrency: 8
  api_key_env: MY_KEY
  rubric:
    axes: [factual_accuracy, completeness]
"""


@pytest.mark.parametrize("suffix", [".toml", ".json", ".yaml"])
def test_load_from_files(tmp_path: Path, suffix: str) -> None:
    text = {
        ".toml": TOML,
        ".yaml": YAML,
        ".json": json.dumps(
            {
                "base_url": "http://127.0.0.1:8000/v1",
                "model": "judge-7b",
                "max_concurrency": 8,
                "api_key_env": "MY_KEY",
                "rubric": {"axes": ["factual_accuracy", "completeness"]},
            }
        ),
    }[suffix]
    path = tmp_path / f"judge{suffix}"
    path.write_text(text)
    cfg = load_judge_config(path)
    assert (cfg.model, cfg.max_concurrency, cfg.api_key_env) == ("judge-7b", 8, "MY_KEY")
    assert cfg.rubric.axis_names == ("factual_accuracy", "completeness")
    # default axes keep their descriptions
    assert cfg.rubric.axes[0].description == DEFAULT_AXES["factual_accuracy"]


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkbenchError, match="does not exist"):
        load_judge_config(tmp_path / "nope.toml")
    bad = tmp_path / "judge.toml"
    bad.write_text("base_url = ")
    with pytest.raises(WorkbenchError, match="not valid TOML"):
        load_judge_config(bad)
    ini = tmp_path / "judge.ini"
    ini.write_text("x")
    with pytest.raises(WorkbenchError, match="use .toml, .json, .yaml"):
        load_judge_config(ini)


def test_importing_the_judge_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, workbench.labels.judge; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
