"""Test support (importable as ``support``): tiny random-init models built from real
architecture configs, a byte-level tokenizer with a chat template, a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ARCHES = ("llama", "qwen3", "qwen3_5", "gemma3", "gemma4", "gpt2")
#: The multimodal wrappers AutoModelForCausalLM returns for Gemma 3 and Gemma 4 configs.
MULTIMODAL = ("gemma3_mm", "gemma4_mm")


def paper_artifacts() -> Path:
    """``$WORKBENCH_PAPER_ARTIFACTS`` or ``../shared/paper-artifacts`` beside the repo."""
    return Path(
        os.environ.get("WORKBENCH_PAPER_ARTIFACTS", REPO.parent / "shared" / "paper-artifacts")
    )


def tiny_tokenizer():
    """A byte-level tokenizer (261 ids) with BOS/EOS/pad and a two-role chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<|user|>": 3, "<|assistant|>": 4}
    for ch in sorted(ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=["<|user|>", "<|assistant|>"],
    )
    fast.chat_template = (
        "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    return fast


def tiny_config(arch: str):
    """A tiny config of a real architecture (GQA wherever the family uses it)."""
    import transformers as tf

    common = dict(vocab_size=261, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if arch == "llama":  # SmolLM2 layout
        return tf.LlamaConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True, **common,
        )  # fmt: skip
    if arch == "qwen3":
        return tf.Qwen3Config(
            hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=256, **common,
        )  # fmt: skip
    if arch == "qwen3_5":  # hybrid: only layers 1 and 3 have full attention (o_proj)
        return tf.Qwen3_5TextConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
            layer_types=["linear_attention", "full_attention", "linear_attention", "full_attention"],
            linear_key_head_dim=16, linear_value_head_dim=16, linear_num_key_heads=2,
            linear_num_value_heads=4, **common,
        )  # fmt: skip
    if arch == "gemma3":
        return tf.Gemma3TextConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=1, head_dim=16, max_position_embeddings=256, sliding_window=8,
            query_pre_attn_scalar=16, **common,
        )  # fmt: skip
    if arch == "gemma4":  # full-attention layers use a wider head (global_head_dim)
        return tf.Gemma4TextConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=1, head_dim=16, global_head_dim=32, max_position_embeddings=256,
            sliding_window=8, vocab_size_per_layer_input=261, hidden_size_per_layer_input=8,
            layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
            **common,
        )  # fmt: skip
    if arch == "gpt2":
        return tf.GPT2Config(n_embd=64, n_layer=3, n_head=4, n_positions=256, **common)
    if arch == "gemma3_mm":  # Gemma3ForConditionalGeneration: text model inside a wrapper
        vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, image_size=16, patch_size=8)  # fmt: skip
        return tf.Gemma3Config(
            text_config=tiny_config("gemma3").to_dict(), vision_config=vision, mm_tokens_per_image=4
        )
    if arch == "gemma4_mm":  # Gemma4ForConditionalGeneration, text only
        return tf.Gemma4Config(
            text_config=tiny_config("gemma4").to_dict(), vision_config=None, audio_config=None
        )
    raise ValueError(arch)


def build_tiny(arch: str, seed: int = 0):
    """A :class:`LoadedModel` around a tiny random-init model of ``arch`` (float32, eval)."""
    import torch
    from transformers import AutoModelForCausalLM

    from workbench.model.loaded import wrap_model

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch), dtype=torch.float32)
    # Random init at 0.02 makes every layer near-identity; widen it so heads differ.
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 0.2)
    return wrap_model(model.eval(), tiny_tokenizer(), name=f"tiny-{arch}")


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the ``workbench`` CLI in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from workbench.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def prompt_items():
    """``(mixed, prefixed)``: items of mixed lengths, and items sharing a prompt prefix."""
    from workbench.core.items import Item

    mixed = [
        Item("a", "Hello"),
        Item("b", "A somewhat longer prompt here"),
        Item("c", "x"),
        Item("d", "Tell me everything about the sea and its tides"),
        Item("e", "Why?"),
        Item("f", "Name three colours, please"),
        Item("g", "ok then"),
    ]
    questions = ["a", "why is the sky blue", "ok", "two plus two", "x y"]
    prefixed = [
        Item(f"q{i}", f"Please answer briefly and clearly: {q}") for i, q in enumerate(questions)
    ]
    return mixed, prefixed


def record_prefix_tokens(monkeypatch) -> list[int]:
    """Patch the continuous loop to record each run's shared-prefix length (in order)."""
    import workbench.model.generation as generation_module

    real, prefixes = generation_module.decode_continuous, []

    def recording(*args, **kwargs):
        decoded = real(*args, **kwargs)
        prefixes.append(decoded.prefix_tokens)
        return decoded

    monkeypatch.setattr(generation_module, "decode_continuous", recording)
    return prefixes
