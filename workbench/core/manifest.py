"""The feature store's manifest: its format, its shard entries, reading it safely.

A shard entry names a file inside the store (``shard-*.safetensors``; any other
name, such as ``../../etc/hostname``, is refused), the item rows it holds, its
SHA256 and the settings it was written with (batch size and device may differ
between the shards of a resumed capture).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError

__all__ = [
    "FORMAT",
    "MANIFEST",
    "SHARD_NAME",
    "ShardInfo",
    "read_manifest",
    "sha256_file",
    "sha256_text",
]

FORMAT = "workbench-features/1"
MANIFEST = "manifest.json"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


SHARD_NAME = re.compile(r"^shard-[A-Za-z0-9_-]+\.safetensors$")


@dataclass(frozen=True)
class ShardInfo:
    """One complete shard: its file, the item rows it holds, its checksum and the
    settings it was written with (batch size and device may differ per shard)."""

    file: str
    start: int
    stop: int
    sha256: str
    settings: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"file": self.file, "start": self.start, "stop": self.stop, "sha256": self.sha256}
        return out if self.settings is None else {**out, "settings": dict(self.settings)}

    @classmethod
    def from_json(cls, d: Any, where: Path) -> ShardInfo:
        """A manifest's shard entry; a file name outside the store is refused."""
        ok = isinstance(d, dict) and {"file", "start", "stop", "sha256"} <= set(d)
        if ok and not (isinstance(d["file"], str) and SHARD_NAME.match(d["file"])):
            raise WorkbenchError(
                f"{where} lists shard file {str(d['file'])[:60]!r}, which is not a shard of this "
                "store (only shard-*.safetensors inside it are read): capture again"
            )
        if not ok or not all(isinstance(d[k], int) for k in ("start", "stop")):
            raise WorkbenchError(f"{where} has a malformed shard entry: capture again")
        settings = d.get("settings")
        return cls(d["file"], d["start"], d["stop"], str(d["sha256"]), settings)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the store at ``path``, checked to be one."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise WorkbenchError(
            f"{path / MANIFEST} is not UTF-8 text: delete the directory and capture again"
        ) from None
    except json.JSONDecodeError as e:
        raise WorkbenchError(
            f"{path / MANIFEST} is not valid JSON ({e.msg} at line {e.lineno}): "
            "delete the directory and capture again"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise WorkbenchError(
            f"{path / MANIFEST} is not a workbench feature manifest (format "
            f"{manifest.get('format') if isinstance(manifest, dict) else None!r}, expected {FORMAT!r})"
        )
    return manifest
