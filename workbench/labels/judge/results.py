"""What a judge run produced: one :class:`ItemScore` per item inside a :class:`JudgeRun`.

A run records the judge (config without the key), the exact judge prompt and its
SHA256, and per item either the scores or the failure. :func:`judge_differences`
lists what differs between the judges of two runs, so a comparison can refuse
results scored under different judge prompts or settings.

>>> run = read_judge_run("runs/base/judge/judge_run.json")  # doctest: +SKIP
>>> run.labels("factual_accuracy")  # doctest: +SKIP
{'q1': True, 'q2': False}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.store import atomic_write_json
from workbench.labels.judge.config import JudgeConfig
from workbench.labels.judge.failure import JudgeFailure

__all__ = ["RUN_FORMAT", "ItemScore", "JudgeRun", "read_judge_run", "judge_differences"]

RUN_FORMAT = "workbench-judge-run/1"


@dataclass(frozen=True)
class ItemScore:
    """One item's outcome: ``scores`` (axis -> 1..5) or a ``failure``, never both.

    ``reference`` is the pass-1 text (two-pass mode), ``reply`` the judge's
    scoring reply, ``cached`` whether no request was needed.
    """

    id: str
    scores: Mapping[str, int] | None
    failure: JudgeFailure | None = None
    reference: str | None = None
    reply: str | None = None
    cached: bool = False
    prompt_sha256: str | None = None
    response_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.scores is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ok": self.ok,
            "scores": None if self.scores is None else dict(self.scores),
            "failure": None if self.failure is None else self.failure.to_json(),
            "reference": self.reference,
            "reply": self.reply,
            "cached": self.cached,
            "prompt_sha256": self.prompt_sha256,
            "response_sha256": self.response_sha256,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ItemScore:
        failure = obj.get("failure")
        return cls(
            id=str(obj["id"]),
            scores=obj.get("scores"),
            failure=None if failure is None else JudgeFailure.from_json(failure),
            reference=obj.get("reference"),
            reply=obj.get("reply"),
            cached=bool(obj.get("cached", False)),
            prompt_sha256=obj.get("prompt_sha256"),
            response_sha256=obj.get("response_sha256"),
        )


@dataclass(frozen=True)
class JudgeRun:
    """All items of one run, in input order, with the judge that scored them."""

    config: JudgeConfig
    judge_prompt: Mapping[str, str]
    judge_prompt_sha256: str
    results: tuple[ItemScore, ...] = field(default_factory=tuple)

    @property
    def n_ok(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def failures(self) -> dict[str, JudgeFailure]:
        """Item id -> failure, for the items that have no scores."""
        return {r.id: r.failure for r in self.results if r.failure is not None}

    def scores(self, axis: str) -> dict[str, int]:
        """Item id -> score on ``axis``, for the scored items."""
        if axis not in self.config.rubric.axis_names:
            raise WorkbenchError(
                f"axis {axis!r} is not in this run's rubric "
                f"({', '.join(self.config.rubric.axis_names)}): pass one of those"
            )
        return {r.id: r.scores[axis] for r in self.results if r.ok and r.scores is not None}

    def labels(self, axis: str, threshold: int = 4) -> dict[str, bool]:
        """Item id -> "high" on ``axis`` (score >= ``threshold``), for the scored items."""
        return {item_id: score >= threshold for item_id, score in self.scores(axis).items()}

    def identity(self) -> dict[str, Any]:
        """What must match for two runs' scores to be comparable."""
        cfg = self.config
        return {
            "model": cfg.model,
            "mode": cfg.mode,
            "temperature": cfg.temperature,
            "score_max_tokens": cfg.score_max_tokens,
            "reference_max_tokens": cfg.reference_max_tokens,
            "axes": list(cfg.rubric.axis_names),
            "judge_prompt_sha256": self.judge_prompt_sha256,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RUN_FORMAT,
            "judge": self.config.to_json(),
            "judge_prompt": dict(self.judge_prompt),
            "judge_prompt_sha256": self.judge_prompt_sha256,
            "n_items": len(self.results),
            "n_ok": self.n_ok,
            "n_failed": len(self.results) - self.n_ok,
            "n_cached": sum(r.cached for r in self.results),
            "results": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> JudgeRun:
        if not isinstance(obj, Mapping) or obj.get("format") != RUN_FORMAT:
            found = obj.get("format") if isinstance(obj, Mapping) else type(obj).__name__
            raise WorkbenchError(
                f"not a judge run (format {found!r}, expected {RUN_FORMAT!r}): "
                "pass the judge_run.json written by score_items"
            )
        return cls(
            config=JudgeConfig.from_dict(obj["judge"]),
            judge_prompt=dict(obj["judge_prompt"]),
            judge_prompt_sha256=obj["judge_prompt_sha256"],
            results=tuple(ItemScore.from_json(r) for r in obj["results"]),
        )

    def write(self, path: str | Path) -> None:
        """Write :meth:`to_json` atomically."""
        atomic_write_json(path, self.to_json())


def read_judge_run(path: str | Path) -> JudgeRun:
    """Load a ``judge_run.json`` written by :func:`~workbench.labels.judge.score.score_items`."""
    path = Path(path)
    if path.is_dir():
        path = path / "judge_run.json"
    if not path.is_file():
        raise WorkbenchError(
            f"judge run {path} does not exist: pass the out directory of score_items"
        )
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise WorkbenchError(
            f"judge run {path} is not valid JSON ({e.msg} at line {e.lineno})"
        ) from None
    return JudgeRun.from_json(obj)


def judge_differences(a: JudgeRun, b: JudgeRun) -> list[str]:
    """Lines naming each judge setting that differs between two runs (empty: comparable).

    >>> judge_differences(run_base, run_adapter)  # doctest: +SKIP
    ["judge_prompt_sha256: '3f2a...' vs '9c1b...'"]
    """
    ia, ib = a.identity(), b.identity()
    return [f"{k}: {ia[k]!r} vs {ib[k]!r}" for k in ia if ia[k] != ib[k]]
