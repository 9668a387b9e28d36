"""``workbench causal``: a causal test of a direction or of heads, with random controls.

Inputs are checked before the model is loaded; the command writes
``causal.json`` (every number and the serialised interventions) and ``causal.html``.

Examples::

    workbench causal --model smollm2-135m-instruct --items items.jsonl \\
        --site 'resid(10)' --direction probe_dir.npy --target answer --out runs/causal
    workbench causal --model smollm2-135m-instruct --items items.jsonl \\
        --head 19.2 --head 18.6 --ablation mean --target answer --out runs/causal-heads
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from workbench.core.errors import WorkbenchError

__all__ = ["causal_command", "register"]

TARGETS = ("answer", "probe", "correct")


def _direction(path: Path) -> np.ndarray:
    if not path.is_file():
        raise WorkbenchError(f"--direction {path} does not exist: pass a .npy or .json vector")
    try:
        v = np.load(path) if path.suffix == ".npy" else np.array(json.loads(path.read_text()))
    except (ValueError, OSError) as e:
        raise WorkbenchError(f"--direction {path} is not a .npy or JSON vector ({e})") from None
    return np.asarray(v, dtype=np.float64).ravel()


def _target(kind: str, items: list[Any], direction: np.ndarray | None, read_site: str) -> Any:
    from interventions.targets import Target
    from workbench.labels.domains import check_item

    if kind == "answer":
        missing = [it.id for it in items if "gold" not in it.labels]
        if missing:
            raise WorkbenchError(
                f"--target answer needs a 'gold' label per item ({missing[0]} has none): "
                "use --target probe, or items from workbench.labels.domains"
            )
        return Target.logprob([str(it.labels["gold"]) for it in items], name="gold log-prob")
    if kind == "probe":
        if direction is None:
            raise WorkbenchError("--target probe reads along --direction: pass one")
        return Target.probe(read_site, direction)
    if kind == "correct":
        if not all("family" in it.labels for it in items):
            raise WorkbenchError("--target correct needs a 'family' label per item")
        return Target.scorer("correct", check_item)
    raise WorkbenchError(f"--target {kind!r}: use one of {', '.join(TARGETS)}")


def causal_command(
    model: Annotated[str, typer.Option(help="Model alias, local directory or hub id.")],
    items: Annotated[Path, typer.Option(help="JSONL items (id, prompt, labels).")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    site: Annotated[str, typer.Option(help="Site to write, e.g. resid(10).")] = "resid(-1)",
    direction: Annotated[
        Path | None, typer.Option(help="The direction (.npy or JSON list) at --site.")
    ] = None,
    head: Annotated[
        list[str] | None, typer.Option(help="LAYER.HEAD to test instead; repeat.")
    ] = None,
    ablation: Annotated[str, typer.Option(help="Head ablation: zero, mean or resample.")] = "zero",
    target: Annotated[str, typer.Option(help="answer, probe or correct.")] = "answer",
    read_site: Annotated[str, typer.Option(help="Where --target probe reads.")] = "h_last",
    positions: Annotated[
        str, typer.Option(help="all, prompt, response, last, last:N or indices.")
    ] = "last",
    alpha: Annotated[float, typer.Option(help="Sufficiency step in sigma units.")] = 2.0,
    n_random: Annotated[int, typer.Option(help="Random controls (>= 19 for p <= 0.05).")] = 20,
    seed: Annotated[list[int] | None, typer.Option(help="A decoding seed; repeat.")] = None,
    sample: Annotated[
        bool, typer.Option(help="Sample (needs >= 3 seeds) instead of greedy.")
    ] = False,
    max_new_tokens: Annotated[int, typer.Option(help="Cap per regenerated response.")] = 32,
    reference: Annotated[
        Path | None, typer.Option(help="JSONL reference items for sigma / mean / resample.")
    ] = None,
    backend: Annotated[str, typer.Option(help="hf, nnsight or transformer_lens.")] = "hf",
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "cpu",
) -> None:
    """Test whether intervening on a direction (or heads) moves the target beyond random controls."""
    from rich.console import Console

    from interventions.causal import causal_test, check_controls
    from interventions.causal_heads import ABLATIONS, causal_heads
    from interventions.causal_report import write_causal_report
    from interventions.steering import check_alpha
    from interventions.temper import parse_head
    from workbench.core.items import read_items
    from workbench.core.store import check_out_dir
    from workbench.model.generation import DecodingConfig
    from workbench.model.intervention import write_site
    from workbench.model.loading import load_model
    from workbench.model.positions import PositionSpec

    console = Console(stderr=True)
    heads = [parse_head(h) for h in head or []]
    if heads and direction is not None:
        raise WorkbenchError("pass --direction or --head, not both")
    if not heads and direction is None:
        raise WorkbenchError("nothing to test: pass --direction FILE (with --site) or --head L.H")
    if ablation not in ABLATIONS:
        raise WorkbenchError(f"--ablation {ablation!r}: use one of {', '.join(ABLATIONS)}")
    spec = PositionSpec.parse(positions)
    write_site(site)
    check_alpha(alpha, "--alpha")
    seeds = seed or ([0, 1, 2] if sample else [0])
    decoding = DecodingConfig(max_new_tokens=max_new_tokens, do_sample=sample)
    check_controls(n_random, seeds, decoding)
    vector = _direction(direction) if direction is not None else None
    item_list = read_items(items)
    refs = read_items(reference) if reference is not None else None
    goal = _target(target, item_list, vector, read_site)
    check_out_dir(out)
    lm = load_model(model, device=device, backend=backend)
    common: dict[str, Any] = dict(positions=spec, n_random=n_random, seeds=seeds,
                                  decoding=decoding, reference=refs)  # fmt: skip
    if heads:
        result = causal_heads(lm, item_list, heads, goal, kind=ablation, **common)
    else:
        assert vector is not None
        result = causal_test(lm, item_list, site, vector, goal, alpha=alpha, **common)
    meta = {"model": model, "backend": backend, "items": str(items), "n_items": len(item_list)}
    paths = write_causal_report(out, result, meta=meta)
    for w in result.warnings:
        console.print(f"warning: {w}")
    console.print(f"{result.subject}: {result.verdict}")
    console.print(f"wrote {', '.join(p.name for p in paths.values())} to {out}")


def register(app: typer.Typer) -> None:
    """Add ``causal`` to the ``workbench`` CLI."""
    app.command("causal")(causal_command)
