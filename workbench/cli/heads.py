"""``workbench attribute`` and ``workbench temper``.

Inputs are read and checked before any model is loaded or anything is
written; each command writes one JSON file and one HTML page into ``--out``.

Examples::

    workbench capture ... --site "head_in(3,last=32)" --site "head_in(7,last=32)" --out runs/feats
    workbench attribute --features runs/feats --correct labels.jsonl:correct \\
        --verbal labels.jsonl:verbal --compare cw:cr --out runs/attr

    workbench temper --model smollm2-135m-instruct --items items.jsonl \\
        --head 3.1 --head 7.4 --lambda 0.5 --lambda 1.0 --seed 0 --seed 1 --out runs/temper
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from workbench.cli.options import Backend, Device, DeviceMap, Dtype, MaxMemory, load_options
from workbench.core.errors import WorkbenchError

__all__ = ["attribute_command", "register", "temper_command"]


def _cohort_pair(text: str, available: list[str]) -> tuple[str, str]:
    a, sep, b = text.partition(":")
    if not sep or a not in available or b not in available or a == b:
        raise WorkbenchError(
            f"--compare {text!r} is not A:B with two different cohorts among {', '.join(available)} "
            "(cw:cr needs --verbal; wrong:right works without)"
        )
    return a, b


def attribute_command(
    features: Annotated[
        Path, typer.Option(help="Feature store directory with head_in(L,last=N) sites.")
    ],
    correct: Annotated[str, typer.Option(help="PATH[:FIELD][>=T] of per-item correctness.")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    verbal: Annotated[str | None, typer.Option(help="PATH[:FIELD] of assert/hedge labels.")] = None,
    site: Annotated[
        list[str] | None, typer.Option(help="head_in site to use; repeat (default: all).")
    ] = None,
    compare: Annotated[
        str, typer.Option(help="Cohorts A:B among cr, cw, hr, hw, right, wrong.")
    ] = "cw:cr",
    top: Annotated[int, typer.Option(help="Top-k heads exported per ranking.")] = 20,
    collinear_cos: Annotated[
        float, typer.Option(help="Flag heads with cos(mu_a, mu_b) >= this.")
    ] = 0.99,
    folds: Annotated[int, typer.Option(help="Folds of held-out d and head probes.")] = 5,
    probes: Annotated[bool, typer.Option(help="Also fit one linear probe per head.")] = True,
    C: Annotated[
        float, typer.Option("--C", help="Inverse regularisation of the head probes.")
    ] = 1.0,
) -> None:
    """Attribute a behaviour to attention heads: cohort A against cohort B, per head."""
    from interventions.activations import layers_from_features
    from interventions.attribution import attribute_heads
    from interventions.cohorts import cohorts_from_labels
    from interventions.head_probes import head_probes
    from interventions.report import write_attribution_report
    from probes.labels import read_labels
    from workbench.core.files import check_outputs, make_owned_dir
    from workbench.core.progress import say
    from workbench.core.store import FeatureStore

    check_outputs(out, ("attribution.json", "attribution.html"))
    store = FeatureStore(features)
    names = site or [s for s in store.sites if s.startswith("head_in")]
    missing = [s for s in names if s not in store.sites]
    if missing or not names:
        raise WorkbenchError(
            f"{features} holds no site {missing[0] if missing else 'head_in(...)'} (it holds "
            f"{', '.join(store.sites)}): capture head_in(L,last=N) sites"
        )
    n_layers = store.manifest.get("meta", {}).get("model", {}).get("n_layers")
    layers = layers_from_features({s: store.load(s) for s in names}, n_layers=n_layers)
    ids = store.item_ids
    read = {"correct": read_labels(correct, ids=ids)}
    if verbal is not None:
        read["verbal"] = read_labels(verbal, ids=ids)
    labels = {k: v.values for k, v in read.items()}
    for what, y in labels.items():
        if y.size != store.n_items:
            raise WorkbenchError(
                f"--{what} has {y.size} labels but {features} holds {store.n_items} items: "
                "pass labels for the same items (in the same order, or with an id field)"
            )
    cohorts = cohorts_from_labels(labels["correct"], labels.get("verbal"))
    a, b = _cohort_pair(compare, sorted(cohorts))
    attr = attribute_heads(
        layers, cohorts[a], cohorts[b], names=(a, b), collinear_cos=collinear_cos, folds=folds
    )
    result = None
    if probes:
        if min(attr.n_a, attr.n_b) >= max(folds, 2):
            y = np.where(cohorts[a], 1.0, np.where(cohorts[b], 0.0, np.nan))
            result = head_probes(layers, y, folds=folds, C=C)
        else:
            say(f"note: head probes skipped: a cohort has fewer than {folds} items")
    matched = {k: v.matched_by for k, v in read.items()}
    for what in (k for k, how in matched.items() if how == "order"):
        say(f"note: --{what} labels follow file order (the label file carries no item ids)")
    meta = {
        "labels_matched_by": matched,
        "features": str(features),
        "sites": names,
        "correct": correct,
        "verbal": verbal,
        "compare": compare,
        "cohort_sizes": {k: int(v.sum()) for k, v in cohorts.items()},
    }
    paths = write_attribution_report(make_owned_dir(out), attr, result, meta=meta, top_k=top)
    say(f"{a} n={attr.n_a} vs {b} n={attr.n_b}; top heads by magnitude d:")
    for layer, head, d in attr.export("magnitude", min(top, 5)):
        h = attr.head(layer, head)
        flag = " [collinear]" if h.collinear else ""
        say(f"  L{layer}.H{head}: d={d:+.3f} cos={h.cos:.3f}{flag}")
    say(f"wrote {', '.join(p.name for p in paths.values())} to {out}")


def temper_command(
    model: Annotated[str, typer.Option(help="Model alias, local directory or hub id.")],
    items: Annotated[Path, typer.Option(help="JSONL items (id, prompt, labels).")],
    lambdas: Annotated[list[float], typer.Option("--lambda", help="A factor to sweep; repeat.")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    head: Annotated[list[str] | None, typer.Option(help="LAYER.HEAD to scale; repeat.")] = None,
    layer: Annotated[
        list[int] | None, typer.Option(help="Layer to scale with --at mlp; repeat.")
    ] = None,
    seed: Annotated[
        list[int] | None, typer.Option(help="A sampling seed; repeat (default 0 1).")
    ] = None,
    at: Annotated[
        str, typer.Option(help="o_proj (heads), v_proj (kv heads) or mlp (layers).")
    ] = "o_proj",
    max_new_tokens: Annotated[int, typer.Option(help="Cap per response.")] = 64,
    greedy: Annotated[bool, typer.Option(help="Greedy decoding (seeds then do not vary).")] = False,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = 1.0,
    batch_size: Annotated[int, typer.Option(help="Prompts per batch.")] = 8,
    device: Device = "cpu",
    dtype: Dtype = "float32",
    device_map: DeviceMap = None,
    max_memory: MaxMemory = None,
    backend: Backend = "hf",
    positions: Annotated[
        str, typer.Option(help="all, prompt, response, last, last:N or indices.")
    ] = "all",
    ablation: Annotated[
        str, typer.Option(help="What lambda 0 means: zero, or mean (over the items).")
    ] = "zero",
) -> None:
    """Sweep head tempering (or value / MLP scaling) over lambdas and seeds; score and report."""
    from rich.console import Console

    from interventions.report import write_sweep_report
    from interventions.sweep import temper_sweep
    from interventions.temper import SITES, parse_head
    from workbench.core.files import check_outputs, make_owned_dir
    from workbench.core.items import read_items
    from workbench.labels.domains import check_item
    from workbench.labels.verbal import classify_verbal
    from workbench.model.generation import DecodingConfig
    from workbench.model.intervention import check_factor
    from workbench.model.loading import load_model
    from workbench.model.positions import PositionSpec

    options = load_options(device, dtype, device_map, max_memory, backend)
    console = Console(stderr=True, markup=False, highlight=False)  # paths print as written
    if at not in SITES:
        raise WorkbenchError(f"--at {at!r}: use one of {', '.join(SITES)}")
    targets: list[Any] = [parse_head(h) for h in head or []] if at != "mlp" else list(layer or [])
    if not targets:
        raise WorkbenchError(
            "nothing to scale: pass --layer L with --at mlp"
            if at == "mlp"
            else f"nothing to scale: pass --head L.H with --at {at}"
        )
    for lam in lambdas:
        check_factor(lam, "--lambda")
    spec = PositionSpec.parse(positions)
    if ablation not in ("zero", "mean") or (ablation == "mean" and at != "o_proj"):
        raise WorkbenchError(
            f"--ablation {ablation!r}: use zero, or mean with --at o_proj "
            "(resample ablation: workbench causal --ablation resample)"
        )
    seeds = seed or [0, 1]
    decoding = DecodingConfig(
        max_new_tokens=max_new_tokens, do_sample=not greedy, temperature=temperature, top_p=top_p
    )
    item_list = read_items(items)
    check_outputs(out, ("sweep.json", "sweep.html"))
    scorers = {"asserts": lambda it, r: classify_verbal(r) == "assert"}
    if all("family" in it.labels for it in item_list):
        scorers["correct"] = check_item
    lm = load_model(model, **options.load_kwargs())
    result = temper_sweep(
        lm,
        item_list,
        targets,
        lambdas,
        seeds,
        scorers,
        at=at,
        decoding=decoding,
        batch_size=batch_size,
        progress=True,
        positions=spec,
        ablation=ablation,
        reference_items=item_list if ablation == "mean" else None,
    )
    meta = {"model": lm.describe(), "items": str(items), "n_items": len(item_list), "at": at,
            "positions": spec.to_json(), "ablation": ablation}  # fmt: skip
    paths = write_sweep_report(make_owned_dir(out), result, meta=meta)
    for metric in result.metrics:
        row = ", ".join(
            f"{result.parameter}={s.value:g}: {s.mean:.3f} [{s.lo:.3f}, {s.hi:.3f}]"
            for s in result.summaries
            if s.metric == metric
        )
        console.print(f"{metric} ({result.monotonic[metric]}): {row}")
    if "correct" not in scorers:
        console.print("note: items carry no 'family' label, so correctness was not scored")
    for w in result.warnings:
        console.print(f"warning: {w}")
    verdict = "at least one" if result.any_exceeds else "no"
    console.print(
        f"{verdict} scored change from {result.parameter}={result.reference:g} exceeds the seed-to-seed spread"
    )
    console.print(f"wrote {', '.join(p.name for p in paths.values())} to {out}")


def register(app: typer.Typer) -> None:
    """Add ``attribute`` and ``temper`` to the ``workbench`` CLI."""
    app.command("attribute")(attribute_command)
    app.command("temper")(temper_command)
