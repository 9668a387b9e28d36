"""``workbench demo`` and ``workbench run CONFIG``: the whole study, one command.

``demo`` runs the packaged ``workbench/configs/demo.toml`` into ``runs/demo``;
``run`` runs any study TOML into ``runs/<config name>`` (``--out`` changes it).
Both reuse the run directory's cached generations and features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

_OUT = "Run directory (cached generations and features there are reused)."
_THREADS = "CPU threads for torch (overrides [run] threads; 0 keeps the config's, whose 0 means one fewer than the cores)."
_NO_CACHE = "Recompute every stage instead of reusing the run directory's caches."


def _run(config_path: Path | None, out: Path, threads: int, no_cache: bool, progress: bool) -> None:
    from workbench.core.progress import say
    from workbench.core.store import check_out_dir
    from workbench.study.config import load_config
    from workbench.study.runner import run_study

    config = load_config(config_path)
    check_out_dir(out)
    if threads > 0:
        config = config.replace("run", threads=threads)
    result = run_study(config, out, use_cache=not no_cache, progress=progress)
    if result is None:
        return  # another process of a torchrun/accelerate launch: the main one reports
    report = result.falsification.report
    print(f"verdict: {'not run' if report is None else report.verdict}")
    steps = [] if report is None else report.steps
    for s in steps:
        print(f"  step {s.step} {s.title}: {s.verdict}")
    if report is None:
        print(f"  {result.falsification.skipped.get('main', '')}")
    for axis in ("correct", "asserts"):
        entry = (result.decision or {}).get(axis)
        if entry:
            print(f"decision ({axis}): {entry['statement']}")
    say(f"total {result.seconds.get('total', 0.0):.0f} s")
    print(f"report: {result.report_path}")


def demo(
    out: Annotated[Path, typer.Option(help=_OUT)] = Path("runs/demo"),
    threads: Annotated[int, typer.Option(help=_THREADS)] = 0,
    no_cache: Annotated[bool, typer.Option("--no-cache", help=_NO_CACHE)] = False,
    progress: bool = True,
) -> None:
    """Run the default study (SmolLM2-135M-Instruct, Gemma 3 270M for step 5) and write report.html."""
    _run(None, out, threads, no_cache, progress)


def run(
    config: Annotated[Path, typer.Argument(help="A study TOML (see workbench/configs/demo.toml).")],
    out: Annotated[Path | None, typer.Option(help=_OUT + " Default: runs/<config name>.")] = None,
    threads: Annotated[int, typer.Option(help=_THREADS)] = 0,
    no_cache: Annotated[bool, typer.Option("--no-cache", help=_NO_CACHE)] = False,
    progress: bool = True,
) -> None:
    """Run the study a TOML file describes and write report.json and report.html."""
    _run(config, out or Path("runs") / config.stem, threads, no_cache, progress)


def register(app: typer.Typer) -> None:
    """Add ``demo`` and ``run`` to the ``workbench`` CLI."""
    app.command("demo")(demo)
    app.command("run")(run)
