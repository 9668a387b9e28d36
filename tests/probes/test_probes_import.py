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


def test_falsify_without_confounds_loads_no_torch():
    """LEACE (torch) is imported inside the erasure step only: a falsify without
    confounds, or with confounds and erase_confounds=False, never loads it."""
    code = (
        "import sys, numpy as np, probes; rng = np.random.default_rng(0); "
        "y = np.arange(80) % 2; X = rng.normal(size=(80, 4)) + y[:, None]; "
        "kw = dict(fresh_X=X[40:], fresh_y=y[40:], n_boot=20, n_perm=20, n_control=0); "
        "probes.falsify(X[:40], y[:40], **kw); "
        "z = rng.normal(size=80); "
        "probes.falsify(X[:40], y[:40], confounds={'z': (z[:40], z[40:])}, "
        "erase_confounds=False, **kw); "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
