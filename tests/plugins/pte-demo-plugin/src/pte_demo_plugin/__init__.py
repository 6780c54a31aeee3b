"""A complete third-party plugin: an eviction policy and a reward, registered via entry points."""

import torch
from pydantic import BaseModel, ConfigDict, Field

from pte_cache import hookimpl
from pte_rl.rewards import RewardResult


class KeepLastConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cache_window: int = Field(64, gt=1)


class KeepLast:
    """Evict everything but the newest half of the window whenever the window is full."""

    name = "demo-keep-last"

    def __init__(self, config: KeepLastConfig):
        self.config = config

    def check_prompts(self, prompt_lengths):
        pass

    def plan(self, cache, incoming):
        over = cache.lengths + incoming > self.config.cache_window
        if not bool(over.any()):
            return None
        count = torch.where(over, cache.lengths - self.config.cache_window // 2, 0).clamp(min=0)
        slot = torch.arange(cache.positions.shape[1], device=cache.positions.device)
        return slot[None, :] < count[:, None]


class ShortReward:
    """1 for completions shorter than ``limit`` characters."""

    name = "demo-short"

    def __init__(self, config=None):
        self.limit = 200

    def score(self, completions, answers, **columns):
        return [RewardResult(float(len(c) < self.limit)) for c in completions]


@hookimpl
def pte_register_eviction_policies(register):
    register("demo-keep-last", KeepLast, config=KeepLastConfig, help="Demo: keep the newest half when full.")


@hookimpl
def pte_register_rewards(register):
    register("demo-short", ShortReward, help="Demo: 1 for short completions.")
