"""``workbench disposition`` and ``workbench diagnose``: analyses from label files alone.

For labels without features (the paper's Gemma 4 E2B): the 2x2 of correct x
assert with the assertion asymmetry and its bootstrap interval; the failure
taxonomy from train and fresh labels plus AUCs given as numbers or computed
from per-item score files. Both print their JSON on stdout (and write it to
``--out`` when given) and one readable line on stderr. Label files are
matched by item id (``id`` or the paper's ``i``) where both carry ids.

Example (the paper's Gemma 4 E2B step16 disposition)::

    A=../shared/paper-artifacts
    workbench disposition --correct $A/judge_v4_step16.json:correct \\
        --verbal $A/judge_v4_step16.json:verbal
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from workbench.core.errors import WorkbenchError

__all__ = ["register"]


def _emit(doc: dict[str, Any], out: Path | None, line: str) -> None:
    from rich.console import Console

    text = json.dumps(doc, indent=2) + "\n"
    if out is not None:
        from workbench.core.store import atomic_write_bytes

        if out.is_dir():
            raise WorkbenchError(f"--out {out} is a directory: pass a file path, e.g. {out}/x.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, text.encode())
    typer.echo(text, nl=False)
    Console(stderr=True).print(line, soft_wrap=True, markup=False)


def _values_summary(spec: str, ids: list[str] | None, n_boot: int, seed: int) -> Any:
    """The unthresholded values behind ``PATH:FIELD>=T`` (None when the spec has no threshold)."""
    from probes.labels import load_values, parse_spec
    from probes.labels_only import summarise_values

    path, field, threshold = parse_spec(spec)
    if threshold is None:
        return None
    body = f"{path}:{field}" if field else str(path)
    return summarise_values(load_values(body, ids=ids), n_boot=n_boot, seed=seed).to_json()


def disposition_command(
    correct: Annotated[str, typer.Option(help="PATH[:FIELD][>=T]: 1 = correct.")],
    verbal: Annotated[str, typer.Option(help="PATH[:FIELD]: assert/hedge (or 1/0).")],
    threshold: Annotated[
        float | None, typer.Option(help="Binarise a continuous --correct: >= T is 1.")
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples of the asymmetry.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON to this file.")] = None,
) -> None:
    """The 2x2 of correct x assert, assert rates and the assertion asymmetry (with interval)."""
    from probes.labels import load_labels, record_ids
    from probes.labels_only import disposition

    ids = record_ids(correct)
    c = load_labels(correct, threshold=threshold)
    v = load_labels(verbal, ids=ids if record_ids(verbal) is not None else None)
    if c.size != v.size:
        raise WorkbenchError(
            f"--correct has {c.size} items but --verbal has {v.size}: pass files for the same "
            "items (with ids, they are matched by id)"
        )
    result = disposition(c, v, n_boot=n_boot, seed=seed)
    doc = result.to_json()
    doc["correct_values"] = _values_summary(correct, ids, n_boot, seed)
    _emit(doc, out, result.sentence())


def _auc_input(
    number: float | None, scores: str | None, ids: list[str] | None, option: str
) -> tuple[float | None, np.ndarray | None]:
    from probes.labels import load_values

    if number is not None and scores is not None:
        raise WorkbenchError(f"--{option}-auc and --{option}-scores both given: pass one")
    return number, None if scores is None else load_values(scores, ids=ids)


def diagnose_command(
    train_labels: Annotated[str, typer.Option(help="PATH[:FIELD][>=T] of the training labels.")],
    fresh_labels: Annotated[str, typer.Option(help="PATH[:FIELD][>=T] of the fresh labels.")],
    fresh_auc: Annotated[float | None, typer.Option(help="The transfer AUC as a number.")] = None,
    fresh_scores: Annotated[
        str | None, typer.Option(help="PATH[:FIELD]: per-item fresh scores (instead).")
    ] = None,
    cv_auc: Annotated[float | None, typer.Option(help="The CV AUC as a number.")] = None,
    train_scores: Annotated[
        str | None, typer.Option(help="PATH[:FIELD]: per-item out-of-fold training scores.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Binarise continuous labels: >= T is 1.")
    ] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for AUCs from scores.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON to this file.")] = None,
) -> None:
    """The failure-mode taxonomy from labels plus AUCs (numbers or per-item score files)."""
    from probes.labels import load_labels, record_ids
    from probes.labels_only import diagnose_labels

    train_ids, fresh_ids = record_ids(train_labels), record_ids(fresh_labels)
    ty = load_labels(train_labels, threshold=threshold)
    fy = load_labels(fresh_labels, threshold=threshold)
    f_num, f_scores = _auc_input(
        fresh_auc, fresh_scores, fresh_ids if fresh_scores and record_ids(fresh_scores) else None,
        "fresh",
    )  # fmt: skip
    t_num, t_scores = _auc_input(
        cv_auc, train_scores, train_ids if train_scores and record_ids(train_scores) else None,
        "cv" if train_scores is None else "train",
    )  # fmt: skip
    d = diagnose_labels(
        ty, fy, fresh_auc=f_num, cv_auc=t_num, fresh_scores=f_scores, train_scores=t_scores,
        n_boot=n_boot, seed=seed,
    )  # fmt: skip
    doc = {"schema": "probes.diagnosis/1", **d.to_json()}
    doc["train_values"] = _values_summary(train_labels, None, n_boot, seed)
    doc["fresh_values"] = _values_summary(fresh_labels, None, n_boot, seed)
    _emit(doc, out, f"diagnosis: {d.verdict} ({', '.join(d.flags) or 'no flags'}). {d.explanation}")


def register(app: typer.Typer) -> None:
    """Add ``disposition`` and ``diagnose`` to the ``workbench`` CLI."""
    app.command("disposition")(disposition_command)
    app.command("diagnose")(diagnose_command)
