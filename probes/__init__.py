"""The statistics side: probes, metrics, the falsification pipeline, the taxonomy, figures.

Works on arrays and label files only (no torch), so cached features can be
analysed with no model and no GPU.

>>> import probes
>>> probes.GATE_MIN_AUC, probes.GATE_MAX_ASYMMETRY
(0.63, -0.15)
"""

from probes.axes import load_axes, load_axis
from probes.baselines import ConfoundCheck, baseline_auc, confound_check
from probes.confound_inputs import Confound
from probes.confound_step import ConfoundResult, ConfoundStep, ErasureResult, confound_step
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
from probes.erasure import decodability, leace_erase
from probes.estimators import LinearProbe, MassMeanProbe, MLPProbe
from probes.familywise import FamilywiseNull, max_statistic_null, screen_null
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
from probes.incremental import IncrementalResult, incremental_validity
from probes.labels import load_features, load_labels, load_values
from probes.labels_only import (
    DispositionSummary,
    ValueSummary,
    auc_from_number,
    diagnose_labels,
    disposition,
    summarise_values,
)
from probes.metrics import (
    AUCResult,
    PermutationResult,
    auc_score,
    auc_with_ci,
    label_permutation_null,
)
from probes.pipeline import falsify
from probes.report import DataSummary, FalsificationReport, ProbeRun, StepResult, Trial
from probes.stratified import StratifiedResult, stratified_auc
from probes.taxonomy import Diagnosis, Evidence, diagnose
from probes.transfer import TransferResult, fit_and_score

__all__ = [
    "AUCResult",
    "AsymmetryResult",
    "CVResult",
    "Confound",
    "ConfoundCheck",
    "ConfoundResult",
    "ConfoundStep",
    "ControlResult",
    "DataSummary",
    "DepthCurve",
    "Diagnosis",
    "DispositionSummary",
    "DispositionTable",
    "ErasureResult",
    "Evidence",
    "FalsificationReport",
    "FamilywiseNull",
    "GATE_MAX_ASYMMETRY",
    "GATE_MIN_AUC",
    "GateResult",
    "IncrementalResult",
    "LinearProbe",
    "MLPProbe",
    "MassMeanProbe",
    "PermutationResult",
    "ProbeRun",
    "StepResult",
    "StratifiedResult",
    "TransferResult",
    "Trial",
    "ValueSummary",
    "auc_collapse_figure",
    "auc_from_number",
    "auc_score",
    "auc_with_ci",
    "axis_bars_figure",
    "baseline_auc",
    "best_balanced_asymmetry",
    "confound_check",
    "confound_step",
    "cross_validate",
    "decodability",
    "depth_curve",
    "depth_curve_figure",
    "diagnose",
    "diagnose_labels",
    "disposition",
    "disposition_figure",
    "disposition_table",
    "falsify",
    "fit_and_score",
    "gate",
    "incremental_validity",
    "label_permutation_null",
    "leace_erase",
    "load_axes",
    "load_axis",
    "load_features",
    "load_labels",
    "load_values",
    "max_statistic_null",
    "page_html",
    "pca_figure",
    "report_figures",
    "roc_figure",
    "save_html",
    "save_page",
    "screen_null",
    "stratified_auc",
    "summarise_values",
    "trial_roc_figure",
]
