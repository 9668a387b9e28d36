"""Where and how a model loads: device, dtype, device map, memory caps, backend.

One frozen value, checked once where it enters (a CLI option, a study config
section, :func:`workbench.model.loading.load_model`), before any weights load:

>>> LoadOptions(device="cpu", dtype="bfloat16").dtype
'bfloat16'
>>> LoadOptions(device="tpu")
Traceback (most recent call last):
...
workbench.core.errors.WorkbenchError: device 'tpu' is not a torch device: use cpu, cuda, cuda:N, mps or auto
>>> parse_max_memory("cpu=64GiB, disk=200GB")
{'cpu': '64GiB', 'disk': '200GB'}

Torch is imported only to ask how many GPUs there are, when a value names one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from workbench.core.errors import WorkbenchError

__all__ = [
    "BACKENDS",
    "DEVICE_MAP_STRATEGIES",
    "DTYPES",
    "LoadOptions",
    "check_device",
    "check_dtype",
    "check_placement",
    "parse_device_map",
    "parse_max_memory",
]

BACKENDS = ("hf", "transformer_lens", "nnsight")
DTYPES = ("float32", "bfloat16", "float16", "fp32", "bf16", "fp16")
DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
_DEVICE = re.compile(r"^(cpu|mps|meta|auto|cuda(:\d+)?)$")
_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _check_gpu(index: int, what: str) -> None:
    n = _cuda_count()
    if index >= n:
        have = f"this machine has {n} GPU(s)" if n else "CUDA is not available"
        fix = f"use indices 0..{n - 1}" if n else "use cpu"
        raise WorkbenchError(f"{what} names GPU {index}, but {have}: {fix}")


def check_dtype(dtype: str) -> str:
    """``dtype`` if it names float32, bfloat16 or float16 (or fp32, bf16, fp16)."""
    if dtype not in DTYPES:
        raise WorkbenchError(f"unknown dtype {dtype!r}: use one of float32, bfloat16, float16")
    return dtype


def check_device(device: str, what: str = "device") -> str:
    """``device`` if it is a torch device this machine has (``auto``: cuda when present)."""
    if not _DEVICE.match(device):
        raise WorkbenchError(
            f"{what} {device!r} is not a torch device: use cpu, cuda, cuda:N, mps or auto"
        )
    if device.startswith("cuda"):
        if _cuda_count() == 0:
            raise WorkbenchError(f"{what} {device!r} requested but CUDA is not available: use cpu")
        if ":" in device:
            _check_gpu(int(device.split(":")[1]), f"{what} {device!r}")
    return device


def _map_target(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        _check_gpu(value, what)
    elif isinstance(value, str) and value in ("cpu", "disk", "mps"):
        pass
    elif isinstance(value, str) and re.fullmatch(r"cuda(:\d+)?", value):
        _check_gpu(int(value.partition(":")[2] or 0), what)
    else:
        raise WorkbenchError(
            f"{what} places a module on {value!r}: use a GPU index, cuda:N, cpu or disk"
        )


def parse_device_map(spec: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """``auto``/``balanced``/``balanced_low_0``/``sequential``, one device for the whole
    model (``cpu``, ``cuda:N``, as ``transformers`` accepts), or a JSON object of module
    name to GPU index, ``cuda:N``, ``cpu`` or ``disk``; GPUs are checked here."""
    if spec is None:
        return None
    if isinstance(spec, str) and spec in DEVICE_MAP_STRATEGIES:
        return spec
    if isinstance(spec, str) and (spec in ("cpu", "mps") or re.fullmatch(r"cuda(:\d+)?", spec)):
        _map_target(spec, "device map")
        return spec
    mapping: Any = spec
    if isinstance(spec, str):
        try:
            mapping = json.loads(spec)
        except json.JSONDecodeError:
            mapping = None
    if not isinstance(mapping, dict) or not mapping:
        raise WorkbenchError(
            f"device map {spec!r} is neither a strategy ({', '.join(DEVICE_MAP_STRATEGIES)}), "
            'a device (cpu, cuda:N) nor a JSON object such as \'{"model.embed_tokens": 0, "model.layers.0": 1}\''
        )
    for module, target in mapping.items():
        _map_target(target, f"device map entry {module!r}")
    return dict(mapping)


def parse_max_memory(spec: str | dict[Any, str] | None) -> dict[int | str, str] | None:
    """``"0=20GiB,1=20GiB,cpu=64GiB"`` (or that dict) as accelerate's ``max_memory``."""
    if spec is None:
        return None
    pairs = list(spec.items()) if isinstance(spec, dict) else []
    if isinstance(spec, str):
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            key, sep, size = part.partition("=")
            if not sep:
                pairs = []
                break
            pairs.append((key.strip(), size.strip()))
    out: dict[int | str, str] = {}
    for key, size in pairs:
        k: int | str = int(key) if str(key).isdigit() else str(key)
        named = isinstance(k, int) or k in ("cpu", "disk")
        if not (named and isinstance(size, str) and _SIZE.match(size)):
            out = {}
            break
        if isinstance(k, int):
            _check_gpu(k, "max memory")
        out[k] = size
    if not out:
        raise WorkbenchError(
            f"max memory {spec!r} is not DEVICE=SIZE pairs: use e.g. '0=20GiB,1=20GiB,cpu=64GiB'"
        )
    return out


def check_placement(
    backend: str,
    device: str,
    device_map: str | dict[str, Any] | None,
    max_memory: str | dict[Any, str] | None,
) -> tuple[str | dict[str, Any] | None, dict[int | str, str] | None]:
    """Check a backend and a placement; return the parsed device map and memory caps."""
    if backend not in BACKENDS:
        raise WorkbenchError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if max_memory is not None and device_map is None:
        raise WorkbenchError(
            "max memory caps the devices of a device map: give a device map (e.g. auto) with it"
        )
    if device_map is None:
        check_device(device)
    return parse_device_map(device_map), parse_max_memory(max_memory)


@dataclass(frozen=True)
class LoadOptions:
    """Where and how to load a model; every field is checked on construction.

    Attributes:
        device: cpu, cuda, cuda:N, mps or auto; unused when ``device_map`` is set.
        dtype: float32, bfloat16 or float16 (features are stored as float32 either way).
        backend: hf (PyTorch hooks), transformer_lens or nnsight.
        device_map: a strategy (``auto``, ...) or a JSON object, for ``from_pretrained``.
        max_memory: per-device caps for ``device_map``, e.g. ``0=20GiB,cpu=64GiB``.
    """

    device: str = "cpu"
    dtype: str = "float32"
    backend: str = "hf"
    device_map: str | None = None
    max_memory: str | None = None

    def __post_init__(self) -> None:
        check_dtype(self.dtype)
        check_placement(self.backend, self.device, self.device_map, self.max_memory)

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`workbench.model.loading.load_model`."""
        return {
            "device": self.device,
            "dtype": self.dtype,
            "backend": self.backend,
            "device_map": parse_device_map(self.device_map),
            "max_memory": parse_max_memory(self.max_memory),
        }
