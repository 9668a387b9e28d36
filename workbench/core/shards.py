"""One feature store written by several processes, whole shards each.

Shard ``k`` always holds rows ``k * shard_size .. (k + 1) * shard_size`` and is
written to ``shard-0000k.safetensors``, the file a single process would write,
so a store started by N processes can be finished by M (or by one). Each
process records the shards it completed in its own log, ``.rank-0000R.json``,
rewritten atomically after every shard; the main process, once every process
is done, merges the logs into the one ``manifest.json`` (with the world size)
and removes them. A killed process leaves its log and its finished shards: a
relaunch keeps every shard whose file still matches its checksum and writes
only the rest.

>>> import tempfile
>>> out = tempfile.mkdtemp() + "/features"
>>> items = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
>>> meta = {"model": "m", "sites": ["resid(-1,normed)"]}
>>> parts = [RankWriter(out, meta=meta, items=items, run_key=["model"], shard_size=2,
...                     rank=r, world_size=2) for r in (0, 1)]
>>> parts[0].start()  # the main process, before any process writes
>>> [p.todo for p in parts]
[[0], [1]]
>>> for p in parts:
...     for k in p.todo:
...         _ = p.write_shard(k, {"resid(-1,normed)": np.full((len(p.rows(k)), 3), k, np.float32)})
>>> parts[0].finish().load("h_last")[:, 0].tolist()
[0.0, 0.0, 1.0]
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from workbench.core.errors import WorkbenchError
from workbench.core.store import (
    FORMAT,
    MANIFEST,
    FeatureStore,
    ShardInfo,
    StoreWriter,
    atomic_write_json,
    sha256_file,
)

__all__ = ["RankWriter", "rank_log_name"]


def rank_log_name(rank: int) -> str:
    return f".rank-{rank:05d}.json"


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"


class RankWriter:
    """This process's part of a store that ``world_size`` processes write.

    Args:
        path: the store directory.
        meta, items, run_key: as for :class:`~workbench.core.store.StoreWriter`
            (another run's manifest in ``path`` is refused the same way).
        shard_size: rows per shard; shard ``k`` goes to rank ``k % world_size``.
        rank, world_size: this process and how many there are.
        shard_keys: keys of ``meta`` each shard records as its settings.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        meta: Mapping[str, Any],
        items: Sequence[Mapping[str, Any]],
        run_key: Sequence[str],
        shard_size: int,
        rank: int,
        world_size: int,
        shard_keys: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        self.settings = {k: meta.get(k) for k in shard_keys} or None
        self.items = [dict(it) for it in items]
        self.meta = {**meta, "world_size": world_size}
        self.shard_size, self.rank, self.world_size = shard_size, rank, world_size
        self.n_shards = math.ceil(len(self.items) / shard_size)
        base = StoreWriter(path, meta=meta, items=items, run_key=run_key)  # refuses another run
        self.done: dict[int, ShardInfo] = {}
        for info in base.shards:  # a single-process run's verified leading shards
            self.done[info.start // shard_size] = info
        for info in self._logged():
            k = info.start // shard_size
            if k not in self.done and self._valid(k, info, check_sum=True):
                self.done[k] = info
        self.todo = [k for k in range(rank, self.n_shards, world_size) if k not in self.done]

    def rows(self, k: int) -> range:
        """The item rows shard ``k`` holds."""
        return range(k * self.shard_size, min((k + 1) * self.shard_size, len(self.items)))

    def _valid(self, k: int, info: ShardInfo, *, check_sum: bool) -> bool:
        rows = self.rows(k)
        file = self.path / info.file
        return (
            info.file == shard_name(k)
            and (info.start, info.stop) == (rows.start, rows.stop)
            and file.is_file()
            and (not check_sum or sha256_file(file) == info.sha256)
        )

    def _logged(self) -> list[ShardInfo]:
        out: list[ShardInfo] = []
        for log in sorted(self.path.glob(rank_log_name(0).replace("00000", "*"))):
            try:
                shards = json.loads(log.read_text()).get("shards", [])
                out.extend(ShardInfo.from_json(d, log) for d in shards)
            except (json.JSONDecodeError, WorkbenchError, AttributeError):
                continue  # a log cut by a crash: its shards are written again
        return out

    def remove_stale_temps(self) -> None:
        """Remove temporary shard files a killed run left (call before any process writes)."""
        for tmp in self.path.glob(".shard-*.tmp"):
            tmp.unlink(missing_ok=True)

    def write_shard(self, k: int, arrays: Mapping[str, np.ndarray]) -> ShardInfo:
        """Write shard ``k`` atomically and record it in this process's log."""
        rows = self.rows(k)
        sizes = {name: int(a.shape[0]) for name, a in arrays.items()}
        if set(sizes.values()) != {len(rows)}:
            raise ValueError(f"shard {k} holds {len(rows)} rows, the arrays have {sizes}")
        tensors = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in arrays.items()}
        final = self.path / shard_name(k)
        tmp = self.path / f".{final.name}.rank{self.rank}.tmp"
        save_file(tensors, str(tmp))
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # the usual file mode, as the single-process writer
        info = ShardInfo(final.name, rows.start, rows.stop, sha256_file(tmp), self.settings)
        os.replace(tmp, final)
        self.done[k] = info
        mine = [
            s.to_json() for j, s in sorted(self.done.items()) if j % self.world_size == self.rank
        ]
        log = {"rank": self.rank, "world_size": self.world_size, "shards": mine}
        atomic_write_json(self.path / rank_log_name(self.rank), log)
        return info

    def finish(self) -> FeatureStore:
        """Main process, after every process is done: merge the logs into the manifest."""
        for info in self._logged():
            k = info.start // self.shard_size
            if k not in self.done and self._valid(k, info, check_sum=False):
                self.done[k] = info
        missing = [k for k in range(self.n_shards) if k not in self.done]
        if missing:
            raise WorkbenchError(
                f"{self.path}: shard(s) {', '.join(map(str, missing[:5]))} were not written by "
                "their process: re-run the same launch to finish them"
            )
        atomic_write_json(
            self.path / MANIFEST,
            {
                "format": FORMAT,
                "complete": True,
                "meta": self.meta,
                "sites": self.meta.get("sites", []),
                "items": self.items,
                "shards": [self.done[k].to_json() for k in range(self.n_shards)],
            },
        )
        for log in self.path.glob(rank_log_name(0).replace("00000", "*")):
            log.unlink(missing_ok=True)
        return FeatureStore(self.path)

    def start(self) -> None:
        """Main process: mark the directory as this run's store (an incomplete manifest)."""
        if not (self.path / MANIFEST).is_file():
            self.path.mkdir(parents=True, exist_ok=True)
            StoreWriter(
                self.path, meta=self.meta, items=self.items, run_key=()
            ).start()  # complete: false, no shards
