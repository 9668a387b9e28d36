"""Issue 16's defects one by one: each reproduced, each a clear error or the right result.

The table of bad inputs is ``test_bad_inputs.py``; these are the cases that
need a result to compare (labels by id with a BOM, per-shard settings on
resume, rich markup in printed text, Ctrl-C, a full disk, the hybrid LoRA).
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import REPO
from typer.testing import CliRunner

from workbench.cli.app import build_app
from workbench.core.errors import WorkbenchError
from workbench.core.store import FeatureStore, StoreWriter

N = 40


def _invoke(*args: str):
    return CliRunner().invoke(build_app(args[0]), list(args))


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    """A store whose item ids run q0..q39 and whose labels follow one feature exactly."""
    root = tmp_path_factory.mktemp("separable")
    rng = np.random.default_rng(1)
    ids = [f"q{i}" for i in range(N)]
    y = np.array([i % 2 for i in range(N)])
    X = rng.normal(size=(N, 3)).astype(np.float32)
    X[:, 0] += 4 * y
    w = StoreWriter(
        root / "store",
        meta={"sites": ["resid(-1,normed)"]},
        items=[{"id": i} for i in ids],
        run_key=["sites"],
    )
    w.start()
    w.write_shard({"resid(-1,normed)": X})
    order = list(rng.permutation(N))  # the label file lists items in another order
    text = "id,y\n" + "".join(f"{ids[k]},{y[k]}\n" for k in order)
    (root / "plain.csv").write_text(text, encoding="utf-8")
    (root / "bom.csv").write_text(text, encoding="utf-8-sig")  # as a spreadsheet saves it
    return root


def _falsify(root: Path, labels: str, out: Path):
    return _invoke("falsify", "--train", str(root / "store"), "--train-labels", f"{root / labels}:y",
                   "--out", str(out), "--n-boot", "20", "--n-perm", "20", "--n-control", "1",
                   "--no-figures")  # fmt: skip


def test_a_csv_with_a_byte_order_mark_is_matched_by_id(separable, tmp_path):
    """Defect 1: the BOM mangled the id header, so labels silently followed file order."""
    plain = _falsify(separable, "plain.csv", tmp_path / "plain")
    bom = _falsify(separable, "bom.csv", tmp_path / "bom")
    assert plain.exit_code == 0 and bom.exit_code == 0, bom.stderr
    a = json.loads((tmp_path / "plain" / "report.json").read_text())
    b = json.loads((tmp_path / "bom" / "report.json").read_text())
    assert a["labels_matched_by"] == b["labels_matched_by"] == {"train": "id"}
    assert a["steps"] == b["steps"]
    assert "file order" not in bom.stderr
    again = _falsify(separable, "bom.csv", tmp_path / "bom")  # its own earlier output: replaced
    assert again.exit_code == 0, again.stderr


def test_order_matching_is_reported(separable, tmp_path):
    labels = tmp_path / "bare.json"
    labels.write_text(json.dumps([i % 2 for i in range(N)]))
    result = _invoke("falsify", "--train", str(separable / "store"), "--train-labels", str(labels),
                     "--out", str(tmp_path / "o"), "--n-boot", "20", "--n-perm", "20",
                     "--n-control", "1", "--no-figures")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "train labels follow file order" in result.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["labels_matched_by"] == {"train": "order"}


def test_printed_paths_and_warnings_are_not_read_as_markup(separable, tmp_path):
    """Defect 4: rich ate " [collinear]" and crashed on an --out with [...] after writing."""
    rng = np.random.default_rng(0)
    ids = [f"q{i}" for i in range(N)]
    w = StoreWriter(tmp_path / "heads", meta={"sites": ["head_in(0,last=2)"], "model": {"n_layers": 1}},
                    items=[{"id": i} for i in ids], run_key=["sites"])  # fmt: skip
    w.start()
    w.write_shard({"head_in(0,last=2)": rng.normal(size=(N, 2, 2, 4)).astype(np.float32)})
    labels = tmp_path / "l.jsonl"
    labels.write_text("".join(json.dumps({"id": i, "c": k % 2}) + "\n" for k, i in enumerate(ids)))
    out = tmp_path / "out[bold]x[/bold]"
    result = _invoke("attribute", "--features", str(tmp_path / "heads"), "--correct", f"{labels}:c",
                     "--compare", "wrong:right", "--collinear-cos", "-1", "--no-probes", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert " [collinear]" in result.stderr
    assert f"to {out}" in result.stderr.replace("\n", "")
    falsify = _falsify(separable, "plain.csv", tmp_path / "f[red]y[/red]")
    assert falsify.exit_code == 0 and "f[red]y[/red]" in falsify.stderr.replace("\n", "")
    helped = _invoke("run", "--help")
    assert "[run] threads" in re.sub(r"\s+", " ", helped.stdout)


def test_ctrl_c_says_what_is_kept_and_exits_130(separable, tmp_path, monkeypatch):
    import probes.labels

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(probes.labels, "load_features", interrupted)
    result = _falsify(separable, "plain.csv", tmp_path / "o")
    assert result.exit_code == 130
    assert result.stderr.startswith("interrupted: completed shards and cached results are kept")


def test_a_full_disk_is_one_line_and_leaves_no_partial_output(separable, tmp_path, monkeypatch):
    import workbench.core.store

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(workbench.core.store, "atomic_write_bytes", full)
    result = _falsify(separable, "plain.csv", tmp_path / "o")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "the disk is full" in result.stderr and "report.json" in result.stderr
    left = sorted(p.name for p in (tmp_path / "o").iterdir()) if (tmp_path / "o").exists() else []
    assert left in ([], [".workbench-owned"]), left  # no report, no temporary file


def test_resume_records_settings_per_shard_and_refuses_other_features(tiny, tmp_path):
    """Defect 6: a resume with another batch size was recorded as the new size for all
    shards; a resume with a feature-changing setting must be refused; temp files of
    the killed run are removed (those of a live process kept)."""
    from workbench.model.capture import capture_to_store

    lm = tiny("llama")
    items = [{"id": str(i), "prompt": f"Q{i}?", "response": f"A{i}."} for i in range(6)]
    out = tmp_path / "f"
    capture_to_store(lm, items, ["h_last"], out, shard_size=2, batch_size=2)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"] = manifest["shards"][:1]  # killed after the first shard
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    dead = out / ".shard-00001.safetensors.999999999.abc.tmp"  # no such pid
    live = out / f".shard-00002.safetensors.{os.getppid()}.abc.tmp"
    dead.write_bytes(b"x" * 100)
    live.write_bytes(b"x")
    with pytest.raises(WorkbenchError, match="differs in max_response_tokens"):
        capture_to_store(lm, items, ["h_last"], out, shard_size=2, max_response_tokens=7)
    store = capture_to_store(lm, items, ["h_last"], out, shard_size=2, batch_size=1)
    assert store.complete
    assert [s.settings["batch_size"] for s in store.shards] == [2, 1, 1]
    assert store.manifest["meta"]["batch_size"] == 2  # what the first run recorded
    assert not dead.exists() and live.exists()


def test_a_manifest_cannot_point_outside_its_store(tmp_path):
    w = StoreWriter(
        tmp_path / "s", meta={"sites": ["resid(0)"]}, items=[{"id": "a"}], run_key=["sites"]
    )
    w.start()
    w.write_shard({"resid(0)": np.zeros((1, 2), np.float32)})
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    m["shards"][0]["file"] = "../../etc/hostname"
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(WorkbenchError, match="not a shard of this store"):
        FeatureStore(tmp_path / "s").load("resid(0)")


def test_lora_attn_on_a_hybrid_adapts_every_layer(tiny):
    """Defect 7: on Qwen3.5 only the full-attention layers were adapted, silently."""
    from peft import LoraConfig, get_peft_model

    from workbench.conditions.lora_targets import lora_module_names, lora_target_modules

    lm = tiny("qwen3_5")
    pattern = lora_target_modules(lm, "attn")
    names = lora_module_names(lm.model, pattern)
    layers = {int(n.split(".")[2]) for n in names}
    assert layers == set(range(lm.layout.n_layers))
    linear = {n.rsplit(".", 1)[1] for n in names if ".linear_attn." in n}
    assert linear == {"in_proj_qkv", "in_proj_z", "in_proj_a", "in_proj_b", "out_proj"}
    assert not any("conv1d" in n for n in names)
    import copy

    model = get_peft_model(copy.deepcopy(lm.model), LoraConfig(r=2, target_modules=pattern))
    wrapped = sorted(n.removeprefix("base_model.model.").removesuffix(".lora_A")
                     for n, _ in model.named_modules() if n.endswith(".lora_A"))  # fmt: skip
    assert wrapped == sorted(names)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["falsify", "--train", "missing.npz", "--train-labels", "x.csv", "--out", "o"],
            "do not exist",
        ),
        (["run", "."], "is a directory"),
        (
            ["capture", "--model", "m", "--items", "i.jsonl", "--site", "nope", "--out", "o"],
            "unknown site",
        ),
    ],
)
def test_the_installed_command_gives_one_line_too(tmp_path, args, words):
    """A few real processes: the script's own entry point, not only CliRunner."""
    (tmp_path / "i.jsonl").write_text('{"id": 1, "prompt": "a"}\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "workbench", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert words in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.jsonl"]


@pytest.mark.parametrize(
    "pasted", ["sk_live_4f9a8b7c6d5e4f3a2b1c", "AKIA2024EXAMPLEKEY", "ghp_R4nd0mL00kingT0ken9"]
)
def test_a_key_pasted_into_api_key_env_is_refused_and_not_echoed(pasted, monkeypatch):
    """Defect 6: a key that happened to be letters, digits and underscores was accepted
    as a variable name and written into judge_run.json."""
    from workbench.labels.judge import load_judge_config

    base = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}
    monkeypatch.delenv(pasted, raising=False)
    with pytest.raises(WorkbenchError) as e:
        load_judge_config({**base, "api_key_env": pasted})
    assert pasted not in str(e.value) and "api_key_env" in str(e.value)
    for name in ("WORKBENCH_JUDGE_API_KEY", "OPENAI_API_KEY", "my_key", "KEY_V2"):
        assert load_judge_config({**base, "api_key_env": name}).api_key_env == name
    monkeypatch.setenv("TEAM_KEY_2024", "x")  # a set variable is a name, whatever it looks like
    assert (
        load_judge_config({**base, "api_key_env": "TEAM_KEY_2024"}).api_key_env == "TEAM_KEY_2024"
    )
