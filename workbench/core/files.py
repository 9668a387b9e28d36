"""Writing files safely: atomic writes, output directories checked first, ownership.

Every directory the workbench creates for its outputs carries an ownership
marker (:data:`MARKER`, a small JSON file). The workbench replaces only what it
owns: a directory with the marker, or a stage folder an earlier version wrote
(its ``key.json`` or a feature-store ``manifest.json`` is there). Anything else
is refused with its path, so a user's ``traces/important_notes.txt`` is never
deleted by a run.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp()) / "stage"
>>> _ = make_owned_dir(d)
>>> owned(d)
True
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError

__all__ = [
    "MARKER",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "check_out_dir",
    "check_outputs",
    "check_replaceable",
    "make_owned_dir",
    "owned",
    "remove_owned_dir",
    "remove_stale_temps",
    "temp_prefix",
]

#: The ownership marker in every directory the workbench creates.
MARKER = ".workbench-owned"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_prefix(name: str, pid: int | None = None) -> str:
    """The prefix of a temporary file a process writes for ``name`` (see :func:`atomic_path`)."""
    return f".{name}.{os.getpid() if pid is None else pid}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers: nothing of ours is being written right now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: Path, target: Callable[[str], bool]) -> list[Path]:
    """Remove the temporary files a killed writer left in ``folder`` for the files
    ``target`` selects; those of a process still running are kept (several
    processes may write one store)."""
    removed = []
    for p in folder.glob(".*.tmp"):
        parts = p.name[1:].rsplit(".", 3)  # NAME.PID.RANDOM.tmp
        if len(parts) != 4 or not parts[1].isdigit() or not target(parts[0]):
            continue
        if not _alive(int(parts[1])):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def _writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (tried: permissions, a read-only
    disk and root's privileges all show; the probe file is removed at once)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".workbench-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def check_out_dir(path: str | Path, what: str = "--out") -> Path:
    """``path`` as a directory to write into, checked before any work is done.

    It and every folder above it must be a directory or not exist yet, and the
    deepest one that exists must be writable (so an unwritable place fails now,
    not after hours of generation).
    """
    path = Path(path)
    for p in (path, *path.parents):
        if p.is_dir():
            if not _writable(p):
                where = (
                    "is not writable" if p == path else f"cannot be created: {p} is not writable"
                )
                raise WorkbenchError(f"{what} {path} {where}: pass a directory you may write to")
            break
        if p.exists():
            where = "is a file" if p == path else f"is inside {p}, which is a file"
            raise WorkbenchError(f"{what} {path} {where}: pass a directory")
    return path


def _is_store_manifest(file: Path) -> bool:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("workbench-features/")


def owned(path: Path) -> bool:
    """Whether the workbench wrote directory ``path``: its marker, or an earlier
    version's stage folder (``key.json``) or feature store (its ``manifest.json``)."""
    if not path.is_dir() or path.is_symlink():
        return False
    if (path / MARKER).is_file() or (path / "key.json").is_file():
        return True
    return _is_store_manifest(path / "manifest.json")


def make_owned_dir(path: Path) -> Path:
    """Create ``path`` and mark it, and every parent this call creates, as the workbench's."""
    new = [p for p in path.parents if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for p in (path, *new):
        if not (p / MARKER).is_file():
            atomic_write_json(p / MARKER, {"owner": "disposition-workbench"})
    return path


def check_outputs(path: str | Path, names: Iterable[str], what: str = "--out") -> Path:
    """:func:`check_out_dir`, and refuse to replace a file named in ``names`` in a
    folder the workbench has not written into before (no marker): it is the user's.

    Call :func:`make_owned_dir` just before writing, so a re-run may replace them.
    """
    path = check_out_dir(path, what)
    if path.is_dir() and not owned(path):
        clash = [path / n for n in names if (path / n).exists() or (path / n).is_symlink()]
        if clash:
            raise WorkbenchError(
                f"{clash[0]} exists in {path}, which the workbench has not written into: move it "
                f"away or choose another {what}; nothing was replaced"
            )
    return path


def check_replaceable(path: Path, what: str = "output folder") -> None:
    """Refuse, with the path, to replace ``path`` unless it is absent or the workbench's."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        raise WorkbenchError(
            f"{what} {path} exists and is not a folder the workbench wrote: move it away "
            "or choose another --out"
        )
    if not owned(path):
        if not any(path.iterdir()):
            return
        raise WorkbenchError(
            f"{what} {path} holds files the workbench did not write (no {MARKER} marker): "
            "move them away or choose another --out; nothing was deleted"
        )


def remove_owned_dir(path: Path, what: str = "output folder") -> None:
    """Delete ``path`` if the workbench owns it (see :func:`check_replaceable`)."""
    check_replaceable(path, what)
    if path.exists():
        shutil.rmtree(path)
