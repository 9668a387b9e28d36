"""The study TOML: defaults are the demo, bad keys and values are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from workbench.core.errors import WorkbenchError
from workbench.study.config import StudyConfig, demo_config_path, load_config


def test_demo_toml_spells_out_every_default():
    data = tomllib.loads(demo_config_path().read_text())
    assert load_config() == StudyConfig()
    # every key of every section is written in the file, so the file documents the defaults
    assert {k: sorted(v) for k, v in data.items()} == {
        k: sorted(v) for k, v in StudyConfig().to_json().items()
    }


def test_partial_config_keeps_other_defaults(tmp_path: Path):
    path = tmp_path / "small.toml"
    path.write_text('[items]\ntrain = 40\n[probe]\nCs = [1]\naxes = ["correct"]\n')
    cfg = load_config(path)
    assert cfg.items.train == 40 and cfg.items.fresh == StudyConfig().items.fresh
    assert cfg.probe.Cs == (1.0,) and cfg.probe.axes == ("correct",)
    assert cfg.to_json()["probe"]["Cs"] == [1.0]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"modle": {}}, "unknown section [modle]"),
        ({"model": {"nmae": "x"}}, "unknown key 'nmae'"),
        ({"items": {"train": "many"}}, "train = 'many' is not a int"),
        ({"generation": {"short_max_new_tokens": 80}}, "short_max_new_tokens = 80"),
        ({"probe": {"axes": ["vibes"]}}, "axes has 'vibes'"),
        ({"probe": {"n_perm": 10}}, "config [probe]: n_perm=10: "),
        ({"probe": {"folds": 1}}, "config [probe]: folds=1: stratified CV needs at least 2"),
        ({"probe": {"Cs": [float("nan")]}}, "pass positive values"),
        ({"second_model": {"responses": "theirs"}}, "use 'shared' or 'own'"),
        ({"tempering": {"lambdas": [0.0, 0.5]}}, "include 1.0"),
        ({"tempering": {"seeds": [0, 1]}}, "3 or more seeds"),
        ({"tempering": {"lambdas": [-0.5, 1.0]}}, "config [tempering]: lambdas has -0.5"),
        ({"tempering": {"lambdas": [float("nan"), 1.0]}}, "lambdas has nan"),
        ({"tempering": {"n_items": 0}}, "n_items and max_new_tokens must be >= 1"),
        ({"tempering": {"temperature": 0.0}}, "the sweep samples"),
        ({"tempering": {"top_p": 2.0}}, "top_p = 2.0"),
        ({"sidecar": {"hedge_prefix": " "}}, "config [sidecar]: hedge_prefix is empty"),
        ({"traces": {"n_examples": -1}}, "n_examples = -1"),
        ({"second_model": {"max_new_tokens": 0}}, "config [second_model]"),
        ({"model": {"prompt_template": "Q:"}}, "must contain {prompt}"),
        ({"attribution": {"cohort_a": "xx"}}, "cohort 'xx'"),
        ({"probe": {"depth_n_null": 10}}, "config [probe]: depth_n_null = 10: use 0"),
        ({"probe": {"head_n_null": 5}}, "head_n_null = 5"),
        ({"attribution": {"n_null": 3}}, "config [attribution]: n_null = 3"),
        ({"hedged": {"instruction": " "}}, "config [hedged]: instruction is empty"),
        ({"hedged": {"splits": ["train"]}}, "include train and fresh"),
        ({"hedged": {"splits": ["train", "fresh", "x"]}}, "splits has 'x'"),
        ({"controls": {"seed": -1}}, "config [controls]: seed = -1"),
    ],
)
def test_bad_config_names_the_key_and_the_fix(data, needle):
    with pytest.raises(WorkbenchError) as e:
        StudyConfig.from_dict(data)
    assert needle in str(e.value)


def test_missing_and_malformed_files(tmp_path: Path):
    with pytest.raises(WorkbenchError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[items\ntrain = 3")
    with pytest.raises(WorkbenchError, match="not valid TOML"):
        load_config(bad)


def test_replace_and_section_json():
    cfg = StudyConfig().replace("run", threads=1)
    assert cfg.run.threads == 1 and cfg.section("run")["threads"] == 1
    with pytest.raises(WorkbenchError, match="threads"):
        StudyConfig().replace("run", threads=-1)
