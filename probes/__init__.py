"""The statistics side: probes, metrics, the falsification pipeline, the taxonomy, figures.

Works on arrays and label files only (no torch), so cached features can be
analysed with no model and no GPU.

>>> import probes
>>> probes.GATE_MIN_AUC, probes.GATE_MAX_ASYMMETRY
(0.63, -0.15)
"""

from probes.crossval import ControlResult, CVResult, cross_validate
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
    "GATE_MAX_ASYMMETRY",
    "GATE_MIN_AUC",
    "AUCResult",
    "AsymmetryResult",
    "CVResult",
    "ControlResult",
    "DataSummary",
    "Diagnosis",
    "DispositionTable",
    "Evidence",
    "FalsificationReport",
    "GateResult",
    "LinearProbe",
    "MLPProbe",
    "MassMeanProbe",
    "PermutationResult",
    "ProbeRun",
    "StepResult",
    "TransferResult",
    "Trial",
    "auc_score",
    "auc_with_ci",
    "best_balanced_asymmetry",
    "cross_validate",
    "diagnose",
    "disposition_table",
    "falsify",
    "fit_and_score",
    "gate",
    "label_permutation_null",
]
