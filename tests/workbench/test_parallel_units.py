"""Placement options and launch checks, refused before any weights load; dealt generation.

The model given to the CLI below does not exist: an error about the option (not
about the model) shows the option was checked first.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from support import run_cli

from workbench.core.errors import WorkbenchError
from workbench.model.dealt import generate_parts
from workbench.model.generation import generate
from workbench.model.options import LoadOptions
from workbench.model.parallel import Processes, planned

ITEMS = [{"id": f"q{i}", "prompt": f"What is {i} times {i}?"} for i in range(5)]
NO_MODEL = "/nonexistent/model-dir"

BAD = {
    "unknown device": (["--device", "tpu"], r"device 'tpu' is not a torch device"),
    "cuda where none": (["--device", "cuda"], r"'cuda' requested but CUDA is not available"),
    "map names a missing GPU": (
        ["--device-map", '{"model.embed_tokens": 0, "model.layers": 3}'],
        r"device map entry 'model.embed_tokens' names GPU 0, but CUDA is not available",
    ),
    "map is neither": (["--device-map", "everywhere"], r"device map 'everywhere' is neither"),
    "memory without a map": (["--max-memory", "cpu=4GiB"], r"max memory caps the devices"),
    "memory names a missing GPU": (
        ["--device-map", "auto", "--max-memory", "7=4GiB"],
        r"max memory names GPU 7",
    ),
    "bad memory size": (
        ["--device-map", "auto", "--max-memory", "cpu=lots"],
        r"max memory 'cpu=lots' is not DEVICE=SIZE",
    ),
    "dtype": (["--dtype", "int8"], r"unknown dtype 'int8'"),
    "backend": (["--backend", "pyvene"], r"unknown backend 'pyvene'"),
}


def _one_line(code: int, err: str, pattern: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("command", ["capture", "generate", "temper"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_options_refused_before_loading(command, case, tmp_path, items_file):
    extra, pattern = BAD[case]
    items = str(items_file(ITEMS))
    out = tmp_path / "out"
    args = {
        "capture": ["--site", "h_last"],
        "generate": ["--max-new-tokens", "4"],
        "temper": ["--head", "0.1", "--lambda", "0.5"],
    }[command]
    code, _, err = run_cli(
        command, "--model", NO_MODEL, "--items", items, "--out", str(out), *args, *extra
    )
    _one_line(code, err, pattern)
    assert not out.exists()


def test_launch_larger_than_the_shards_refused(monkeypatch, tmp_path, items_file):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "0")
    assert planned() == Processes(0, 4, 0)
    items = str(items_file(ITEMS))
    for command, extra in (
        ("capture", ["--site", "h_last"]),
        ("generate", ["--max-new-tokens", "4"]),
    ):
        code, _, err = run_cli(
            command, "--model", NO_MODEL, "--items", items, "--out", str(tmp_path / "o"),
            "--shard-size", "2", *extra,
        )  # fmt: skip
        _one_line(code, err, r"4 processes for 3 shard\(s\) of 2 items \(5 items\)")
    code, _, err = run_cli(
        "capture", "--model", NO_MODEL, "--items", items, "--out", str(tmp_path / "o"),
        "--site", "h_last", "--device-map", "auto",
    )  # fmt: skip
    _one_line(code, err, r"--device-map 'auto' under a launch of 4 processes")


def test_options_value():
    assert LoadOptions(device_map="sequential").load_kwargs()["device_map"] == "sequential"
    with pytest.raises(WorkbenchError, match="names GPU 1"):
        LoadOptions(device_map=json.dumps({"lm_head": "cuda:1"}))


def test_dealt_generation_equals_one_process(tiny, monkeypatch, tmp_path):
    """Two ranks simulated one after the other (the barrier is the launch's; here a no-op)."""
    lm = tiny("llama")
    monkeypatch.setattr(Processes, "barrier", lambda self: None)
    kwargs = {"max_new_tokens": 4, "batch_size": 2, "capture": ["h_last"], "shard_size": 2}
    parts = tmp_path / "parts"
    assert generate_parts(lm, ITEMS, parts, processes=Processes(1, 2, 1), **kwargs) is None
    assert sorted(p.name for p in parts.glob("*.json")) == ["part-00001.json"]  # shard 1 only
    merged = generate_parts(lm, ITEMS, parts, processes=Processes(0, 2, 0), **kwargs)
    assert merged is not None and [g.id for g in merged] == [it["id"] for it in ITEMS]
    single = generate(lm, ITEMS, max_new_tokens=4, batch_size=2, capture=["h_last"])
    assert [g.token_ids for g in merged] == [g.token_ids for g in single]
    assert merged.features["resid(-1,normed)"].shape == single.features["resid(-1,normed)"].shape

    # a relaunch reuses the parts (marked here), and other settings do not
    part = parts / "part-00001.json"
    data = json.loads(part.read_text())
    data["generations"][0]["response"] = "REUSED"
    part.write_text(json.dumps(data))
    again = generate_parts(lm, ITEMS, parts, processes=Processes(0, 1, 0), **kwargs)
    assert again is not None and again[2].response == "REUSED"
    changed = generate_parts(
        lm, ITEMS, parts, processes=Processes(0, 1, 0), **{**kwargs, "max_new_tokens": 3}
    )
    assert changed is not None and "REUSED" not in [g.response for g in changed]


def test_capture_backend_option_writes_the_same_store(tiny_dir, tmp_path, items_file):
    pytest.importorskip("nnsight")
    from workbench.core.store import FeatureStore

    items = str(items_file(ITEMS))
    for backend in ("hf", "nnsight"):
        code, _, err = run_cli(
            "capture", "--model", str(tiny_dir), "--items", items, "--site", "h_last",
            "--site", "head_in(1,last=2)", "--out", str(tmp_path / backend), "--backend", backend,
            "--shard-size", "2", "--no-progress",
        )  # fmt: skip
        assert code == 0, err
    hf, nn = FeatureStore(tmp_path / "hf"), FeatureStore(tmp_path / "nnsight")
    assert nn.manifest["meta"]["backend"] == "nnsight" and len(nn.shards) == 3
    for site in hf.sites:
        assert np.array_equal(nn.load(site), hf.load(site)), site
