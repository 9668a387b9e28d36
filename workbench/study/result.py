"""What a study produced, as one value: the runner builds it, the report and figures read it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interventions import SidecarResult, SweepResult
from probes.baselines import ConfoundCheck
from probes.depth import DepthCurve
from workbench.study.collect import SplitData
from workbench.study.config import StudyConfig
from workbench.study.deciding import Deciding
from workbench.study.falsification import Falsification
from workbench.study.heads import AttributionOutcome
from workbench.study.labels import SplitLabels
from workbench.study.second import SecondSplit
from workbench.study.traces import TokenTrace

__all__ = ["StudyResult"]


@dataclass
class StudyResult:
    """Everything a study produced; :mod:`workbench.study.report` turns it into JSON and HTML."""

    config: StudyConfig
    out: Path
    data: dict[str, SplitData]
    labels: dict[str, SplitLabels]
    second: dict[str, SecondSplit] | None
    falsification: Falsification
    confounds: ConfoundCheck | None
    depth: DepthCurve | None
    dispositions: dict[str, Any]
    attribution: AttributionOutcome
    sweep: SweepResult | None
    sidecar: SidecarResult | None
    traces: list[TokenTrace]
    trace_head: tuple[int, int] | None
    skipped: dict[str, str]
    cache: dict[str, str]
    models: dict[str, Any]
    seconds: dict[str, float]
    n_layers: int
    threads: int = 0
    report_path: Path | None = None
    deciding: Deciding | None = None
    decision: dict[str, Any] | None = None
    causal: dict[str, Any] | None = None
