"""``torchrun --nproc-per-node 2 -m workbench run CONFIG``: the splits' generation and
capture dealt over two processes (gloo), the statistics on the main one; the report
equals a one-process run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.core.store import FeatureStore

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")

CONFIG = """
[run]
threads = 1
[model]
name = "{model}"
batch_size = 8
[items]
train = 12
fresh = 10
fresh_hard = 0
[generation]
max_new_tokens = 6
short_max_new_tokens = 3
[capture]
pooled_last_n = 2
depth_curve = false
[probe]
folds = 2
n_boot = 20
n_perm = 20
n_control = 1
axes = ["correct"]
[second_model]
enabled = false
[attribution]
min_cohort = 2
[tempering]
enabled = false
[sidecar]
enabled = false
[traces]
n_examples = 0
"""


def _run(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def test_two_process_study_equals_one(tmp_path, tiny_dir):
    if not TORCHRUN.is_file():
        pytest.skip(f"torchrun not found beside {sys.executable}")
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG.format(model=tiny_dir))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    port = str(29000 + os.getpid() % 400)
    two = _run(
        [str(TORCHRUN), "--nproc-per-node", "2", "--master-port", port, "-m", "workbench",
         "run", str(config), "--out", str(tmp_path / "two"), "--no-progress"],
        env,
    )  # fmt: skip
    one = _run(
        [sys.executable, "-m", "workbench", "run", str(config), "--out", str(tmp_path / "one"),
         "--no-progress"],
        env,
    )  # fmt: skip
    assert two.count("verdict:") == 1  # the main process reports, once
    assert [line for line in two.splitlines() if "step" in line] == [
        line for line in one.splitlines() if "step" in line
    ]
    reports = [json.loads((tmp_path / d / "report.json").read_text()) for d in ("one", "two")]
    assert [s["plain"] for s in reports[0]["steps"]] == [s["plain"] for s in reports[1]["steps"]]
    for split in ("train", "fresh"):
        a, b = (tmp_path / d / "splits" / split for d in ("one", "two"))
        assert (a / "generations.jsonl").read_text() == (b / "generations.jsonl").read_text()
        fa, fb = FeatureStore(a / "features"), FeatureStore(b / "features")
        assert fa.item_ids == fb.item_ids
        key = json.loads((b / "key.json").read_text())
        assert key["world_size"] == 2 and key["decoding"]["max_new_tokens"] == 6
        for site in fa.sites:
            np.testing.assert_allclose(fb.load(site), fa.load(site), atol=1e-4, err_msg=site)
    assert not list((tmp_path / "two" / "splits").glob(".*.parts"))
