"""The CLI of the deciding analyses: falsify's confound options, disposition, diagnose."""

import json
import re
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from workbench.cli.app import main
from workbench.core.store import StoreWriter


def invoke(*args):
    """``workbench ARGS`` through the real entry point; (exit code, stdout, stderr)."""
    runner = CliRunner()
    with runner.isolation() as streams:
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = int(e.code or 0)
        sys.stdout.flush(), sys.stderr.flush()  # the isolated streams are buffered wrappers
        out, err = streams[0].getvalue().decode(), streams[1].getvalue().decode()
    return code, out, err


def store(tmp_path, name, X):
    w = StoreWriter(
        tmp_path / name,
        meta={"sites": ["resid(-1,normed)"], "model": "toy"},
        items=[{"id": f"{name}-{i}"} for i in range(len(X))],
        run_key=["model"],
    )
    w.start()
    w.write_shard({"resid(-1,normed)": X.astype(np.float32)})
    return tmp_path / name


def records(path, name, fields, order):
    """JSONL records with ids, in ``order`` (not the store's)."""
    lines = [
        json.dumps({"id": f"{name}-{i}", **{k: v[i] for k, v in fields.items()}}) for i in order
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def world(tmp_path):
    """Labels driven by a length the features encode; a family unrelated to everything."""
    rng = np.random.default_rng(0)
    n = 300
    z = rng.normal(size=n)
    y = (z + 0.3 * rng.normal(size=n) > 0).astype(int)
    X = rng.normal(size=(n, 10))
    X[:, 0] += 2 * z
    fam = rng.integers(0, 3, n)
    h = n // 2
    sets = {}
    for name, sl in (("train", slice(0, h)), ("fresh", slice(h, n))):
        fields = {"ok": y[sl].tolist(), "length": z[sl].round(6).tolist(),
                  "family": fam[sl].tolist(), "flat": [1.0] * h}  # fmt: skip
        order = list(range(h))[::-1]  # reversed: matching must go by id
        sets[name] = (
            store(tmp_path, name, X[sl]),
            records(tmp_path / f"{name}.jsonl", name, fields, order),
        )
    return sets


def falsify_args(world, out, *extra):
    (tr, trl), (fr, frl) = world["train"], world["fresh"]
    return ("falsify", "--train", tr, "--train-labels", f"{trl}:ok", "--fresh", fr,
            "--fresh-labels", f"{frl}:ok", "--n-boot", 100, "--n-perm", 100, "--n-control", 0,
            "--no-figures", "--no-erase", "--out", out, *extra)  # fmt: skip


def test_falsify_confounds_matched_by_id(world, tmp_path):
    trl, frl = world["train"][1], world["fresh"][1]
    code, _, err = invoke(*falsify_args(
        world, tmp_path / "out",
        "--train-confound", f"length={trl}:length", "--fresh-confound", f"length={frl}:length",
        "--train-confound", f"family={trl}:family:cat", "--fresh-confound", f"family={frl}:family:cat",
    ))  # fmt: skip
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["steps"][5]["verdict"] == "explained by length" and doc["verdict"] == "fail"
    assert doc["config"]["confounds"] == {"length": "num", "family": "cat"}
    assert doc["confounds"]["results"]["family"]["verdict"] == "survives"
    assert set(doc["confounds"]["results"]) == {"length", "family", "length+family"}
    assert "step 6 Beyond named confounds: explained by length" in err
    assert "confounds: Explained by length" in err


def test_degenerate_confound_exits_0(world, tmp_path):
    trl, frl = world["train"][1], world["fresh"][1]
    code, _, err = invoke(*falsify_args(
        world, tmp_path / "out",
        "--train-confound", f"label={trl}:ok:cat", "--fresh-confound", f"label={frl}:ok:cat",
    ))  # fmt: skip
    assert code == 0, err
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["steps"][5]["verdict"] == "degenerate confound" and doc["verdict"] == "incomplete"


def _gap_file(tmp_path, world):
    src = world["fresh"][1].read_text().splitlines()
    gap = tmp_path / "gap.jsonl"
    gap.write_text("\n".join(src[:-1]) + "\n")  # one fresh item has no record
    return gap


def _null_file(tmp_path, world):
    recs = [json.loads(line) for line in world["train"][1].read_text().splitlines()]
    recs[3]["length"] = None
    path = tmp_path / "null.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


BAD = {
    "missing for some ids": (
        lambda w, t: ("--train-confound", f"length={w['train'][1]}:length",
                      "--fresh-confound", f"length={_gap_file(t, w)}:length"),
        r"gap.jsonl has no value of confound 'length' for item 'fresh-0' \(1 of 150 missing\)"),
    "constant": (
        lambda w, t: ("--train-confound", f"flat={w['train'][1]}:flat",
                      "--fresh-confound", f"flat={w['fresh'][1]}:flat"),
        r"confound 'flat' is constant on the training set \(all 1.0\)"),
    "NaN": (
        lambda w, t: ("--train-confound", f"length={_null_file(t, w)}:length",
                      "--fresh-confound", f"length={w['fresh'][1]}:length"),
        r"confound 'length' has NaN or no value for 1 of 150 train items"),
    "fresh without train": (
        lambda w, t: ("--fresh-confound", f"length={w['fresh'][1]}:length",),
        "--fresh-confound length has no --train-confound length"),
    "train without fresh": (
        lambda w, t: ("--train-confound", f"length={w['train'][1]}:length",),
        "--train-confound length has no --fresh-confound length"),
    "unknown suffix": (
        lambda w, t: ("--train-confound", f"length={w['train'][1]}:length:int",
                      "--fresh-confound", f"length={w['fresh'][1]}:length:int"),
        "unknown type suffix 'int' in .*: end the spec with :cat .* or :num"),
    "not NAME=SPEC": (
        lambda w, t: ("--train-confound", "length"),
        "--train-confound 'length' is not NAME=SPEC"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_confound_input_exits_2_with_one_line(world, tmp_path, case):
    extra, message = BAD[case]
    out = tmp_path / "out"
    code, _, err = invoke(*falsify_args(world, out, *extra(world, tmp_path)))
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and err.strip().endswith(lines[0].strip()), err
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()  # nothing written


def test_disposition_on_the_paper_gemma_file(artifacts, tmp_path):
    spec = artifacts / "judge_v4_step16.json"
    code, out, err = invoke("disposition", "--correct", f"{spec}:correct",
                            "--verbal", f"{spec}:verbal", "--out", tmp_path / "d.json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    counts = [
        doc[k] for k in ("confident_right", "hedged_right", "confident_wrong", "hedged_wrong")
    ]
    assert counts == [53, 5, 38, 4]
    assert round(doc["assertion_asymmetry"], 3) == -0.009 and doc["assertion_rate"] == 0.91
    assert doc["asymmetry_ci"]["lo"] < -0.009 < doc["asymmetry_ci"]["hi"]
    assert json.loads((tmp_path / "d.json").read_text()) == doc
    assert "53 confident-right" in err and "91% asserted" in err


def test_disposition_matches_verbal_by_id(tmp_path):
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    a.write_text(json.dumps({"items": [{"i": k, "c": k % 2} for k in range(6)]}))
    b.write_text(json.dumps({"items": [{"i": k, "v": "assert" if k % 2 else "hedge"}
                                       for k in reversed(range(6))]}))  # fmt: skip
    code, out, err = invoke(
        "disposition", "--correct", f"{a}:c", "--verbal", f"{b}:v", "--n-boot", 0
    )
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["confident_right"], doc["hedged_wrong"], doc["assertion_asymmetry"]) == (3, 3, -1.0)


def test_diagnose_from_numbers_and_from_scores(artifacts, tmp_path):
    tr, fr = artifacts / "judge_v4_step16.json", artifacts / "v1_full_fresh_judged_gold.json"
    code, out, err = invoke("diagnose", "--train-labels", f"{tr}:correct",
                            "--fresh-labels", f"{fr}:coverage>=0.5", "--fresh-auc", 0.51)  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == "single_output_distribution"
    assert doc["fresh_values"]["n"] == 193 and 0 < doc["fresh_values"]["mean"] < 1
    scores = tmp_path / "scores.json"
    rng = np.random.default_rng(0)
    scores.write_text(json.dumps({"p": rng.random(193).tolist()}))
    code, out, err = invoke("diagnose", "--train-labels", f"{tr}:correct",
                            "--fresh-labels", f"{fr}:labels", "--fresh-scores", f"{scores}:p",
                            "--cv-auc", 0.52, "--n-boot", 100)  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == "cv_fail" and doc["evidence"]["fresh_auc"]["n_boot"] == 100
    code, _, err = invoke(
        "diagnose", "--train-labels", f"{tr}:correct", "--fresh-labels", f"{fr}:labels"
    )
    assert code == 2 and "needs the fresh AUC" in err
