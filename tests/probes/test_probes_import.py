"""probes must never import torch or transformers, directly or indirectly."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_probes_imports_without_torch():
    code = (
        "import probes, workbench.cli.falsify, probes.figures, probes.labels, probes.paper, sys; "
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_init_only_reexports():
    import probes

    assert len(probes.__all__) == len(set(probes.__all__))
    for name in probes.__all__:
        obj = getattr(probes, name)
        assert name.isupper() or obj.__module__.startswith("probes.")
