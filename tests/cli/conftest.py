"""A workspace of good and bad input files for the bad-input suite (no model needed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from workbench.conditions.condition import Condition
from workbench.core.items import Item
from workbench.core.store import StoreWriter
from workbench.model.generation import DecodingConfig, Generation

N = 12
IDS = [f"q{i}" for i in range(N)]
NO_MODEL = "/nonexistent/model-that-must-not-load"


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _store(path: Path, sites: dict[str, np.ndarray], ids: list[str]) -> Path:
    w = StoreWriter(
        path,
        meta={"sites": list(sites), "model": {"name": "toy", "n_layers": 2}},
        items=[{"id": i} for i in ids],
        run_key=["sites"],
    )
    w.start()
    w.write_shard(sites)
    return path


def _condition(path: Path, labels: dict | None = None, max_new_tokens: int = 8) -> Path:
    items = tuple(
        Item(i, f"What is {k} + 1?", f"{k + 1}.", labels or {"family": "arithmetic"})
        for k, i in enumerate(IDS)
    )
    gens = tuple(Generation(it.id, it.prompt, it.response or "", (1, 2), False) for it in items)
    cond = Condition(
        model={"name": "toy"},
        decoding=DecodingConfig(max_new_tokens=max_new_tokens),
        items=items,
        generations=gens,
        scores={},
        judge=None,
    )
    cond.write(path)
    return path


def build(root: Path) -> dict[str, Path]:
    """Every file the cases refer to, by name."""
    rng = np.random.default_rng(0)
    y = [i % 2 for i in range(N)]
    p: dict[str, Path] = {}
    p["items"] = _jsonl(root / "items.jsonl", [{"id": i, "prompt": f"Q {i}?"} for i in IDS])
    p["items_family"] = _jsonl(
        root / "items_family.jsonl",
        [{"id": i, "prompt": f"Q {i}?", "family": "arithmetic"} for i in IDS],
    )
    head = rng.normal(size=(N, 2, 2, 4)).astype(np.float32)
    p["store"] = _store(
        root / "store",
        {"resid(-1,normed)": rng.normal(size=(N, 4)).astype(np.float32), "head_in(0,last=2)": head},
        IDS,
    )
    p["h_store"] = _store(
        root / "h_store", {"resid(-1,normed)": rng.normal(size=(N, 4)).astype(np.float32)}, IDS
    )
    np.savez(root / "X.npz", X=rng.normal(size=(N, 4)).astype(np.float32), y=np.array(y))
    p["npz"] = root / "X.npz"
    np.savez(root / "empty.npz", X=np.zeros((0, 4), dtype=np.float32))
    p["npz_empty"] = root / "empty.npz"
    np.savez(root / "strX.npz", X=np.array([["a", "b"]] * N))
    p["npz_str"] = root / "strX.npz"
    np.savez(root / "X1d.npz", X=np.arange(N, dtype=np.float32))
    p["npz_1d"] = root / "X1d.npz"
    np.savez(root / "noX.npz", Z=np.zeros((N, 2)))
    p["npz_nox"] = root / "noX.npz"
    np.savez(root / "objX.npz", X=np.array([{"a": 1}] * N, dtype=object), allow_pickle=True)
    p["npz_pickle"] = root / "objX.npz"
    (root / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    p["npz_garbage"] = root / "garbage.npz"
    p["labels"] = _jsonl(
        root / "labels.jsonl", [{"id": i, "y": v} for i, v in zip(IDS, y, strict=True)]
    )
    csv_text = "id,y\n" + "".join(f"{i},{v}\n" for i, v in zip(IDS, y, strict=True))
    (root / "labels.csv").write_text(csv_text)
    p["labels_csv"] = root / "labels.csv"
    bad: dict[str, str | bytes] = {
        "null_id.jsonl": "".join(
            json.dumps({"id": None if k == 3 else i, "y": v}) + "\n"
            for k, (i, v) in enumerate(zip(IDS, y, strict=True))
        ),
        "some_ids.jsonl": "".join(
            json.dumps({"id": i, "y": v} if k else {"y": v}) + "\n"
            for k, (i, v) in enumerate(zip(IDS, y, strict=True))
        ),
        "bad_line5.jsonl": "".join(
            json.dumps({"id": i, "y": v}) + "\n" for i, v in zip(IDS, y, strict=True)
        ).replace('"q4", "y": 0}', '"q4", "y": 0'),
        "latin1.jsonl": '{"id": "q0", "y": 1, "note": "caf\xe9"}\n'.encode("latin-1"),
        "latin1.csv": "id,y,note\nq0,1,caf\xe9\n".encode("latin-1"),
        "latin1.json": '[{"id": "q0", "y": 1, "n": "caf\xe9"}]'.encode("latin-1"),
        "all_null.jsonl": "".join(json.dumps({"id": i, "y": None}) + "\n" for i in IDS),
        "one_class.jsonl": "".join(json.dumps({"id": i, "y": 1}) + "\n" for i in IDS),
        "strings.jsonl": "".join(json.dumps({"id": i, "y": "maybe"}) + "\n" for i in IDS),
        "continuous.jsonl": "".join(
            json.dumps({"id": i, "y": k / 10}) + "\n" for k, i in enumerate(IDS)
        ),
        "dup_ids.jsonl": "".join(json.dumps({"id": "q0", "y": v}) + "\n" for v in y),
        "missing_item.jsonl": "".join(
            json.dumps({"id": i, "y": v}) + "\n" for i, v in zip(IDS[:-1], y[:-1], strict=True)
        ),
        "scalar.json": json.dumps({"y": 3}),
        "bad.json": '{"y": [1, 0,',
        "deep.json": "[" * 100000 + "]" * 100000,
        "empty.json": "",
        "number.json": "7",
        "nested.json": json.dumps(
            {"items": [{"id": i, "s": {"a": v}} for i, v in zip(IDS, y, strict=True)]}
        ),
        "short_list.json": json.dumps([0, 1, 0]),
        "labels.txt": "0\n1\n",
        "bom_partial.csv": "\ufeffid,y\nq0,1\n,0\n",
        "csv_no_field.csv": "id,z\n" + "".join(f"{i},1\n" for i in IDS),
        "empty.jsonl": "\n\n",
        "notobj.jsonl": "".join("[1, 2]\n" for _ in IDS),
        "items_bad_line3.jsonl": '{"id": 1, "prompt": "a"}\n{"id": 2, "prompt": "b"}\n{"id": 3,\n',
        "items_noprompt.jsonl": '{"id": 1}\n',
        "items_dup.jsonl": '{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n',
        "items_emptyprompt.jsonl": '{"id": 1, "prompt": ""}\n',
        "items_clash.jsonl": '{"id": 1, "prompt": "a", "truncated": true}\n',
        "items_badresp.jsonl": '{"id": 1, "prompt": "a", "response": 5}\n',
        "items_unknown_family.jsonl": '{"id": 1, "prompt": "a", "family": "astrology"}\n',
        "items_latin1.jsonl": '{"id": 1, "prompt": "caf\xe9"}\n'.encode("latin-1"),
    }
    for name, text in bad.items():
        f = root / name
        if isinstance(text, bytes):
            f.write_bytes(text)
        else:
            f.write_text(text, encoding="utf-8")
        p[name] = f
    (root / "a_dir.jsonl").mkdir()
    p["dir.jsonl"] = root / "a_dir.jsonl"
    (root / "a_dir.csv").mkdir()
    p["dir.csv"] = root / "a_dir.csv"
    (root / "a_file").write_text("I am a file\n")
    p["file"] = root / "a_file"
    ro = root / "readonly"
    ro.mkdir()
    (ro / "keep.txt").write_text("keep\n")
    p["readonly"] = ro
    p["cond_a"] = _condition(root / "cond_a")
    p["cond_b"] = _condition(root / "cond_b", max_new_tokens=16)
    p["cond_nofamily"] = _condition(root / "cond_nofamily", labels={"x": 1})
    for name, edit in {
        "cond_missing_key": lambda m: m.pop("decoding"),
        "cond_unknown_key": lambda m: m.update(surprise=1),
        "cond_unknown_decoding": lambda m: m["decoding"].update(beam=4),
        "cond_bad_items": lambda m: m.update(items=3),
        "cond_format": lambda m: m.update(format="other/1"),
    }.items():
        path = _condition(root / name)
        meta = json.loads((path / "condition.json").read_text())
        edit(meta)
        (path / "condition.json").write_text(json.dumps(meta))
        p[name] = path
    broken = _condition(root / "cond_bad_json")
    (broken / "condition.json").write_text("{nope")
    p["cond_bad_json"] = broken
    edited = _condition(root / "cond_edited")
    lines = (edited / "generations.jsonl").read_text().splitlines(keepends=True)
    (edited / "generations.jsonl").write_text("".join(lines[:-1]))
    p["cond_edited"] = edited
    (root / "not_a_condition").mkdir()
    p["not_a_condition"] = root / "not_a_condition"
    # a feature store whose manifest points outside the store
    esc = _store(root / "escape_store", {"resid(-1,normed)": np.zeros((N, 2), np.float32)}, IDS)
    m = json.loads((esc / "manifest.json").read_text())
    m["shards"][0]["file"] = "../../../../../../etc/hostname"
    (esc / "manifest.json").write_text(json.dumps(m))
    p["escape_store"] = esc
    corrupt = _store(
        root / "corrupt_store", {"resid(-1,normed)": np.zeros((N, 2), np.float32)}, IDS
    )
    shard = next(corrupt.glob("shard-*.safetensors"))
    shard.write_bytes(shard.read_bytes()[:-8] + b"xxxxxxxx")
    p["corrupt_store"] = corrupt
    (root / "bad_manifest").mkdir()
    (root / "bad_manifest" / "manifest.json").write_text("{")
    p["bad_manifest"] = root / "bad_manifest"
    (root / "other_manifest").mkdir()
    (root / "other_manifest" / "manifest.json").write_text('{"format": "else"}')
    p["other_manifest"] = root / "other_manifest"
    return p


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with a hash of its bytes."""
    out = {}
    for f in sorted(root.rglob("*")):
        rel = str(f.relative_to(root))
        out[rel] = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else "dir"
    return out


@pytest.fixture(scope="session")
def snapshot_of():
    return snapshot


@pytest.fixture(scope="session")
def build_workspace():
    return build
