"""A run replaces only what the workbench wrote, and a corrupt cached stage is recomputed alone.

Issue 16, defects 2 and 5: a user's file in ``traces/`` (or any stage folder)
was deleted by ``workbench run``; a corrupted cached ``generations.jsonl`` gave
a JSONDecodeError traceback and a corrupted shard could only be fixed with
``--no-cache``. One tiny study (random-init Llama, no second model) is run once;
each test then damages or decorates its run directory.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from support import run_cli

from workbench.core.errors import WorkbenchError
from workbench.core.files import MARKER
from workbench.study.config import StudyConfig
from workbench.study.runner import run_study


def half_right(item, response) -> bool:
    return int(hashlib.sha256(item.id.encode()).hexdigest(), 16) % 2 == 0


def _config(model: Path) -> StudyConfig:
    return StudyConfig.from_dict(
        {
            "run": {"threads": 1},
            "model": {"name": str(model), "batch_size": 8},
            "items": {"train": 12, "fresh": 10, "fresh_hard": 0},
            "generation": {"max_new_tokens": 5, "short_max_new_tokens": 3},
            "capture": {"pooled_last_n": 2, "depth_curve": False},
            "probe": {"folds": 2, "n_boot": 20, "n_perm": 20, "n_control": 1, "depth_n_boot": 5},
            "second_model": {"enabled": False},
            "attribution": {"min_cohort": 2},
            "tempering": {"n_items": 3, "max_new_tokens": 3, "lambdas": [0.0, 1.0]},
            "traces": {"n_examples": 2},
        }
    )


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_dir):
    out = tmp_path_factory.mktemp("owned") / "run"
    config = _config(tiny_dir)
    result = run_study(config, out, checker=half_right, progress=False, write=False)
    return config, out, result


@pytest.fixture
def run_dir(first_run, tmp_path):
    """A copy of the first run's directory to damage."""
    config, out, _ = first_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    return config, copy


def _again(config, out, **kw):
    return run_study(config, out, checker=half_right, progress=False, write=False, **kw)


def test_every_folder_the_run_creates_is_marked(first_run):
    _, out, result = first_run
    assert set(result.cache.values()) == {"computed"}
    for stage in ("", "splits", "splits/train", "splits/train/short", "sweep", "traces"):
        assert (out / stage / MARKER).is_file(), stage
    key = json.loads((out / "splits/train/key.json").read_text())
    assert "generations.jsonl" in key["outputs"] and "features/manifest.json" in key["outputs"]


def test_a_corrupt_cached_generations_file_is_recomputed_alone(run_dir):
    config, out = run_dir
    gens = out / "splits/train/generations.jsonl"
    good = gens.read_bytes()
    gens.write_bytes(good[: len(good) // 2] + b"{not json\n")
    result = _again(config, out)
    assert result.cache["splits/train"] == "computed"
    assert {v for k, v in result.cache.items() if k != "splits/train"} == {"reused"}
    assert gens.read_bytes() == good  # greedy decoding: the same answers again


def test_a_missing_or_corrupt_shard_is_recomputed_alone(run_dir):
    config, out = run_dir
    shard = next((out / "splits/fresh/features").glob("shard-*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:100])
    result = _again(config, out)
    assert result.cache["splits/fresh"] == "computed" and result.cache["splits/train"] == "reused"
    next((out / "splits/train/features").glob("shard-*.safetensors")).unlink()
    result = _again(config, out)
    assert result.cache["splits/train"] == "computed" and result.cache["splits/fresh"] == "reused"


@pytest.mark.parametrize("where", ["traces", "sweep", "splits/train", "splits/train/short"])
def test_a_users_file_in_a_stage_folder_is_refused_before_any_work(run_dir, where):
    config, out = run_dir
    notes = out / where / "important_notes.txt"
    notes.write_text("a week of notes\n")
    with pytest.raises(
        WorkbenchError, match=r"important_notes\.txt was not written by the workbench"
    ):
        _again(config, out, use_cache=False)
    assert notes.read_text() == "a week of notes\n"
    assert (out / "splits/train/generations.jsonl").is_file()  # nothing was deleted


def test_a_folder_the_user_made_is_refused_with_its_path(tmp_path, tiny_dir):
    out = tmp_path / "run"
    (out / "traces").mkdir(parents=True)
    (out / "traces" / "important_notes.txt").write_text("mine\n")
    code, _, err = run_cli("run", str(tmp_path / "missing.toml"), "--out", str(out))
    assert code == 2  # the config is read first
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(f'[model]\nname = "{tiny_dir}"\n[second_model]\nenabled = false\n')
    code, _, err = run_cli("run", str(cfg), "--out", str(out), "--no-progress")
    assert code == 2 and err.count("\n") == 1, err
    assert f"{out / 'traces'}" in err and "did not write" in err
    assert (out / "traces" / "important_notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in out.iterdir()) == ["traces"]  # refused before any work


def test_an_earlier_versions_stage_counts_as_owned(run_dir):
    """A stage folder without the marker but with key.json (an earlier version) is replaced."""
    config, out = run_dir
    (out / "traces" / MARKER).unlink()
    key = json.loads((out / "traces/key.json").read_text())
    key.pop("outputs")  # written before output hashes existed: recomputed once
    (out / "traces/key.json").write_text(json.dumps(key))
    result = _again(config, out)
    assert result.cache["traces"] == "computed"
    assert (out / "traces" / MARKER).is_file()
