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

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from workbench.core.errors import WorkbenchError

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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_out_dir(path: str | Path, what: str = "--out") -> Path:
    """``path`` as a directory to write into, checked before any work is done: it
    and every folder above it must be a directory or not exist yet."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.is_dir():
            break
        if p.exists():
            where = "is a file" if p == path else f"is inside {p}, which is a file"
            raise WorkbenchError(f"{what} {path} {where}: pass a directory")
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with _atomic_path(Path(path)) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


@dataclass(frozen=True)
class ShardInfo:
    """One complete shard: its file, the item rows it holds and its checksum."""

    file: str
    start: int
    stop: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "start": self.start, "stop": self.stop, "sha256": self.sha256}


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
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
        self.manifest = _read_manifest(self.path)
        self.verify = verify
        self.shards = [ShardInfo(**s) for s in self.manifest.get("shards", [])]

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
        run_key: keys of ``meta`` that must match for a resume; any difference
            means the directory holds a different run, which is refused.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        meta: Mapping[str, Any],
        items: Sequence[Mapping[str, Any]],
        run_key: Sequence[str],
    ) -> None:
        self.path = Path(path)
        self.meta = dict(meta)
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
        old = _read_manifest(self.path)
        mine = self._identity(self.meta, self.items)
        theirs = self._identity(old.get("meta", {}), old.get("items", []))
        if mine != theirs:
            diff = [k for k in self.run_key if mine["meta"].get(k) != theirs["meta"].get(k)]
            if mine["items"] != theirs["items"]:
                diff.append("items")
            raise WorkbenchError(
                f"output directory {self.path} holds a different run's manifest (differs in "
                f"{', '.join(diff)}): choose another --out or delete the directory"
            )
        # Keep the leading run of shards that exist and match their checksum.
        for s in (ShardInfo(**d) for d in old.get("shards", [])):
            f = self.path / s.file
            expected_start = self.shards[-1].stop if self.shards else 0
            if s.start != expected_start or not f.is_file() or sha256_file(f) != s.sha256:
                break
            self.shards.append(s)

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

    def write_shard(self, arrays: Mapping[str, np.ndarray]) -> ShardInfo:
        """Append the next shard (rows ``n_done .. n_done + len``) atomically."""
        sizes = {k: int(v.shape[0]) for k, v in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"shard arrays disagree on the number of rows: {sizes}")
        n = next(iter(sizes.values()))
        start = self.n_done
        if start + n > len(self.items):
            raise ValueError(f"shard of {n} rows overflows {len(self.items)} items at {start}")
        name = f"shard-{len(self.shards):05d}.safetensors"
        tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
        with _atomic_path(self.path / name) as tmp:
            save_file(tensors, str(tmp))
            digest = sha256_file(tmp)
        info = ShardInfo(file=name, start=start, stop=start + n, sha256=digest)
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
    except (OSError, EOFError) as e:
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
    return X.reshape(X.shape[0], -1).astype(np.float32, copy=False)
