"""The study with ``backend = "nnsight"`` gives the hf study's verdicts and numbers.

Tiny random-init models (a Llama under study, a Gemma 3 as the second model); the
nnsight run generates and captures through nnsight (greedy decoding there, then a
second nnsight pass over the generated ids, since fused capture is hf-only).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from workbench.core.errors import WorkbenchError
from workbench.core.store import FeatureStore
from workbench.study.config import StudyConfig
from workbench.study.runner import run_study

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("nnsight") is None, reason="nnsight is not installed"
)


def half_right(item, response) -> bool:
    return int(hashlib.sha256(item.id.encode()).hexdigest(), 16) % 2 == 0


def _config(model: Path, second: Path, backend: str) -> StudyConfig:
    return StudyConfig.from_dict({
        "run": {"threads": 1},
        "model": {"name": str(model), "batch_size": 8, "backend": backend},
        "items": {"train": 24, "fresh": 20, "fresh_hard": 0},
        "generation": {"max_new_tokens": 8, "short_max_new_tokens": 4},
        "capture": {"pooled_last_n": 2, "depth_curve": False},
        "probe": {"folds": 3, "n_boot": 50, "n_perm": 50, "n_control": 1, "axes": ["correct"]},
        "second_model": {"name": str(second), "backend": backend},
        "attribution": {"min_cohort": 3},
        "tempering": {"n_items": 4, "max_new_tokens": 4, "lambdas": [0.0, 1.0]},
        "traces": {"n_examples": 1},
    })  # fmt: skip


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory, tiny) -> Path:
    path = tmp_path_factory.mktemp("tiny-gemma3")
    lm = tiny("gemma3")
    lm.model.save_pretrained(path)
    lm.tokenizer.save_pretrained(path)
    return path


def test_nnsight_study_equals_hf(tmp_path, tiny_dir, gemma_dir, monkeypatch):
    from workbench.model.backends.nnsight_backend import NNsightBackend

    passes: list[int] = []
    real = NNsightBackend._forward

    def counted(self, batch, reader, want_logits):
        passes.append(batch.input_ids.shape[0])
        return real(self, batch, reader, want_logits)

    monkeypatch.setattr(NNsightBackend, "_forward", counted)
    reports, rows = {}, {}
    for backend in ("hf", "nnsight"):
        config = _config(tiny_dir, gemma_dir, backend)
        run_study(config, tmp_path / backend, checker=half_right, progress=False)
        reports[backend] = json.loads((tmp_path / backend / "report.json").read_text())
        rows[backend] = sum(passes)
    # nnsight read every split of both models (the first model's second pass over its
    # 44 answers, the second model's 40 shared answers); hf never went through it
    assert rows["hf"] == 0 and rows["nnsight"] >= 44 + 40
    hf, nn = reports["hf"], reports["nnsight"]
    assert nn["config"]["model"]["backend"] == "nnsight"
    assert [(s["name"], s["verdict"]) for s in nn["steps"]] == [
        (s["name"], s["verdict"]) for s in hf["steps"]
    ]
    assert nn["verdict"] == hf["verdict"]
    assert [s["plain"] for s in nn["steps"]] == [s["plain"] for s in hf["steps"]]  # the numbers
    for split in ("train", "fresh"):
        a = FeatureStore(tmp_path / "hf" / "splits" / split / "features")
        b = FeatureStore(tmp_path / "nnsight" / "splits" / split / "features")
        for site in a.sites:
            np.testing.assert_allclose(b.load(site), a.load(site), atol=1e-4, err_msg=site)
        gens = [
            (tmp_path / name / "splits" / split / "generations.jsonl").read_text()
            for name in ("hf", "nnsight")
        ]
        assert gens[0] == gens[1]


def test_bad_placement_in_a_config_is_one_line():
    cases = {
        ("model", "device", "cuda:3"): r"config \[model\]: device 'cuda:3' requested but CUDA",
        ("model", "backend", "pyvene"): r"config \[model\]: unknown backend 'pyvene'",
        ("second_model", "device_map", '{"lm_head": 2}'): r"config \[second_model\]: device map",
        ("second_model", "max_memory", "cpu=8GiB"): r"max memory caps the devices",
        ("model", "dtype", "int4"): r"config \[model\]: unknown dtype 'int4'",
    }
    for (section, key, value), pattern in cases.items():
        with pytest.raises(WorkbenchError, match=pattern):
            StudyConfig.from_dict({section: {key: value}})
    off = StudyConfig.from_dict({"second_model": {"enabled": False, "device": "cuda:3"}})
    assert not off.second_model.enabled  # a disabled second model is never loaded
