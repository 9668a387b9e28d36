"""Label and feature files: every supported format, nested fields, thresholds, errors."""

import json

import numpy as np
import pytest

from probes.axes import load_axes, load_axis
from probes.labels import label_fields, load_features, load_labels
from workbench.core.errors import WorkbenchError
from workbench.core.store import StoreWriter


@pytest.fixture
def files(tmp_path):
    cov = [0.2, 0.6, 0.5, None, 1.0]
    np.savez(
        tmp_path / "l.npz",
        coverage=np.array([0.2, 0.6, 0.5, 0.0, 1.0]),
        y=np.array([0, 1, 1, 0, 1]),
    )
    (tmp_path / "list.json").write_text(json.dumps([0, 1, 1, 0, 1]))
    (tmp_path / "cols.json").write_text(json.dumps({"coverage": cov, "labels": [0, 1, 1, 0, 1]}))
    items = [
        {"coverage": c, "scores": {"acc": s}} for c, s in zip(cov, [1, 4, 5, 3, 4], strict=True)
    ]
    (tmp_path / "items.json").write_text(json.dumps({"params": {}, "items": items}))
    (tmp_path / "l.jsonl").write_text("\n".join(json.dumps(it) for it in items) + "\n")
    (tmp_path / "l.csv").write_text(
        "id,coverage,ok\na,0.2,false\nb,0.6,true\nc,0.5,true\nd,,false\ne,1.0,true\n"
    )
    return tmp_path


def as_list(a):
    return [None if np.isnan(v) else v for v in a]


def test_every_format(files):
    expected = [0.0, 1.0, 1.0, None, 1.0]
    assert as_list(load_labels(f"{files}/l.npz:coverage", threshold=0.5)) == [0, 1, 1, 0, 1]
    assert load_labels(f"{files}/l.npz").tolist() == [0, 1, 1, 0, 1]  # the 'y' array
    assert load_labels(f"{files}/list.json").tolist() == [0, 1, 1, 0, 1]
    assert as_list(load_labels(f"{files}/cols.json:coverage>=0.5")) == expected
    assert load_labels(f"{files}/cols.json").tolist() == [0, 1, 1, 0, 1]  # the 'labels' key
    assert as_list(load_labels(f"{files}/items.json:coverage", threshold=0.5)) == expected
    assert as_list(load_labels(f"{files}/l.jsonl:coverage>=0.5")) == expected
    assert as_list(load_labels(f"{files}/l.csv:coverage>=0.5")) == expected
    assert load_labels(f"{files}/l.csv:ok").tolist() == [0, 1, 1, 0, 1]


def test_nested_fields_and_spec_threshold_wins(files):
    assert load_labels(f"{files}/items.json:scores.acc>=4", threshold=0.5).tolist() == [
        0,
        1,
        1,
        0,
        1,
    ]
    assert load_axis(f"{files}/items.json", "acc", threshold=4).tolist() == [0, 1, 1, 0, 1]
    assert "scores.acc" in label_fields(files / "items.json")


def test_errors(files):
    with pytest.raises(
        WorkbenchError, match=r"field 'cov' is not in .*cols.json \(it holds coverage, labels\)"
    ):
        load_labels(f"{files}/cols.json:cov")
    with pytest.raises(WorkbenchError, match="field 'nope' is not in .*items.json"):
        load_labels(f"{files}/items.json:nope")
    with pytest.raises(WorkbenchError, match="continuous values .* --threshold"):
        load_labels(f"{files}/l.csv:coverage")
    with pytest.raises(WorkbenchError, match="not a number"):
        load_labels(f"{files}/l.csv:id")
    with pytest.raises(WorkbenchError, match="does not exist"):
        load_labels(f"{files}/absent.json")
    with pytest.raises(WorkbenchError, match="suffix '.txt'"):
        (files / "l.txt").write_text("1\n")
        load_labels(f"{files}/l.txt")
    with pytest.raises(WorkbenchError, match="unknown axis 'hedging': .*holds acc"):
        load_axis(f"{files}/items.json", "hedging")
    with pytest.raises(WorkbenchError, match="name one with PATH:FIELD"):
        load_labels(f"{files}/items.json")


def test_pickled_npz_is_refused(tmp_path):
    np.savez(tmp_path / "bad.npz", y=np.array([{"a": 1}], dtype=object))
    with pytest.raises(WorkbenchError, match="pickled"):
        load_labels(f"{tmp_path}/bad.npz:y")


def test_features_from_npz_and_store(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.savez(tmp_path / "f.npz", X=X, other=X * 2)
    np.testing.assert_array_equal(load_features(f"{tmp_path}/f.npz"), X)
    np.testing.assert_array_equal(load_features(f"{tmp_path}/f.npz:other"), X * 2)
    w = StoreWriter(
        tmp_path / "store",
        meta={"sites": ["resid(-1,normed)"], "model": "toy"},
        items=[{"id": str(i)} for i in range(4)],
        run_key=["model"],
    )
    w.start()
    w.write_shard({"resid(-1,normed)": X[:2]})
    w.write_shard({"resid(-1,normed)": X[2:]})
    np.testing.assert_array_equal(load_features(str(tmp_path / "store")), X)
    np.testing.assert_array_equal(load_features(f"{tmp_path / 'store'}:resid(-1,normed)"), X)
    (tmp_path / "f.json").write_text("[]")
    with pytest.raises(WorkbenchError, match="neither a feature-store directory nor an .npz"):
        load_features(f"{tmp_path}/f.json")


def test_gemma_judge_axes_match_the_files(artifacts):
    """Positive counts per axis ("high" = score >= 4), computed here with plain json + sum."""
    train = json.loads((artifacts / "judge_v4_step16.json").read_text())["items"]
    fresh = json.loads((artifacts / "judge_v4_fresh.json").read_text())["items"]
    names = ["factual_accuracy", "hedging_appropriateness", "pedagogical_framing",
             "self_verification", "completeness"]  # fmt: skip
    axes = load_axes(
        str(artifacts / "judge_v4_step16.json"), str(artifacts / "judge_v4_fresh.json"), threshold=4
    )
    assert sorted(axes) == sorted(names)
    for name in names:
        ty, fy = axes[name]
        assert int(np.nansum(ty)) == sum(1 for it in train if it["scores"].get(name, 0) >= 4)
        assert int(np.nansum(fy)) == sum(1 for it in fresh if it["scores"].get(name, 0) >= 4)
        # the judge failed on one item per file: that item is unlabelled, not "low"
        assert int(np.isnan(ty).sum()) == sum(1 for it in train if name not in it["scores"])
        assert int(np.isnan(fy).sum()) == sum(1 for it in fresh if name not in it["scores"])


def _id_store(tmp_path, ids):
    w = StoreWriter(
        tmp_path / "ids-store",
        meta={"sites": ["resid(-1,normed)"], "model": "toy"},
        items=[{"id": i} for i in ids],
        run_key=["model"],
    )
    w.start()
    w.write_shard({"resid(-1,normed)": np.zeros((len(ids), 2), dtype=np.float32)})
    return str(tmp_path / "ids-store")


def test_labels_are_matched_to_feature_ids_not_file_order(tmp_path):
    from probes.labels import feature_ids

    store = _id_store(tmp_path, ["q1", "q2", "q3"])
    assert feature_ids(store) == ["q1", "q2", "q3"]
    assert feature_ids(f"{tmp_path}/f.npz") is None  # an npz carries no ids
    rows = [("q3", 0.9), ("extra", 0.0), ("q1", 0.1), ("q2", 0.7)]  # any order, a spare item
    path = tmp_path / "shuffled.jsonl"
    path.write_text("".join(json.dumps({"id": i, "score": s}) + "\n" for i, s in rows))
    ids = feature_ids(store)
    assert load_labels(f"{path}:score>=0.5", ids=ids).tolist() == [0.0, 1.0, 1.0]
    assert load_labels(f"{path}:score>=0.5").tolist() == [1.0, 0.0, 0.0, 1.0]  # file order

    gap = tmp_path / "gap.jsonl"
    gap.write_text("".join(json.dumps({"id": i, "y": 1}) + "\n" for i in ("q1", "q3")))
    with pytest.raises(WorkbenchError, match=r"no label for feature item 'q2' \(1 of 3 missing\)"):
        load_labels(f"{gap}:y", ids=ids)
    dup = tmp_path / "dup.jsonl"
    dup.write_text("".join(json.dumps({"id": i, "y": 1}) + "\n" for i in ("q1", "q1", "q2")))
    with pytest.raises(WorkbenchError, match="item id 'q1' more than once"):
        load_labels(f"{dup}:y", ids=ids)
    no_ids = tmp_path / "plain.jsonl"
    no_ids.write_text("".join(json.dumps({"y": y}) + "\n" for y in (1, 0, 1)))
    assert load_labels(f"{no_ids}:y", ids=ids).tolist() == [1.0, 0.0, 1.0]  # by order


def test_records_keyed_by_i_are_matched_by_id(tmp_path):
    """The paper's files keep records under ``items`` with the key ``i``: read as they are."""
    from probes.labels import load_values, record_ids

    path = tmp_path / "paper_like.json"
    items = [{"i": 2, "correct": True, "c": 0.9}, {"i": 0, "correct": False, "c": 0.1},
             {"i": 1, "correct": True, "c": 0.6}]  # fmt: skip
    path.write_text(json.dumps({"params": {}, "items": items}))
    assert record_ids(str(path)) == ["2", "0", "1"]
    assert load_labels(f"{path}:correct", ids=["0", "1", "2"]).tolist() == [0.0, 1.0, 1.0]
    assert load_values(f"{path}:c", ids=["0", "1", "2"]).tolist() == [0.1, 0.6, 0.9]
    with pytest.raises(WorkbenchError, match=r"has no value for item '3' \(1 of 2 missing\)"):
        load_values(f"{path}:c", ids=["0", "3"])


def test_paper_judge_file_ids(artifacts):
    from probes.labels import record_ids

    ids = record_ids(str(artifacts / "judge_v4_step16.json"))
    assert ids == [str(k) for k in range(100)]
