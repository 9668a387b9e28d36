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

from interventions import SidecarResult
from interventions.sidecar import gate_scored, probe_p_correct

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
    return gate_scored(
        list(ids or (str(i) for i in range(len(responses)))),
        responses,
        probe_p_correct(probe, X),
        correct,
        verbal,
        threshold=threshold,
        hedge_prefix=hedge_prefix,
        read="draft",
    )
