"""Heads as causal subjects: zero-, mean- and resample-ablation, ITI shifts, random-head controls.

* :func:`head_ablation`: the values that ablate heads at ``head_in``: ``zero``
  (tempering at lambda 0), ``mean`` (the head's mean over a reference set at the
  same positions) or ``resample`` (a reference activation drawn per item);
* :func:`iti_directions` / :func:`iti_shift`: inference-time intervention (Li et
  al., honest_llama): add ``alpha * sigma_h * u_h`` to each selected head, ``u_h``
  the head's mass-mean direction, ``sigma_h`` the std of its activations along
  ``u_h``; select heads with ``HeadProbes.export(k)``;
* :func:`causal_heads`: necessity (ablate the heads), given ``scales`` the
  tempering of the heads by each lambda (the paper's head scaling at the input
  of ``o_proj``), and, given directions, sufficiency (ITI shift of ``+alpha``
  and ``-alpha``), each against the same intervention on ``n_random`` draws of
  as many heads at random (random unit directions for the shifts), with the
  side effects, ``regenerate`` budget and verdict of
  :func:`~interventions.causal.causal_test`.

>>> with ablate_heads(lm, [(3, 1), (5, 0)], kind="mean", reference=train):  # doctest: +SKIP
...     gens = generate(lm, items)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from interventions.base import Applied, model_and_layout
from interventions.causal import (
    CausalResult,
    Scorer,
    _Run,
    check_controls,
    check_regenerate,
    tested,
)
from interventions.ops import collect_site
from interventions.steering import check_alpha
from interventions.targets import Target
from workbench.core.errors import WorkbenchError
from workbench.core.items import Item, as_items
from workbench.model.compile import head_scales
from workbench.model.generation import DecodingConfig
from workbench.model.intervention import Intervention as Value
from workbench.model.positions import PositionSpec

__all__ = [
    "ABLATIONS",
    "ablate_heads",
    "causal_heads",
    "head_ablation",
    "iti_directions",
    "iti_shift",
]

ABLATIONS = ("zero", "mean", "resample")
Head = tuple[int, int]


class _Banks:
    """Per layer, every head's ``head_in`` activations over the reference set (read once)."""

    def __init__(self, model: Any, reference: Sequence[Item], positions: PositionSpec) -> None:
        self.model, self.reference, self.positions = model, reference, positions
        self.cache: dict[int, np.ndarray] = {}

    def __call__(self, layer: int, heads: Sequence[int], head_dim: int) -> np.ndarray:
        if layer not in self.cache:
            bank = collect_site(self.model, self.reference, f"head_in({layer})",
                                positions=self.positions)  # fmt: skip
            self.cache[layer] = bank.reshape(bank.shape[0], -1, head_dim)
        return self.cache[layer][:, list(heads)]


def check_scale(value: Any) -> float:
    """A tempering lambda: finite, >= 0 and not 1 (1 leaves the heads as they are)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise WorkbenchError(f"scale {value!r}: give a finite lambda >= 0, e.g. 0.5")
    if value < 0 or value == 1:
        raise WorkbenchError(
            f"scale {value!r}: give lambda >= 0 other than 1 (1 is the unchanged model)"
        )
    return float(value)


def _by_layer(layout: Any, heads: Sequence[Any]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for key in heads:
        if not (isinstance(key, tuple | list) and len(key) == 2):
            raise WorkbenchError(f"head {key!r} is not a (layer, head) pair: write e.g. (3, 1)")
        layer = layout.layer_index(int(key[0]))
        layout.check_head(layer, int(key[1]))
        out.setdefault(layer, []).append(int(key[1]))
    if not out:
        raise WorkbenchError("no heads given: pass at least one (layer, head)")
    return {layer: sorted(set(hs)) for layer, hs in sorted(out.items())}


def head_ablation(
    model: Any,
    heads: Sequence[Head],
    kind: str = "zero",
    *,
    positions: Any = "all",
    reference: Sequence[Any] | None = None,
    seed: int = 0,
    banks: _Banks | None = None,
) -> list[Value]:
    """Values ablating ``heads`` at ``head_in`` (``zero``, ``mean`` or ``resample``)."""
    if kind not in ABLATIONS:
        raise WorkbenchError(f"ablation {kind!r} unknown: use one of {', '.join(ABLATIONS)}")
    _, layout = model_and_layout(model)
    spec = PositionSpec.parse(positions)
    groups = _by_layer(layout, heads)
    if kind == "zero":
        return head_scales(layout, {(layer, h): 0.0 for layer, hs in groups.items() for h in hs},
                           spec)  # fmt: skip
    if banks is None:
        if reference is None:
            raise WorkbenchError(f"{kind}-ablation needs reference items (e.g. the training split)")
        banks = _Banks(model, as_items(reference), spec)
    out = []
    for layer, hs in groups.items():
        bank = banks(layer, hs, layout.attention(layer).head_dim)
        if kind == "mean":
            out.append(Value(f"head_in({layer})", "mean", bank.mean(0), tuple(hs), spec,
                             note="reference set"))  # fmt: skip
        else:
            out.append(Value(f"head_in({layer})", "resample", bank, tuple(hs), spec, seed=seed,
                             note="reference set"))  # fmt: skip
    return out


def ablate_heads(model: Any, heads: Sequence[Head], kind: str = "zero", **kwargs: Any) -> Applied:
    """A context manager ablating ``heads`` (see :func:`head_ablation` for the arguments)."""
    values = head_ablation(model, heads, kind, **kwargs)
    return Applied(model, values, {"kind": f"{kind}_ablation", "heads": [list(h) for h in heads]})


def heads_from_probes(probes: Any, k: int) -> list[Head]:
    """The ``k`` heads with the best held-out AUC in a ``HeadProbes`` result (ITI's selection)."""
    if k < 1:
        raise WorkbenchError(f"k {k}: select at least one head")
    return [(int(layer), int(head)) for layer, head, _ in probes.export(k)]


def iti_directions(
    activations: Mapping[int, ArrayLike], labels: ArrayLike, heads: Sequence[Head]
) -> dict[Head, np.ndarray]:
    """Per head, the unit mass-mean direction ``mean(y == 1) - mean(y == 0)`` (tokens pooled).

    ``activations``: ``{layer: (n_items, N, n_heads, head_dim)}`` as captured by
    ``head_in(L,last=N)`` (NaN padding ignored).
    """
    y = np.asarray(labels, dtype=np.float64).ravel()
    out = {}
    for layer, head in heads:
        x = np.asarray(activations[layer], dtype=np.float64)
        x = x[:, :, head] if x.ndim == 4 else x[:, head][:, None]
        pooled = np.nanmean(x, axis=1)
        v = pooled[y == 1].mean(0) - pooled[y == 0].mean(0)
        norm = float(np.linalg.norm(v))
        if not np.isfinite(norm) or norm == 0:
            raise WorkbenchError(
                f"head L{layer}.H{head}: the mass-mean direction is zero or undefined"
            )
        out[(layer, head)] = v / norm
    return out


def iti_shift(
    model: Any,
    directions: Mapping[Head, ArrayLike],
    alpha: float,
    *,
    positions: Any = "all",
    sigmas: Mapping[Head, float] | None = None,
) -> list[Value]:
    """``add`` of ``alpha * sigma_h * u_h`` at each head's ``head_in`` (sigma 1 if not given)."""
    _, layout = model_and_layout(model)
    a = check_alpha(alpha, "alpha")
    groups = _by_layer(layout, list(directions))
    out = []
    for layer, hs in groups.items():
        rows = [
            a * (sigmas or {}).get((layer, h), 1.0) * np.asarray(directions[(layer, h)]) for h in hs
        ]
        out.append(Value(f"head_in({layer})", "add", np.stack(rows), tuple(hs), positions))
    return out


def _sigmas(banks: _Banks, layout: Any, directions: Mapping[Head, np.ndarray]) -> dict[Head, float]:
    return {
        (layer, h): float(np.std(banks(layer, [h], layout.attention(layer).head_dim)[:, 0] @ u))
        for (layer, h), u in directions.items()
    }


def causal_heads(
    model: Any,
    items: Sequence[Item | str | Mapping[str, Any]],
    heads: Sequence[Head],
    target: Target,
    *,
    kind: str = "zero",
    directions: Mapping[Head, ArrayLike] | None = None,
    alpha: float = 5.0,
    positions: Any = "all",
    n_random: int = 20,
    seeds: Sequence[int] = (0,),
    decoding: DecodingConfig | None = None,
    reference: Sequence[Any] | None = None,
    random_seed: int = 0,
    batch_size: int = 8,
    scales: Sequence[float] = (),
    regenerate: int | None = None,
    scorers: Mapping[str, Scorer] | None = None,
    known: Mapping[str, Mapping[str, float]] | None = None,
) -> CausalResult:
    """Ablate ``heads`` (temper them by ``scales``, shift them along ``directions``)
    against random heads; ``regenerate`` and ``scorers`` as in ``causal_test``;
    ``known`` as in :func:`~interventions.causal.run_tests` (regenerated metrics of the
    baseline and of the tests on ``heads`` that a sweep already measured)."""
    started = time.perf_counter()
    decoding = decoding or DecodingConfig(max_new_tokens=32)
    seeds = tuple(seeds)
    warnings = check_controls(n_random, seeds, decoding)
    k = check_regenerate(regenerate, n_random, target)
    alpha = check_alpha(alpha, "alpha")
    lambdas = [check_scale(s) for s in scales]
    _, layout = model_and_layout(model)
    spec = PositionSpec.parse(positions)
    parsed = as_items(items)
    chosen = [(layer, h) for layer, hs in _by_layer(layout, heads).items() for h in hs]
    banks = _Banks(model, as_items(reference) if reference is not None else parsed, spec)
    pool = [(layer, h) for layer in layout.layers_with_attention
            for h in range(layout.attention(layer).n_heads) if (layer, h) not in chosen]  # fmt: skip
    if len(pool) < len(chosen):
        raise WorkbenchError(f"{len(chosen)} heads leave {len(pool)} others to draw controls from")
    rng = np.random.default_rng(random_seed)
    draws = [[pool[i] for i in rng.choice(len(pool), len(chosen), replace=False)]
             for _ in range(n_random)]  # fmt: skip

    def ablation(hs: Sequence[Head]) -> list[Value]:
        return head_ablation(model, hs, kind, positions=spec, seed=random_seed, banks=banks)

    def tempered(hs: Sequence[Head], lam: float) -> list[Value]:
        return head_scales(layout, dict.fromkeys(hs, lam), spec)

    tests = {f"necessity ({kind} ablation)": (ablation(chosen), [ablation(d) for d in draws])}
    for lam in lambdas:
        tests[f"tempering (lambda {lam:g})"] = (
            tempered(chosen, lam),
            [tempered(d, lam) for d in draws],
        )
    if directions is not None:
        mine = {k: np.asarray(v, dtype=np.float64) for k, v in directions.items()}
        if sorted(mine) != sorted(chosen):
            raise WorkbenchError("directions must give one direction per chosen head")
        controls = []
        for d in draws:
            rand = {}
            for layer, h in d:
                r = rng.standard_normal(layout.attention(layer).head_dim)
                rand[(layer, h)] = r / np.linalg.norm(r)
            controls.append(rand)
        for sign, name in ((1.0, "sufficiency+ (ITI)"), (-1.0, "sufficiency- (ITI)")):
            tests[name] = (
                iti_shift(model, mine, sign * alpha, positions=spec, sigmas=_sigmas(banks, layout, mine)),
                [iti_shift(model, c, sign * alpha, positions=spec, sigmas=_sigmas(banks, layout, c))
                 for c in controls],
            )  # fmt: skip
    run = _Run(model, parsed, target, decoding, seeds, batch_size, scorers=dict(scorers or {}))
    unknown = set(known or {}) - {"baseline", *tests}
    if unknown:
        raise WorkbenchError(f"known has {sorted(unknown)[0]!r}: use 'baseline' or a test name")
    names = ", ".join(f"L{layer}.H{h}" for layer, h in chosen)
    settings = {
        "heads": [list(h) for h in chosen],
        "kind": kind,
        "positions": spec.to_json(),
        "alpha": alpha if directions is not None else None,
        "scales": lambdas,
        "random_heads": [[list(h) for h in d] for d in draws],
    }
    return tested(
        run, tests, f"heads {names}", f"draws of {len(chosen)} random heads", n_random, k,
        random_seed, settings, warnings, started, known,
    )  # fmt: skip
