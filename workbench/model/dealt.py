"""Generation dealt over the processes of a launch, one part file per shard.

Under ``torchrun`` or ``accelerate launch``, :func:`generate_parts` gives shard
``k`` of the items (``shard_size`` each, in item order) to rank ``k % world_size``;
each rank writes ``part-0000k.json`` (and ``part-0000k.safetensors`` for fused
capture) into ``parts``, so a killed rank resumes its own shards, and the main
process merges the parts in item order. Sampling draws come from one generator
per item seeded by ``(seed, item id)``, so they do not depend on the shard; the
batches form within each shard.

>>> import tempfile
>>> gens = generate_parts(lm, ["Hi", "What is 2+2?", "Name a colour."], tempfile.mkdtemp(),
...                       processes=Processes(), shard_size=2, max_new_tokens=3)
>>> [g.id for g in gens], gens.config.max_new_tokens
(['0', '1', '2'], 3)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from workbench.core.items import Item, as_items
from workbench.core.store import atomic_write_json, sha256_file, sha256_text
from workbench.model.generation import DecodingConfig, Generation, Generations, generate
from workbench.model.parallel import Processes, launched

__all__ = ["generate_parts"]


def _part_key(items: Sequence[Item], model: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    ident = {"items": [it.hashes() for it in items], "model": model, "settings": settings}
    return sha256_text(json.dumps(ident, sort_keys=True, default=str))


def _read_part(json_path: Path, key: str) -> tuple[list[Generation], dict[str, np.ndarray]] | None:
    """A part written for this key whose features file matches its checksum, else None."""
    try:
        part = json.loads(json_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if part.get("key") != key:
        return None
    features: dict[str, np.ndarray] = {}
    if part.get("features_sha256"):
        feats = json_path.with_suffix(".safetensors")
        if not feats.is_file() or sha256_file(feats) != part["features_sha256"]:
            return None
        features = load_file(str(feats))
    gens = [
        Generation(g["id"], g["prompt"], g["response"], tuple(g["token_ids"]), g["truncated"])
        for g in part["generations"]
    ]
    return gens, features


def _write_part(json_path: Path, key: str, gens: Generations) -> None:
    digest = None
    json_path.parent.mkdir(parents=True, exist_ok=True)
    if gens.features:
        feats = json_path.with_suffix(".safetensors")
        tmp = feats.with_name(f".{feats.name}.tmp")
        save_file({k: np.ascontiguousarray(v) for k, v in gens.features.items()}, str(tmp))
        digest = sha256_file(tmp)
        tmp.replace(feats)
    part = {"key": key, "generations": [g.to_json() for g in gens], "features_sha256": digest}
    atomic_write_json(json_path, part)  # last: a part counts once its record is written


def generate_parts(
    lm: Any,
    items: Sequence[Item | str | Mapping[str, Any]],
    parts: str | Path,
    *,
    processes: Processes | None = None,
    shard_size: int = 64,
    max_new_tokens: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    batch_size: int = 8,
    chat_template: bool | None = None,
    capture: Sequence[str] | None = None,
    progress: bool = False,
) -> Generations | None:
    """:func:`~workbench.model.generation.generate` dealt over a launch's processes.

    Returns the merged generations on the main process (after every process is
    done) and ``None`` on the others. ``parts`` is kept for resuming; remove it
    once the result is written.
    """
    from workbench.model.loaded import unwrap

    items = as_items(items)
    procs = processes or launched(str(unwrap(lm)[0].device))
    procs.check_shards(len(items), shard_size)
    config = DecodingConfig(
        max_new_tokens, do_sample, temperature, top_p, top_k, seed, chat_template
    )
    settings = {**config.to_json(), "capture": list(capture or []), "shard_size": shard_size}
    folder = Path(parts)
    if procs.is_main:
        folder.mkdir(parents=True, exist_ok=True)
    procs.barrier()
    n_shards = -(-len(items) // shard_size)
    shards = [items[k * shard_size : (k + 1) * shard_size] for k in range(n_shards)]
    model = unwrap(lm)[0].describe()
    keys = [_part_key(s, model, settings) for s in shards]
    for k in procs.owned(n_shards):
        path = folder / f"part-{k:05d}.json"
        if _read_part(path, keys[k]) is not None:
            continue
        gens = generate(
            lm, shards[k], max_new_tokens=max_new_tokens, do_sample=do_sample,
            temperature=temperature, top_p=top_p, top_k=top_k, seed=seed, batch_size=batch_size,
            chat_template=chat_template, capture=capture, progress=progress and procs.is_main,
        )  # fmt: skip
        _write_part(path, keys[k], gens)
    procs.barrier()
    if not procs.is_main:
        return None
    merged: list[Generation] = []
    features: dict[str, list[np.ndarray]] = {}
    for k in range(n_shards):
        read = _read_part(folder / f"part-{k:05d}.json", keys[k])
        if read is None:
            raise RuntimeError(f"part {k} of {folder} is missing after every process finished")
        merged.extend(read[0])
        for name, array in read[1].items():
            features.setdefault(name, []).append(array)
    joined = {name: np.concatenate(arrays) for name, arrays in features.items()}
    return Generations(items=tuple(merged), config=config, features=joined)
