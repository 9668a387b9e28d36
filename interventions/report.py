"""Write results into a run directory: one JSON file and one HTML page each.

=====================  ==========================================================
file                   content
=====================  ==========================================================
``attribution.json``   ``meta``, ``attribution`` (``HeadAttribution.to_json``),
                       ``head_probes`` (``HeadProbes.to_json`` or null)
``attribution.html``   heatmaps: magnitude d, directional d (in-sample and
                       held-out), per-head probe AUC
``sweep.json``         ``meta`` and ``sweep`` (``SweepResult.to_json``)
``sweep.html``         metric vs value with seed bands
``sidecar.json``       ``meta`` and ``sidecar`` (``SidecarResult.to_json``)
``sidecar.html``       the baseline and gated 2x2 tables
=====================  ==========================================================

Files are written atomically; JSON never holds NaN (undefined numbers are null).

>>> paths = write_sweep_report("runs/temper", result)  # doctest: +SKIP
>>> sorted(paths)  # doctest: +SKIP
['html', 'json']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from interventions.attribution import HeadAttribution
from interventions.figures import (
    attribution_figure,
    head_probe_figure,
    sidecar_figures,
    sweep_figure,
    write_html,
)
from interventions.head_probes import HeadProbes
from interventions.sidecar import SidecarResult
from interventions.sweep import SweepResult
from workbench.core.store import atomic_write_bytes, check_out_dir

__all__ = ["write_attribution_report", "write_sidecar_report", "write_sweep_report"]


def _prepare(out: str | Path) -> Path:
    path = check_out_dir(out)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write(
    out: Path, stem: str, payload: dict[str, Any], figures: Mapping[str, go.Figure], title: str
) -> dict[str, Path]:
    json_path = out / f"{stem}.json"
    atomic_write_bytes(json_path, (json.dumps(payload, indent=2, allow_nan=False) + "\n").encode())
    html_path = write_html(figures, out / f"{stem}.html", title=title)
    return {"json": json_path, "html": html_path}


def write_attribution_report(
    out: str | Path,
    attribution: HeadAttribution,
    head_probes: HeadProbes | None = None,
    *,
    meta: Mapping[str, Any] | None = None,
    top_k: int = 20,
) -> dict[str, Path]:
    """``attribution.json`` and ``attribution.html`` in ``out``; returns their paths."""
    path = _prepare(out)
    figures = {
        "magnitude": attribution_figure(attribution, "magnitude"),
        "directional": attribution_figure(attribution, "directional"),
    }
    if attribution.folds:
        figures["directional_heldout"] = attribution_figure(attribution, "directional_heldout")
    if head_probes is not None:
        figures["head_probes"] = head_probe_figure(head_probes)
    payload = {
        "meta": dict(meta or {}),
        "attribution": attribution.to_json(top_k=top_k),
        "head_probes": None if head_probes is None else head_probes.to_json(),
    }
    return _write(path, "attribution", payload, figures, "Head attribution")


def write_sweep_report(
    out: str | Path, result: SweepResult, *, meta: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """``sweep.json`` and ``sweep.html`` in ``out``; returns their paths."""
    path = _prepare(out)
    payload = {"meta": dict(meta or {}), "sweep": result.to_json()}
    return _write(
        path, "sweep", payload, {"sweep": sweep_figure(result)}, f"Sweep over {result.parameter}"
    )


def write_sidecar_report(
    out: str | Path, result: SidecarResult, *, meta: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """``sidecar.json`` and ``sidecar.html`` in ``out``; returns their paths."""
    path = _prepare(out)
    payload = {"meta": dict(meta or {}), "sidecar": result.to_json()}
    return _write(path, "sidecar", payload, sidecar_figures(result), "Confidence-gated sidecar")
