"""What every stage shares besides its own config sections.

A stage takes the sections it reads (``[model]``, ``[tempering]``, ...) and this
small context, never the whole study config, so its cache key can say what it read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.model.parallel import Processes
from workbench.study.models import ModelPool

__all__ = ["StageContext"]


@dataclass(frozen=True)
class StageContext:
    """The run directory, the models, caching and progress, the checker and the items' identity.

    Attributes:
        out: the run directory; each stage writes below it.
        models: models loaded on first use.
        checker: ``(item, response) -> bool`` correctness.
        items_key: the ``[items]`` section as JSON: identifies the item sets in cache keys.
        use_cache: reuse a stage whose key matches.
        progress: progress bars on stderr.
        processes: this process's place in a torchrun/accelerate launch (one process
            without a launcher): the generation and capture stages deal shards over them.
    """

    out: Path
    models: ModelPool
    checker: Callable[..., bool]
    items_key: Mapping[str, Any]
    use_cache: bool = True
    progress: bool = True
    processes: Processes = field(default_factory=Processes)
