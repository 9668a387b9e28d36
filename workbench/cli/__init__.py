"""The ``workbench`` command line: every command, each loaded lazily (see :mod:`workbench.cli.app`)."""

from workbench.cli.app import COMMANDS, build_app, main

__all__ = ["COMMANDS", "build_app", "main"]
