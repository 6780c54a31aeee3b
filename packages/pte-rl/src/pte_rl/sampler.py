"""Which prompts each rank trains on at each step."""

from __future__ import annotations

import random


class PromptSampler:
    """A seeded permutation of the problems per epoch; each step takes the next
    ``prompts_per_step x world`` of it, sharded by rank. The same (seed, step) gives the same
    prompts whatever happened before, so a resumed run continues the same order."""

    def __init__(self, problems: list, prompts_per_step: int, seed: int, rank: int = 0, world: int = 1):
        self.problems = problems
        self.per_step = prompts_per_step * world
        self.seed, self.rank, self.world = seed, rank, world
        self._epoch, self._order = -1, []

    def for_step(self, step: int) -> list:
        out = []
        for k in range(step * self.per_step, (step + 1) * self.per_step):
            epoch, index = divmod(k, len(self.problems))
            out.append(self.problems[self._epoch_order(epoch)[index]])
        return out[self.rank :: self.world]

    def _epoch_order(self, epoch: int) -> list[int]:
        if self._epoch != epoch:
            order = list(range(len(self.problems)))
            random.Random(self.seed * 1000 + epoch).shuffle(order)
            self._epoch, self._order = epoch, order
        return self._order
