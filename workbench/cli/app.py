"""The ``workbench`` command line.

Each package contributes its commands through a ``register(app)`` function in
its own ``cli`` module (``workbench.cli.capture``, ``workbench.cli.falsify``,
``workbench.cli.heads``, ...); :data:`COMMANDS` says which, so a command imports
only what it needs. Bad input raises :class:`WorkbenchError`, printed here
as one line with exit code 2 (so is an operating-system error such as a full
disk, and Ctrl-C says what was kept and exits 130); nothing already computed
is removed.
"""

from __future__ import annotations

import errno
import importlib
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from workbench.core.errors import WorkbenchError

__all__ = ["build_app", "main", "os_error_message"]

#: Which module registers each command, so that ``workbench falsify`` imports
#: neither torch nor transformers. ``tests/workbench/test_cli_routing.py`` checks
#: this table against what each module really registers.
COMMANDS: dict[str, str] = {
    "models": "workbench.cli.capture",
    "capture": "workbench.cli.capture",
    "falsify": "workbench.cli.falsify",
    "disposition": "workbench.cli.labels_only",
    "diagnose": "workbench.cli.labels_only",
    "attribute": "workbench.cli.heads",
    "temper": "workbench.cli.heads",
    "causal": "workbench.cli.causal",
    "generate": "workbench.cli.compare",
    "compare": "workbench.cli.compare",
    "demo": "workbench.cli.study",
    "run": "workbench.cli.study",
}


#: What an operating-system error means for the user, by errno.
_OS_FIXES = {
    errno.ENOSPC: "the disk is full: free space or pass an --out on another disk",
    errno.EDQUOT: "the disk quota is exceeded: free space or pass an --out on another disk",
    errno.EACCES: "permission denied: pass a path you may write to",
    errno.EPERM: "permission denied: pass a path you may write to",
    errno.EROFS: "the file system is read-only: pass an --out on a writable disk",
}


def os_error_message(e: OSError) -> str:
    """One line for an operating-system error: the path, what happened, the fix."""
    where = f"{e.filename}: " if e.filename else ""
    return where + _OS_FIXES.get(e.errno or 0, f"{e.strerror or e}")


#: click's UsageError as typer vendors it (typer exports only its BadParameter subclass).
_USAGE_ERROR: type[Exception] = typer.BadParameter.__mro__[1]


class _Commands(TyperGroup):
    """Turns the workbench's own errors into one line on stderr and exit code 2.

    Here rather than around ``app()`` so that typer's ``CliRunner`` sees the
    same exit codes and messages as the ``workbench`` script.
    """

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except WorkbenchError as e:
            typer.echo(f"error: {e}", err=True)
            ctx.exit(2)
        except _USAGE_ERROR as e:  # a bad option value: one line too, with where to look
            where = getattr(e, "ctx", None)
            command = where.command_path if where is not None else "workbench"
            typer.echo(f"error: {e.format_message()} (see {command} --help)", err=True)  # type: ignore[attr-defined]
            ctx.exit(2)
        except KeyboardInterrupt:
            typer.echo("interrupted: completed shards and cached results are kept", err=True)
            ctx.exit(130)
        except OSError as e:
            if e.errno in (errno.EPIPE, None) and not e.filename:
                raise
            typer.echo(f"error: {os_error_message(e)}", err=True)
            ctx.exit(2)


def build_app(command: str | None = None) -> typer.Typer:
    """The typer app; with ``command``, only the module that registers it is imported."""
    app = typer.Typer(
        name="workbench",
        help="Capture h_last and o_proj head inputs, falsify probes honestly, attribute and temper heads.",
        cls=_Commands,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # help text is plain: "[run] threads" stays as written
        add_completion=False,
    )

    @app.callback()
    def _root() -> None:
        """Capture h_last and o_proj head inputs, falsify probes honestly, attribute and temper heads."""

    modules = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(app)
    return app


def _quiet_libraries() -> None:
    """Keep stderr for our progress bars and one-line errors (the CLI only, not on import)."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "transformers" not in sys.modules:  # read by transformers at import: no import here
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        return
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> None:
    _quiet_libraries()
    app = build_app(_command(sys.argv[1:] if argv is None else argv))
    app(args=argv, prog_name="workbench")
