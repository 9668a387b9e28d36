"""The command table matches what each module registers; falsify does not import torch."""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer

from workbench.cli.app import COMMANDS


def test_command_table_matches_registrations():
    for module_name in set(COMMANDS.values()):
        app = typer.Typer()
        importlib.import_module(module_name).register(app)
        registered = {c.name for c in app.registered_commands}
        assert registered == {c for c, m in COMMANDS.items() if m == module_name}, module_name


def test_falsify_help_imports_no_torch():
    code = (
        "import sys\n"
        "from workbench.cli.app import main\n"
        "try:\n    main(['falsify', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'falsify imported torch'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--train" in result.stdout
