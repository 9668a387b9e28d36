"""The statistics side: probes, metrics, the falsification pipeline, the taxonomy, figures.

Works on arrays and label files only (no torch), so cached features can be
analysed with no model and no GPU.

>>> import probes
>>> probes.GATE_MIN_AUC, probes.GATE_MAX_ASYMMETRY
(0.63, -0.15)
"""

from probes.axes import load_axes, load_axis
from probes.baselines import ConfoundCheck, baseline_auc, confound_check
from probes.crossval import ControlResult, CVResult, cross_validate
from probes.depth import DepthCurve, depth_curve
from probes.disposition import (
    GATE_MAX_ASYMMETRY,
    GATE_MIN_AUC,
    AsymmetryResult,
    DispositionTable,
    GateResult,
    best_balanced_asymmetry,
    disposition_table,
    gate,
)
from probes.estimators import LinearProbe, MassMeanProbe, MLPProbe
from probes.figures import (
    auc_collapse_figure,
    axis_bars_figure,
    depth_curve_figure,
    disposition_figure,
    page_html,
    pca_figure,
    report_figures,
    roc_figure,
    save_html,
    save_page,
    trial_roc_figure,
)
from probes.labels import load_features, load_labels
from probes.metrics import (
    AUCResult,
    PermutationResult,
    auc_score,
    auc_with_ci,
    label_permutation_null,
)
from probes.pipeline import falsify
from probes.report import DataSummary, FalsificationReport, ProbeRun, StepResult, Trial
from probes.taxonomy import Diagnosis, Evidence, diagnose
from probes.transfer import TransferResult, fit_and_score

__all__ = [
    "AsymmetryResult",
    "auc_collapse_figure",
    "auc_score",
    "auc_with_ci",
    "AUCResult",
    "axis_bars_figure",
    "baseline_auc",
    "best_balanced_asymmetry",
    "confound_check",
    "ConfoundCheck",
    "ControlResult",
    "cross_validate",
    "CVResult",
    "DataSummary",
    "depth_curve",
    "depth_curve_figure",
    "DepthCurve",
    "diagnose",
    "Diagnosis",
    "disposition_figure",
    "disposition_table",
    "DispositionTable",
    "Evidence",
    "FalsificationReport",
    "falsify",
    "fit_and_score",
    "gate",
    "GATE_MAX_ASYMMETRY",
    "GATE_MIN_AUC",
    "GateResult",
    "label_permutation_null",
    "LinearProbe",
    "load_axes",
    "load_axis",
    "load_features",
    "load_labels",
    "MassMeanProbe",
    "MLPProbe",
    "page_html",
    "pca_figure",
    "PermutationResult",
    "ProbeRun",
    "report_figures",
    "roc_figure",
    "save_html",
    "save_page",
    "StepResult",
    "TransferResult",
    "Trial",
    "trial_roc_figure",
]
