"""Run a study end to end: collect, label, falsify, attribute, temper, gate, trace, report.

Stages that generate or capture are cached in the run directory (see
:mod:`workbench.study.cache`); the statistics are recomputed every run (seconds).
Whatever a stage cannot do with the data it got (a cohort too small, a label
with one class) is recorded with its reason, never raised.

>>> result = run_study(load_config(), "runs/demo")  # doctest: +SKIP
>>> result.report_path  # doctest: +SKIP
PosixPath('runs/demo/report.html')
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.markup import escape
from threadpoolctl import threadpool_limits

from interventions import SidecarResult, SweepResult
from probes.baselines import ConfoundCheck, confound_check
from probes.depth import DepthCurve, depth_curve
from workbench.core.errors import WorkbenchError
from workbench.core.files import make_owned_dir
from workbench.core.progress import console
from workbench.labels.domains import check_item, make_split
from workbench.model.parallel import Processes, launched, process_device
from workbench.study.cache import Stage, check_run_dir, stage_dirs
from workbench.study.causal import run_causal
from workbench.study.collect import H_LAST, SplitData, collect_split
from workbench.study.config import (
    SPLIT_NAMES,
    CaptureConfig,
    ModelConfig,
    ProbeConfig,
    SidecarConfig,
    StudyConfig,
    TemperingConfig,
    load_config,
    load_options,
)
from workbench.study.context import StageContext
from workbench.study.deciding import hedged_condition, run_deciding
from workbench.study.decision import decide
from workbench.study.falsification import Falsification, dispositions_json, run_falsification
from workbench.study.gating import gate_split
from workbench.study.heads import AttributionOutcome, run_attribution, run_tempering
from workbench.study.labels import Checker, SplitLabels, label_split
from workbench.study.models import ModelPool
from workbench.study.result import StudyResult
from workbench.study.second import SecondSplit, collect_second
from workbench.study.traces import study_traces

__all__ = ["StudyResult", "auto_threads", "run_study"]


@dataclass
class _Clock:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def auto_threads() -> int:
    """One fewer than the CPU cores this process may use, at least 1.

    Torch's default (every core) collapses when any other process holds a core:
    its threads spin-wait on each other, and on a 2-core machine a study ran
    several times slower with 2 threads than with 1.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    n = n if n > 0 else auto_threads()
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def run_study(
    config: StudyConfig | None = None,
    out: str | Path = "runs/demo",
    *,
    checker: Checker = check_item,
    use_cache: bool = True,
    progress: bool = True,
    write: bool = True,
) -> StudyResult | None:
    """Run the study of ``config`` (default: the demo) into the run directory ``out``.

    Args:
        config: the study (see :mod:`workbench.study.config`).
        out: the run directory; its caches are reused when their keys match.
        checker: ``(item, response) -> bool`` correctness (default: the domain checkers).
        use_cache: reuse cached generations and features.
        progress: progress bars and stage lines on stderr.
        write: write ``report.json`` and ``report.html``.

    Under ``torchrun`` or ``accelerate launch`` the generation and capture of the
    splits are dealt over the processes; the main process then runs the rest and
    returns the result, the others return ``None``.
    """
    config = config or load_config()
    procs = launched(config.model.device)
    if procs.world_size > 1 and config.model.backend != "hf":
        raise WorkbenchError(
            f"a study launched over {procs.world_size} processes deals its generation and "
            f'capture on the hf backend, not {config.model.backend!r}: set backend = "hf" '
            "in [model] or launch one process"
        )
    progress = progress and procs.is_main
    out = Path(out)
    if procs.is_main:  # the other processes of a launch write only their parts
        check_run_dir(
            out, stage_dirs(config, out)
        )  # before any work: nothing lost, nothing deleted
        if not out.exists():
            make_owned_dir(out)
    procs.barrier()
    say = console.print if progress else (lambda *_a, **_k: None)
    clock = _Clock()
    placement = {}
    if config.second_model.enabled:
        placement[config.second_model.name] = load_options(config.second_model)
    device = process_device(config.model.device, procs)  # cuda:LOCAL_RANK under a launch
    placement[config.model.name] = dataclasses.replace(load_options(config.model), device=device)
    models = ModelPool(
        dtype=config.model.dtype, device=config.model.device, say=say, options=placement
    )
    ctx = StageContext(
        out, models, checker, config.section("items"), use_cache=use_cache, progress=progress,
        processes=procs,
    )  # fmt: skip
    seed = config.run.seed
    skipped: dict[str, str] = {}
    cache: dict[str, str] = {}
    start = time.perf_counter()
    with _threads(config.run.threads):
        splits = [s for s in SPLIT_NAMES if config.items.count(s) > 0]
        data: dict[str, SplitData] = {}
        for split in splits:
            items = make_split(
                split, config.items.count(split), config.items.seed, families=config.items.families
            )
            say(f"[bold]collect[/] {split}: {len(items)} items")
            with clock.stage("generate + capture"):
                split_data = collect_split(
                    split, items, ctx, model=config.model, generation=config.generation,
                    capture=config.capture,
                )  # fmt: skip
            if split_data is None:
                continue  # another process of a launch: the main one keeps the split
            data[split] = split_data
            cache[f"splits/{split}"] = "reused" if data[split].reused else "computed"
        if not procs.is_main:
            return None  # the statistics and the later stages run on the main process
        labels = {s: label_split(d, checker) for s, d in data.items()}
        hedged_data: dict[str, SplitData] = {}
        hedged_labels: dict[str, SplitLabels] = {}
        if config.hedged.enabled:
            with clock.stage("hedged condition"):
                hedged_data, hedged_labels = hedged_condition(
                    config.hedged, config.items, replace(ctx, processes=Processes()),
                    model=config.model,
                    generation=config.generation, capture=config.capture, cache=cache, say=say,
                )  # fmt: skip
        else:
            skipped["hedged"] = "[hedged] enabled = false"
        second = None
        if config.second_model.enabled:
            second = {}
            for split in ("train", "fresh"):
                say(f"[bold]second model[/] {escape(config.second_model.name)} on {split}")
                with clock.stage("second model"):
                    second[split] = collect_second(
                        data[split], labels[split].array("correct"), ctx, config.second_model
                    )
                cache[f"second/{split}"] = "reused" if second[split].reused else "computed"
        with threadpool_limits(limits=1, user_api="blas"):
            say("[bold]five-step falsification[/]")
            with clock.stage("falsification"):
                fals = _falsify(data, labels, second, config.probe, config.capture, seed, progress)
            confounds = _confounds(config.probe, seed, data, labels, fals)
            with clock.stage("depth curve"):
                depth = _depth(config.capture, config.probe, seed, data, labels, fals, ctx, skipped)
            n_layers = data["train"].n_layers
            say("[bold]deciding[/]: confounds per axis, controls, head screen")
            deciding, tables = run_deciding(
                config.probe, config.controls, config.model, ctx, data=data, labels=labels,
                hedged=(hedged_data, hedged_labels), fals=fals, n_layers=n_layers, seed=seed,
                stage=clock.stage, cache=cache, skipped=skipped, second=second,
            )  # fmt: skip
        split = config.attribution.split
        attribution = run_attribution(
            data[split], labels[split], config.attribution, n_layers, seed=seed
        )
        if config.tempering.enabled and attribution.heads:
            say(f"[bold]tempering[/]: sweep over {len(config.tempering.lambdas)} lambdas x "
                f"{len(config.tempering.seeds)} seeds, then the causal rule against "
                f"{config.tempering.n_random} random-head draws")  # fmt: skip
        sweep, tempering_causal = _sweep(
            config.tempering, config.model, data, attribution, ctx, clock, skipped, cache
        )
        if config.causal.enabled:
            say(f"[bold]causal step[/]: the probe direction at {len(config.causal.positions)} "
                f"position sets against {config.causal.n_random} random directions, and its "
                "positive control")  # fmt: skip
        with clock.stage("causal step"):
            causal = run_causal(
                config.causal, config.model, ctx, train=data["train"], train_labels=labels["train"],
                fresh=data["fresh"], heads=tempering_causal, C=fals.C, cache=cache,
                skipped=skipped,
            )  # fmt: skip
        decision = decide(deciding.axes, deciding.controls, tables, causal=causal)
        sidecar = _sidecar(config.sidecar, data, labels, fals, skipped)
        with clock.stage("token traces"):
            traces, head = study_traces(
                config.traces, config.model, data, labels, attribution, ctx, cache
            )
    clock.seconds["total"] = time.perf_counter() - start
    result = StudyResult(
        config=config, out=out, data=data, labels=labels, second=second, falsification=fals,
        confounds=confounds,
        depth=depth, dispositions=dispositions_json(labels), attribution=attribution,
        sweep=sweep, sidecar=sidecar, traces=traces, trace_head=head, skipped=skipped,
        deciding=deciding, decision=decision, causal=causal,
        cache=cache, models=_models(out, models), seconds=clock.seconds, n_layers=n_layers,
        threads=config.run.threads or auto_threads(),
    )  # fmt: skip
    if write:
        from workbench.study.report import write_report

        with clock.stage("report"):
            result.report_path = write_report(result)
        clock.seconds["total"] = time.perf_counter() - start
    return result


def _falsify(
    data: dict[str, SplitData],
    labels: dict[str, SplitLabels],
    second: dict[str, SecondSplit] | None,
    probe: ProbeConfig,
    capture: CaptureConfig,
    seed: int,
    progress: bool,
) -> Falsification:
    """The pipeline, with a spinner naming its current stage."""
    pooled = capture.pooled_last_n
    if not progress:
        return run_falsification(data, labels, second, probe, pooled_last_n=pooled, seed=seed)
    with console.status("falsify") as spinner:
        return run_falsification(
            data, labels, second, probe, pooled_last_n=pooled, seed=seed,
            say=lambda m: spinner.update(f"falsify: {m}"),
        )  # fmt: skip


def _confounds(
    cfg: ProbeConfig,
    seed: int,
    data: dict[str, SplitData],
    labels: dict[str, SplitLabels],
    fals: Falsification,
) -> ConfoundCheck | None:
    if fals.probe is None:
        return None
    probe = fals.probe
    fresh = {
        s: (labels[s], probe.predict_proba(d.site(H_LAST))[:, 1])
        for s, d in data.items()
        if s != "train"
    }
    return confound_check(labels["train"], fresh, n_boot=cfg.depth_n_boot, seed=seed)


def _depth(
    capture: CaptureConfig,
    cfg: ProbeConfig,
    seed: int,
    data: dict[str, SplitData],
    labels: dict[str, SplitLabels],
    fals: Falsification,
    ctx: StageContext,
    skipped: dict[str, str],
) -> DepthCurve | None:
    if not capture.depth_curve:
        skipped["depth_curve"] = "[capture] depth_curve = false"
        return None
    if fals.C is None:
        skipped["depth_curve"] = "the main trial could not run: " + fals.skipped.get("main", "")
        return None
    layers = list(range(data["train"].n_layers))

    def stack(split: str) -> list[Any]:
        return [data[split].site(f"resid({layer})") for layer in layers]

    fresh = {s: (stack(s), labels[s].array("correct")) for s in data if s != "train"}
    return depth_curve(
        stack("train"),
        labels["train"].array("correct"),
        fresh,
        C=fals.C,
        folds=cfg.folds,
        seed=seed,
        n_boot=cfg.depth_n_boot,
        layers=layers,
        progress=ctx.progress,
        n_null=cfg.depth_n_null,
    )


def _sweep(
    cfg: TemperingConfig,
    model: ModelConfig,
    data: dict[str, SplitData],
    attribution: AttributionOutcome,
    ctx: StageContext,
    clock: _Clock,
    skipped: dict[str, str],
    cache: dict[str, str],
) -> tuple[SweepResult | None, dict[str, Any] | None]:
    """The tempering sweep and its causal test against random heads (None, None when skipped)."""
    if not cfg.enabled:
        skipped["tempering"] = "[tempering] enabled = false"
        return None, None
    if not attribution.heads:
        skipped["tempering"] = f"no heads to temper: attribution skipped ({attribution.skipped})"
        return None, None
    if cfg.split not in data:
        skipped["tempering"] = f"split {cfg.split} has no items"
        return None, None
    with clock.stage("tempering sweep"):
        result, causal, reused = run_tempering(
            data[cfg.split].items, attribution.heads, ctx, cfg, model
        )
    cache["sweep"] = "reused" if reused else "computed"
    return result, causal


def _sidecar(
    cfg: SidecarConfig,
    data: dict[str, SplitData],
    labels: dict[str, SplitLabels],
    fals: Falsification,
    skipped: dict[str, str],
) -> SidecarResult | None:
    if not cfg.enabled:
        skipped["sidecar"] = "[sidecar] enabled = false"
        return None
    if fals.probe is None:
        skipped["sidecar"] = "no probe: " + fals.skipped.get("main", "")
        return None
    if cfg.split not in data:
        skipped["sidecar"] = f"split {cfg.split} has no items"
        return None
    d, lab = data[cfg.split], labels[cfg.split]
    return gate_split(
        [g.response for g in d.generations],
        lab.array("correct").astype(bool).tolist(),
        lab.verbal,
        d.site(H_LAST),
        fals.probe,
        cfg.threshold,
        cfg.hedge_prefix,
        ids=[it.id for it in d.items],
    )


def _models(out: Path, models: ModelPool) -> dict[str, Any]:
    """What each stage recorded about the model it used (also when it was cached)."""
    found: dict[str, Any] = {}
    for key_file in sorted(out.glob("*/*/key.json")):
        info = Stage(key_file.parent, "").info()
        if "model" in info:
            found.setdefault(info["model"].get("name", "?"), info["model"])
    found.update(models.loaded)
    return found
