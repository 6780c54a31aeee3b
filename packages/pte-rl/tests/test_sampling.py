"""The sampler draws from exactly the distribution it is given."""

import math

import torch

from pte_rl.rollout import SamplingConfig, _sample, draw


def _frequencies(probs: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    counts = torch.zeros_like(probs)
    for _ in range(n // 1000):
        idx = draw(probs.expand(1000, -1), g)
        counts += torch.bincount(idx, minlength=probs.shape[-1])[None].to(counts.dtype)
    return counts / counts.sum(-1, keepdim=True)


def test_draw_matches_distribution_and_skips_zero_mass():
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.2, 0.3, 0.0]])
    freq = _frequencies(probs, 200_000)
    assert freq[0, [0, 2, 5]].sum() == 0  # zero-probability entries, including the last one
    # 200k draws: std of each frequency <= 0.0012, so 0.006 is a 5-sigma bound
    assert torch.allclose(freq, probs, atol=0.006), freq


def test_draw_accepts_unnormalised_rows_and_tiny_tails():
    probs = torch.zeros(3, 50_000)
    probs[0, 7] = 1e-3  # unnormalised single entry
    probs[1, :] = 1.0 / 50_000  # uniform over a large vocabulary: the last index must be reachable
    probs[2, -1] = 1.0  # all mass at the very end
    g = torch.Generator().manual_seed(1)
    seen_high = False
    for _ in range(200):
        idx = draw(probs, g)
        assert idx[0] == 7 and idx[2] == 49_999
        seen_high |= bool(idx[1] >= 45_000)
    assert seen_high


def test_draw_never_returns_zero_mass_when_uniform_hits_the_total(monkeypatch):
    # u * total rounding up to the total would make searchsorted point past the last positive entry
    probs = torch.tensor([[0.25, 0.75, 0.0, 0.0]])
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.ones(1, 1))
    assert int(draw(probs)) == 1


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    cfg = SamplingConfig(temperature=1.0, top_p=0.7)
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(4)
    for _ in range(4000):
        counts[int(_sample(logits, cfg, g))] += 1
    assert counts[2] == 0 and counts[3] == 0  # 0.5 + 0.3 already covers 0.7
    assert math.isclose(float(counts[0] / counts[:2].sum()), 0.5 / 0.8, abs_tol=0.04)


def test_greedy_is_argmax():
    logits = torch.randn(5, 40)
    assert torch.equal(_sample(logits, SamplingConfig(temperature=0.0), None), logits.argmax(-1))
