"""The model-side commands: ``workbench models`` and ``workbench capture``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workbench.cli.options import (
    Backend,
    Device,
    DeviceMap,
    Dtype,
    MaxMemory,
    load_for_launch,
    load_options,
)
from workbench.core.errors import WorkbenchError
from workbench.core.progress import say

__all__ = ["register"]


def models() -> None:
    """List the embedded model aliases and where each resolves."""
    from workbench.model.embedded import EMBEDDED

    for alias, entry in EMBEDDED.items():
        state = (
            "materialised"
            if (entry.cache_dir() / "config.json").is_file()
            else (
                "installed, dequantised on first load"
                if entry.installed()
                else f"not installed ({entry.package})"
            )
        )
        print(f"{alias}\t{entry.description}\t{entry.quantization}\t{entry.cache_dir()}\t{state}")


def capture(
    model: Annotated[
        str, typer.Option(help="Alias (see `workbench models`), model directory or hub id.")
    ],
    items: Annotated[
        Path, typer.Option(help="JSONL with id, prompt, optional response and labels.")
    ],
    site: Annotated[
        list[str],
        typer.Option(help="Site to capture; repeat. head_in(*) means every attention layer."),
    ],
    out: Annotated[Path, typer.Option(help="Feature-store directory (resumes a killed run).")],
    batch_size: int = 8,
    shard_size: int = 256,
    max_response_tokens: int = 512,
    dtype: Dtype = "float32",
    device: Device = "cpu",
    device_map: DeviceMap = None,
    max_memory: MaxMemory = None,
    backend: Backend = "hf",
    chat_template: Annotated[
        bool, typer.Option(help="Render prompts with the chat template when the tokenizer has one.")
    ] = True,
    adapter: Annotated[
        Path | None,
        typer.Option(
            help="PEFT adapter directory (from scripts/train_lora.py) on top of the model."
        ),
    ] = None,
    trust_remote_code: bool = False,
    progress: bool = True,
) -> None:
    """Capture sites at the final token of prompt + response into a feature store.

    Under ``torchrun --nproc-per-node N`` or ``accelerate launch --num_processes N``
    each process captures whole shards (shard k on rank k % N) into the one store;
    the main process writes the manifest when all are done.
    """
    from workbench.core.items import read_items
    from workbench.core.sites import expand_sites, parse_sites
    from workbench.core.store import check_out_dir
    from workbench.model.capture import capture_to_store
    from workbench.model.loaded import unwrap

    options = load_options(device, dtype, device_map, max_memory, backend)
    check_out_dir(out)  # every input is checked before the weights load
    for option, value in (
        ("--batch-size", batch_size),
        ("--shard-size", shard_size),
        ("--max-response-tokens", max_response_tokens),
    ):
        if value < 1:
            raise WorkbenchError(f"{option} {value} must be >= 1")
    parse_sites([s.replace("*", "0") for s in site])  # the syntax; head_in(*) expands later
    rows = read_items(items)
    lm, procs = load_for_launch(
        model, options, device=device, device_map=device_map, n_items=len(rows),
        shard_size=shard_size, adapter=adapter, trust_remote_code=trust_remote_code, say=say,
    )  # fmt: skip
    sites = expand_sites(site, unwrap(lm)[0].layout.layers_with_attention)
    store = capture_to_store(
        lm,
        rows,
        sites,
        out,
        shard_size=shard_size,
        batch_size=batch_size,
        max_response_tokens=max_response_tokens,
        chat_template=None if chat_template else False,
        progress=progress,
        processes=procs,
    )
    if not procs.is_main:
        return
    for name in store.sites:
        say(f"{name}: {tuple(store.load(name).shape)}")
    say(f"wrote {store.n_items} items to {out}")


def register(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("capture")(capture)
