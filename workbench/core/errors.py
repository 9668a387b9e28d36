"""User-facing errors.

Every error a user can fix by changing their input is a :class:`WorkbenchError`:
its message is one line that names the offending value and the fix. The CLI
prints it as ``error: <message>`` and exits with code 2; library callers can
catch it (it is a ``ValueError``). This module imports nothing heavy, so the
torch-free ``probes`` package can use it too.
"""

from __future__ import annotations

__all__ = ["WorkbenchError", "MissingExtraError"]


class WorkbenchError(ValueError):
    """Bad input: the message names the value and how to fix it."""


class MissingExtraError(WorkbenchError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed: pip install 'disposition-workbench[{extra}]'"
        )
        self.package = package
        self.extra = extra
