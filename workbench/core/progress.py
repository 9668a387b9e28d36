"""Progress bars (rich) that library code can switch off."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["console", "progress_bar", "say"]

console = Console(stderr=True)


def say(text: str) -> None:
    """Print one line on stderr as plain text: paths and names with ``[...]`` stay as written."""
    console.print(text, markup=False, highlight=False)


class _NullBar:
    def advance(self, n: int = 1) -> None:
        pass


class _Bar:
    def __init__(self, progress: Progress, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)


@contextlib.contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[_Bar | _NullBar]:
    """A rich progress bar on stderr; a no-op when disabled or ``total`` is 0."""
    if not enabled or total <= 0:
        yield _NullBar()
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=not sys.stderr.isatty()) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))
