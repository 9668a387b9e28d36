"""The confidence-gated sidecar on the study's responses, and its effect on the 2x2.

The main probe (fitted on the training split's ``h_last``) reads each
response's ``h_last`` (captured during generation, so no extra pass: the
sidecar's ``read="draft"``); a response whose ``p_correct`` is under the
threshold gets the hedge prefix. Content, and so correctness, is unchanged; only
the verbal label can move.

>>> import numpy as np
>>> from probes import LinearProbe
>>> X = np.r_[np.zeros((4, 2)), np.ones((4, 2))]
>>> probe = LinearProbe().fit(X, np.r_[np.zeros(4), np.ones(4)].astype(int))
>>> r = gate_split(["A."] * 8, [False] * 4 + [True] * 4, ["assert"] * 8, X, probe, 0.5, "Maybe ")
>>> r.n_gated, r.gated_table.confident_wrong, r.baseline_table.confident_wrong
(4, 0, 4)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from interventions import SidecarResult, gate_responses
from probes import disposition_table
from workbench.labels.verbal import classify_verbal

__all__ = ["gate_split"]


def gate_split(
    responses: Sequence[str],
    correct: Sequence[bool],
    verbal: Sequence[str],
    X: np.ndarray,
    probe: object,
    threshold: float,
    hedge_prefix: str,
    ids: Sequence[str] | None = None,
) -> SidecarResult:
    """Gate ``responses`` with ``probe`` on their ``h_last`` rows ``X``."""
    p = np.asarray(probe.predict_proba(X))[:, 1]  # type: ignore[attr-defined]
    gated_responses, gated = gate_responses(list(responses), p.tolist(), threshold, hedge_prefix)
    verbal_gated = [classify_verbal(r) for r in gated_responses]
    correct = [bool(c) for c in correct]
    return SidecarResult(
        item_ids=tuple(ids or (str(i) for i in range(len(responses)))),
        p_correct=tuple(float(x) for x in p),
        gated=tuple(gated),
        baseline=tuple(responses),
        responses=tuple(gated_responses),
        correct=tuple(correct),
        verbal_baseline=tuple(verbal),
        verbal_gated=tuple(verbal_gated),
        baseline_table=disposition_table(correct, list(verbal)),
        gated_table=disposition_table(correct, verbal_gated),
        threshold=float(threshold),
        hedge_prefix=hedge_prefix,
        read="draft",
    )
