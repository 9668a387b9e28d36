"""The top-p nucleus found among the top candidates equals the one a full sort gives, for
narrow and wide rows; draws stay inside it and follow each row's own generator."""

from __future__ import annotations

import pytest
import torch

import workbench.model.decoding as decoding
from workbench.model.decoding import DecodingConfig, choose


def _nucleus_by_sorting(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """The independent computation: sort everything, keep until the mass reaches top_p."""
    p, order = torch.sort(probs, descending=True, dim=-1)
    keep = ~((p.cumsum(-1) - p) > top_p)
    return torch.zeros_like(keep).scatter(-1, order, keep)


@pytest.mark.parametrize("scale", [0.3, 3.0, 30.0], ids=["wide", "mixed", "narrow"])
@pytest.mark.parametrize("top_p", [0.5, 0.95])
def test_the_nucleus_equals_the_full_sorts(scale, top_p):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 5000, generator=g) * scale
    logits[:3] *= 20  # a few peaked rows beside the others
    probs = logits.softmax(-1)
    kept, index = decoding._nucleus(probs, top_p)
    mine = torch.zeros(probs.shape, dtype=torch.bool)
    for r in range(len(probs)):
        mine[r, index[r][kept[r] > 0]] = True
    assert torch.equal(mine, _nucleus_by_sorting(probs, top_p))
    assert torch.allclose(kept.sum(-1), (probs * mine).sum(-1))


def test_draws_stay_in_the_nucleus_and_follow_each_rows_generator():
    logits = torch.randn(6, 3000, generator=torch.Generator().manual_seed(1)) * 4
    config = DecodingConfig(do_sample=True, temperature=0.8, top_p=0.9)
    allowed = _nucleus_by_sorting((logits / 0.8).softmax(-1), 0.9)

    def draw(rows):
        gens = [torch.Generator().manual_seed(100 + r) for r in rows]
        return choose(logits[rows], config, gens)

    for _ in range(3):
        tokens = draw(list(range(6)))
        assert all(bool(allowed[r, t]) for r, t in enumerate(tokens.tolist()))
    assert draw([0, 1, 2, 3, 4, 5]).tolist()[3:] == draw([3, 4, 5]).tolist()


def test_the_token_drawn_does_not_depend_on_how_the_nucleus_was_found(monkeypatch):
    logits = torch.randn(16, 4000, generator=torch.Generator().manual_seed(2))
    logits[::2] *= 40  # narrow rows beside wide ones
    config = DecodingConfig(do_sample=True, temperature=0.8, top_p=0.95)

    def draw():
        return choose(logits, config, [torch.Generator().manual_seed(r) for r in range(16)])

    found = draw()
    monkeypatch.setattr(decoding, "NUCLEUS_CANDIDATES", 10**9)  # sort the whole vocabulary
    assert torch.equal(draw(), found)


def test_draws_follow_the_distribution():
    """A planted distribution: 20,000 draws land in proportion (chi-square bound, fixed seed)."""
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log().expand(20000, 4)
    gens = [torch.Generator().manual_seed(i) for i in range(20000)]
    counts = torch.bincount(choose(logits, DecodingConfig(do_sample=True), gens), minlength=4)
    expected = probs * 20000
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 16.3  # p = 0.001 at 3 degrees of freedom
