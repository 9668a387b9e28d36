"""Read sites over exact token ids (prompt ids + generated ids) on any backend.

Fused generate-and-capture runs on the ``hf`` backend only. On another backend
the same values come from a second pass over the very ids the decoding loop
produced (no decode and re-tokenise round trip, which changes the ids of
unusual token sequences), through that backend's own forward pass:

>>> from workbench.model.generation import generate
>>> gens = generate(lm, ["What is 2+2?"], max_new_tokens=3)
>>> seqs = answered_ids(lm, ["What is 2+2?"], gens)
>>> fused = generate(lm, ["What is 2+2?"], max_new_tokens=3, capture=["h_last"])
>>> bool(np.allclose(read_ids(lm, seqs, ["h_last"])["resid(-1,normed)"],
...                  fused.features["resid(-1,normed)"], atol=1e-4))
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workbench.core.items import Item, as_items
from workbench.core.sites import Site, parse_sites
from workbench.model.backends.base import input_device
from workbench.model.capture import forward_sites
from workbench.model.generation import Generations
from workbench.model.loaded import unwrap
from workbench.model.readers import Positions, SiteReader
from workbench.model.tokens import collate, encode_prompts, length_buckets

__all__ = ["answered_ids", "read_ids"]


def answered_ids(
    engine: Any,
    items: Sequence[Item | str | Mapping[str, Any]],
    gens: Generations,
) -> list[list[int]]:
    """Prompt ids (as the decoding loop encoded them) followed by each generated id."""
    lm = unwrap(engine)[0]
    prompts = encode_prompts(
        lm.tokenizer, as_items(items), max_new_tokens=gens.config.max_new_tokens,
        chat_template=gens.config.chat_template, max_positions=lm.max_positions,
    )  # fmt: skip
    return [p + list(g.token_ids) for p, g in zip(prompts, gens, strict=True)]


def read_ids(
    engine: Any, seqs: Sequence[Sequence[int]], sites: Sequence[str | Site], *, batch_size: int = 8
) -> dict[str, np.ndarray]:
    """Sites at the final token of each id sequence (float32, rows in input order)."""
    lm, backend = unwrap(engine)
    reader = SiteReader(lm.layout, parse_sites(sites), early_stop=backend is None)
    out: dict[str, np.ndarray] = {}
    for bucket in length_buckets([len(s) for s in seqs], batch_size):
        rows = [seqs[i] for i in bucket]
        if backend is None:
            values = forward_sites(lm, rows, reader)
        else:
            batch = collate(rows, lm.pad_id, side="left", device=input_device(lm))
            reader.positions = Positions.final(batch.last, batch.first, reader.max_n)
            try:
                backend._forward(batch, reader, False)  # the backend's own pass (ForwardBackend)
                values = reader.take()
            finally:
                reader.values.clear()
        for name, tensor in values.items():
            if name not in out:
                out[name] = np.empty((len(seqs), *tensor.shape[1:]), dtype=np.float32)
            out[name][bucket] = tensor.float().cpu().numpy()
    return out
