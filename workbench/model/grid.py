"""Several conditions x seeds generated in shared batches: per-row interventions.

A sweep regenerates the same items under each condition (a lambda, a random
head set, a control direction) and each seed. Run one after another, every
condition pays for its own half-empty batches; here every (condition, seed,
item) is one row of a single continuous-batching run
(:mod:`workbench.model.continuous`), so rows of different conditions share each
forward pass. Each condition's interventions are compiled with its index
(:attr:`~workbench.model.bound.Bound.group`) and write only the rows of that
condition (:attr:`~workbench.model.positions.Frame.groups`); a row keeps its
item's key, so resampling and patching draw per item as in :func:`generate`,
and its own generator, seeded by ``(seed, item id)``, so its draws do not depend
on which rows share its batch. Each cell equals ``generate(lm, items,
seed=seed, interventions=condition)`` up to floating-point ties (the rows pad
differently). A prompt prefix every item shares (the chat template's system turn)
is prefilled once per condition when every condition writes it as it would inside
each prompt (:func:`~workbench.model.intervention.prefix_invariant`).

Where the continuous loop cannot run (a cache that cannot be cut per row, a
backend other than ``hf``), the cells are generated one after another with
:func:`generate`, and :attr:`Grid.loop` says so.

>>> from workbench.model.compile import head_scales
>>> grid = generate_grid(lm, ["2+2?", "3+3?"], [[], head_scales(lm.layout, {(0, 1): 0.0})],
...                      seeds=[0, 1], decoding=DecodingConfig(max_new_tokens=3))
>>> len(grid.cell(1, seed=0)), grid.loop
(2, 'continuous (shared batches)')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.core.progress import progress_bar
from workbench.model.compile import hf_hooks
from workbench.model.decoding import Decoder, DecodingConfig
from workbench.model.generation import (
    Generations,
    eos_ids,
    generate,
    response,
    run_continuous,
    static_fallback,
)
from workbench.model.hooks import attach, count_hooks
from workbench.model.intervention import Intervention, prefix_invariant
from workbench.model.loaded import LoadedModel, unwrap
from workbench.model.tokens import encode_prompts

__all__ = ["Grid", "generate_grid"]


@dataclass(frozen=True)
class Grid:
    """The generations of every condition x seed, and which loop ran them.

    Attributes:
        generations: ``generations[c][s]``: condition ``c`` under ``seeds[s]``.
        seeds: the seeds, in order.
        loop: ``continuous (shared batches)``, or ``sequential (fallback: why)``.
    """

    generations: tuple[tuple[Generations, ...], ...]
    seeds: tuple[int, ...]
    loop: str

    def cell(self, condition: int, seed: int) -> Generations:
        """Condition ``condition``'s generations under ``seed``."""
        if not 0 <= condition < len(self.generations):
            raise WorkbenchError(
                f"condition {condition} out of range: the grid has {len(self.generations)}"
            )
        if seed not in self.seeds:
            raise WorkbenchError(f"seed {seed} not in the grid's seeds {list(self.seeds)}")
        return self.generations[condition][self.seeds.index(seed)]


def _check(conditions: Sequence[Sequence[Intervention]], seeds: Sequence[int]) -> None:
    if not conditions:
        raise WorkbenchError("generate_grid: pass at least one condition (a list of interventions)")
    for c, values in enumerate(conditions):
        if isinstance(values, Intervention | str) or not isinstance(values, Sequence):
            raise WorkbenchError(
                f"condition {c} is {type(values).__name__}: pass a list of Intervention values "
                "per condition ([] for none)"
            )
        for v in values:
            if not isinstance(v, Intervention):
                raise WorkbenchError(
                    f"condition {c} holds {v!r}: conditions share batches only as Intervention "
                    "values (an Applied context manager's .values)"
                )
    if not seeds or len(set(seeds)) != len(seeds):
        raise WorkbenchError(f"seeds {list(seeds)!r}: pass at least one seed, each once")


def generate_grid(
    lm: LoadedModel | Any,
    items: Sequence[Item | str | Mapping[str, Any]],
    conditions: Sequence[Sequence[Intervention]],
    seeds: Sequence[int] = (0,),
    *,
    decoding: DecodingConfig | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> Grid:
    """Generate ``items`` under every condition and seed, the rows sharing batches.

    Args:
        lm: a loaded model (any backend; shared batches on ``hf``).
        items: items or bare prompts.
        conditions: per condition, the :class:`Intervention` values active for its
            rows (``[]``: none); each is checked against the model before any work.
        seeds: base seeds; a row of item ``i`` under seed ``s`` draws from ``(s, i's id)``.
        decoding: max_new_tokens and sampling (its ``seed`` is replaced by each of ``seeds``).
        batch_size: rows decoded at once (of any conditions).
        progress: show a progress bar.
    """
    _check(conditions, seeds)
    config = decoding or DecodingConfig()
    items = as_items(items)
    model, backend = unwrap(lm)
    seeds = [int(s) for s in seeds]
    why = (
        f"backend {backend.name} compiles one set of interventions per pass"
        if backend is not None
        else static_fallback(model, Decoder(model))
    )
    if why is not None:
        return _sequential(lm, items, conditions, seeds, config, batch_size, progress, why)
    # a prompt prefix shared by every row is prefilled once per condition, under its edits
    share = count_hooks(model.model) == 0 and all(prefix_invariant(c) for c in conditions)
    hooks = [h for c, values in enumerate(conditions) for h in hf_hooks(model.layout, values, c)]
    prompts = encode_prompts(
        model.tokenizer, items, max_new_tokens=config.max_new_tokens,
        chat_template=config.chat_template, max_positions=model.max_positions,
    )  # fmt: skip
    cells = [(c, s) for c in range(len(conditions)) for s in range(len(seeds))]
    n = len(items)
    rows = [(c, s, i) for c, s in cells for i in range(n)]
    with progress_bar("generate", len(rows), progress) as bar, attach(hooks):
        decoded = run_continuous(
            model, Decoder(model), [prompts[i] for _, _, i in rows],
            [items[i].id for _, _, i in rows], [seeds[s] for _, s, _ in rows], config,
            set(eos_ids(model)), None, batch_size, share_prefix=share, advance=bar.advance,
            groups=[c for c, _, _ in rows],
        )  # fmt: skip
    loop = "continuous (shared batches)"
    out: list[list[Generations]] = [[] for _ in conditions]
    for k, (c, s) in enumerate(cells):
        gens = tuple(
            response(model, items[i], decoded.tokens[k * n + i], decoded.truncated[k * n + i])
            for i in range(n)
        )
        out[c].append(Generations(gens, replace(config, seed=seeds[s]), loop=loop))
    return Grid(tuple(tuple(g) for g in out), tuple(seeds), loop)


def _sequential(
    lm: Any,
    items: Sequence[Item],
    conditions: Sequence[Sequence[Intervention]],
    seeds: list[int],
    config: DecodingConfig,
    batch_size: int,
    progress: bool,
    why: str,
) -> Grid:
    """One :func:`generate` call per cell (the fallback)."""
    out: list[list[Generations]] = []
    with progress_bar("generate", len(conditions) * len(seeds), progress) as bar:
        for values in conditions:
            row = []
            for seed in seeds:
                row.append(
                    generate(
                        lm,
                        items,
                        **{**config.to_json(), "seed": seed},
                        batch_size=batch_size,
                        interventions=list(values),
                    )  # fmt: skip
                )
                bar.advance(1)
            out.append(row)
    reason = why.removeprefix("static (fallback: ").removesuffix(")")
    return Grid(tuple(tuple(r) for r in out), tuple(seeds), f"sequential (fallback: {reason})")
