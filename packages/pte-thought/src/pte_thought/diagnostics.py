"""Measure what a thought state keeps: effective rank, energy share, and how events fade.

Used by ``benchmarks/thought_state.py`` and the real-model tests; cheap enough to call on a
live rollout (it is an eviction listener that only reads).
"""

from __future__ import annotations

import torch

from .encoders import ThoughtState


def effective_rank(state: torch.Tensor) -> float:
    """Entropy effective rank of a ``[G, r]`` matrix (Roy & Vetterli 2007): exp(H(s / sum s)).

    Equals k for k equal singular values; 1 for a rank-1 matrix.
    """
    s = torch.linalg.svdvals(state.detach().float())
    p = s / s.sum().clamp(min=1e-30)
    return float(torch.exp(-(p * p.clamp(min=1e-30).log()).sum()))


def top_energy(state: torch.Tensor) -> float:
    """Share of the squared Frobenius norm held by the largest singular value."""
    s = torch.linalg.svdvals(state.detach().float())
    return float(s[0] ** 2 / (s**2).sum().clamp(min=1e-30))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().flatten().float(), b.detach().flatten().float()
    return float(a @ b / (a.norm() * b.norm()).clamp(min=1e-30))


class StateProbe:
    """Eviction listener recording, for one row, every layer's state after each event and the
    event's own update as it entered the memory (``Memory.last``: w(m) N(U)).

    Register it *after* the :class:`ThoughtState` it watches, so it sees the updated state.
    """

    def __init__(self, state: ThoughtState, row: int = 0):
        self.state = state
        self.row = row
        self.states: list[list[torch.Tensor]] = []  # [event][layer] -> [G, r]
        self.updates: list[list[torch.Tensor]] = []

    def __call__(self, event) -> None:
        if not bool(event.mask[self.row].any()):
            return
        b = self.row
        self.updates.append([m.last[b].detach().clone() for m in self.state.memory])
        self.states.append([s[b].detach().clone() for s in self.state.layers])

    def summary(self, after: int = 10, lag: int = 3) -> list[dict]:
        """Per layer: effective rank and top-energy share after ``after`` events, and the mean
        cosine of the state after event k with event k-``lag``'s update (how gradually it fades)."""
        if len(self.states) < max(after, lag + 1):
            raise ValueError(f"need at least {max(after, lag + 1)} events, saw {len(self.states)}")
        out = []
        for i in range(len(self.states[0])):
            s = self.states[after - 1][i]
            lagged = [cosine(self.states[k][i], self.updates[k - lag][i]) for k in range(lag, len(self.states))]
            newest = [cosine(self.states[k][i], self.updates[k][i]) for k in range(len(self.states))]
            out.append({
                "layer": i,
                "effective_rank": effective_rank(s),
                "top_energy": top_energy(s),
                f"cos_update_k_minus_{lag}": sum(lagged) / len(lagged),
                "cos_update_k": sum(newest) / len(newest),
            })
        return out
