"""Config sections of the deciding stages: ``[hedged]`` (the second condition) and ``[controls]``.

Kept beside :mod:`workbench.study.config`, which registers them; each is a frozen
dataclass validated where it enters, with an error that names the key and the fix.

>>> HedgedConfig().instruction
'If you are unsure, start your answer with "I think".'
>>> check_n_null(10, "probe", "depth_n_null")
Traceback (most recent call last):
...
workbench.core.errors.WorkbenchError: config [probe]: depth_n_null = 10: use 0 (no null) or at least 19 shuffles, so an adjusted p can reach below 0.05
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.core.errors import WorkbenchError

__all__ = ["MIN_NULL", "CausalConfig", "ControlsConfig", "HedgedConfig", "check_n_null"]

MIN_NULL = 19
"""Fewest shuffles of a family-wise null: the smallest adjusted p is 1 / (1 + n)."""


def _fail(where: str, message: str) -> WorkbenchError:
    return WorkbenchError(f"config [{where}]: {message}")


def check_n_null(value: int, where: str, key: str) -> None:
    """Refuse a shuffle count whose smallest adjusted p cannot go below 0.05."""
    if value != 0 and value < MIN_NULL:
        raise _fail(
            where,
            f"{key} = {value}: use 0 (no null) or at least {MIN_NULL} shuffles, so an adjusted "
            "p can reach below 0.05",
        )


@dataclass(frozen=True)
class HedgedConfig:
    """``[hedged]``: the hedge-licensing condition, where the *asserts* axis has both classes.

    The instruction is appended to every prompt (after a space) and the model
    answers again, greedily, with the ``[generation]`` cap; the ``asserts``
    probe is fitted on this condition's ``h_last``.
    """

    enabled: bool = True
    instruction: str = 'If you are unsure, start your answer with "I think".'
    splits: tuple[str, ...] = ("train", "fresh")

    def __post_init__(self) -> None:
        if not self.instruction.strip():
            raise _fail("hedged", "instruction is empty: give the sentence appended to prompts")
        if "train" not in self.splits or "fresh" not in self.splits:
            raise _fail(
                "hedged",
                f"splits = {list(self.splits)}: include train and fresh (the probe fits on "
                "train and is tested on fresh); fresh_hard is optional",
            )
        bad = [s for s in self.splits if s not in ("train", "fresh", "fresh_hard")]
        if bad:
            raise _fail("hedged", f"splits has {bad[0]!r}: use train, fresh, fresh_hard")


@dataclass(frozen=True)
class ControlsConfig:
    """``[controls]``: controls of the machinery, run through the same steps as the real axes.

    ``positive``: the teacher-forced truth of a capitals statement ("The
    capital of France is Paris." against a wrong capital), a property the model
    should represent that is none of the named confounds; train and fresh use
    disjoint countries and different sentence templates. ``negative``: the
    correctness labels shuffled within task family (``seed``), which should fail.
    """

    positive: bool = True
    negative: bool = True
    seed: int = 1

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise _fail("controls", f"seed = {self.seed}: use a non-negative integer")


@dataclass(frozen=True)
class CausalConfig:
    """``[causal]``: the causal step on the probe's direction (``interventions.causal_test``).

    ``layer`` -1 is the last decoder layer; ``n_random`` random directions of
    equal norm are the controls of the target (the teacher-forced gold-answer
    log-prob, a cheap read), at least 19 so that p can reach 0.05; only the
    first ``regenerate`` of them are regenerated for the side effects (length,
    truncation, assertion, the checker's label), which are therefore
    descriptive. One test per entry of ``positions`` (``last``: the final token,
    i.e. the newest token at every step; ``response``: the response tokens).
    The heads' causal test is the tempering section's.
    """

    enabled: bool = True
    n_items: int = 8
    n_random: int = 20
    regenerate: int = 3
    alpha: float = 2.0
    positions: tuple[str, ...] = ("last", "response")
    layer: int = -1
    max_new_tokens: int = 16

    def __post_init__(self) -> None:
        if self.n_random < MIN_NULL:
            raise _fail("causal", f"n_random = {self.n_random}: use at least {MIN_NULL}")
        if self.n_items < 1 or self.max_new_tokens < 1:
            raise _fail("causal", "n_items and max_new_tokens must be >= 1")
        if not 0 <= self.regenerate <= self.n_random:
            raise _fail(
                "causal", f"regenerate = {self.regenerate}: use 0 to n_random ({self.n_random})"
            )
        if not self.alpha > 0:
            raise _fail("causal", f"alpha = {self.alpha}: use a positive step, e.g. 2.0")
        bad = [p for p in self.positions if p not in ("last", "all", "prompt", "response")]
        if bad or not self.positions or len(set(self.positions)) < len(self.positions):
            raise _fail(
                "causal",
                f"positions = {list(self.positions)}: give distinct entries of last, all, "
                "prompt, response",
            )
