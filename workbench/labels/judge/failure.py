"""Why one judged item failed: the exception a judge call raises and the record kept.

A judge call fails either at the transport (timeout, connection, HTTP status)
or at the reply (no JSON object, a missing axis, a score outside 1..5). Both
raise :class:`JudgeCallError`; the scorer turns it into a :class:`JudgeFailure`
on that item and goes on with the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["FailureKind", "Stage", "JudgeCallError", "JudgeFailure"]

FailureKind = Literal[
    "timeout",  # no reply within timeout_s, on every attempt
    "connection",  # refused, reset, DNS...: on every attempt
    "rate_limited",  # HTTP 429 on every attempt
    "server_error",  # HTTP 5xx (or 408) on every attempt
    "http_error",  # another HTTP status (401, 404, ...): not retried
    "bad_response",  # HTTP 200 but not a chat-completions JSON body
    "no_json",  # the judge's reply holds no JSON object
    "missing_axes",  # the JSON object lacks some rubric axes
    "out_of_range",  # a score outside the rubric's scale
    "not_integer",  # a score that is not an integer
    "empty_reference",  # pass 1 of the two-pass mode returned nothing
]
Stage = Literal["reference", "score"]


class JudgeCallError(RuntimeError):
    """A judge request or its reply failed; ``kind`` says how.

    Args:
        kind: one of :data:`FailureKind`.
        message: one line naming the value and, where one exists, the fix.
        status: the last HTTP status, if any.
        reply: the judge's reply text when the reply (not the transport) failed.
    """

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        reply: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind
        self.message = message
        self.status = status
        self.reply = reply


@dataclass(frozen=True)
class JudgeFailure:
    """Why an item has no scores: the kind, a message and the pass that failed."""

    kind: FailureKind
    message: str
    stage: Stage
    status: int | None = None

    @classmethod
    def from_error(cls, error: JudgeCallError, stage: Stage) -> JudgeFailure:
        return cls(kind=error.kind, message=error.message, stage=stage, status=error.status)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "stage": self.stage,
            "status": self.status,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> JudgeFailure:
        return cls(
            kind=obj["kind"], message=obj["message"], stage=obj["stage"], status=obj.get("status")
        )
