"""Fixtures for the probes tests: paper artifacts by path, synthetic truths, the CLI."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = (
    "the paper's public artifact repository (arXiv:2604.11867, 'Disposition Distillation "
    "at Small Scale'); set WORKBENCH_PAPER_ARTIFACTS to their folder"
)


def artifacts_dir() -> Path:
    env = os.environ.get("WORKBENCH_PAPER_ARTIFACTS")
    return Path(env) if env else REPO.parent / "shared" / "paper-artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = artifacts_dir()
    if not (folder / "smollm_step16_features.npz").is_file():
        pytest.skip(f"paper artifacts not found at {folder}: they come from {SOURCE}")
    return folder


@pytest.fixture(scope="session")
def smollm(artifacts: Path) -> dict[str, np.ndarray]:
    """The paper's SmolLM2-1.7B features and labels, read independently of probes.labels."""
    with np.load(artifacts / "smollm_step16_features.npz", allow_pickle=False) as z:
        X, coverage = z["X"], z["coverage"]
    with np.load(artifacts / "smollm_fresh_features.npz", allow_pickle=False) as z:
        Xf = z["X"]
    gold = json.loads((artifacts / "smollm_fresh_judged_gold.json").read_text())
    return {
        "X": X,
        "y": (coverage >= 0.5).astype(int),
        "Xf": Xf,
        "yf": np.asarray(gold["labels"], dtype=int),
    }


def planted(
    rng: np.random.Generator,
    n: int,
    rate: float,
    *,
    d: int = 20,
    signal: float = 1.5,
    confound: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` items, exactly ``round(rate * n)`` positives; label 1 shifts feature 0 by
    ``signal`` and feature 1 by ``+confound`` (label 0 by ``-confound``)."""
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, int(round(rate * n)), replace=False)] = 1
    X = rng.normal(size=(n, d))
    X[:, 0] += signal * y
    X[:, 1] += confound * (2 * y - 1)
    return X, y


@pytest.fixture
def make_planted() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return planted


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run ``workbench ARGS`` through ``workbench.cli.app.main``; returns (exit code, stderr)."""
    import workbench.cli.app as wcli

    def run(*args: str) -> tuple[int, str]:
        code = 0
        try:
            wcli.main([str(a) for a in args])
        except SystemExit as e:
            code = int(e.code or 0)
        return code, capsys.readouterr().err

    return run
