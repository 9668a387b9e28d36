"""``workbench falsify``: the five-step pipeline (and the confound step) on feature and label files.

Every input is read and checked before anything is written; the outputs
(``report.json``, ``report.md``, one HTML file per figure) are written
atomically at the end, so a bad input leaves ``--out`` untouched.

Example (the paper's SmolLM2 Arc 3 Step 5)::

    A=../shared/paper-artifacts
    workbench falsify --train $A/smollm_step16_features.npz \\
        --train-labels $A/smollm_step16_features.npz:coverage \\
        --fresh $A/smollm_fresh_features.npz \\
        --fresh-labels $A/smollm_fresh_judged_gold.json:labels \\
        --threshold 0.5 --C 1.0 --C 0.1 --out runs/smollm-falsify
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from workbench.core.errors import WorkbenchError

__all__ = ["register"]

PROBES = ("linear", "mlp", "mass-mean")


def _split_axis(text: str) -> tuple[str, str, str | None]:
    name, sep, specs = text.partition("=")
    parts = [p for p in specs.split(",") if p] if sep else []
    if not name or not 1 <= len(parts) <= 2:
        raise WorkbenchError(
            f"--axis {text!r} is not NAME=TRAIN_LABELS[,FRESH_LABELS]: e.g. "
            "--axis completeness=judge_step16.json,judge_fresh.json"
        )
    return name, parts[0], parts[1] if len(parts) == 2 else None


def _named_specs(texts: list[str] | None, option: str) -> dict[str, str]:
    """``NAME=SPEC`` options by name (each name once)."""
    out: dict[str, str] = {}
    for text in texts or []:
        name, sep, spec = text.partition("=")
        if not name or not sep or not spec:
            raise WorkbenchError(
                f"{option} {text!r} is not NAME=SPEC: e.g. {option} length=labels.json:n_tokens:num"
            )
        if name in out:
            raise WorkbenchError(f"{option} {name!r} is given twice: name each confound once")
        out[name] = spec
    return out


def _layers(spec: str) -> np.ndarray:
    """Layer features: a 3-D ``X`` in an .npz is kept for pooling; else as any features."""
    from probes.labels import load_features, parse_spec
    from workbench.core.store import load_npz

    path, key, _ = parse_spec(spec)
    if path.suffix.lower() == ".npz":
        arrays = load_npz(path)
        arr = arrays.get(key or "X")
        if arr is not None and arr.ndim == 3 and arr.dtype.kind in "biuf" and arr.size:
            return arr
    return load_features(spec)


def _note_missing(what: str, y: np.ndarray | None) -> None:
    from workbench.core.progress import say

    if y is not None and np.isnan(y).any():
        say(
            f"note: {int(np.isnan(y).sum())} of {y.size} {what} items have no label and are "
            "left out of that trial"
        )


def falsify_command(
    train: Annotated[str, typer.Option(help="Training features: store dir[:SITE] or .npz (X).")],
    train_labels: Annotated[str, typer.Option(help="PATH[:FIELD][>=T] of the training labels.")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    fresh: Annotated[str | None, typer.Option(help="Fresh held-out features.")] = None,
    fresh_labels: Annotated[str | None, typer.Option(help="PATH[:FIELD][>=T], fresh.")] = None,
    axis: Annotated[
        list[str] | None,
        typer.Option(help="NAME=TRAIN_LABELS[,FRESH_LABELS]; repeat per axis (step 3)."),
    ] = None,
    axis_threshold: Annotated[
        float | None, typer.Option(help="Binarise axis scores: >= T is 1 (judge 1-5: 4).")
    ] = None,
    second_model_train: Annotated[str | None, typer.Option(help="Step 5 features.")] = None,
    second_model_fresh: Annotated[str | None, typer.Option(help="Step 5 fresh features.")] = None,
    second_model_train_labels: Annotated[
        str | None, typer.Option(help="Step 5 labels (default: --train-labels).")
    ] = None,
    second_model_fresh_labels: Annotated[
        str | None, typer.Option(help="Step 5 fresh labels (default: --fresh-labels).")
    ] = None,
    layers_train: Annotated[str | None, typer.Option(help="Step 4: pooled layer features.")] = None,
    layers_fresh: Annotated[str | None, typer.Option(help="Step 4: fresh layer features.")] = None,
    last_n: Annotated[int, typer.Option(help="N for (items, layers, d) arrays in step 4.")] = 4,
    C: Annotated[list[float] | None, typer.Option("--C", help="Regularisation; repeat.")] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Binarise continuous labels: >= T is 1.")
    ] = None,
    probe: Annotated[str, typer.Option(help="linear, mlp or mass-mean.")] = "linear",
    folds: Annotated[int, typer.Option(help="Stratified CV folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of folds, bootstrap, shuffles.")] = 0,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples per AUC.")] = 1000,
    n_perm: Annotated[int, typer.Option(help="Label shuffles per AUC and asymmetry null.")] = 1000,
    n_control: Annotated[
        int, typer.Option(help="Control-task refits (shuffled labels) of the chosen setting.")
    ] = 5,
    figures: Annotated[bool, typer.Option(help="Write the HTML figures.")] = True,
    train_confound: Annotated[
        list[str] | None,
        typer.Option(help="NAME=PATH[:FIELD][:cat|:num], training items; repeat (step 6)."),
    ] = None,
    fresh_confound: Annotated[
        list[str] | None,
        typer.Option(help="NAME=PATH[:FIELD][:cat|:num], fresh items; one per --train-confound."),
    ] = None,
    erase: Annotated[
        bool, typer.Option(help="Step 6: LEACE-erase the confounds and re-run steps 1-2.")
    ] = True,
) -> None:
    """Run the five-step falsification pipeline and write report.json, report.md, figures."""
    from rich.console import Console

    from probes.axes import load_axis
    from probes.estimators import LinearProbe, MassMeanProbe, MLPProbe
    from probes.labels import feature_ids, load_features, load_labels, read_labels
    from probes.pipeline import falsify
    from workbench.core.files import check_outputs, make_owned_dir
    from workbench.core.progress import say
    from workbench.core.store import atomic_write_bytes

    console = Console(stderr=True, markup=False, highlight=False)
    check_outputs(out, ("report.json", "report.md", "figures.html"))
    if probe not in PROBES:
        raise WorkbenchError(f"--probe {probe!r} is unknown: pass one of {', '.join(PROBES)}")
    if (fresh is None) != (fresh_labels is None):
        raise WorkbenchError("--fresh and --fresh-labels go together: pass both or neither")
    if (layers_train is None) and layers_fresh is not None:
        raise WorkbenchError("--layers-fresh needs --layers-train: pass both")
    if (second_model_train is None) and second_model_fresh is not None:
        raise WorkbenchError("--second-model-fresh needs --second-model-train: pass both")
    confound_specs = (
        _named_specs(train_confound, "--train-confound"),
        _named_specs(fresh_confound, "--fresh-confound"),
    )
    if (confound_specs[0] or confound_specs[1]) and fresh is None:
        raise WorkbenchError(
            "--train-confound/--fresh-confound need the fresh set: pass --fresh and --fresh-labels"
        )

    with console.status("reading features and labels"):
        X = load_features(train)
        train_ids = feature_ids(train)  # labels follow these ids when their records carry ids
        fresh_ids = feature_ids(fresh) if fresh else None
        read = {"train": read_labels(train_labels, threshold=threshold, ids=train_ids)}
        Xf = load_features(fresh) if fresh else None
        if fresh and fresh_labels:
            read["fresh"] = read_labels(fresh_labels, threshold=threshold, ids=fresh_ids)
        y, yf = read["train"].values, read["fresh"].values if "fresh" in read else None
        axes = {}
        for text in axis or []:
            name, t_spec, f_spec = _split_axis(text)
            if name in axes:
                raise WorkbenchError(f"--axis {name!r} is given twice: name each axis once")
            ty = load_axis(t_spec, name, threshold=axis_threshold, ids=train_ids)
            fy = (
                load_axis(f_spec, name, threshold=axis_threshold, ids=fresh_ids) if f_spec else None
            )
            axes[name] = (ty, fy)
        layers = None
        if layers_train:
            layers = (_layers(layers_train), _layers(layers_fresh) if layers_fresh else None)
        second = second_labels = None
        if second_model_train:
            second = (
                load_features(second_model_train),
                load_features(second_model_fresh) if second_model_fresh else None,
            )
            ty2 = (
                load_labels(
                    second_model_train_labels,
                    threshold=threshold,
                    ids=feature_ids(second_model_train),
                )
                if second_model_train_labels
                else y
            )
            fy2 = (
                load_labels(
                    second_model_fresh_labels,
                    threshold=threshold,
                    ids=feature_ids(second_model_fresh) if second_model_fresh else None,
                )
                if second_model_fresh_labels
                else yf
            )
            second_labels = (ty2, fy2)
        from probes.confound_specs import load_confounds

        confounds = load_confounds(
            *confound_specs, train_ids=train_ids, fresh_ids=fresh_ids
        )  # fmt: skip

    estimator = {"linear": LinearProbe(), "mlp": MLPProbe(), "mass-mean": MassMeanProbe()}[probe]
    Cs = tuple(C) if C else (1.0,)
    with console.status("checking inputs") as status:
        report = falsify(
            X,
            y,
            fresh_X=Xf,
            fresh_y=yf,
            axes=axes or None,
            layers=layers,
            n_last_layers=last_n,
            second_model=second,
            second_model_labels=second_labels,
            confounds=confounds or None,
            erase_confounds=erase,
            probe=estimator,
            Cs=Cs,
            folds=folds,
            seed=seed,
            n_boot=n_boot,
            n_perm=n_perm,
            n_control=n_control,
            progress=status.update,
        )
        outputs: dict[str, bytes] = {
            "report.json": (
                json.dumps(
                    {
                        **report.to_json(),
                        "labels_matched_by": {k: v.matched_by for k, v in read.items()},
                    },
                    indent=2,
                )
                + "\n"
            ).encode(),
            "report.md": report.to_markdown().encode(),
        }
        if figures:
            status.update("drawing figures")
            from probes.figures import page_html, report_figures

            keep = ~np.isnan(y)
            fresh_kw: dict[str, Any] = {}
            if Xf is not None and yf is not None:
                fkeep = ~np.isnan(yf)
                fresh_kw = {"fresh_X": Xf[fkeep], "fresh_y": yf[fkeep]}
            figs = report_figures(report, train_X=X[keep], train_y=y[keep], **fresh_kw)
            title = f"Falsification: {report.verdict}"
            outputs["figures.html"] = page_html(figs, title=title).encode()  # plotly.js once

    make_owned_dir(out)
    for name, data in outputs.items():
        atomic_write_bytes(out / name, data)
    stale = out / "figures.html"
    if "figures.html" not in outputs and stale.exists():
        stale.unlink()  # an earlier run's figures must not sit beside this report

    matched = {k: v.matched_by for k, v in read.items()}
    for what, how in matched.items():
        if how == "order":
            say(
                f"note: {what} labels follow file order (the label file or the features carry no item ids)"
            )
    for what, labels in [("train", y), ("fresh", yf)] + [
        (f"axis {k} {s}", v[i]) for k, v in axes.items() for i, s in enumerate(("train", "fresh"))
    ]:
        _note_missing(what, labels)

    say(f"verdict: {report.verdict}")
    for s in report.steps:
        say(f"  step {s.step} {s.title}: {s.verdict}")
    if report.diagnosis is not None:
        d = report.diagnosis
        say(f"diagnosis: {d.verdict} ({', '.join(d.flags) or 'no flags'})")
    if report.confounds is not None:
        say(f"confounds: {report.confounds.sentence}")
    say(f"wrote {', '.join(outputs)} to {out}")


def register(app: typer.Typer) -> None:
    """Add the ``falsify`` command to the ``workbench`` CLI."""
    app.command("falsify")(falsify_command)
