"""Feature store: atomic shards, manifest, resume after a kill, corruption, no unpickling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item
from workbench.core.store import FeatureStore, StoreWriter, load_feature_matrix, load_npz
from workbench.model.capture import capture, capture_to_store

ITEMS = [
    Item(str(i), f"Question number {i}: what is {i} + {i}?", f"It is {2 * i}.") for i in range(7)
]
SITES = ["h_last", "head_in(0,last=2)"]


def test_store_round_trip_and_manifest(tiny, tmp_path):
    lm = tiny("llama")
    store = capture_to_store(lm, ITEMS, SITES, tmp_path / "f", shard_size=3, seed=5)
    memory = capture(lm, ITEMS, SITES)
    assert store.complete and store.item_ids == [it.id for it in ITEMS]
    assert len(store.shards) == 3
    for site in SITES:
        np.testing.assert_allclose(store.load(site), memory[site], rtol=1e-5, atol=1e-5)
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    meta = manifest["meta"]
    assert meta["model"]["name"] == "tiny-llama" and meta["model"]["dtype"] == "float32"
    assert meta["sites"] == ["resid(-1,normed)", "head_in(0,last=2)"]
    assert meta["chat_template_sha256"] and meta["seed"] == 5 and meta["workbench_version"]
    assert meta["created"]
    assert set(manifest["items"][0]) >= {
        "id",
        "prompt_sha256",
        "response_sha256",
        "n_tokens",
        "cut",
    }


def test_killed_capture_resumes_to_identical_features(tiny, tmp_path, monkeypatch):
    lm = tiny("llama")
    reference = capture_to_store(lm, ITEMS, SITES, tmp_path / "ref", shard_size=2).load_all()
    calls = {"n": 0}
    original = StoreWriter.write_shard

    def dying(self, arrays):
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed after two complete shards
        calls["n"] += 1
        return original(self, arrays)

    monkeypatch.setattr(StoreWriter, "write_shard", dying)
    with pytest.raises(KeyboardInterrupt):
        capture_to_store(lm, ITEMS, SITES, tmp_path / "run", shard_size=2)
    partial = FeatureStore(tmp_path / "run")
    assert not partial.complete and partial.n_complete == 4
    with pytest.raises(WorkbenchError, match="incomplete capture"):
        partial.load("h_last")
    monkeypatch.setattr(StoreWriter, "write_shard", original)
    resumed = capture_to_store(lm, ITEMS, SITES, tmp_path / "run", shard_size=2)
    for site, values in reference.items():
        np.testing.assert_array_equal(resumed.load(site), values)


def test_sigkill_mid_capture_then_rerun_matches(tiny_dir, tmp_path, items_file):
    rows = [{"id": str(i), "prompt": f"Prompt {i} " + "word " * (i % 5)} for i in range(40)]
    path = items_file(rows)
    out = tmp_path / "killed"

    def cmd(target):
        return [sys.executable, "-m", "workbench", "capture", "--model", str(tiny_dir), "--items", str(path),
                "--site", "h_last", "--out", str(target), "--shard-size", "2", "--batch-size", "1", "--no-progress"]  # fmt: skip

    proc = subprocess.Popen(cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        manifest = out / "manifest.json"
        if manifest.exists() and len(json.loads(manifest.read_text())["shards"]) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = FeatureStore(out).n_complete
    assert 0 < done_before < 40, "the kill should land mid-run"
    assert subprocess.run(cmd(out), capture_output=True).returncode == 0
    fresh = out.parent / "fresh"
    assert subprocess.run(cmd(fresh), capture_output=True).returncode == 0
    np.testing.assert_array_equal(
        FeatureStore(out).load("resid(-1,normed)"), FeatureStore(fresh).load("resid(-1,normed)")
    )


def test_directory_with_another_runs_manifest_is_refused(tiny, tmp_path):
    lm = tiny("llama")
    capture_to_store(lm, ITEMS, ["h_last"], tmp_path / "f")
    with pytest.raises(
        WorkbenchError, match=r"holds a different run's manifest \(differs in sites\)"
    ):
        capture_to_store(lm, ITEMS, ["resid(0)"], tmp_path / "f")
    with pytest.raises(WorkbenchError, match=r"differs in items"):
        capture_to_store(lm, ITEMS[:3], ["h_last"], tmp_path / "f")


def test_corrupted_shard_is_reported_and_recomputed_on_resume(tiny, tmp_path):
    lm = tiny("llama")
    store = capture_to_store(lm, ITEMS, ["h_last"], tmp_path / "f", shard_size=3)
    good = store.load("resid(-1,normed)")
    shard = tmp_path / "f" / store.shards[1].file
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(WorkbenchError, match=r"shard .*shard-00001.safetensors is corrupted"):
        FeatureStore(tmp_path / "f").load("resid(-1,normed)")
    again = capture_to_store(lm, ITEMS, ["h_last"], tmp_path / "f", shard_size=3)
    np.testing.assert_array_equal(again.load("resid(-1,normed)"), good)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, X=np.array([{"a": 1}], dtype=object))
    with pytest.raises(WorkbenchError, match="pickled Python objects, which are never loaded"):
        load_npz(path)
    with pytest.raises(WorkbenchError, match="pickled"):
        load_feature_matrix(path)


def test_feature_matrix_from_store_needs_site_when_several(tiny, tmp_path):
    lm = tiny("llama")
    capture_to_store(lm, ITEMS, SITES, tmp_path / "f")
    with pytest.raises(WorkbenchError, match="holds several sites"):
        load_feature_matrix(tmp_path / "f")
    assert load_feature_matrix(tmp_path / "f", "head_in(0,last=2)").shape == (7, 2 * 4 * 16)
