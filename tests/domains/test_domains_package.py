"""Doctests of every module here run, and none of them imports torch."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "workbench.labels.domains",
    "workbench.labels.domains.base",
    "workbench.labels.domains.normalize",
    "workbench.labels.domains.numbers",
    "workbench.labels.domains.tables",
    "workbench.labels.domains.capitals",
    "workbench.labels.domains.elements",
    "workbench.labels.domains.arithmetic",
    "workbench.labels.domains.registry",
    "workbench.labels.domains.splits",
    "workbench.labels.verbal",
    "workbench.labels.coverage",
]


def test_no_torch_import() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "from workbench.labels.domains import make_split, check_item\n"
        + "items = make_split('train', 4)\n"
        + "check_item(items[0], 'x')\n"
        + "bad = [m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules]\n"
        + "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_init_only_reexports() -> None:
    import workbench.labels.domains as pkg

    assert sorted(pkg.__all__) == sorted(set(pkg.__all__))
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None
