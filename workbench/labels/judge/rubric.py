"""The rubric: the axes a judge scores 1-5 and the prompt templates it is asked with.

Two modes share one rubric:

- ``two_pass`` (the paper's response-blind mode): pass 1 shows the judge only
  the prompt and asks for a reference answer and a checklist of the claims a
  correct answer must contain; pass 2 scores the response against that
  reference. Pass 1 never sees a response, so every condition (base model,
  adapter, ...) is scored against the same reference with the same prompt.
- ``direct``: one pass that shows the prompt and the response.

The templates' text, with the axes, is hashed (:meth:`Rubric.prompt_sha256`) and
recorded in every run, so a comparison can refuse two runs scored under
different judge prompts.

>>> rubric = Rubric.from_axes(["factual_accuracy", "completeness"])
>>> rubric.axis_names
('factual_accuracy', 'completeness')
>>> msgs = rubric.reference_messages("What is 2 + 2?")
>>> "What is 2 + 2?" in msgs[-1]["content"]
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workbench.core.errors import WorkbenchError
from workbench.core.store import sha256_text

__all__ = [
    "Mode",
    "MODES",
    "SCORE_MIN",
    "SCORE_MAX",
    "DEFAULT_AXES",
    "Axis",
    "Rubric",
]

Mode = Literal["two_pass", "direct"]
MODES: tuple[Mode, ...] = ("two_pass", "direct")
SCORE_MIN = 1
SCORE_MAX = 5

DEFAULT_AXES: dict[str, str] = {
    "factual_accuracy": "Are the claims correct? 1 = mostly wrong, 5 = entirely correct.",
    "hedging_appropriateness": (
        "Is uncertainty expressed where, and only where, it is warranted? "
        "1 = confidently wrong or needlessly vague, 5 = well calibrated."
    ),
    "pedagogical_framing": "Does it explain why, so that a learner understands? 1 = no, 5 = clearly.",
    "self_verification": (
        "Does it check its own claims (sanity checks, what to verify)? 1 = never, 5 = thoroughly."
    ),
    "completeness": "Does it contain everything a correct answer must? 1 = little, 5 = all of it.",
}

SYSTEM = "You are a strict, consistent grader. Follow the instructions exactly."

REFERENCE_TEMPLATE = """\
Prepare to grade answers to the question below. You will not see any answer now.
Write (1) a concise, correct reference answer, then (2) a numbered checklist of the
claims a correct and complete answer must contain, and any misconceptions it must avoid.

Question:
<<<
{prompt}
>>>"""

SCORE_TEMPLATE = """\
Grade the answer to the question below against the reference, which was written
before the answer was seen. Judge factual accuracy and completeness by the reference
and its checklist. Score each axis with an integer from 1 to 5:
{axes}

Question:
<<<
{prompt}
>>>

Reference:
<<<
{reference}
>>>

Answer:
<<<
{response}
>>>

Reply with only a JSON object that maps each axis to its score, e.g. {example}"""

DIRECT_TEMPLATE = """\
Grade the answer to the question below. Score each axis with an integer from 1 to 5:
{axes}

Question:
<<<
{prompt}
>>>

Answer:
<<<
{response}
>>>

Reply with only a JSON object that maps each axis to its score, e.g. {example}"""

_FIELDS = ("prompt", "response", "reference", "axes", "example")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(_FIELDS) + r")\}")
_REQUIRED = {
    "reference_template": ("prompt",),
    "score_template": ("prompt", "reference", "response", "axes"),
    "direct_template": ("prompt", "response", "axes"),
}
_AXIS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Axis:
    """One scored axis: a JSON key and what the judge is told it means."""

    name: str
    description: str = ""


def _render(template: str, values: Mapping[str, str]) -> str:
    # One pass, so a prompt that contains "{response}" is not substituted again.
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _axes_from(axes: Sequence[str] | Mapping[str, str]) -> tuple[Axis, ...]:
    if isinstance(axes, str):
        raise WorkbenchError(f"rubric axes {axes!r} is one string: pass a list of axis names")
    if isinstance(axes, Mapping):
        return tuple(Axis(str(k), str(v)) for k, v in axes.items())
    return tuple(Axis(str(n), DEFAULT_AXES.get(str(n), "")) for n in axes)


@dataclass(frozen=True)
class Rubric:
    """Axes scored 1-5 and the judge's prompt templates.

    Templates use the placeholders ``{prompt}``, ``{response}``, ``{reference}``,
    ``{axes}`` (one line per axis) and ``{example}`` (a JSON example reply);
    other braces are left as they are.
    """

    axes: tuple[Axis, ...] = tuple(Axis(n, d) for n, d in DEFAULT_AXES.items())
    system: str = SYSTEM
    reference_template: str = REFERENCE_TEMPLATE
    score_template: str = SCORE_TEMPLATE
    direct_template: str = DIRECT_TEMPLATE

    def __post_init__(self) -> None:
        names = tuple(a.name for a in self.axes)
        if not names:
            raise WorkbenchError("the rubric has no axes: give at least one axis name")
        for name in names:
            if not isinstance(name, str) or not _AXIS_NAME.fullmatch(name):
                raise WorkbenchError(
                    f"rubric axis {name!r} is not a valid name: use letters, digits and "
                    "underscores, e.g. 'factual_accuracy'"
                )
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise WorkbenchError(
                f"rubric axis {dup[0]!r} is listed twice: axis names must be unique"
            )
        for attr, required in _REQUIRED.items():
            text = getattr(self, attr)
            missing = [f"{{{f}}}" for f in required if f"{{{f}}}" not in text]
            if missing:
                raise WorkbenchError(
                    f"rubric {attr} lacks the placeholder {', '.join(missing)}: add it where "
                    "the judge should see that text"
                )

    @classmethod
    def from_axes(cls, axes: Sequence[str] | Mapping[str, str]) -> Rubric:
        """A rubric from axis names (default axes keep their descriptions) or name -> description.

        Change a template with ``dataclasses.replace(rubric, score_template=...)``.
        """
        return cls(axes=_axes_from(axes))

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    def axes_text(self) -> str:
        return "\n".join(
            f"- {a.name}: {a.description}" if a.description else f"- {a.name}" for a in self.axes
        )

    def example_reply(self) -> str:
        return json.dumps({name: 3 for name in self.axis_names})

    def _messages(self, template: str, **values: str) -> list[dict[str, str]]:
        values = {"axes": self.axes_text(), "example": self.example_reply(), **values}
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": _render(template, values)},
        ]

    def reference_messages(self, prompt: str) -> list[dict[str, str]]:
        """Pass 1 of ``two_pass``: the prompt only, never a response."""
        return self._messages(self.reference_template, prompt=prompt)

    def score_messages(self, prompt: str, reference: str, response: str) -> list[dict[str, str]]:
        """Pass 2 of ``two_pass``: score ``response`` against the pass-1 ``reference``."""
        return self._messages(
            self.score_template, prompt=prompt, reference=reference, response=response
        )

    def direct_messages(self, prompt: str, response: str) -> list[dict[str, str]]:
        """The single pass of ``direct`` mode."""
        return self._messages(self.direct_template, prompt=prompt, response=response)

    def judge_prompt(self, mode: Mode) -> dict[str, str]:
        """The prompt text a run in ``mode`` uses (templates with the axes filled in)."""
        if mode not in MODES:
            raise WorkbenchError(f"judge mode {mode!r} is unknown: use one of {', '.join(MODES)}")
        fill = {"axes": self.axes_text(), "example": self.example_reply()}
        if mode == "two_pass":
            parts = {"reference": self.reference_template, "score": self.score_template}
        else:
            parts = {"direct": self.direct_template}
        return {"system": self.system, **{k: _render(v, fill) for k, v in parts.items()}}

    def prompt_sha256(self, mode: Mode) -> str:
        """SHA256 of the judge prompt of ``mode``: equal hashes mean identical judging prompts."""
        text = json.dumps({"mode": mode, **self.judge_prompt(mode)}, sort_keys=True)
        return sha256_text(text)

    def to_json(self) -> dict[str, Any]:
        return {
            "axes": {a.name: a.description for a in self.axes},
            "system": self.system,
            "reference_template": self.reference_template,
            "score_template": self.score_template,
            "direct_template": self.direct_template,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Rubric:
        """Inverse of :meth:`to_json`; keys other than ``axes`` are optional."""
        known = {"axes", *_REQUIRED, "system"}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise WorkbenchError(
                f"unknown rubric key {unknown[0]!r}: valid keys are {', '.join(sorted(known))}"
            )
        templates = {k: obj[k] for k in (*_REQUIRED, "system") if k in obj}
        for key, value in templates.items():
            if not isinstance(value, str):
                raise WorkbenchError(f"rubric {key} must be a string, got {type(value).__name__}")
        axes = obj.get("axes", DEFAULT_AXES)
        if not isinstance(axes, Mapping | Sequence):
            raise WorkbenchError(
                f"rubric axes must be a list of names or a table name -> description, "
                f"got {type(axes).__name__}"
            )
        return cls(axes=_axes_from(axes), **templates)
