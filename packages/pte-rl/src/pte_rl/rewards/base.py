"""Reward interface: a whole group in, one :class:`RewardResult` per completion out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RewardResult:
    value: float
    reason: str | None = None  # why the value is 0: a verdict (no_answer) or a failure (timeout)
    failed: bool = False  # the scorer could not score this row (counted in reward_failures)


class Reward(Protocol):
    name: str

    def score(self, completions: list[str], answers: list[str], **columns) -> list[RewardResult]:
        """Score completions (never prompts) against reference answers. Never raises."""


def task_correct(parts: dict[str, list[RewardResult]]) -> list[bool]:
    """The one definition of accuracy (training metrics, held-out eval, ``pte eval``): the first
    reward, the task reward, scores 1. Shaping terms such as ``format`` come after it and neither
    make a wrong answer right nor a right one wrong."""
    return [r.value >= 1.0 for r in next(iter(parts.values()))]


def count_failures(parts: dict[str, list[RewardResult]]) -> int:
    """Rows a scorer could not score (timeouts, errors), not zeros it gave on purpose."""
    return sum(r.failed for res in parts.values() for r in res)


class WeightedSum:
    """Several rewards combined with weights; keeps each component for metrics. A context
    manager: leaving it closes every part that holds resources (the math reward's workers)."""

    name = "combined"

    def __init__(self, parts: list[tuple[str, Reward, float]]):
        self.parts = parts

    def close(self) -> None:
        for _, reward, _ in self.parts:
            getattr(reward, "close", lambda: None)()

    def __enter__(self) -> WeightedSum:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def score_parts(self, completions, answers, **columns) -> dict[str, list[RewardResult]]:
        return {name: r.score(completions, answers, **columns) for name, r, _ in self.parts}

    def total(self, parts: dict[str, list[RewardResult]]) -> list[float]:
        n = len(next(iter(parts.values())))
        return [sum(w * parts[name][i].value for name, _, w in self.parts) for i in range(n)]

    def score(self, completions, answers, **columns) -> list[RewardResult]:
        return [RewardResult(v) for v in self.total(self.score_parts(completions, answers, **columns))]
