"""Reward interface: a whole group in, one :class:`RewardResult` per completion out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RewardResult:
    value: float
    reason: str | None = None  # set when the value is 0 because scoring failed


class Reward(Protocol):
    name: str

    def score(self, completions: list[str], answers: list[str], **columns) -> list[RewardResult]:
        """Score completions (never prompts) against reference answers. Never raises."""


class WeightedSum:
    """Several rewards combined with weights; keeps each component for metrics."""

    name = "combined"

    def __init__(self, parts: list[tuple[str, Reward, float]]):
        self.parts = parts

    def score_parts(self, completions, answers, **columns) -> dict[str, list[RewardResult]]:
        return {name: r.score(completions, answers, **columns) for name, r, _ in self.parts}

    def total(self, parts: dict[str, list[RewardResult]]) -> list[float]:
        n = len(next(iter(parts.values())))
        return [sum(w * parts[name][i].value for name, _, w in self.parts) for i in range(n)]

    def score(self, completions, answers, **columns) -> list[RewardResult]:
        return [RewardResult(v) for v in self.total(self.score_parts(completions, answers, **columns))]
