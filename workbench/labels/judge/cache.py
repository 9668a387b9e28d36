"""An on-disk cache of judge replies, so a re-run costs nothing.

One JSON file per request, named by the SHA256 of what determines the reply:
``base_url``, ``model``, ``messages``, ``temperature`` (and ``max_tokens`` when
set). Files are written atomically, so a killed run leaves whole files only; an
unreadable file is treated as a miss and rewritten. The API key is not part of
the request that is hashed or stored.

>>> key = request_key("http://127.0.0.1:8000/v1", {"model": "m", "messages": [], "temperature": 0.0})
>>> len(key)
64
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.store import atomic_write_json, sha256_text

__all__ = ["CACHE_FORMAT", "ReplyCache", "request_key"]

CACHE_FORMAT = "workbench-judge-cache/1"
log = logging.getLogger("workbench.labels.judge")


def request_key(base_url: str, body: Mapping[str, Any]) -> str:
    """SHA256 of the endpoint and the request body (model, messages, temperature, ...)."""
    blob = json.dumps(
        {"base_url": base_url.rstrip("/"), "body": body},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return sha256_text(blob)


class ReplyCache:
    """A directory holding one ``<key>.json`` per cached judge reply.

    Args:
        path: the cache directory; created on the first write.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise WorkbenchError(f"judge cache_dir {self.path} is a file: pass a directory")

    def file(self, key: str) -> Path:
        return self.path / f"{key}.json"

    def get(self, key: str) -> str | None:
        """The cached reply text, or None on a miss (or an unreadable file)."""
        file = self.file(key)
        try:
            entry = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("judge cache file %s is unreadable (%s): asking the judge again", file, e)
            return None
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
            return None
        content = entry.get("content")
        return content if isinstance(content, str) else None

    def put(self, key: str, base_url: str, body: Mapping[str, Any], content: str) -> None:
        """Store ``content`` as the reply to ``body`` sent to ``base_url``."""
        atomic_write_json(
            self.file(key),
            {
                "format": CACHE_FORMAT,
                "key": key,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "base_url": base_url,
                "request": dict(body),
                "content": content,
            },
        )

    def __len__(self) -> int:
        return sum(1 for _ in self.path.glob("*.json")) if self.path.is_dir() else 0
