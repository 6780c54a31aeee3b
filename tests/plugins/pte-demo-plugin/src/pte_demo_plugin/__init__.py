"""A complete third-party plugin: an eviction policy and rewards, registered via entry points."""

import os

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
        import torch  # here, not at import: listing plugins never loads torch

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


class FailOnRankConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rank: int = 1


class FailOnRank:
    """Raises on one distributed rank only: tests that one failing rank ends the whole job."""

    def __init__(self, config: FailOnRankConfig):
        self.rank = config.rank

    def score(self, completions, answers, **columns):
        if os.environ.get("RANK") == str(self.rank):
            raise RuntimeError(f"demo-fail-on-rank: this reward fails on rank {self.rank}")
        return [RewardResult(0.0) for _ in completions]


class EosOnRank:
    """The ``hf`` backend, except that rank 0 never ends a completion and every other rank ends it
    at once (a hook on lm_head moves the EOS logit): ranks decode very different lengths."""

    def __init__(self, config):
        from pte_rl import HFBackend

        self.inner = HFBackend(config)

    def load(self):
        model, tokenizer = self.inner.load()
        eos = tokenizer.eos_token_id
        shift = -1e4 if os.environ.get("RANK", "0") == "0" else 1e4

        def hook(module, args, out):
            out = out.clone()
            out[..., eos] = out[..., eos] + shift
            return out

        model.lm_head.register_forward_hook(hook)
        return model, tokenizer


@hookimpl
def pte_register_backends(register):
    from pte_rl import HFConfig

    register("demo-eos-on-rank", EosOnRank, config=HFConfig, help="Test: rank 0 never stops, others at once.")


@hookimpl
def pte_register_eviction_policies(register):
    register("demo-keep-last", KeepLast, config=KeepLastConfig, help="Demo: keep the newest half when full.")


@hookimpl
def pte_register_rewards(register):
    register("demo-short", ShortReward, help="Demo: 1 for short completions.")
    register("demo-fail-on-rank", FailOnRank, config=FailOnRankConfig, help="Test: raises on one rank.")
