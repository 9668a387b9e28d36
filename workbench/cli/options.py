"""The model-placement options every model command takes, defined once.

``capture``, ``generate``, ``temper`` (and any later command that loads a
model) declare these as parameters and build one
:class:`workbench.model.options.LoadOptions` with :func:`load_options`, which
checks every value before any weights load::

    def command(..., device: Device = "cpu", dtype: Dtype = "float32",
                device_map: DeviceMap = None, max_memory: MaxMemory = None,
                backend: Backend = "hf") -> None:
        options = load_options(device, dtype, device_map, max_memory, backend)
        lm = load_model(model, **options.load_kwargs())
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.model.options import LoadOptions

__all__ = ["Backend", "Device", "DeviceMap", "Dtype", "MaxMemory", "load_options"]

Device = Annotated[
    str,
    typer.Option(
        help="cpu, cuda, cuda:N, mps or auto. Under torchrun/accelerate launch, cuda means "
        "cuda:LOCAL_RANK."
    ),
]
Dtype = Annotated[
    str, typer.Option(help="float32, bfloat16 or float16 (features are stored as float32).")
]
DeviceMap = Annotated[
    str | None,
    typer.Option(
        help="Shard one model over GPUs: auto, balanced, sequential, or a JSON object of module "
        "name to GPU index / cpu / disk (replaces --device)."
    ),
]
MaxMemory = Annotated[
    str | None,
    typer.Option(help="Caps per device for --device-map, e.g. '0=20GiB,1=20GiB,cpu=64GiB'."),
]
Backend = Annotated[str, typer.Option(help="hf (PyTorch hooks), transformer_lens or nnsight.")]


def load_options(
    device: str, dtype: str, device_map: str | None, max_memory: str | None, backend: str
) -> LoadOptions:
    """The options as one checked value (a bad one is a one-line error, exit 2)."""
    return LoadOptions(
        device=device, dtype=dtype, backend=backend, device_map=device_map, max_memory=max_memory
    )


def load_for_launch(
    model: str,
    options: LoadOptions,
    *,
    device: str,
    device_map: str | None,
    n_items: int,
    shard_size: int,
    adapter: str | Path | None,
    trust_remote_code: bool,
    say: Callable[[str], None],
) -> tuple[Any, Any]:
    """Check a launch's plan (device map, shards per process) before any weights load,
    join it, and load the model on this process's device: ``(model, processes)``."""
    from workbench.model.loading import load_model
    from workbench.model.parallel import launched, planned, process_device

    planned().check_device_map(device_map)
    planned().check_shards(n_items, shard_size)
    procs = launched(device)
    lm = load_model(
        model,
        **{**options.load_kwargs(), "device": process_device(device, procs)},
        adapter=adapter,
        trust_remote_code=trust_remote_code,
        progress=say,
    )
    return lm, procs
