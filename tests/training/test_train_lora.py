"""LoRA SFT/DPO on the tiny random Llama: the loss falls, the adapter and manifest are
written, ``load_model(..., adapter=)`` loads it and changes the logits; bad input is one line."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch
from support import REPO

from workbench.conditions.training import TrainConfig, lora_target_modules, train_lora
from workbench.conditions.training_data import read_training_rows, tokenize_rows
from workbench.core.store import sha256_file

PAIRS = [
    ("What is 2 + 2?", "4", "5"),
    ("Capital of France?", "Paris", "Lyon"),
    ("Say hello.", "Hello there", "No"),
    ("Colour of the sky?", "Blue", "Green"),
]


def _script():
    spec = importlib.util.spec_from_file_location(
        "train_lora_script", REPO / "scripts/train_lora.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def sft_file(tmp_path) -> Path:
    return _write(tmp_path / "sft.jsonl", [{"prompt": p, "response": c} for p, c, _ in PAIRS])


@pytest.fixture
def dpo_file(tmp_path) -> Path:
    rows = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS]
    return _write(tmp_path / "dpo.jsonl", rows)


def _logits(lm) -> torch.Tensor:
    ids = torch.tensor([[3, 60, 61, 62, 63, 4, 70, 71]])
    with torch.no_grad():
        return lm.model(input_ids=ids).logits


def test_sft_script_loss_falls_and_adapter_loads(tiny_dir, sft_file, tmp_path, capsys):
    from workbench.model.loading import load_model

    out = tmp_path / "adapter"
    code = _script().main(
        ["--model", str(tiny_dir), "--data", str(sft_file), "--out", str(out), "--target", "attn",
         "--rank", "8", "--alpha", "16", "--dropout", "0", "--lr", "1e-2", "--max-steps", "20",
         "--batch-size", "4", "--seed", "0", "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "trained 20 steps" in capsys.readouterr().out
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    losses = [p["loss"] for p in manifest["loss_history"]]
    assert len(losses) == 20 and losses[-1] < 0.5 * losses[0]
    assert manifest["method"] == "sft"
    assert manifest["data"]["sha256"] == sha256_file(sft_file)
    assert manifest["data"]["n_examples"] == 4
    assert manifest["base_model"]["fingerprint_sha256"]
    assert manifest["hyperparameters"]["rank"] == 8 and manifest["hyperparameters"]["lr"] == 1e-2
    assert manifest["lora"]["n_modules"] == 3 * 4  # q, k, v, o in each of 3 layers
    assert len(manifest["lora"]["modules"]) == 12  # named, as peft wrapped them
    assert manifest["lora"]["modules"][0] == "model.layers.0.self_attn.q_proj"
    assert manifest["versions"]["peft"] and manifest["versions"]["trl"]

    base, tuned = load_model(str(tiny_dir)), load_model(str(tiny_dir), adapter=out)
    assert tuned.source["adapter"] == str(out.resolve())
    assert tuned.layout.n_layers == base.layout.n_layers
    assert not torch.allclose(_logits(base), _logits(tuned), atol=1e-4)


def test_dpo_loss_falls_and_adapter_loads(tiny_dir, dpo_file, tmp_path):
    from workbench.model.loading import load_model

    config = TrainConfig(method="dpo", target="all", dropout=0.0, lr=1e-2, max_steps=15)
    result = train_lora(str(tiny_dir), dpo_file, tmp_path / "dpo", config)
    losses = result.losses
    assert losses[0] == pytest.approx(
        0.6931, abs=1e-3
    )  # LoRA starts as the identity: policy == ref
    assert losses[-1] < 0.5 * losses[0]
    assert result.manifest["lora"]["n_modules"] == 3 * 7  # + gate, up, down
    tuned = load_model(str(tiny_dir), adapter=result.adapter)
    assert not torch.allclose(_logits(load_model(str(tiny_dir))), _logits(tuned), atol=1e-4)


def test_targets_follow_the_layout(tiny):
    def wrapped(lm, target):
        pattern = lora_target_modules(lm, target)
        return {n for n, _ in lm.model.named_modules() if re.fullmatch(pattern, n)}

    llama = wrapped(tiny("llama"), "attn")
    assert {n.rsplit(".", 1)[1] for n in llama} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert len(llama) == 12
    llama_all = wrapped(tiny("llama"), "all")
    assert {n.rsplit(".", 2)[1] for n in llama_all - llama} == {"mlp"} and len(llama_all) == 21
    gpt2 = wrapped(tiny("gpt2"), "attn")  # GPT-2's MLP also has a c_proj: attn must not take it
    assert gpt2 == {f"transformer.h.{i}.attn.{m}" for i in range(3) for m in ("c_attn", "c_proj")}
    gpt2_all = wrapped(tiny("gpt2"), "all")
    assert gpt2_all - gpt2 == {
        f"transformer.h.{i}.mlp.{m}" for i in range(3) for m in ("c_fc", "c_proj")
    }


def test_tokenization_matches_capture(tiny):
    from workbench.model.tokens import encode_prompt

    tok = tiny("llama").tokenizer
    rows = [{"prompt": "Hi?", "response": "Yes", "chosen": "Yes", "rejected": "No"}]
    (sft,), cut = tokenize_rows(tok, rows, "sft")
    prompt = encode_prompt(tok, "Hi?")
    response = tok("Yes", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert sft["input_ids"] == prompt + response and cut == 0
    assert sft["labels"] == [-100] * len(prompt) + response
    (dpo,), _ = tokenize_rows(tok, rows, "dpo")
    assert dpo["prompt_ids"] == prompt and dpo["chosen_ids"] == response
    (short,), cut = tokenize_rows(tok, rows, "sft", max_length=len(prompt) + 2)
    assert cut == 1 and len(short["input_ids"]) == len(prompt) + 2


BAD = {
    "missing_file": (None, [], r"training file .*nope.jsonl does not exist"),
    "malformed": (
        '{"prompt": "a", "response": "b"}\n{"prompt": \n',
        [],
        r"sft.jsonl:2: malformed JSON",
    ),
    "missing_field": ('{"prompt": "a"}\n', [], r"sft.jsonl:1: field 'response' is missing"),
    "empty_value": (
        '{"prompt": "a", "response": ""}\n',
        [],
        r"field 'response' is not a non-empty",
    ),
    "empty_file": ("\n", [], r"is empty"),
    "dpo_fields": (
        '{"prompt": "a", "response": "b"}\n',
        ["--method", "dpo"],
        r"field 'chosen' is missing",
    ),
    "unknown_target": (None, ["--target", "mlp"], r"unknown target 'mlp': use attn"),
    "rank_zero": (None, ["--rank", "0"], r"rank 0 must be > 0"),
    "rank_negative": (None, ["--rank", "-4"], r"rank -4 must be > 0"),
    "unknown_method": (None, ["--method", "ppo"], r"unknown method 'ppo'"),
    "lr_zero": (None, ["--lr", "0"], r"lr 0.0 must be > 0"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line(case, tmp_path, sft_file, capsys, tiny_dir):
    text, extra, pattern = BAD[case]
    data = sft_file
    if case == "missing_file":
        data = tmp_path / "nope.jsonl"
    elif text is not None:
        data = tmp_path / "sft.jsonl"
        data.write_text(text)
    code = _script().main(
        ["--model", str(tiny_dir), "--data", str(data), "--out", str(tmp_path / "o"), *extra]
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    assert not (tmp_path / "o").exists()


def test_existing_adapter_is_not_overwritten(tmp_path, sft_file, tiny_dir):
    out = tmp_path / "a"
    out.mkdir()
    (out / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match="already holds an adapter"):
        train_lora(str(tiny_dir), sft_file, out, TrainConfig(max_steps=1))


def test_rows_keep_only_needed_fields(tmp_path):
    path = _write(tmp_path / "x.jsonl", [{"id": 1, "prompt": "p", "response": "r", "gold": 3}])
    assert read_training_rows(path, "sft") == [{"prompt": "p", "response": "r"}]
