"""Load a model (alias, local directory or hub id) into a :class:`LoadedModel`.

The embedded SmolLM2-135M (30 layers, 9 heads of width 64) loads by its alias,
``load_model("smollm2-135m-instruct")``; a local directory loads the same way:

>>> import tempfile
>>> path = tempfile.mkdtemp()
>>> lm.model.save_pretrained(path); lm.tokenizer.save_pretrained(path)  # doctest: +ELLIPSIS
(...)
>>> again = load_model(path)
>>> again.layout.n_layers, again.layout.info[0].n_heads, again.layout.info[0].head_dim
(3, 4, 16)
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from workbench.core.errors import MissingExtraError, WorkbenchError
from workbench.model.embedded import EMBEDDED, embedded_source, materialize
from workbench.model.layouts import Layout

__all__ = ["BACKENDS", "LoadedModel", "load_model", "resolve_dtype", "wrap_model"]

from workbench.model.loaded import LoadedModel, resolve_dtype, wrap_model
from workbench.model.options import BACKENDS, check_placement


def _resolve_device(device: str) -> str:
    """``auto`` as cuda when present; a device already passed :func:`check_placement`."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _dir_fingerprint(path: Path) -> dict[str, Any]:
    config = path / "config.json"
    weights = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin"))
    digest = hashlib.sha256(config.read_bytes() if config.is_file() else b"")
    for w in weights:
        digest.update(f"{w.name}:{w.stat().st_size}".encode())
    return {"path": str(path.resolve()), "fingerprint_sha256": digest.hexdigest()}


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub endpoint accepts a TCP connection (so offline machines fail fast)."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection(
            (url.hostname or "huggingface.co", url.port or 443), timeout=timeout
        ).close()
        return True
    except OSError:
        return False


def _in_hub_cache(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json", revision=revision), str)


def _load_adapter(model: nn.Module, adapter: str | Path) -> nn.Module:
    if importlib.util.find_spec("peft") is None:
        raise MissingExtraError("peft", "train")
    from peft import PeftModel

    path = Path(adapter)
    if not (path / "adapter_config.json").is_file():
        raise WorkbenchError(
            f"adapter {path} has no adapter_config.json: pass a directory saved by train_lora.py"
        )
    with warnings.catch_warnings():  # peft's deprecation notices about its own internals
        warnings.simplefilter("ignore", FutureWarning)
        return PeftModel.from_pretrained(model, str(path))


def load_model(
    name: str = "smollm2-135m-instruct",
    *,
    dtype: str | torch.dtype = "float32",
    device: str = "cpu",
    backend: str = "hf",
    adapter: str | Path | None = None,
    layout: Layout | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    device_map: str | dict[str, Any] | None = None,
    max_memory: str | dict[Any, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Any:
    """Load a causal LM by alias, local directory or hub id.

    Args:
        name: an alias (``workbench models`` lists them), a local HF directory or a hub id.
        dtype: float32, bfloat16 or float16 (features are always stored as float32).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``; ignored when ``device_map`` is given.
        backend: ``hf`` (PyTorch hooks), ``transformer_lens`` or ``nnsight``.
        adapter: a PEFT adapter directory to load on top of the base model.
        layout: override for a model family the layout table does not know.
        revision: hub revision (branch, tag or commit).
        trust_remote_code: run code shipped with a hub model; off unless you ask.
        device_map: passed to ``from_pretrained``: ``"auto"`` (or ``balanced``,
            ``sequential``) shards the layers over the GPUs, or a dict / JSON object of
            module name to GPU index, ``cpu`` or ``disk``.
        max_memory: caps per device for ``device_map``, e.g. ``"0=20GiB,1=20GiB,cpu=64GiB"``.

    Every placement value is checked before any weights load (an unknown device,
    CUDA where there is none, a map or cap naming a GPU this machine lacks).

    Returns:
        A :class:`LoadedModel` (``hf``) or the backend's wrapper around one.
    """
    device_map, memory = check_placement(backend, device, device_map, max_memory)
    from workbench.model.backends.base import require_engine

    require_engine(backend)  # a missing extra fails before any weights load
    target_device = _resolve_device(device) if device_map is None else None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = resolve_dtype(dtype)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
    if device_map is not None:
        kwargs["device_map"] = device_map
    if memory is not None:
        kwargs["max_memory"] = memory
    source: dict[str, Any]
    if name in EMBEDDED:
        path = materialize(name, progress)
        source = embedded_source(path)
        target: str = str(path)
    elif Path(name).expanduser().is_dir():
        path = Path(name).expanduser()
        if not (path / "config.json").is_file():
            raise WorkbenchError(
                f"{path} is a directory without config.json: pass a saved HF model directory"
            )
        source = _dir_fingerprint(path)
        target = str(path)
    elif Path(name).suffix in (".gguf", ".json", ".safetensors") or name.startswith(
        ("/", "./", "~")
    ):
        raise WorkbenchError(
            f"model {name!r} does not exist: pass an alias ({', '.join(EMBEDDED)}), a model directory or a hub id"
        )
    else:
        target = name
        source = {"hub_id": name, "revision": revision}
        kwargs["revision"] = revision
        if not _hub_reachable():
            if not _in_hub_cache(name, revision):
                raise WorkbenchError(
                    f"cannot load model {name!r}: it is not an alias ({', '.join(EMBEDDED)}), not a local "
                    "directory, not in the local HF cache, and the hub is unreachable from this machine"
                )
            kwargs["local_files_only"] = True
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            target,
            **{
                k: v
                for k, v in kwargs.items()
                if k in ("revision", "trust_remote_code", "local_files_only")
            },
        )
        model = AutoModelForCausalLM.from_pretrained(target, **kwargs)
    except SafetensorError as e:
        raise WorkbenchError(
            f"cannot load model {name!r}: a weights file is corrupt ({e}): "
            "restore or re-download the model's weights"
        ) from None
    except (OSError, ValueError) as e:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WorkbenchError(
            f"cannot load model {name!r} ({first}): it is not an alias ({', '.join(EMBEDDED)}) or a local "
            f"directory, and the hub {'is disabled (HF_HUB_OFFLINE=1)' if offline else 'did not provide it'}"
        ) from None
    if "hub_id" in source:
        source["revision"] = getattr(model.config, "_commit_hash", None) or revision
    module: nn.Module = model
    if device_map is None:
        module = module.to(target_device)
    if adapter is not None:
        module = _load_adapter(module, adapter)
        source["adapter"] = str(Path(adapter).resolve())
    lm = wrap_model(module, tokenizer, name=name, layout=layout, source=source)
    if backend == "hf":
        return lm
    from workbench.model.backends import wrap_backend

    return wrap_backend(lm, backend)
