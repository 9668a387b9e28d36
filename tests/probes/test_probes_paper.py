"""Acceptance: the paper's Arc 3 Step 5 numbers from its released SmolLM2-1.7B features.

Published: fresh AUC 0.5187 (C=1.0) and 0.5048 (C=0.1); best balanced asymmetry
-0.161 at threshold 0.06 and -0.188 at 0.16; gate failed; capability cliff
(positive rate 0.56 -> 0.047) with a degenerate asymmetry. The within-distribution
CV on the released features is at chance (AUC 0.524), so the taxonomy diagnoses
"no signal in training" (``cv_fail``) first and reports the collapse as context. The files are read
by path (skipped, with their source, when absent) and every number is also
computed here independently with plain sklearn.
"""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from probes import falsify
from probes.axes import load_axes
from probes.labels import load_features, load_labels

PUBLISHED = {1.0: (0.5187, -0.161, 0.06), 0.1: (0.5048, -0.188, 0.16)}
AXES = ["factual_accuracy", "hedging_appropriateness", "pedagogical_framing",
        "self_verification", "completeness"]  # fmt: skip


@pytest.fixture(scope="module")
def report(smollm):
    return falsify(
        smollm["X"], smollm["y"], fresh_X=smollm["Xf"], fresh_y=smollm["yf"], Cs=(1.0, 0.1)
    )


def independent_asymmetry(y, p):
    best = None
    for k in range(5, 96):
        a = p >= k / 100
        pc, pw = a[y == 1].mean(), a[y == 0].mean()
        if pc >= 0.70 and (best is None or pw - pc < best[0]):
            best = (pw - pc, k / 100)
    return best


def test_class_counts(smollm):
    assert (smollm["y"].sum(), smollm["y"].size) == (56, 100)
    assert (smollm["yf"].sum(), smollm["yf"].size) == (9, 193)


@pytest.mark.parametrize("C", [1.0, 0.1])
def test_published_numbers(report, smollm, C):
    auc, asym, threshold = PUBLISHED[C]
    run = next(r for r in report.trial("main").runs if r.params["C"] == C)
    t = run.transfer
    # independent: sklearn's own pipeline and roc_auc_score
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    p = ref.fit(smollm["X"], smollm["y"]).predict_proba(smollm["Xf"])[:, 1]
    assert roc_auc_score(smollm["yf"], p) == pytest.approx(auc, abs=5e-4)
    assert t.auc.auc == pytest.approx(roc_auc_score(smollm["yf"], p), abs=1e-9)
    assert round(t.auc.auc, 3) == round(auc, 3)
    ref_asym, ref_threshold = independent_asymmetry(smollm["yf"], p)
    assert round(ref_asym, 3) == asym and ref_threshold == threshold
    assert round(t.asymmetry.value, 3) == asym and t.asymmetry.threshold == threshold
    assert not t.gate.passed and not t.gate.auc_ok and t.gate.asymmetry_ok
    d = run.diagnosis
    assert d.verdict == "cv_fail"  # CV at chance: no handle in training comes first
    assert {"base_rate_collapse", "degenerate_asymmetry", "cv_not_passed"} <= set(d.flags)
    assert d.evidence.train_pos_rate == pytest.approx(0.56)
    assert d.evidence.fresh_pos_rate == pytest.approx(9 / 193)


def test_report_level_verdicts(report):
    assert report.step("fresh").verdict == "fail" and report.verdict == "fail"
    assert report.step("cv").verdict == "fail"
    cv = report.trial("main").best.cv
    assert round(cv.auc.auc, 3) == 0.524 and cv.auc.lo < 0.5  # at chance
    assert report.diagnosis.verdict == "cv_fail"
    assert {"base_rate_collapse", "degenerate_asymmetry"} <= set(report.diagnosis.flags)
    text = report.diagnosis.explanation
    assert text.startswith("No handle within the training distribution (CV AUC 0.524")
    assert "0.560 (56/100)" in text and "0.047 (9/193)" in text and "capability cliff" in text
    # chance is measured beside the AUC: the fresh AUC sits inside the shuffled-label range
    null = report.trial("main").best.transfer.null
    assert null.null_lo < 0.5187 < null.null_hi and null.p_above > 0.05


def test_label_files_read_through_probes_labels(artifacts, smollm):
    y = load_labels(f"{artifacts}/smollm_step16_features.npz:coverage", threshold=0.5)
    yf_labels = load_labels(f"{artifacts}/smollm_fresh_judged_gold.json:labels")
    yf_coverage = load_labels(f"{artifacts}/smollm_fresh_judged_gold.json:coverage>=0.5")
    np.testing.assert_array_equal(y, smollm["y"])
    np.testing.assert_array_equal(yf_labels, smollm["yf"])
    np.testing.assert_array_equal(yf_coverage, smollm["yf"])
    np.testing.assert_array_equal(
        load_features(f"{artifacts}/smollm_fresh_features.npz"), smollm["Xf"]
    )


def test_axis_sweep_on_the_gemma_judge_files(artifacts, smollm):
    """The per-axis machinery on real label files (judge "high" = score >= 4).

    No Gemma features are released, so the sweep runs on the SmolLM features of the
    same prompts: a check of the machinery and of the counts, not a scientific result.
    """
    train_items = json.loads((artifacts / "judge_v4_step16.json").read_text())["items"]
    fresh_items = json.loads((artifacts / "judge_v4_fresh.json").read_text())["items"]
    axes = load_axes(
        str(artifacts / "judge_v4_step16.json"), str(artifacts / "judge_v4_fresh.json"), threshold=4
    )
    r = falsify(
        smollm["X"], smollm["y"], fresh_X=smollm["Xf"], fresh_y=smollm["yf"],
        axes=axes, n_boot=200, n_perm=200, n_control=0,
    )  # fmt: skip
    assert r.axes == tuple(AXES)
    for name in AXES:
        trial = r.axis(name)
        n_train = sum(1 for it in train_items if it["scores"].get(name, 0) >= 4)
        n_fresh = sum(1 for it in fresh_items if it["scores"].get(name, 0) >= 4)
        assert trial.train.n_pos == n_train and trial.fresh.n_pos == n_fresh
        assert (trial.train.n_labelled, trial.fresh.n_labelled) == (99, 192)
        assert trial.best.transfer is not None
    assert r.step("axes").verdict in ("pass", "fail")


def test_cli_reproduces_the_paper(artifacts, tmp_path, run_cli):
    out = tmp_path / "smollm"
    code, err = run_cli(
        "falsify",
        "--train", artifacts / "smollm_step16_features.npz",
        "--train-labels", f"{artifacts / 'smollm_step16_features.npz'}:coverage",
        "--fresh", artifacts / "smollm_fresh_features.npz",
        "--fresh-labels", f"{artifacts / 'smollm_fresh_judged_gold.json'}:labels",
        "--threshold", "0.5", "--C", "1.0", "--C", "0.1", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((out / "report.json").read_text())
    runs = {r["params"]["C"]: r for r in doc["trials"]["main"]["runs"]}
    for C, (auc, asym, threshold) in PUBLISHED.items():
        t = runs[C]["transfer"]
        assert round(t["auc"]["auc"], 3) == round(auc, 3)
        assert round(t["asymmetry"]["value"], 3) == asym
        assert t["asymmetry"]["threshold"] == threshold
        assert t["gate"]["passed"] is False
    assert doc["diagnosis"]["verdict"] == "cv_fail"
    assert {"base_rate_collapse", "degenerate_asymmetry"} <= set(doc["diagnosis"]["flags"])
    names = sorted(p.name for p in out.iterdir())
    assert names == [".workbench-owned", "figures.html", "report.json", "report.md"]
    page = (out / "figures.html").read_text()
    for fig in ("auc_collapse", "disposition", "pca", "roc"):
        assert f'id="fig-{fig}"' in page, fig
    assert page.count("plotly.js v") == 1  # the library is embedded once for the page
    assert "Diagnosis: cv_fail" in (out / "report.md").read_text()
    assert "diagnosis: cv_fail (base_rate_collapse" in err
