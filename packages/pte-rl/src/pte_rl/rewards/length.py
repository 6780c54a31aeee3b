"""DAPO's soft overlong penalty (Yu et al., 2025, "overlong reward shaping").

A completion of ``L`` tokens gets 0 while ``L <= max_length - buffer``, then a penalty growing
linearly to -1 at ``L = max_length``, and -1 beyond. Used beside the task reward
(``--reward math --reward overlong``), it discourages rambling up to the length limit without
the cliff of scoring every truncated answer 0. It needs each completion's token count, which
`pte train` and `pte eval` pass to every reward as the ``completion_lengths`` column.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .base import RewardResult


class OverlongConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_length: int = Field(512, gt=0, description="Length (tokens) at and beyond which the penalty is -1; "
                                                     "usually --max-new-tokens.")
    buffer: int = Field(128, gt=0, description="Tokens before max_length over which the penalty ramps from 0 to -1.")

    @model_validator(mode="after")
    def _buffer_fits(self):
        if self.buffer > self.max_length:
            raise ValueError(f"buffer ({self.buffer}) must not exceed max_length ({self.max_length})")
        return self


class OverlongReward:
    name = "overlong"

    def __init__(self, config: OverlongConfig | None = None):
        self.config = config or OverlongConfig()

    def penalty(self, length: int) -> float:
        c = self.config
        start = c.max_length - c.buffer
        if length <= start:
            return 0.0
        if length >= c.max_length:
            return -1.0
        return (start - length) / c.buffer

    def score(self, completions, answers, completion_lengths=None, **columns) -> list[RewardResult]:
        if completion_lengths is None:
            return [RewardResult(0.0, "overlong: no completion_lengths column (pte train and pte eval pass it)",
                                 failed=True) for _ in completions]
        return [RewardResult(self.penalty(int(n))) for n in completion_lengths]
