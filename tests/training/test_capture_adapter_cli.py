"""`workbench capture --adapter DIR` captures from the adapted model (checked against
``output_hidden_states`` of a PeftModel built by hand), and a bad adapter is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support import run_cli

from workbench.core.store import FeatureStore

peft = pytest.importorskip("peft")
# peft's own calls into a transformers API it has not caught up with yet
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning")

ROWS = [
    {"id": "a", "prompt": "Hello there", "response": "General Kenobi"},
    {"id": "b", "prompt": "What is 1 + 1?", "response": "2"},
]


@pytest.fixture(scope="module")
def adapter_dir(tiny_dir, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    torch.manual_seed(0)
    config = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    path = tmp_path_factory.mktemp("adapter")
    peft.get_peft_model(base, config).save_pretrained(path)
    return path


def _capture(tiny_dir, items, out, *extra) -> np.ndarray:
    code, _, err = run_cli(
        "capture", "--model", str(tiny_dir), "--items", str(items), "--site", "h_last",
        "--out", str(out), "--no-progress", *extra,
    )  # fmt: skip
    assert code == 0, err
    return FeatureStore(out).load("h_last")


def test_capture_with_adapter_matches_a_hand_built_peft_model(tiny_dir, adapter_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    base = _capture(tiny_dir, items, tmp_path / "base")
    adapted = _capture(tiny_dir, items, tmp_path / "adapted", "--adapter", str(adapter_dir))
    manifest = FeatureStore(tmp_path / "adapted").manifest
    assert manifest["meta"]["model"]["adapter"] == str(adapter_dir.resolve())
    assert [i["id"] for i in manifest["items"]] == ["a", "b"]

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_dir), adapter_dir)
    from workbench.core.items import Item
    from workbench.model.capture import encode_items
    from workbench.model.loaded import wrap_model

    encoded = encode_items(
        wrap_model(model, tok), [Item(r["id"], r["prompt"], r["response"]) for r in ROWS]
    )
    for row, enc in enumerate(encoded):
        with torch.no_grad():
            out = model(input_ids=torch.tensor([list(enc.ids)]), output_hidden_states=True)
        expected = out.hidden_states[-1][0, -1].numpy()
        np.testing.assert_allclose(adapted[row], expected, atol=1e-5)
        assert np.abs(base[row] - expected).max() > 1e-3  # the adapter changed h_last


def test_adapter_without_config_is_one_line(tiny_dir, tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps(ROWS[0]) + "\n")
    code, _, err = run_cli(
        "capture", "--model", str(tiny_dir), "--items", str(items), "--site", "h_last",
        "--out", str(tmp_path / "out"), "--no-progress", "--adapter", str(tmp_path),
    )  # fmt: skip
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: adapter {tmp_path} has no adapter_config.json: "
        "pass a directory saved by train_lora.py"
    ]
    assert not (tmp_path / "out").exists()
