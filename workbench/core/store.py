"""The feature store: safetensors shards plus a JSON manifest.

Layout of a store directory::

    manifest.json              what was captured, how, and which shards are complete
    shard-00000.safetensors    one float32 array per site, rows = items of the shard
    shard-00001.safetensors
    ...

Writes are atomic (a temporary file then ``os.replace``), and the manifest is
rewritten after each shard, so a capture that is killed leaves a store whose
manifest lists only complete shards. Re-running the same capture into the same
directory resumes after the last complete shard; a directory holding a
*different* run's manifest is refused. Reading never unpickles.

This module needs numpy and safetensors only (no torch), so the ``probes``
package can read stores without model code.

>>> import tempfile
>>> out = tempfile.mkdtemp() + "/features"
>>> meta = {"model": "m", "sites": ["resid(-1,normed)"]}
>>> writer = StoreWriter(out, meta=meta, items=[{"id": "a"}, {"id": "b"}], run_key=["model"])
>>> writer.start()
>>> _ = writer.write_shard({"resid(-1,normed)": np.ones((2, 3), dtype=np.float32)})
>>> store = FeatureStore(out)
>>> store.load("h_last").shape  # h_last is an alias of resid(-1,normed)
(2, 3)
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from workbench.core.errors import WorkbenchError
from workbench.core.files import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    check_out_dir,
    remove_stale_temps,
)
from workbench.core.manifest import (
    FORMAT,
    MANIFEST,
    SHARD_NAME,
    ShardInfo,
    read_manifest,
    sha256_file,
    sha256_text,
)

__all__ = [
    "FORMAT",
    "MANIFEST",
    "FeatureStore",
    "StoreWriter",
    "ShardInfo",
    "atomic_write_bytes",
    "atomic_write_json",
    "check_out_dir",
    "load_npz",
    "load_feature_matrix",
    "sha256_file",
    "sha256_text",
]


def _canonical(site: str) -> str:
    from workbench.core.sites import parse_site

    try:
        return str(parse_site(site))
    except WorkbenchError:
        return site


class FeatureStore:
    """Read a feature store directory written by :class:`StoreWriter`.

    Args:
        path: the store directory (holding ``manifest.json``).
        verify: check every shard's SHA256 against the manifest when loading.
    """

    def __init__(self, path: str | Path, *, verify: bool = True) -> None:
        self.path = Path(path)
        if not (self.path / MANIFEST).is_file():
            raise WorkbenchError(
                f"{self.path} holds no {MANIFEST}: pass a directory written by `workbench capture`"
            )
        self.manifest = read_manifest(self.path)
        self.verify = verify
        where = self.path / MANIFEST
        self.shards = [ShardInfo.from_json(s, where) for s in self.manifest.get("shards", [])]

    @property
    def sites(self) -> list[str]:
        return list(self.manifest["sites"])

    @property
    def item_ids(self) -> list[str]:
        return [it["id"] for it in self.manifest["items"]]

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    @property
    def n_items(self) -> int:
        return len(self.manifest["items"])

    def _load_shard(self, shard: ShardInfo) -> dict[str, np.ndarray]:
        file = self.path / shard.file
        if not file.is_file():
            raise WorkbenchError(f"shard {file} listed in the manifest is missing: capture again")
        if self.verify and sha256_file(file) != shard.sha256:
            raise WorkbenchError(
                f"shard {file} is corrupted (SHA256 differs from the manifest): "
                "delete it and re-run the capture to rewrite it"
            )
        try:
            return load_file(str(file))
        except (SafetensorError, OSError, ValueError) as e:
            raise WorkbenchError(
                f"shard {file} is corrupted ({e}): delete it and capture again"
            ) from None

    def load(self, site: str) -> np.ndarray:
        """All rows of one site, concatenated over shards (float32); aliases such as h_last work."""
        site = _canonical(site)
        if site not in self.sites:
            raise WorkbenchError(
                f"site {site!r} is not in {self.path} (it holds {', '.join(self.sites)})"
            )
        if not self.complete:
            raise WorkbenchError(
                f"{self.path} is an incomplete capture ({self.n_complete} of {self.n_items} items): "
                "re-run the same capture to finish it"
            )
        parts = [self._load_shard(s)[site] for s in self.shards]
        return np.concatenate(parts, axis=0)

    def load_all(self) -> dict[str, np.ndarray]:
        return {site: self.load(site) for site in self.sites}

    @property
    def n_complete(self) -> int:
        return self.shards[-1].stop if self.shards else 0


class StoreWriter:
    """Write a store shard by shard, resuming a killed run.

    Args:
        path: the store directory.
        meta: everything that identifies the run (model, sites, dtype, chat
            template, seed, ...); written into the manifest.
        items: one dict per item, at least ``id``; hashes of the texts belong here.
        run_key: keys of ``meta`` that must match for a resume (everything that
            changes the features); any difference means the directory holds a
            different run, which is refused.
        shard_keys: keys of ``meta`` recorded per shard (e.g. ``batch_size``); a
            resume may change them, and each shard says what it was written with.

    A resume keeps the manifest's run-level ``meta`` (what the first run
    recorded) and removes the temporary files a killed writer left for the
    shards it will rewrite.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        meta: Mapping[str, Any],
        items: Sequence[Mapping[str, Any]],
        run_key: Sequence[str],
        shard_keys: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        self.meta = dict(meta)
        self.shard_settings = {k: self.meta.get(k) for k in shard_keys}
        self.items = [dict(it) for it in items]
        self.run_key = list(run_key)
        self.shards: list[ShardInfo] = []
        if (self.path / MANIFEST).is_file():
            self._resume()
        else:
            check_out_dir(self.path)

    def _identity(
        self, meta: Mapping[str, Any], items: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        return {"meta": {k: meta.get(k) for k in self.run_key}, "items": list(items)}

    def _resume(self) -> None:
        old = read_manifest(self.path)
        mine = self._identity(self.meta, self.items)
        theirs = self._identity(old.get("meta", {}), old.get("items", []))
        if mine != theirs:
            diff = [k for k in self.run_key if mine["meta"].get(k) != theirs["meta"].get(k)]
            if mine["items"] != theirs["items"]:
                diff.append("items")
            raise WorkbenchError(
                f"output directory {self.path} holds a different run's manifest (differs in "
                f"{', '.join(diff)}): resume with the same settings, or choose another --out"
            )
        self.meta = {**self.meta, **dict(old.get("meta", {}))}  # the first run's record stays
        # Keep the leading run of shards that exist and match their checksum.
        where = self.path / MANIFEST
        for s in (ShardInfo.from_json(d, where) for d in old.get("shards", [])):
            f = self.path / s.file
            expected_start = self.shards[-1].stop if self.shards else 0
            if s.start != expected_start or not f.is_file() or sha256_file(f) != s.sha256:
                break
            self.shards.append(s)
        remove_stale_temps(self.path, lambda name: SHARD_NAME.match(name) is not None)

    @property
    def n_done(self) -> int:
        """Number of items already stored in complete shards."""
        return self.shards[-1].stop if self.shards else 0

    @property
    def complete(self) -> bool:
        return self.n_done == len(self.items)

    def _write_manifest(self) -> None:
        atomic_write_json(
            self.path / MANIFEST,
            {
                "format": FORMAT,
                "complete": self.complete,
                "meta": self.meta,
                "sites": self.meta.get("sites", []),
                "items": self.items,
                "shards": [s.to_json() for s in self.shards],
            },
        )

    def start(self) -> None:
        """Create the directory and write the (empty or resumed) manifest."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_manifest()

    def write_shard(
        self, arrays: Mapping[str, np.ndarray], settings: Mapping[str, Any] | None = None
    ) -> ShardInfo:
        """Append the next shard (rows ``n_done .. n_done + len``) atomically.

        ``settings`` override this writer's per-shard settings for this shard
        (e.g. a batch size an out-of-memory back-off lowered).
        """
        sizes = {k: int(v.shape[0]) for k, v in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"shard arrays disagree on the number of rows: {sizes}")
        n = next(iter(sizes.values()))
        start = self.n_done
        if start + n > len(self.items):
            raise ValueError(f"shard of {n} rows overflows {len(self.items)} items at {start}")
        name = f"shard-{len(self.shards):05d}.safetensors"
        tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
        with atomic_path(self.path / name) as tmp:
            save_file(tensors, str(tmp))
            digest = sha256_file(tmp)
        shard_settings = {**self.shard_settings, **dict(settings or {})} or None
        info = ShardInfo(name, start, start + n, digest, shard_settings)
        self.shards.append(info)
        self._write_manifest()
        return info


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Load an ``.npz`` without unpickling; a pickled object array is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path} does not exist: pass an existing .npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise WorkbenchError(
                f"{path} holds pickled Python objects, which are never loaded (unsafe): "
                "save plain numeric arrays with np.savez"
            ) from None
        raise WorkbenchError(f"{path} is not a readable .npz ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise WorkbenchError(f"{path} is not a readable .npz ({e})") from None


def load_feature_matrix(path: str | Path, site: str | None = None, key: str = "X") -> np.ndarray:
    """A 2-D feature matrix from a store directory or an ``.npz`` (array ``key``).

    For a store, ``site`` picks the site; it may be omitted when the store holds
    one site. Arrays with more than two dimensions (e.g. ``head_in``) are
    flattened per row.
    """
    path = Path(path)
    if path.is_dir():
        store = FeatureStore(path)
        if site is None:
            if len(store.sites) != 1:
                raise WorkbenchError(
                    f"{path} holds several sites ({', '.join(store.sites)}): name one with PATH:SITE"
                )
            site = store.sites[0]
        X = store.load(site)
    else:
        arrays = load_npz(path)
        name = site or key
        if name not in arrays:
            raise WorkbenchError(
                f"{path} has no array {name!r} (it holds {', '.join(arrays) or 'nothing'}): "
                "name the array with PATH:NAME"
            )
        X = arrays[name]
        if X.dtype.kind not in "biuf" or X.ndim < 2 or X.size == 0:
            raise WorkbenchError(
                f"{path} array {name!r} has dtype {X.dtype} and shape {X.shape}: pass a "
                "non-empty numeric array of shape (items, features)"
            )
    return X.reshape(X.shape[0], -1).astype(np.float32, copy=False)
