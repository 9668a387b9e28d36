"""Backends: the same sites, capture and tempering through HF hooks, TransformerLens or nnsight.

Importing this package imports neither TransformerLens nor nnsight; each is
imported when its backend is built (a one-line error names the extra to install
when it is missing).

>>> backend = wrap_backend(lm, "transformer_lens")  # doctest: +SKIP
>>> to_backend_name("head_in(3)", "transformer_lens", lm.layout)  # doctest: +SKIP
'blocks.3.attn.hook_z'
"""

from workbench.model.backends.base import Backend
from workbench.model.backends.factory import wrap_backend
from workbench.model.backends.hf import HFBackend
from workbench.model.backends.lens import LensBackend
from workbench.model.backends.names import (
    BACKEND_NAMES,
    from_backend_name,
    name_table,
    to_backend_name,
    to_backend_names,
)
from workbench.model.backends.nnsight_backend import NNsightBackend

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "HFBackend",
    "LensBackend",
    "NNsightBackend",
    "from_backend_name",
    "name_table",
    "to_backend_name",
    "to_backend_names",
    "wrap_backend",
]
