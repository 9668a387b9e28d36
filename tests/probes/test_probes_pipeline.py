"""The five-step pipeline: steps, escape hatches, selection by CV, the JSON and Markdown."""

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from probes import LinearProbe, MassMeanProbe, MLPProbe, cross_validate, falsify
from probes.steps import ESCAPE_HATCHES
from workbench.core.errors import WorkbenchError

FAST = {"n_boot": 200, "n_perm": 200, "n_control": 2}


@pytest.fixture
def sets(make_planted):
    rng = np.random.default_rng(0)
    return make_planted(rng, 150, 0.5), make_planted(rng, 150, 0.5)


def test_all_five_steps(sets):
    (X, y), (Xf, yf) = sets
    rng = np.random.default_rng(1)
    L = np.stack([X + rng.normal(scale=0.1, size=X.shape) for _ in range(6)], axis=1)
    Lf = np.stack([Xf + rng.normal(scale=0.1, size=Xf.shape) for _ in range(6)], axis=1)
    r = falsify(
        X, y, fresh_X=Xf, fresh_y=yf,
        axes={"same": (y, yf), "noise": (rng.integers(0, 2, 150), rng.integers(0, 2, 150))},
        layers=(L, Lf), n_last_layers=3,
        second_model=(X[:, ::-1] * 2, Xf[:, ::-1] * 2),
        Cs=(1.0, 0.1), **FAST,
    )  # fmt: skip
    assert [s.verdict for s in r.steps] == ["pass"] * 5 + ["not run"]
    assert r.verdict == "pass"  # no confounds named: step 6 is not run and does not block
    assert [s.name for s in r.steps] == list(ESCAPE_HATCHES)
    for s in r.steps:
        assert s.escape_hatch == ESCAPE_HATCHES[s.name] and s.summary
    assert r.axes == ("same", "noise")
    assert r.axis("same").verdict == "pass" and r.axis("noise").verdict == "fail"
    assert "1 of 2 axes hold (same)" in r.step("axes").summary
    with pytest.raises(WorkbenchError, match="unknown axis 'other': this report swept same, noise"):
        r.axis("other")
    # step 4 pooled the last 3 of 6 layers
    layers = r.trial("layers")
    assert layers.features == "mean of last 3 of 6 layers" and layers.train.width == X.shape[1]


def test_steps_without_inputs_are_not_run(sets):
    (X, y), _ = sets
    r = falsify(X, y, **FAST)
    assert [s.verdict for s in r.steps] == ["pass"] + ["not run"] * 5
    assert r.verdict == "incomplete" and r.diagnosis is None
    assert r.trial("main").best.transfer is None


def test_cv_matches_an_independent_sklearn_loop(sets):
    (X, y), _ = sets
    cv = cross_validate(LinearProbe(C=0.5), X, y, folds=4, seed=3, n_boot=0, n_control=0)
    oof = np.empty(len(y))
    for tr, te in StratifiedKFold(4, shuffle=True, random_state=3).split(X, y):
        oof[te] = clone(LinearProbe(C=0.5)).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    assert cv.auc.auc == pytest.approx(roc_auc_score(y, oof))
    np.testing.assert_allclose(cv.scores, oof)


def test_setting_is_selected_by_cv_never_by_fresh(sets):
    (X, y), (Xf, yf) = sets
    r = falsify(X, y, fresh_X=Xf, fresh_y=yf, Cs=(1.0, 0.001, 0.1), **FAST)
    main = r.trial("main")
    cv_aucs = [run.cv.auc.auc for run in main.runs]
    assert main.selected == int(np.argmax(cv_aucs))
    assert [run.label for run in main.runs] == ["C=1", "C=0.001", "C=0.1"]
    assert r.diagnosis == main.best.diagnosis
    # chance beside every AUC: shuffled labels for every run, the refit control for the chosen one
    assert all(run.cv.null is not None and run.transfer.null is not None for run in main.runs)
    assert [run.cv.control is not None for run in main.runs] == [
        i == main.selected for i in range(3)
    ]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("probe", [MassMeanProbe(), MLPProbe(hidden=(16,), max_iter=60)])
def test_other_probes_run_the_pipeline(sets, probe):
    (X, y), (Xf, yf) = sets
    r = falsify(X, y, fresh_X=Xf, fresh_y=yf, probe=probe, n_boot=100, n_perm=100, n_control=0)
    assert r.trial("main").runs[0].label == type(probe).__name__
    assert r.config["probe"] == type(probe).__name__ and r.config["Cs"] is None
    with pytest.raises(WorkbenchError, match="has no C parameter"):
        falsify(X, y, probe=probe, Cs=(0.1,), **FAST)


def test_unlabelled_items_are_left_out_and_counted(sets):
    (X, y), (Xf, yf) = sets
    y = y.astype(float)
    y[:3] = np.nan
    r = falsify(X, y, fresh_X=Xf, fresh_y=yf, **FAST)
    train = r.trial("main").train
    assert (train.n, train.n_labelled) == (150, 147)
    assert len(r.trial("main").best.cv.scores) == 147


def test_json_has_the_documented_keys(sets):
    (X, y), (Xf, yf) = sets
    r = falsify(X, y, fresh_X=Xf, fresh_y=yf, axes={"a": (y, yf)}, **FAST)
    doc = json.loads(json.dumps(r.to_json()))  # plain JSON types only
    assert set(doc) == {
        "schema", "verdict", "gate", "config", "steps", "trials", "diagnosis", "confounds"
    }  # fmt: skip
    assert doc["confounds"] is None and doc["steps"][5]["verdict"] == "not run"
    assert doc["schema"] == "probes.falsification/1"
    assert set(doc["steps"][0]) == {
        "step",
        "name",
        "title",
        "verdict",
        "escape_hatch",
        "summary",
        "trials",
    }
    main = doc["trials"]["main"]
    assert set(main) == {
        "name",
        "features",
        "criterion",
        "train",
        "fresh",
        "selected",
        "verdict",
        "runs",
    }
    run = main["runs"][0]
    assert set(run) == {
        "label",
        "params",
        "cv_passed",
        "transfer_passed",
        "cv",
        "transfer",
        "diagnosis",
    }
    assert set(run["transfer"]) == {
        "auc", "null", "asymmetry", "gate", "disposition", "assert_threshold", "scores", "labels"
    }  # fmt: skip
    assert set(run["cv"]["auc"]) >= {"auc", "lo", "hi", "n_pos", "n_neg"}
    assert set(run["cv"]) == {
        "auc", "fold_aucs", "control", "null", "selectivity", "folds", "scores", "labels"
    }  # fmt: skip
    assert set(doc["diagnosis"]) == {"verdict", "flags", "explanation", "evidence"}
    assert "axis:a" in doc["trials"]
    md = r.to_markdown()
    assert md.startswith("# Falsification report") and "| 3. Every label axis | not run |" in md


def test_a_single_testable_axis_is_not_run_never_pass(sets):
    """One axis (here the main label again) would repeat step 2: step 3 is not run, with
    the reason, and the trial is still reported as context."""
    (X, y), (Xf, yf) = sets
    r = falsify(X, y, fresh_X=Xf, fresh_y=yf, axes={"correct": (y, yf)}, **FAST)
    assert r.axis("correct").verdict == "pass"  # the axis itself transfers
    step = r.step("axes")
    assert step.verdict == "not run" and step.trials == ("axis:correct",)
    assert "Only one testable axis (correct" in step.summary
    assert r.verdict == "incomplete"
