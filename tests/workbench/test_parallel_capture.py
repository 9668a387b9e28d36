"""Data-parallel capture under ``torchrun --nproc-per-node 2`` (gloo on CPU).

Two launches of the real embedded SmolLM2-135M, a handful of items each: the
two-process store equals a one-process capture (at one torch thread, as
torchrun sets: bit for bit), and a rank killed mid-run is finished by a relaunch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.core.store import MANIFEST, FeatureStore

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")
SITES = ("h_last", "head_in(3)")
ITEMS = [
    {
        "id": f"q{i}",
        "prompt": f"Count from {i} to {i + 9}, then explain what you did.",
        "response": " ".join(str(n) for n in range(i, i + 10)) * (2 + i % 3),
    }
    for i in range(8)
]


def _launch(items: Path, out: Path, shard_size: int) -> subprocess.Popen[bytes]:
    if not TORCHRUN.is_file():
        pytest.skip(f"torchrun not found beside {sys.executable}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    sites = [a for s in SITES for a in ("--site", s)]
    command = [
        str(TORCHRUN), "--nproc-per-node", "2", "--master-port", str(29500 + os.getpid() % 500),
        "-m", "workbench", "capture", "--model", "smollm2-135m-instruct", "--items", str(items),
        *sites, "--out", str(out), "--shard-size", str(shard_size), "--batch-size", "1",
        "--no-progress",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _single(smollm, out: Path, shard_size: int) -> FeatureStore:
    from workbench.model.capture import capture_to_store

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torchrun's OMP_NUM_THREADS=1: the same reductions
    try:
        return capture_to_store(
            smollm, ITEMS, list(SITES), out, shard_size=shard_size, batch_size=1
        )
    finally:
        torch.set_num_threads(threads)


def _same_store(a: FeatureStore, b: FeatureStore) -> None:
    assert a.complete and b.complete
    assert a.item_ids == b.item_ids == [it["id"] for it in ITEMS]  # order kept, each once
    for site in b.sites:
        assert np.array_equal(a.load(site), b.load(site)), site
        assert np.abs(a.load(site) - b.load(site)).max() <= 1e-4
    assert sorted(p.name for p in a.path.iterdir()) == sorted(p.name for p in b.path.iterdir())


def _rank_pid(parent: int, rank: int, deadline: float) -> int:
    """The pid of the torchrun worker whose environment says RANK=rank."""
    while time.monotonic() < deadline:
        for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
            try:
                env = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in env:
                return int(child)
        time.sleep(0.01)
    raise AssertionError(f"no worker with RANK={rank} under torchrun {parent}")


def test_two_processes_equal_one(smollm, tmp_path, items_file):
    items = items_file(ITEMS)
    proc = _launch(items, tmp_path / "two", shard_size=2)
    log = proc.communicate(timeout=240)[0].decode()
    assert proc.returncode == 0, log
    two = FeatureStore(tmp_path / "two")
    assert two.manifest["meta"]["world_size"] == 2
    assert [s.file for s in two.shards] == [f"shard-{k:05d}.safetensors" for k in range(4)]
    _same_store(two, _single(smollm, tmp_path / "one", shard_size=2))
    assert log.count("wrote 8 items") == 1  # the main process reports, once


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_killed_rank_resumes_its_shards(smollm, tmp_path, items_file):
    items, out = items_file(ITEMS), tmp_path / "store"
    proc = _launch(items, out, shard_size=1)  # shards 1, 3, 5, 7 belong to rank 1
    deadline = time.monotonic() + 180
    rank1 = _rank_pid(proc.pid, 1, deadline)
    while not (out / ".rank-00001.json").exists():  # its first shard, recorded
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout
        time.sleep(0.002)
    os.kill(rank1, signal.SIGKILL)  # after its first shard, before its last
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert not manifest["complete"]  # the main process never merged
    written = {p.name for p in out.glob("shard-*.safetensors")}
    assert "shard-00001.safetensors" in written and len(written) < len(ITEMS)
    stamps = {name: (out / name).stat().st_mtime_ns for name in written}

    again = _launch(items, out, shard_size=1)
    log = again.communicate(timeout=240)[0].decode()
    assert again.returncode == 0, log
    resumed = FeatureStore(out)
    kept = {n for n in written if (out / n).stat().st_mtime_ns == stamps[n]}
    assert "shard-00001.safetensors" in kept  # rank 1's finished shard was not redone
    single = _single(smollm, tmp_path / "one", shard_size=1)
    _same_store(resumed, single)
    assert not list(out.glob(".rank-*")) and not list(out.glob(".*.tmp"))
    shutil.rmtree(tmp_path / "one")
