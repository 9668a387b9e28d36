"""`workbench capture` / `workbench models`, and every bad input: one line, exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import run_cli

from workbench.core.store import FeatureStore

GOOD = [
    {"id": "a", "prompt": "Hello there"},
    {"id": "b", "prompt": "What is 1 + 1?", "response": "2"},
]


def _one_line_error(code: int, err: str, pattern: str) -> None:
    import re

    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(pattern, lines[0]), lines[0]


def test_capture_writes_store(tiny_dir, tmp_path, items_file):
    code, _, err = run_cli(
        "capture", "--model", str(tiny_dir), "--items", str(items_file(GOOD)),
        "--site", "h_last", "--site", "head_in(*)", "--out", str(tmp_path / "out"), "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    store = FeatureStore(tmp_path / "out")
    assert store.sites == ["resid(-1,normed)", "head_in(0)", "head_in(1)", "head_in(2)"]
    assert store.load("h_last").shape == (2, 64)


BAD_ITEMS = {
    "empty": ("", r"item file .* is empty"),
    "malformed": (
        '{"id": "a", "prompt": "x"}\n{"id": "b", "prompt": \n',
        r"items.jsonl:2: malformed JSON",
    ),
    "missing_prompt": ('{"id": "a"}\n', r"items.jsonl:1: missing field 'prompt'"),
    "duplicate": ('{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n', r"duplicate id 'a'"),
}


@pytest.mark.parametrize("case", sorted(BAD_ITEMS))
def test_bad_item_files(tiny_dir, tmp_path, case):
    text, pattern = BAD_ITEMS[case]
    path = tmp_path / "items.jsonl"
    path.write_text(text)
    out = tmp_path / "out"
    code, _, err = run_cli(
        "capture",
        "--model",
        str(tiny_dir),
        "--items",
        str(path),
        "--site",
        "h_last",
        "--out",
        str(out),
    )
    _one_line_error(code, err, pattern)
    assert not out.exists()


def test_bad_model_site_context_and_manifest(tiny_dir, tmp_path, items_file):
    items = str(items_file(GOOD))
    out = str(tmp_path / "out")
    cases = [
        (
            ["--model", "no-such-alias-or-dir", "--site", "h_last"],
            r"cannot load model 'no-such-alias-or-dir'",
        ),
        (
            ["--model", "/nonexistent/dir", "--site", "h_last"],
            r"model '/nonexistent/dir' does not exist",
        ),
        (
            ["--model", str(tiny_dir), "--site", "resid(9)"],
            r"layer 9 is out of range: this model has layers 0\.\.2",
        ),
        (["--model", str(tiny_dir), "--site", "head_in(-4)"], r"layer -4 is out of range"),
        (["--model", str(tiny_dir), "--site", "bogus(1)"], r"unknown site 'bogus\(1\)'"),
    ]
    for args, pattern in cases:
        code, _, err = run_cli("capture", "--items", items, "--out", out, *args)
        _one_line_error(code, err, pattern)
    long_items = items_file([{"id": "big", "prompt": "x" * 400}], "long.jsonl")
    code, _, err = run_cli(
        "capture",
        "--model",
        str(tiny_dir),
        "--items",
        str(long_items),
        "--site",
        "h_last",
        "--out",
        out,
    )
    _one_line_error(code, err, r"item 'big' has \d+ tokens but the model's context is 256")
    assert not (tmp_path / "out").exists()
    # a directory that holds a different run's manifest
    assert (
        run_cli(
            "capture", "--model", str(tiny_dir), "--items", items, "--site", "h_last", "--out", out
        )[0]
        == 0
    )
    before = (tmp_path / "out" / "manifest.json").read_text()
    code, _, err = run_cli(
        "capture", "--model", str(tiny_dir), "--items", items, "--site", "resid(0)", "--out", out
    )
    _one_line_error(code, err, r"holds a different run's manifest .*choose another --out")
    assert (tmp_path / "out" / "manifest.json").read_text() == before


def test_unsupported_layout_names_the_override(tmp_path, items_file):
    from support import tiny_tokenizer
    from transformers import BertConfig, BertLMHeadModel

    path = tmp_path / "bert"
    config = BertConfig(vocab_size=261, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, is_decoder=True)  # fmt: skip
    BertLMHeadModel(config).save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    code, _, err = run_cli("capture", "--model", str(path), "--items", str(items_file(GOOD)), "--site", "h_last",
                           "--out", str(tmp_path / "o"))  # fmt: skip
    _one_line_error(code, err, r"unsupported layout: .*pass layout=Layout\(layers=")


def test_models_lists_aliases():
    code, out, _ = run_cli("models")
    assert code == 0
    assert "smollm2-135m-instruct" in out and "gemma3-270m" in out


@pytest.mark.slow
def test_capture_on_smollm_three_items(tmp_path, items_file, smollm):
    rows = [
        {"id": "1", "prompt": "What is the capital of France?", "response": "Paris."},
        {"id": "2", "prompt": "What is 12 + 30?", "response": "I think it is 42."},
        {"id": "3", "prompt": "Name a primary colour."},
    ]
    out = tmp_path / "smol"
    code, _, err = run_cli("capture", "--model", "smollm2-135m-instruct", "--items", str(items_file(rows)),
                           "--site", "h_last", "--site", "head_in(3)", "--out", str(out), "--no-progress")  # fmt: skip
    assert code == 0, err
    store = FeatureStore(out)
    assert store.load("h_last").shape == (3, 576)
    assert store.load("head_in(3)").shape == (3, 9, 64)
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        manifest["meta"]["model"]["gguf_sha256"]
        and manifest["meta"]["model"]["alias"] == "smollm2-135m-instruct"
    )
    assert np.isfinite(store.load("h_last")).all()


def test_more_bad_inputs_are_one_line_and_leave_nothing(tiny_dir, tmp_path, items_file):
    import shutil

    items = str(items_file(GOOD))
    out = tmp_path / "out"
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b'{"id": "a", "prompt": "x"}\n\xff\xfe\x00junk\n')
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_dir, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"\xff" * 64)
    cases = [
        (["--items", str(binary)], r"binary.jsonl:2: not UTF-8 text: save the file as UTF-8"),
        (["--items", str(tmp_path)], r"is a directory: pass a JSONL file with id and prompt"),
        (["--items", items, "--device", "tpu0"], r"device 'tpu0' is not a torch device"),
        (["--items", items, "--max-response-tokens", "-1"], r"max.response.tokens -1 must be >= 1"),
        (["--items", items, "--batch-size", "0"], r"batch.size 0 must be >= 1"),
        (["--items", items, "--model", str(corrupt)], r"a weights file is corrupt"),
    ]
    for args, pattern in cases:
        model = [] if "--model" in args else ["--model", str(tiny_dir)]
        code, _, err = run_cli("capture", *model, "--site", "h_last", "--out", str(out), *args)
        _one_line_error(code, err, pattern)
        assert not out.exists(), args  # nothing half-written
