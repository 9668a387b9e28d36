"""``workbench generate`` (write a condition) and ``workbench compare`` (two conditions).

Example (base vs adapter, the paper's truncation check)::

    workbench generate --model smollm2-135m-instruct --items items.jsonl \\
        --max-new-tokens 64 --out runs/base
    workbench generate --model smollm2-135m-instruct --adapter runs/lora \\
        --items items.jsonl --max-new-tokens 64 --out runs/adapter
    workbench compare runs/base runs/adapter --score domain \\
        --rescore-max-new-tokens 256 --out runs/compare

``compare`` exits with code 2 and one line naming every difference when the
conditions are not comparable; ``--allow KEY`` accepts a difference explicitly.
It writes ``comparison.json`` and ``report.md`` to ``--out``, and with
``--rescore-max-new-tokens`` the rescored conditions to ``--out/rescored/{a,b}``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.cli.options import (
    Backend,
    Device,
    DeviceMap,
    Dtype,
    MaxMemory,
    load_for_launch,
    load_options,
)
from workbench.core.errors import WorkbenchError

__all__ = ["register"]


def generate_command(
    model: Annotated[str, typer.Option(help="Alias, model directory or hub id.")],
    items: Annotated[Path, typer.Option(help="JSONL with id, prompt and any labels.")],
    max_new_tokens: Annotated[
        int, typer.Option(help="Response budget; hitting it marks the response truncated.")
    ],
    out: Annotated[Path, typer.Option(help="Condition directory to write.")],
    adapter: Annotated[Path | None, typer.Option(help="PEFT adapter directory.")] = None,
    do_sample: Annotated[bool, typer.Option(help="Sample instead of greedy decoding.")] = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: Annotated[int, typer.Option(help="Base seed; each item draws from (seed, id).")] = 0,
    batch_size: int = 8,
    chat_template: Annotated[
        bool, typer.Option(help="Render prompts with the chat template when there is one.")
    ] = True,
    dtype: Dtype = "float32",
    device: Device = "cpu",
    device_map: DeviceMap = None,
    max_memory: MaxMemory = None,
    backend: Backend = "hf",
    shard_size: Annotated[
        int, typer.Option(help="Items per shard dealt to a process under torchrun/accelerate.")
    ] = 64,
    trust_remote_code: bool = False,
    score: Annotated[
        list[str] | None,
        typer.Option(
            help="Store per-item scores (domain, coverage, verbal) in generations.jsonl; repeat."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a condition already in --out.")] = False,
    progress: bool = True,
) -> None:
    """Generate a response per item and write a condition directory for `workbench compare`.

    With ``--score domain`` each row also holds ``scores.domain`` (1/0), a label
    source for ``workbench falsify --train-labels DIR/generations.jsonl:scores.domain``.
    """
    from workbench.conditions.condition import CONDITION_FILE, build_condition, check_labels
    from workbench.conditions.scorers import score_key
    from workbench.core.items import read_items
    from workbench.core.progress import say
    from workbench.core.store import check_out_dir
    from workbench.model.dealt import generate_parts
    from workbench.model.generation import generate

    options = load_options(device, dtype, device_map, max_memory, backend)
    check_out_dir(out)  # everything below is checked before any weights load
    if (out / CONDITION_FILE).exists() and not overwrite:
        raise WorkbenchError(f"{out} already holds a condition: pass a new --out or --overwrite")
    if out.is_dir() and any(out.iterdir()) and not (out / CONDITION_FILE).exists():
        raise WorkbenchError(
            f"--out {out} is a folder that holds files but no condition: pass a new or empty folder"
        )
    scorers = [_stored_scorer(spec) for spec in score or []]
    rows = read_items(items)
    check_labels(rows)
    for scorer in scorers:
        scorer.check_items(rows)
    lm, procs = load_for_launch(
        model, options, device=device, device_map=device_map, n_items=len(rows),
        shard_size=shard_size, adapter=adapter, trust_remote_code=trust_remote_code, say=say,
    )  # fmt: skip
    decoding: dict[str, Any] = {
        "max_new_tokens": max_new_tokens, "do_sample": do_sample, "temperature": temperature,
        "top_p": top_p, "top_k": top_k, "seed": seed, "batch_size": batch_size,
        "chat_template": None if chat_template else False, "progress": progress,
    }  # fmt: skip
    if procs.world_size == 1:
        gens = generate(lm, rows, **decoding)
    else:
        parts = out.parent / f".{out.name}.parts"
        dealt = generate_parts(lm, rows, parts, processes=procs, shard_size=shard_size, **decoding)
        if dealt is None:
            return  # the main process scores and writes the condition
        gens = dealt
    cond = build_condition(gens, lm, items=rows)
    stored: dict[str, dict[str, float]] = {it.id: {} for it in cond.items}
    for scorer in scorers:
        values = scorer(cond)
        for item_id, value in values.items():
            stored[item_id][score_key(scorer)] = value
        mean = sum(values.values()) / max(len(values), 1)
        print(f"{scorer.spec}: mean {mean:.3f} over {len(values)} items")
    cond = dataclasses.replace(cond, scores=stored if scorers else {}).write(
        out, overwrite=overwrite
    )
    if procs.world_size > 1:
        shutil.rmtree(out.parent / f".{out.name}.parts", ignore_errors=True)
    print(
        f"wrote {len(cond.items)} responses to {out}: {cond.n_truncated} truncated "
        f"({100 * cond.truncated_fraction:.1f}%) at max_new_tokens {max_new_tokens}"
    )


def _stored_scorer(spec: str) -> Any:
    from workbench.conditions.scorers import Scorer

    scorer = Scorer.parse(spec)
    if scorer.kind in ("judge", "score") or scorer.threshold is not None:
        raise WorkbenchError(
            f"--score {spec!r} cannot be stored at generation: use domain, coverage or verbal "
            "(threshold when reading, e.g. PATH:scores.coverage>=0.5)"
        )
    return scorer


def _rescore(
    cond: Any, max_new_tokens: int, model: str | None, device: str, batch_size: int, judge: Any
) -> Any:
    from workbench.conditions.compare import rescore_condition
    from workbench.core.progress import say
    from workbench.model.loading import load_model

    lm = None
    if cond.n_truncated:
        lm = load_model(
            model or str(cond.model["name"]),
            adapter=cond.model.get("adapter"),
            dtype=str(cond.model.get("dtype", "float32")),
            device=device,
            progress=say,
        )
    new = rescore_condition(cond, lm, max_new_tokens, batch_size=batch_size, progress=True)
    if judge is None:
        return new
    from workbench.labels.judge import judge_differences, score_items

    run = score_items(list(new.items), judge)
    if cond.judge is not None and judge_differences(cond.judge, run):
        raise WorkbenchError(
            f"--judge-config is not the judge that scored {cond.label} "
            f"({'; '.join(judge_differences(cond.judge, run))}): pass the original judge config"
        )
    return dataclasses.replace(new, judge=run)


def compare_command(
    a: Annotated[Path, typer.Argument(help="Condition A (the reference, e.g. the base model).")],
    b: Annotated[Path, typer.Argument(help="Condition B (e.g. the adapter); delta = B - A.")],
    out: Annotated[Path, typer.Option(help="Directory for comparison.json and report.md.")],
    score: Annotated[
        str,
        typer.Option(help="domain, coverage, verbal, judge:AXIS or score:NAME, optionally >=T."),
    ] = "domain",
    allow: Annotated[
        list[str] | None,
        typer.Option(help="Accept this difference (e.g. max_new_tokens, judge_prompt_sha256)."),
    ] = None,
    rescore_max_new_tokens: Annotated[
        int | None,
        typer.Option(help="Regenerate truncated responses at this budget and show the delta move."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Base model for rescoring (default: the one each condition records)."),
    ] = None,
    judge_config: Annotated[
        Path | None, typer.Option(help="Judge config to re-judge rescored responses (judge:AXIS).")
    ] = None,
    device: str = "cpu",
    batch_size: int = 8,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples of the paired delta.")] = 1000,
    seed: int = 0,
) -> None:
    """Compare two conditions; refuse apples to oranges; report truncation and the delta."""
    from workbench.conditions.compare import compare_conditions
    from workbench.conditions.compare_report import comparison_markdown, delta_line
    from workbench.conditions.condition import read_condition
    from workbench.conditions.scorers import Scorer, score_key
    from workbench.core.files import check_outputs, make_owned_dir
    from workbench.core.store import atomic_write_bytes

    check_outputs(out, ("comparison.json", "report.md", "rescored"))
    scorer = Scorer.parse(score)
    ca, cb = read_condition(a), read_condition(b)
    allowed = list(allow or [])
    result = compare_conditions(ca, cb, scorer=scorer, allow=allowed, n_boot=n_boot, seed=seed)
    rescored = None
    if rescore_max_new_tokens is not None:
        from workbench.conditions.compare import check_rescore_budget

        for c in (ca, cb):  # before any model loads
            check_rescore_budget(c, rescore_max_new_tokens)
        judge = None
        if scorer.uses_judge:
            if judge_config is None:
                raise WorkbenchError(
                    "rescoring judge scores needs the judge: pass --judge-config with the original config"
                )
            from workbench.labels.judge import load_judge_config

            judge = load_judge_config(judge_config)
        rescored = tuple(
            _rescore(c, rescore_max_new_tokens, model, device, batch_size, judge) for c in (ca, cb)
        )
        result = compare_conditions(
            ca, cb, scorer=scorer, allow=allowed, rescored=rescored, n_boot=n_boot, seed=seed
        )
    make_owned_dir(out)
    for tag, cond in zip("ab", rescored or (), strict=False):
        if scorer.kind != "judge":  # the rescored rows carry their scores: a label source
            values = scorer(cond)
            stored = {
                k: {**cond.scores.get(k, {}), score_key(scorer): v} for k, v in values.items()
            }
            cond = dataclasses.replace(cond, scores=stored)
        cond.write(out / "rescored" / tag, overwrite=True)
    text = json.dumps(result.to_json(), indent=2) + "\n"
    atomic_write_bytes(out / "comparison.json", text.encode())
    atomic_write_bytes(out / "report.md", comparison_markdown(result).encode())
    for tag, s in (("A", result.a), ("B", result.b)):
        mean = "n/a" if s.mean_score is None else f"{s.mean_score:.3f}"
        print(
            f"{tag} {s.label}: truncated {s.n_truncated}/{s.n_items} "
            f"({100 * s.truncated_fraction:.1f}%), {score} {mean}"
        )
    print(delta_line(result.delta))
    if result.rescored is not None:
        ra, rb, rd = result.rescored
        for tag, s in (("A", ra), ("B", rb)):
            mean = "n/a" if s.mean_score is None else f"{s.mean_score:.3f}"
            print(
                f"rescored {tag} at {s.max_new_tokens}: regenerated {s.n_regenerated}, "
                f"still truncated {s.n_truncated}, {score} {mean}"
            )
        print(
            f"rescored: {delta_line(rd)} (moved {100 * (rd.delta - result.delta.delta):+.1f} points)"
        )
    print(f"wrote comparison.json and report.md to {out}")


def register(app: typer.Typer) -> None:
    """Add ``generate`` and ``compare`` to the ``workbench`` CLI."""
    app.command("generate")(generate_command)
    app.command("compare")(compare_command)
