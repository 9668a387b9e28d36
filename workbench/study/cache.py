"""Stage caches in the run directory: a stage is reused when its key matches.

A key is a hash of everything a stage's output depends on (its config sections,
the model's identity, the keys of the stages it reads). A stage directory holds
``key.json``, written last, so a stage killed half-way is recomputed.

>>> k = stage_key({"a": 1}, "model-x")
>>> k == stage_key({"a": 1}, "model-x"), k == stage_key({"a": 2}, "model-x")
(True, False)
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.store import atomic_write_json

__all__ = ["KEY_FILE", "Stage", "model_identity", "stage_key"]

KEY_FILE = "key.json"


def stage_key(*parts: Any) -> str:
    """A short SHA-256 of the parts as canonical JSON."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def model_identity(name: str) -> dict[str, Any]:
    """What identifies a model's weights without loading it (for cache keys).

    An embedded alias is its package version; a local directory its path, its
    ``config.json`` and the names and sizes of its weight files; anything else
    the hub id itself.
    """
    from workbench.model.embedded import EMBEDDED

    if name in EMBEDDED:
        entry = EMBEDDED[name]
        return {"alias": name, "package": f"{entry.package}=={entry.version()}"}
    path = Path(name).expanduser()
    if path.is_dir():
        config = path / "config.json"
        weights = sorted(
            f"{p.name}:{p.stat().st_size}"
            for p in path.iterdir()
            if p.suffix in (".safetensors", ".bin")
        )
        return {
            "path": str(path.resolve()),
            "config_sha256": hashlib.sha256(
                config.read_bytes() if config.is_file() else b""
            ).hexdigest(),
            "weights": weights,
        }
    return {"hub_id": name}


@dataclass(frozen=True)
class Stage:
    """One cached stage: a directory and the key its contents must carry."""

    path: Path
    key: str

    @property
    def valid(self) -> bool:
        """Whether the directory holds a complete result for this key."""
        try:
            stored = json.loads((self.path / KEY_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return isinstance(stored, dict) and stored.get("key") == self.key

    def begin(self) -> Path:
        """Empty the directory (a stale or partial result) and return it."""
        if self.path.exists():
            if not self.path.is_dir():
                raise WorkbenchError(f"{self.path} is a file: remove it or choose another --out")
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        return self.path

    def commit(self, info: dict[str, Any] | None = None) -> None:
        """Mark the stage complete (its key written last)."""
        atomic_write_json(self.path / KEY_FILE, {"key": self.key, **(info or {})})

    def info(self) -> dict[str, Any]:
        """What :meth:`commit` recorded beside the key."""
        data = json.loads((self.path / KEY_FILE).read_text())
        return {k: v for k, v in data.items() if k != "key"}
