"""Where the source paper's released artifacts live (read by path, never copied).

The files come from the public artifact repository of "Disposition
Distillation at Small Scale: A Three-Arc Negative Result" (arXiv:2604.11867,
MIT License). The folder is ``$WORKBENCH_PAPER_ARTIFACTS`` when set, else
``<repo root>/../shared/paper-artifacts``.

>>> import os
>>> saved = os.environ.pop(ENV_VAR, None)
>>> paper_artifacts_dir("/repo").as_posix()
'/shared/paper-artifacts'
>>> if saved is not None:
...     os.environ[ENV_VAR] = saved
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.core.errors import WorkbenchError

__all__ = ["ENV_VAR", "SOURCE", "paper_artifacts_dir", "require_paper_artifacts"]

ENV_VAR = "WORKBENCH_PAPER_ARTIFACTS"
SOURCE = (
    "the public artifact repository of 'Disposition Distillation at Small Scale: "
    "A Three-Arc Negative Result' (arXiv:2604.11867)"
)


def paper_artifacts_dir(root: str | Path | None = None) -> Path:
    """The artifact folder: ``$WORKBENCH_PAPER_ARTIFACTS``, else ``<root>/../shared/paper-artifacts``.

    Args:
        root: the repository root (default: the folder holding the ``probes`` package).
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    base = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    return base.parent / "shared" / "paper-artifacts"


def require_paper_artifacts(*names: str, root: str | Path | None = None) -> Path:
    """The artifact folder, or an error saying where the files come from."""
    folder = paper_artifacts_dir(root)
    missing = [n for n in names if not (folder / n).is_file()]
    if not folder.is_dir() or missing:
        what = ", ".join(missing) if folder.is_dir() else str(folder)
        raise WorkbenchError(
            f"paper artifacts not found ({what}): download them from {SOURCE} and set {ENV_VAR} "
            "to their folder"
        )
    return folder
