"""The ``workbench`` command line.

Each package contributes its commands through a ``register(app)`` function in
its own ``cli`` module (``workbench.commands``, ``probes.cli``,
``interventions.cli``). Bad input raises :class:`WorkbenchError`, printed here
as one line with exit code 2; nothing already computed is removed.
"""

from __future__ import annotations

import importlib
import sys

import typer

from workbench.errors import WorkbenchError

__all__ = ["build_app", "main"]

_COMMAND_MODULES = (
    "workbench.commands",
    "probes.cli",
    "interventions.cli",
    "workbench.compare_cli",
    "workbench.study.cli",
)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="workbench",
        help="Capture h_last and o_proj head inputs, falsify probes honestly, attribute and temper heads.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def _root() -> None:
        """Capture h_last and o_proj head inputs, falsify probes honestly, attribute and temper heads."""

    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        module.register(app)
    return app


def _quiet_libraries() -> None:
    """Keep stderr for our progress bars and one-line errors (the CLI only, not on import)."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> None:
    _quiet_libraries()
    app = build_app()
    try:
        app(args=argv, prog_name="workbench")
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: completed shards and cached results are kept", file=sys.stderr)
        sys.exit(130)
