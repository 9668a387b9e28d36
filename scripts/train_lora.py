#!/usr/bin/env python
"""Train a LoRA adapter (SFT or DPO, peft + trl) for the workbench to load.

SFT data is JSONL with ``prompt`` and ``response`` per line; DPO data has
``prompt``, ``chosen`` and ``rejected``. Prompts go through the chat template
exactly as capture and generation render them. The adapter and a
``manifest.json`` (base model, data SHA256, hyperparameters, loss per step,
versions) are written to ``--out``; load it with
``load_model(MODEL, adapter=OUT)`` or ``workbench generate --adapter OUT``.

Examples::

    python scripts/train_lora.py --model smollm2-135m-instruct --data sft.jsonl \\
        --target attn --rank 8 --alpha 16 --lr 2e-4 --epochs 1 --out runs/lora-sft
    python scripts/train_lora.py --method dpo --data pairs.jsonl --target all \\
        --max-steps 50 --out runs/lora-dpo

Bad input prints one ``error: ...`` line and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.core.errors import WorkbenchError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from workbench.conditions.training import TARGETS, TrainConfig
    from workbench.conditions.training_data import METHODS

    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="train_lora.py",
        description="LoRA SFT/DPO on a JSONL file; saves the adapter with a manifest.",
    )
    p.add_argument("--data", type=Path, required=True, help="JSONL training file.")
    p.add_argument("--out", type=Path, required=True, help="Adapter directory to write.")
    p.add_argument("--model", default="smollm2-135m-instruct", help="Alias, directory or hub id.")
    p.add_argument("--method", default=d.method, help=" or ".join(METHODS) + ".")
    p.add_argument(
        "--target", default=d.target, help=f"{' or '.join(TARGETS)}: attention or attention + MLP."
    )
    p.add_argument("--rank", type=int, default=d.rank, help="LoRA rank.")
    p.add_argument("--alpha", type=int, default=d.alpha, help="LoRA alpha (scale = alpha / rank).")
    p.add_argument("--dropout", type=float, default=d.dropout, help="LoRA dropout.")
    p.add_argument("--lr", type=float, default=d.lr, help="Peak learning rate (linear decay).")
    p.add_argument("--epochs", type=float, default=d.epochs, help="Passes over the data.")
    p.add_argument(
        "--max-steps", type=int, default=None, help="Optimiser steps (overrides epochs)."
    )
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="Examples per step.")
    p.add_argument("--seed", type=int, default=d.seed, help="Seed of init, data order, dropout.")
    p.add_argument("--beta", type=float, default=d.beta, help="DPO beta.")
    p.add_argument("--max-length", type=int, default=d.max_length, help="Token cap per example.")
    p.add_argument(
        "--no-chat-template", action="store_true", help="Feed prompts raw, without the template."
    )
    p.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16.")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto.")
    p.add_argument("--overwrite", action="store_true", help="Replace an adapter in --out.")
    p.add_argument("--quiet", action="store_true", help="No per-step loss lines.")
    return p


def _quiet_libraries() -> None:
    """Keep stderr for the loss lines and one-line errors."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    """Run the script; returns the exit code (0, or 2 on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        from workbench.conditions.training import TrainConfig, train_lora

        _quiet_libraries()
        config = TrainConfig(
            method=args.method,
            target=args.target,
            rank=args.rank,
            alpha=args.alpha,
            dropout=args.dropout,
            lr=args.lr,
            epochs=args.epochs,
            max_steps=args.max_steps,
            batch_size=args.batch_size,
            seed=args.seed,
            beta=args.beta,
            max_length=args.max_length,
            chat_template=False if args.no_chat_template else None,
        )
        result = train_lora(
            args.model,
            args.data,
            args.out,
            config,
            dtype=args.dtype,
            device=args.device,
            overwrite=args.overwrite,
            progress=None if args.quiet else lambda line: print(line, file=sys.stderr),
        )
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    losses = result.losses
    trend = f"loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "no loss logged"
    print(
        f"trained {result.manifest['steps']} steps, {trend}; "
        f"wrote the adapter and manifest.json to {result.adapter}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
