"""LoRA SFT and DPO (peft + trl) on a base model, saved as an adapter with a manifest.

``train_lora`` loads the base with :func:`~workbench.model.loading.load_model`, wraps
the chosen projections in LoRA, trains with trl's ``SFTTrainer`` or
``DPOTrainer`` on data tokenised as the workbench reads it
(:mod:`workbench.conditions.training_data`) and writes to ``out``::

    adapter_config.json, adapter_model.safetensors   the peft adapter
    manifest.json   base model (LoadedModel.describe()), data file SHA256,
                    hyperparameters, target modules, loss per step, versions

``load_model(base, adapter=out)`` then runs probes, capture and tempering on the
trained model. Targets (:func:`~workbench.conditions.lora_targets.lora_target_modules`):
``attn`` wraps the q, k, v and o projections of every attention module (GPT-2:
``attn.c_attn`` and ``attn.c_proj``; a hybrid's linear-attention projections too); ``all`` adds
every linear layer of the MLP. The manifest lists the adapted modules by name.

>>> result = train_lora("smollm2-135m-instruct", "sft.jsonl", "runs/lora",
...                     TrainConfig(max_steps=20))  # doctest: +SKIP
>>> result.losses[0] > result.losses[-1]  # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from workbench.conditions.lora_targets import TARGETS, lora_module_names, lora_target_modules
from workbench.conditions.training_data import METHODS, read_training_rows, tokenize_rows
from workbench.core.errors import MissingExtraError, WorkbenchError
from workbench.core.store import atomic_write_json, check_out_dir, sha256_file

__all__ = [
    "MANIFEST_FORMAT",
    "TARGETS",
    "TrainConfig",
    "TrainResult",
    "lora_target_modules",
    "train_lora",
]

MANIFEST_FORMAT = "workbench-lora/1"


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one LoRA run (validated on construction).

    Args:
        method: ``sft`` or ``dpo``.
        target: ``attn`` (q, k, v, o projections) or ``all`` (attention + MLP).
        rank, alpha, dropout: LoRA rank, scaling numerator and dropout.
        lr: peak learning rate (linear decay to 0).
        epochs: passes over the data (ignored when ``max_steps`` is set).
        max_steps: optimiser steps; None trains for ``epochs``.
        batch_size: examples per step (DPO: pairs per step).
        seed: seeds LoRA init, data order and dropout.
        beta: DPO temperature of the implicit reward.
        max_length: cap on prompt + response tokens; longer responses are cut (counted).
        chat_template: render prompts with it (default: when the tokenizer has one).
    """

    method: str = "sft"
    target: str = "attn"
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    lr: float = 2e-4
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 4
    seed: int = 0
    beta: float = 0.1
    max_length: int | None = 1024
    chat_template: bool | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise WorkbenchError(f"unknown method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.target not in TARGETS:
            raise WorkbenchError(
                f"unknown target {self.target!r}: use attn (q, k, v, o projections) or all (+ MLP)"
            )
        positive = {"rank": self.rank, "alpha": self.alpha, "lr": self.lr, "epochs": self.epochs}
        positive |= {"batch_size": self.batch_size, "beta": self.beta}
        if self.max_steps is not None:
            positive["max_steps"] = self.max_steps
        if self.max_length is not None:
            positive["max_length"] = self.max_length
        for name, value in positive.items():
            if not value > 0:
                raise WorkbenchError(f"{name} {value} must be > 0: pass a positive value")
        if not 0 <= self.dropout < 1:
            raise WorkbenchError(f"dropout {self.dropout} must be in [0, 1)")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """Where the adapter went, and the training loss per logged step."""

    adapter: Path
    manifest: dict[str, Any]

    @property
    def losses(self) -> list[float]:
        return [p["loss"] for p in self.manifest["loss_history"]]

    def to_json(self) -> dict[str, Any]:
        return {"adapter": str(self.adapter), **self.manifest}


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for pkg in ("torch", "transformers", "peft", "trl", "accelerate", "disposition-workbench"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _trainer(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    *,
    tmp: str,
    device: str,
    target: str,
) -> Any:
    from peft import LoraConfig
    from transformers.pytorch_utils import Conv1D

    fused = any(isinstance(m, Conv1D) for m in model.modules())
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=target,
        fan_in_fan_out=fused,
        bias="none",
        task_type="CAUSAL_LM",
    )
    common: dict[str, Any] = {
        "output_dir": tmp,
        "learning_rate": config.lr,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps or -1,
        "per_device_train_batch_size": config.batch_size,
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "bf16": False,
        "activation_checkpointing": False,
        "use_cpu": device == "cpu",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "max_length": config.max_length,
    }
    if config.method == "sft":
        from trl import SFTConfig, SFTTrainer

        return SFTTrainer(
            model=model,
            args=SFTConfig(**common),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora,
        )
    from trl import DPOConfig, DPOTrainer

    class _TokenizedDPOTrainer(DPOTrainer):  # rows are already prompt_ids/chosen_ids/rejected_ids
        def _prepare_dataset(self, dataset: Any, *args: Any, **kwargs: Any) -> Any:
            return dataset

    return _TokenizedDPOTrainer(
        model=model,
        args=DPOConfig(**common, beta=config.beta),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora,
    )


def _loss_callback(history: list[dict[str, Any]], progress: Callable[[str], None] | None) -> Any:
    from transformers import TrainerCallback

    class _Record(TrainerCallback):
        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            if logs and "loss" in logs:
                point = {"step": int(state.global_step), "loss": float(logs["loss"])}
                point["epoch"] = float(logs.get("epoch", state.epoch or 0.0))
                history.append(point)
                if progress is not None:
                    progress(f"step {point['step']}: loss {point['loss']:.4f}")

    return _Record()


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """No dataset-map progress bars or trl deprecation chatter while training."""
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if was_enabled:
            ds_logging.enable_progress_bar()


def _quiet(trainer: Any) -> None:
    """Drop the trainer's own printing; the loss goes through ``progress`` instead."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)


def train_lora(
    model: str,
    data: str | Path,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a LoRA adapter and save it with its manifest.

    Args:
        model: alias, local model directory or hub id of the base (loaded fresh).
        data: JSONL file (see :mod:`workbench.conditions.training_data`).
        out: adapter directory (created; refused if it already holds an adapter
            unless ``overwrite``).
        config: hyperparameters (defaults: SFT on attention, rank 8).
        dtype, device: where the base model is trained.
        progress: called with one line per logged step.
    """
    config = config or TrainConfig()
    out = Path(out)
    if (out / "adapter_config.json").exists() and not overwrite:
        raise WorkbenchError(f"{out} already holds an adapter: pass a new --out or --overwrite")
    check_out_dir(out)
    for pkg in ("peft", "trl"):
        if importlib.util.find_spec(pkg) is None:
            raise MissingExtraError(pkg, "train")
    rows = read_training_rows(data, config.method)
    from datasets import Dataset

    from workbench.model.loading import load_model

    lm = load_model(model, dtype=dtype, device=device, progress=progress)
    examples, n_cut = tokenize_rows(
        lm.tokenizer, rows, config.method, max_length=config.max_length,
        chat_template=config.chat_template,
    )  # fmt: skip
    pattern = lora_target_modules(lm, config.target)
    adapted = lora_module_names(lm.model, pattern)  # before peft wraps them
    history: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="workbench-lora-") as tmp, _quiet_libraries():
        dataset = Dataset.from_list(examples)
        trainer = _trainer(
            config, lm.model, lm.tokenizer, dataset, tmp=tmp, device=device, target=pattern
        )
        _quiet(trainer)
        trainer.add_callback(_loss_callback(history, progress))
        output = trainer.train()
        out.mkdir(parents=True, exist_ok=True)
        trainer.model.save_pretrained(str(out))
    n_wrapped = sum(1 for n, _ in trainer.model.named_modules() if n.endswith("lora_A"))
    manifest = {
        "format": MANIFEST_FORMAT,
        "method": config.method,
        "base_model": lm.describe(),
        "data": {
            "path": str(Path(data).resolve()),
            "sha256": sha256_file(data),
            "n_examples": len(rows),
            "n_cut_to_max_length": n_cut,
        },
        "hyperparameters": config.to_json(),
        "lora": {"target_modules": pattern, "n_modules": n_wrapped, "modules": adapted},
        "steps": int(trainer.state.global_step),
        "train_runtime_s": round(float(output.metrics.get("train_runtime", 0.0)), 2),
        "loss_history": history,
        "versions": _versions(),
    }
    atomic_write_json(out / "manifest.json", manifest)
    return TrainResult(adapter=out, manifest=manifest)
