"""The ``workbench`` command line.

Each package contributes its commands through a ``register(app)`` function in
its own ``cli`` module (``workbench.cli.capture``, ``workbench.cli.falsify``,
``workbench.cli.heads``, ...); :data:`COMMANDS` says which, so a command imports
only what it needs. Bad input raises :class:`WorkbenchError`, printed here
as one line with exit code 2; nothing already computed is removed.
"""

from __future__ import annotations

import importlib
import sys

import typer

from workbench.core.errors import WorkbenchError

__all__ = ["build_app", "main"]

#: Which module registers each command, so that ``workbench falsify`` imports
#: neither torch nor transformers. ``tests/workbench/test_cli_routing.py`` checks
#: this table against what each module really registers.
COMMANDS: dict[str, str] = {
    "models": "workbench.cli.capture",
    "capture": "workbench.cli.capture",
    "falsify": "workbench.cli.falsify",
    "attribute": "workbench.cli.heads",
    "temper": "workbench.cli.heads",
    "causal": "workbench.cli.causal",
    "generate": "workbench.cli.compare",
    "compare": "workbench.cli.compare",
    "demo": "workbench.cli.study",
    "run": "workbench.cli.study",
}


def build_app(command: str | None = None) -> typer.Typer:
    """The typer app; with ``command``, only the module that registers it is imported."""
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
    try:
        app(args=argv, prog_name="workbench")
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: completed shards and cached results are kept", file=sys.stderr)
        sys.exit(130)
