"""Interventions as data (one constructor per operation), attribution, tempering, causal tests.

>>> from interventions import temper, steer, project_out, ablate_mean, attribute_heads, sidecar
"""

from interventions.activations import as_layers, layers_from_features, pool_tokens
from interventions.attribution import (
    RANKINGS,
    HeadAttribution,
    HeadScore,
    MaxDNull,
    attribute_heads,
    cohens_d,
    max_magnitude_d_null,
)
from interventions.base import Applied, Intervention, apply
from interventions.causal import CausalResult, Effect, causal_test
from interventions.causal_heads import (
    ABLATIONS,
    ablate_heads,
    causal_heads,
    head_ablation,
    heads_from_probes,
    iti_directions,
    iti_shift,
)
from interventions.causal_report import causal_figure, write_causal_report
from interventions.cohorts import cohorts_from_labels
from interventions.directions import answer_direction
from interventions.figures import (
    attribution_figure,
    head_heatmap,
    head_probe_figure,
    sidecar_figures,
    sweep_figure,
    write_html,
)
from interventions.head_probes import HeadProbe, HeadProbes, head_probes
from interventions.ops import ablate_mean, add, collect_site, patch, project_out, resample, set_to
from interventions.patching import PatchResult, logit_diff, patching_sweep, prob
from interventions.report import write_attribution_report, write_sidecar_report, write_sweep_report
from interventions.sidecar import DEFAULT_HEDGE_PREFIX, SidecarResult, gate_responses, sidecar
from interventions.stats import Comparison, MetricSummary, monotonicity, summarise
from interventions.steering import mass_mean_direction, probe_direction, steer
from interventions.sweep import SweepResponse, SweepResult, sweep, temper_sweep
from interventions.targets import Target, answer_logprob, probe_read
from interventions.temper import (
    SITES,
    intervention_factory,
    parse_head,
    scale_mlp,
    scale_values,
    temper,
)

__all__ = [
    "ABLATIONS",
    "PatchResult",
    "logit_diff",
    "patching_sweep",
    "prob",
    "Applied",
    "ablate_heads",
    "causal_heads",
    "causal_figure",
    "head_ablation",
    "heads_from_probes",
    "iti_directions",
    "iti_shift",
    "write_causal_report",
    "CausalResult",
    "Effect",
    "Target",
    "answer_logprob",
    "causal_test",
    "probe_read",
    "DEFAULT_HEDGE_PREFIX",
    "ablate_mean",
    "add",
    "apply",
    "collect_site",
    "patch",
    "project_out",
    "resample",
    "set_to",
    "RANKINGS",
    "SITES",
    "Comparison",
    "HeadAttribution",
    "HeadProbe",
    "HeadProbes",
    "HeadScore",
    "Intervention",
    "MetricSummary",
    "SidecarResult",
    "SweepResponse",
    "SweepResult",
    "as_layers",
    "MaxDNull",
    "attribute_heads",
    "max_magnitude_d_null",
    "attribution_figure",
    "cohens_d",
    "cohorts_from_labels",
    "gate_responses",
    "head_heatmap",
    "head_probe_figure",
    "head_probes",
    "intervention_factory",
    "layers_from_features",
    "mass_mean_direction",
    "monotonicity",
    "parse_head",
    "pool_tokens",
    "probe_direction",
    "answer_direction",
    "scale_mlp",
    "scale_values",
    "sidecar",
    "sidecar_figures",
    "steer",
    "summarise",
    "sweep",
    "sweep_figure",
    "temper",
    "temper_sweep",
    "write_attribution_report",
    "write_html",
    "write_sidecar_report",
    "write_sweep_report",
]
