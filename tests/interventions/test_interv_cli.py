"""``workbench attribute`` and ``workbench temper`` end to end, and their input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.cli.app import main
from workbench.core.items import write_items
from workbench.core.store import StoreWriter
from workbench.labels.domains import make_split

SITES = ["head_in(2,last=3)", "head_in(-1,last=3)"]


def _run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, Path]:
    """A 40-item feature store (layers 2 and 11 of a 12-layer model) with head 11.1 planted,
    and a JSONL label file (correct, verbal)."""
    rng = np.random.default_rng(0)
    n = 40
    correct = np.arange(n) % 2
    verbal = np.where(np.arange(n) % 5 == 0, "hedge", "assert")
    x2 = rng.normal(size=(n, 3, 4, 8)).astype(np.float32)
    x11 = rng.normal(size=(n, 3, 4, 8)).astype(np.float32)
    x11[correct == 0, :, 1, 0] += 3.0  # louder when wrong
    x11[0, 0] = np.nan  # a short sequence
    writer = StoreWriter(
        tmp_path / "feats",
        meta={"sites": SITES, "model": {"n_layers": 12}},
        items=[{"id": str(i)} for i in range(n)],
        run_key=["sites"],
    )
    writer.start()
    writer.write_shard({SITES[0]: x2, SITES[1]: x11})
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            json.dumps({"id": i, "correct": int(c), "verbal": str(v)}) + "\n"
            for i, (c, v) in enumerate(zip(correct, verbal, strict=True))
        )
    )
    return tmp_path / "feats", labels


def test_attribute_writes_json_and_html(store, tmp_path):
    feats, labels = store
    out = tmp_path / "attr"
    argv = ["attribute", "--features", str(feats), "--correct", f"{labels}:correct", "--verbal", f"{labels}:verbal", "--folds", "3", "--top", "5", "--out", str(out)]  # fmt: skip
    assert _run(argv) == 0
    report = json.loads((out / "attribution.json").read_text())
    attr = report["attribution"]
    assert attr["cohorts"]["a"] == {"name": "cw", "n": 16} and attr["cohorts"]["b"]["name"] == "cr"
    assert attr["layers"] == [2, 11]  # the negative site layer numbered from the start
    assert attr["top"]["magnitude"][0][:2] == [11, 1]
    assert len(attr["top"]["directional"]) == 5
    assert report["head_probes"]["ranked"][0][:2] == [11, 1]
    assert report["meta"]["cohort_sizes"]["hw"] == 4
    html = (out / "attribution.html").read_text()
    assert html.count("fig-") >= 4 and "Per-head linear probes" in html


def test_attribute_matches_labels_by_id_in_any_order(store, tmp_path):
    feats, labels = store
    rows = labels.read_text().splitlines()
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("\n".join(rows[::-1]) + "\n")
    reports = []
    for i, path in enumerate((labels, shuffled)):
        out = tmp_path / f"attr{i}"
        argv = ["attribute", "--features", str(feats), "--correct", f"{path}:correct", "--verbal", f"{path}:verbal", "--no-probes", "--out", str(out)]  # fmt: skip
        assert _run(argv) == 0
        reports.append(json.loads((out / "attribution.json").read_text())["attribution"])
    assert reports[0]["top"] == reports[1]["top"]
    assert reports[0]["top"]["magnitude"][0][:2] == [11, 1]


def test_attribute_without_verbal_compares_wrong_and_right(store, tmp_path):
    feats, labels = store
    out = tmp_path / "attr2"
    argv = ["attribute", "--features", str(feats), "--correct", f"{labels}:correct", "--compare", "wrong:right", "--site", SITES[1], "--no-probes", "--out", str(out)]  # fmt: skip
    assert _run(argv) == 0
    report = json.loads((out / "attribution.json").read_text())
    assert report["attribution"]["layers"] == [11] and report["head_probes"] is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--compare", "cw:cr"],
            "--compare 'cw:cr' is not A:B with two different cohorts among right, wrong",
        ),
        (["--site", "head_in(5)"], "holds no site head_in(5)"),
        (["--compare", "wrong:wrong"], "two different cohorts"),
        (["--compare", "wrong:right", "--collinear-cos", "nan"], "collinear_cos=nan: a cosine"),
        (["--compare", "wrong:right", "--C", "-1"], "C=-1.0: the inverse regularisation"),
    ],
)
def test_attribute_bad_input_exits_2(store, tmp_path, capsys, extra, message):
    feats, labels = store
    out = tmp_path / "bad"
    assert (
        _run(
            [
                "attribute",
                "--features",
                str(feats),
                "--correct",
                f"{labels}:correct",
                *extra,
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_attribute_label_count_mismatch(store, tmp_path, capsys):
    feats, labels = store
    short = tmp_path / "short.jsonl"
    short.write_text("".join(labels.read_text().splitlines(keepends=True)[:30]))
    assert (
        _run(
            [
                "attribute",
                "--features",
                str(feats),
                "--correct",
                f"{short}:correct",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "has no label for feature item '30' (10 of 40 missing)" in capsys.readouterr().err
    bare = tmp_path / "bare.json"  # no ids: matched by order, so the count must agree
    bare.write_text(json.dumps([0, 1] * 15))
    argv = ["attribute", "--features", str(feats), "--correct", str(bare), "--out", str(tmp_path / "o")]  # fmt: skip
    assert _run(argv) == 2
    assert "--correct has 30 labels but" in capsys.readouterr().err


@pytest.fixture
def model_dir(tiny, tmp_path: Path) -> Path:
    lm = tiny("llama")
    path = tmp_path / "tiny-llama"
    lm.model.save_pretrained(path)
    lm.tokenizer.save_pretrained(path)
    return path


def test_temper_command_writes_sweep_report(model_dir, tmp_path):
    items = tmp_path / "items.jsonl"
    write_items(items, make_split("train", 2, seed=0))
    out = tmp_path / "temper"
    argv = ["temper", "--model", str(model_dir), "--items", str(items), "--head", "1.2", "--head", "2.0", "--lambda", "0.0", "--lambda", "1.0", "--seed", "0", "--seed", "1", "--max-new-tokens", "2", "--out", str(out)]  # fmt: skip
    assert _run(argv) == 0
    report = json.loads((out / "sweep.json").read_text())
    sweep = report["sweep"]
    assert sweep["values"] == [0.0, 1.0] and sweep["seeds"] == [0, 1]
    assert set(sweep["metrics"]) == {"asserts", "correct", "truncated", "n_tokens"}
    assert len(sweep["responses"]) == 8
    assert sweep["interventions"]["0.0"]["targets"] == [
        {"layer": 1, "head": 2, "factor": 0.0},
        {"layer": 2, "head": 0, "factor": 0.0},
    ]
    assert report["meta"]["at"] == "o_proj" and (out / "sweep.html").is_file()
    assert sweep["interventions"]["0.0"]["interventions"][0]["op"] == "scale"


def test_temper_command_takes_positions_and_mean_ablation(model_dir, tmp_path):
    items = tmp_path / "items.jsonl"
    write_items(items, make_split("train", 2, seed=0))
    out = tmp_path / "temper-mean"
    argv = ["temper", "--model", str(model_dir), "--items", str(items), "--head", "1.2", "--lambda", "0.0", "--lambda", "1.0", "--seed", "0", "--greedy", "--max-new-tokens", "2", "--positions", "last", "--ablation", "mean", "--out", str(out)]  # fmt: skip
    assert _run(argv) == 0
    report = json.loads((out / "sweep.json").read_text())
    values = report["sweep"]["interventions"]["0.0"]["interventions"]
    assert [v["op"] for v in values] == ["scale", "add"]
    assert all(v["positions"] == "last" for v in values)
    assert report["meta"]["ablation"] == "mean" and report["meta"]["positions"] == "last"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--head", "1.7", "--lambda", "0.5"],
            "head 7 is out of range for layer 1: valid heads are 0..3",
        ),
        (["--head", "1.2", "--lambda", "-1"], "--lambda: factor -1.0 must be finite and >= 0"),
        (["--head", "1.2", "--lambda", "nan"], "must be finite"),
        (["--head", "one.two", "--lambda", "1"], "head 'one.two' is not LAYER.HEAD"),
        (["--lambda", "1"], "nothing to scale: pass --head L.H"),
        (["--head", "1.2", "--lambda", "1", "--at", "k_proj"], "--at 'k_proj'"),
        (
            ["--head", "1.2", "--lambda", "1", "--positions", "[x]"],
            "positions '[x]' not understood",
        ),
        (["--head", "1.2", "--lambda", "1", "--ablation", "resample"], "--ablation 'resample'"),
    ],
)
def test_temper_bad_input_exits_2(model_dir, tmp_path, capsys, extra, message):
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": 1, "prompt": "Hi"}\n')
    out = tmp_path / "bad"
    assert (
        _run(
            ["temper", "--model", str(model_dir), "--items", str(items), *extra, "--out", str(out)]
        )
        == 2
    )
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last
    assert not out.exists()


def test_out_inside_a_file_is_refused_before_any_work(model_dir, tmp_path, capsys):
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": 1, "prompt": "Hi"}\n')
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    argv = ["temper", "--model", str(model_dir), "--items", str(items), "--head", "1.2",
            "--lambda", "1", "--out", str(blocker / "sub")]  # fmt: skip
    assert _run(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"is inside {blocker}, which is a file: pass a directory" in last
    assert _run(["run", str(tmp_path / "none.toml"), "--out", str(blocker)]) == 2
    assert "does not exist" in capsys.readouterr().err  # the config is read first
    demo = Path(__file__).resolve().parents[2] / "workbench" / "configs" / "demo.toml"
    assert _run(["run", str(demo), "--out", str(blocker)]) == 2
    assert f"--out {blocker} is a file: pass a directory" in capsys.readouterr().err
