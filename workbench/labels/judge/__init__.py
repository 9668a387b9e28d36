"""An LLM judge client: per-axis 1-5 rubric scores from any OpenAI-compatible endpoint.

>>> from workbench.labels.judge import load_judge_config, score_items  # doctest: +SKIP
>>> run = score_items(items, load_judge_config("judge.toml"), out="runs/judge")  # doctest: +SKIP
"""

from workbench.labels.judge.cache import ReplyCache, request_key
from workbench.labels.judge.client import ChatClient
from workbench.labels.judge.config import DEFAULT_API_KEY_ENV, JudgeConfig, load_judge_config
from workbench.labels.judge.failure import JudgeCallError, JudgeFailure
from workbench.labels.judge.parse import high, parse_scores
from workbench.labels.judge.results import ItemScore, JudgeRun, judge_differences, read_judge_run
from workbench.labels.judge.rubric import DEFAULT_AXES, Axis, Rubric
from workbench.labels.judge.score import score_items

__all__ = [
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_AXES",
    "Axis",
    "ChatClient",
    "ItemScore",
    "JudgeCallError",
    "JudgeConfig",
    "JudgeFailure",
    "JudgeRun",
    "ReplyCache",
    "Rubric",
    "high",
    "judge_differences",
    "load_judge_config",
    "parse_scores",
    "read_judge_run",
    "request_key",
    "score_items",
]
