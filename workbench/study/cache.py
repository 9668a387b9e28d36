"""Stage caches in the run directory: a stage is reused when its key and its files match.

A key is a hash of everything a stage's output depends on (its config sections,
the model's identity, the keys of the stages it reads). A stage directory holds
the ownership marker (written first) and ``key.json`` (written last, with the
SHA256 of every output file), so a stage killed half-way, or one whose files
were corrupted or deleted since, is recomputed alone: the stages after it read
its key, which does not change. A stage folder without output hashes (written
by an earlier version) is recomputed once. Replacing a stage deletes only what
the workbench wrote: a file it did not write is refused with its path.

>>> k = stage_key({"a": 1}, "model-x")
>>> k == stage_key({"a": 1}, "model-x"), k == stage_key({"a": 2}, "model-x")
(True, False)
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.files import MARKER, check_replaceable, make_owned_dir
from workbench.core.store import atomic_write_json, sha256_file
from workbench.study.config import SPLIT_NAMES, StudyConfig

__all__ = ["KEY_FILE", "Stage", "check_run_dir", "model_identity", "stage_dirs", "stage_key"]

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


def _read_key(path: Path) -> dict[str, Any] | None:
    try:
        stored = json.loads((path / KEY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) else None


def _output_files(path: Path) -> list[str]:
    """The stage's own files (relative paths), not those of stages nested inside it."""
    found = []
    for p in sorted(path.iterdir()):
        if p.is_dir() and not p.is_symlink():
            if not (p / KEY_FILE).exists():  # a nested stage has its own key
                found += [f"{p.name}/{f}" for f in _output_files(p)]
        elif p.name not in (KEY_FILE, MARKER) and not p.name.endswith(".tmp"):
            found.append(p.name)
    return found


def _foreign(path: Path, listed: Iterable[str] | None) -> Path | None:
    """The first file in a stage folder that its ``key.json`` does not list."""
    if listed is None:  # killed half-way, or an earlier version's stage: all of it is ours
        return None
    known = set(listed)
    for rel in _output_files(path):
        if rel not in known and rel.rpartition("/")[2] not in (MARKER, KEY_FILE):
            return path / rel
    for sub in (p for p in path.iterdir() if p.is_dir() and (p / KEY_FILE).exists()):
        found = _foreign(sub, (_read_key(sub) or {}).get("outputs"))
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Stage:
    """One cached stage: a directory and the key its contents must carry."""

    path: Path
    key: str

    @property
    def valid(self) -> bool:
        """Whether the directory holds a complete, intact result for this key."""
        stored = _read_key(self.path)
        if stored is None or stored.get("key") != self.key:
            return False
        outputs = stored.get("outputs")
        if not isinstance(outputs, dict) or not outputs:
            return False
        for rel, digest in outputs.items():
            file = self.path / rel
            if not file.is_file() or sha256_file(file) != digest:
                return False
        return True

    def check(self) -> None:
        """Refuse, with the path, a folder here that the workbench may not replace."""
        check_replaceable(self.path, "stage folder")
        if self.path.is_dir():
            stored = _read_key(self.path)
            listed = None if stored is None else stored.get("outputs")
            foreign = _foreign(self.path, listed if isinstance(listed, dict) else None)
            if foreign is not None:
                raise WorkbenchError(
                    f"{foreign} was not written by the workbench and its stage folder "
                    f"{self.path} must be rewritten: move the file away; nothing was deleted"
                )

    def begin(self) -> Path:
        """Empty the directory (a stale or partial result the workbench owns) and return it."""
        self.check()
        if self.path.exists():
            shutil.rmtree(self.path)
        return make_owned_dir(self.path)

    def commit(self, info: dict[str, Any] | None = None) -> None:
        """Mark the stage complete: its key and its outputs' hashes, written last."""
        outputs = {rel: sha256_file(self.path / rel) for rel in _output_files(self.path)}
        atomic_write_json(
            self.path / KEY_FILE, {"key": self.key, **(info or {}), "outputs": outputs}
        )

    def info(self) -> dict[str, Any]:
        """What :meth:`commit` recorded beside the key."""
        data = _read_key(self.path) or {}
        return {k: v for k, v in data.items() if k not in ("key", "outputs")}


#: Files a study writes at the top of its run directory.
RUN_FILES = ("report.json", "report.html", "summary.md")


def check_run_dir(out: Path, stages: Iterable[Path]) -> None:
    """Before any work: ``out`` is writable and every folder or file the run will
    replace is the workbench's (a run directory the user made is fine as long as
    it holds nothing the run would overwrite)."""
    from workbench.core.files import check_out_dir, owned

    check_out_dir(out)
    for stage in stages:
        Stage(stage, "").check()
    earlier = any((out / "splits").glob("*/key.json"))  # a run dir an earlier version wrote
    if out.is_dir() and not owned(out) and not earlier:
        clash = [out / f for f in (*RUN_FILES, "labels") if (out / f).exists()]
        if clash:
            raise WorkbenchError(
                f"{clash[0]} exists in {out}, which is not a run directory the workbench wrote: "
                "move it away or choose another --out; nothing was deleted"
            )
    for sub in ("labels", "splits", "second", "conditions", "controls"):
        if (out / sub).exists() and not (out / sub).is_dir():
            raise WorkbenchError(f"{out / sub} is a file: move it away or choose another --out")


def stage_dirs(config: StudyConfig, out: Path) -> list[Path]:
    """Every stage folder this run may replace (checked before any work)."""
    splits = [s for s in SPLIT_NAMES if config.items.count(s) > 0]
    dirs = [out / "splits" / s / sub for s in splits for sub in ("short", "")]
    if config.second_model.enabled:
        dirs += [out / "second" / s for s in ("train", "fresh")]
    if config.hedged.enabled:
        hedged = [s for s in config.hedged.splits if config.items.count(s) > 0]
        dirs += [out / "conditions" / "hedged" / s / sub for s in hedged for sub in ("short", "")]
    if config.controls.positive:
        dirs.append(out / "controls" / "positive")
    if config.tempering.enabled:
        dirs.append(out / "sweep")
    if config.traces.n_examples > 0:
        dirs.append(out / "traces")
    return dirs + [out / "causal"]
