"""Bad input: one-line errors naming the value and the fix, from the API and the CLI
(exit code 2), with nothing written to --out."""

import json
import re

import numpy as np
import pytest

from probes import falsify
from workbench.core.errors import WorkbenchError

FAST = {"n_boot": 50, "n_perm": 50, "n_control": 0}


@pytest.fixture
def good(make_planted):
    rng = np.random.default_rng(0)
    return make_planted(rng, 60, 0.5, d=5), make_planted(rng, 40, 0.5, d=5)


API_CASES = {
    "counts differ": (
        lambda X, y, Xf, yf: falsify(X, y[:-1], **FAST),
        r"train labels have 59 values but train features have 60 rows: pass labels for the same items",
    ),
    "single class": (
        lambda X, y, Xf, yf: falsify(X, y, fresh_X=Xf, fresh_y=np.zeros(len(yf)), **FAST),
        r"fresh labels have one class \(all 0, 40 items\): AUC is undefined; pass a set with both",
    ),
    "nan features": (
        lambda X, y, Xf, yf: falsify(
            np.where(np.arange(60)[:, None] % 20 == 3, np.nan, X), y, **FAST
        ),
        r"train features hold NaN or infinite values in 3 of 60 rows \(first: row 3\)",
    ),
    "inf fresh features": (
        lambda X, y, Xf, yf: falsify(
            X, y, fresh_X=np.where(Xf > 2.5, np.inf, Xf), fresh_y=yf, **FAST
        ),
        r"fresh features hold NaN or infinite values in \d+ of 40 rows",
    ),
    "widths differ": (
        lambda X, y, Xf, yf: falsify(X, y, fresh_X=Xf[:, :3], fresh_y=yf, **FAST),
        r"train features are 5 wide but fresh features are 3 wide: score both with features from the same",
    ),
    "too few for folds": (
        lambda X, y, Xf, yf: falsify(X, np.r_[np.ones(3), np.zeros(57)], **FAST),
        r"train labels have 3 items of class 1, fewer than the 5 CV folds: lower the folds to 3",
    ),
    "axis single class": (
        lambda X, y, Xf, yf: falsify(X, y, axes={"hedging": (np.ones(60), None)}, **FAST),
        r"axis 'hedging' train labels have one class \(all 1, 60 items\)",
    ),
    "non-binary labels": (
        lambda X, y, Xf, yf: falsify(X, y * 0.7, **FAST),
        r"train labels hold values other than 0/1 \(e.g. \[0.7\]\): binarise them",
    ),
    "fresh without labels": (
        lambda X, y, Xf, yf: falsify(X, y, fresh_X=Xf, **FAST),
        r"fresh_X and fresh_y go together",
    ),
    "too few shuffles": (
        lambda X, y, Xf, yf: falsify(X, y, **{**FAST, "n_perm": 19}),
        r"n_perm=19: .*cannot go below 0.05, so no AUC could beat chance; pass at least 20",
    ),
    "too few resamples": (
        lambda X, y, Xf, yf: falsify(X, y, **{**FAST, "n_boot": -5}),
        r"n_boot=-5: the AUC intervals need at least 10 bootstrap resamples",
    ),
    "negative control": (
        lambda X, y, Xf, yf: falsify(X, y, **{**FAST, "n_control": -1}),
        r"n_control=-1: pass 0",
    ),
    "C not positive": (
        lambda X, y, Xf, yf: falsify(X, y, Cs=(1.0, 0.0), **FAST),
        r"C=0.0: the inverse regularisation strength must be a positive finite number",
    ),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_api_errors(good, case):
    (X, y), (Xf, yf) = good
    call, message = API_CASES[case]
    with pytest.raises(WorkbenchError, match=message) as e:
        call(X, y, Xf, yf)
    assert "\n" not in str(e.value)


@pytest.fixture
def files(tmp_path, good):
    (X, y), (Xf, yf) = good
    d = tmp_path / "in"
    d.mkdir()
    np.savez(
        d / "train.npz",
        X=X,
        y=y,
        short=y[:-1],
        one=np.ones(60),
        few=np.r_[np.ones(3), np.zeros(57)],
    )
    np.savez(d / "fresh.npz", X=Xf, y=yf, zeros=np.zeros(40))
    np.savez(d / "narrow.npz", X=Xf[:, :3])
    np.savez(d / "nan.npz", X=np.where(np.arange(60)[:, None] % 20 == 3, np.nan, X))
    (d / "judge_train.json").write_text(
        json.dumps(
            {"items": [{"scores": {"acc": int(v) * 4 + 1, "inv": 5 - int(v) * 4}} for v in y]}
        )
    )
    (d / "judge_fresh.json").write_text(
        json.dumps(
            {"items": [{"scores": {"acc": int(v) * 4 + 1, "inv": 5 - int(v) * 4}} for v in yf]}
        )
    )
    return d


def cli_args(d, out, **over):
    args = {
        "--train": d / "train.npz",
        "--train-labels": f"{d / 'train.npz'}:y",
        "--fresh": d / "fresh.npz",
        "--fresh-labels": f"{d / 'fresh.npz'}:y",
        "--out": out,
        "--n-boot": 50,
        "--n-perm": 50,
        "--n-control": 0,
        **over,
    }
    flat = ["falsify"]
    for k, v in args.items():
        for item in v if isinstance(v, list) else [v]:
            flat += [k, str(item)]
    return flat


CLI_CASES = {
    "counts differ": ({"--train-labels": "{d}/train.npz:short"}, "train labels have 59 values but train features have 60 rows"),
    "single class": ({"--fresh-labels": "{d}/fresh.npz:zeros"}, r"fresh labels have one class \(all 0, 40 items\)"),
    "nan features": ({"--train": "{d}/nan.npz"}, "train features hold NaN or infinite values in 3 of 60 rows"),
    "widths differ": ({"--fresh": "{d}/narrow.npz"}, "train features are 5 wide but fresh features are 3 wide"),
    "unknown axis": ({"--axis": "hedging={d}/judge_train.json,{d}/judge_fresh.json"}, r"unknown axis 'hedging': .*judge_train.json holds acc"),
    "too few for folds": ({"--train-labels": "{d}/train.npz:few"}, "train labels have 3 items of class 1, fewer than the 5 CV folds"),
    "missing field": ({"--fresh-labels": "{d}/fresh.npz:labels"}, r"field 'labels' is not in .*fresh.npz \(it holds X, y, zeros\)"),
    "continuous labels": ({"--train-labels": "{d}/judge_train.json:scores.acc"}, "continuous values .* --threshold"),
    "bad axis syntax": ({"--axis": "hedging"}, "is not NAME=TRAIN_LABELS"),
    "unknown probe": ({"--probe": "svm"}, "--probe 'svm' is unknown: pass one of linear, mlp, mass-mean"),
    "C nan": ({"--C": "nan"}, "C=nan: the inverse regularisation strength must be a positive finite number"),
    "C negative": ({"--C": "-1"}, "C=-1.0: the inverse regularisation strength"),
    "no shuffles": ({"--n-perm": "0"}, "n_perm=0: .* pass at least 20"),
    "axis scores": ({"--axis": "acc={d}/judge_train.json"}, "continuous values .* binarise with --axis-threshold T"),
    "npz without X": ({"--train": "{d}/narrow.npz:Z"}, r"has no array 'Z' \(it holds X\): name the array with PATH:NAME"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_errors_exit_2_and_write_nothing(files, tmp_path, run_cli, case):
    over, message = CLI_CASES[case]
    over = {k: v.format(d=files) for k, v in over.items()}
    out = tmp_path / "out"
    code, err = run_cli(*cli_args(files, out, **over))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ")
    assert re.search(message, lines[-1]), lines[-1]
    assert not out.exists() or not any(out.iterdir())


def test_cli_runs_all_five_steps(files, tmp_path, run_cli, good):
    (X, y), (Xf, yf) = good
    rng = np.random.default_rng(3)
    np.savez(
        files / "layers_train.npz", X=np.stack([X + rng.normal(size=X.shape) * 0.1] * 4, axis=1)
    )
    np.savez(
        files / "layers_fresh.npz", X=np.stack([Xf + rng.normal(size=Xf.shape) * 0.1] * 4, axis=1)
    )
    np.savez(files / "m2_train.npz", X=X[:, ::-1])
    np.savez(files / "m2_fresh.npz", X=Xf[:, ::-1])
    out = tmp_path / "out"
    axis = f"acc={files}/judge_train.json,{files}/judge_fresh.json"
    code, err = run_cli(
        *cli_args(files, out, **{"--axis": axis, "--axis-threshold": 4}),
        "--axis", f"inv={files}/judge_train.json,{files}/judge_fresh.json",
        "--layers-train", files / "layers_train.npz", "--layers-fresh", files / "layers_fresh.npz",
        "--last-n", "2",
        "--second-model-train", files / "m2_train.npz", "--second-model-fresh", files / "m2_fresh.npz",
        "--no-figures",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((out / "report.json").read_text())
    assert [s["verdict"] for s in doc["steps"]] == ["pass"] * 5 + ["not run"]
    assert doc["trials"]["axis:acc"]["train"]["n_pos"] == int(y.sum())
    assert doc["trials"]["layers"]["features"] == "mean of last 2 of 4 layers"
    assert doc["config"]["n_last_layers"] == 2
    assert sorted(p.name for p in out.iterdir()) == [".workbench-owned", "report.json", "report.md"]
    # a run with figures, then one without: the old figures must not stay beside the new report
    code, err = run_cli(*cli_args(files, out))
    assert code == 0, err
    assert (out / "figures.html").exists()
    code, err = run_cli(*cli_args(files, out), "--no-figures")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [".workbench-owned", "report.json", "report.md"]


def test_cli_matches_store_features_to_labels_by_id(tmp_path, run_cli, good):
    """Features from a store (ids in the manifest), labels from JSONL files in another order:
    the report equals the one from labels in store order, so labels follow ids, not lines."""
    from workbench.core.store import StoreWriter

    def store(name, X):
        w = StoreWriter(
            tmp_path / name,
            meta={"sites": ["resid(-1,normed)"], "model": "toy"},
            items=[{"id": f"{name}-{i}"} for i in range(len(X))],
            run_key=["model"],
        )
        w.start()
        w.write_shard({"resid(-1,normed)": X.astype(np.float32)})
        return tmp_path / name

    def labels(name, y, order):
        path = tmp_path / f"{name}-{order[0]}.jsonl"
        path.write_text(
            "".join(json.dumps({"id": f"{name}-{i}", "ok": int(y[i])}) + "\n" for i in order)
        )
        return f"{path}:ok"

    (X, y), (Xf, yf) = good
    train, fresh = store("train", X), store("fresh", Xf)
    docs = []
    for step in (1, -1):
        out = tmp_path / f"out{step}"
        train_spec = labels("train", y, range(len(y))[::step])
        fresh_spec = labels("fresh", yf, range(len(yf))[::step])
        axis = f"ok={train_spec.removesuffix(':ok')},{fresh_spec.removesuffix(':ok')}"
        code, err = run_cli(
            "falsify", "--train", train, "--train-labels", train_spec,
            "--fresh", fresh, "--fresh-labels", fresh_spec, "--axis", axis,
            "--n-boot", "50", "--n-perm", "50", "--n-control", "0", "--no-figures", "--out", out,
        )  # fmt: skip
        assert code == 0, err
        doc = json.loads((out / "report.json").read_text())
        docs.append([(s["verdict"], s["summary"]) for s in doc["steps"]])
        docs[-1].append(doc["trials"]["axis:ok"]["verdict"])
    assert docs[0] == docs[1]
    assert docs[0][1][0] == "pass"  # the planted signal transfers only with aligned labels
    assert docs[0][-1] == "pass"  # the axis labels are aligned by id too
    assert docs[0][2][0] == "not run"  # one axis: step 3 is not run
