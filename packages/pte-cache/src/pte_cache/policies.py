"""Eviction policies: decide, before a forward pass, which cached tokens of each row leave.

A policy only reads the cache's bookkeeping (slot positions, prompt lengths, row lengths); it
never touches key/value tensors, so the same decision applies to every layer. It returns a
boolean mask over slots, ``[batch, slots]``, True where the token is evicted now.
"""

from __future__ import annotations

from typing import Protocol

import torch
from pydantic import BaseModel

from .config import FullConfig, PolicyConfig, StreamingConfig


class CacheView(Protocol):
    """What a policy may read from a :class:`pte_cache.BoundedCache`."""

    positions: torch.Tensor  # [batch, slots] absolute position per slot, -1 when empty
    lengths: torch.Tensor  # [batch] occupied slots per row (slots [0, length) are valid)
    prompt_lengths: torch.Tensor  # [batch] real (non-pad) prompt tokens per row
    max_prompt_length: int  # longest prompt of the batch at prefill, fixed for the rollout


class EvictionPolicy(Protocol):
    name: str
    config: BaseModel

    def plan(self, cache: CacheView, incoming: int) -> torch.Tensor | None:
        """Slots to evict so that ``incoming`` new tokens fit, or None when nothing leaves."""

    def check_prompts(self, prompt_lengths: list[int]) -> None:
        """Raise ValueError when these prompts cannot run under this policy's budget."""

    # Optional: ``quiet_steps(cache) -> int``, how many more one-token steps (every row taking
    # one token) certainly make ``plan`` return None. The cache then skips ``plan`` for those
    # steps, so decoding between eviction events reads nothing back from the device. A policy
    # whose decisions depend on tensor values it must look at every step leaves it out and is
    # asked every step.
    # Optional: ``prompt_band() -> (sinks, window) | None``: the prompt is read as a stream, each
    # prompt token attending only to the first ``sinks`` positions and the ``window`` positions up
    # to itself (the cache applies it to every query; for generated tokens the window already
    # holds no more, so it only changes the prefill).
    # Optional: ``capacity(cache) -> int``, the most tokens any row can hold at once, read at
    # prefill. A static cache (fixed shapes, for a compiled decode step) allocates that many
    # slots instead of the prompt plus every new token.


class _WindowPolicy:
    """Shared mechanics: per row, a protected prefix and a window over the rest.

    When a row's unprotected tokens plus the incoming ones would exceed its window, the oldest
    ``ceil(evict_ratio * window)`` unprotected tokens leave (more if needed to fit the incoming).
    """

    name = "window"

    def __init__(self, config: PolicyConfig):
        self.config = config

    def protected(self, cache: CacheView) -> torch.Tensor:
        """[batch] number of leading tokens per row that are never evicted."""
        raise NotImplementedError

    def windows(self, cache: CacheView, protected: torch.Tensor) -> torch.Tensor:
        """[batch] window size over unprotected tokens."""
        if self.config.dynamic_window:
            return torch.full_like(protected, cache.max_prompt_length)
        return self.config.cache_window - protected

    def plan(self, cache: CacheView, incoming: int) -> torch.Tensor | None:
        protected = self.protected(cache)
        window = self.windows(cache, protected)
        if bool((window < incoming).any()):
            raise ValueError(
                f"{self.name}: a window of {int(window.min())} tokens cannot take "
                f"{incoming} incoming tokens; raise cache_window"
            )
        unprotected = cache.lengths - protected
        overflow = unprotected + incoming - window
        if not bool((overflow > 0).any()):
            return None
        chunk = torch.ceil(self.config.evict_ratio * window.double()).long().clamp(min=1)
        count = torch.where(overflow > 0, torch.maximum(chunk, overflow), torch.zeros_like(chunk))
        # Slots hold tokens in arrival order, so the oldest unprotected tokens of row b are the
        # slots [protected_b, protected_b + count_b).
        slot = torch.arange(cache.positions.shape[1], device=cache.positions.device)
        lo = protected[:, None]
        return (slot[None, :] >= lo) & (slot[None, :] < lo + count[:, None])

    def most_protected(self, cache: CacheView) -> torch.Tensor:
        """[batch] the most protected tokens a row will ever have (known at prefill)."""
        return self.protected(cache)

    def capacity(self, cache: CacheView) -> int:
        """The most tokens a row holds at once: its protected tokens plus its full window."""
        most = self.most_protected(cache)
        return int((most + self.windows(cache, most)).max()) if most.numel() else 0

    def quiet_steps(self, cache: CacheView) -> int:
        """The fewest free window slots over the rows: a row evicts once its unprotected tokens
        would exceed its window, and each one-token step fills one slot in every row."""
        protected = self.protected(cache)
        free = self.windows(cache, protected) - (cache.lengths - protected)
        return max(int(free.min()), 0) if free.numel() else 0

    def check_prompts(self, prompt_lengths: list[int]) -> None:
        pass


class LRUPromptKeep(_WindowPolicy):
    """The paper's policy: every prompt token stays, a window slides over generated tokens."""

    name = "lru-prompt-keep"

    def protected(self, cache: CacheView) -> torch.Tensor:
        return cache.prompt_lengths

    def check_prompts(self, prompt_lengths: list[int]) -> None:
        if self.config.dynamic_window:
            return
        longest = max(prompt_lengths, default=0)
        if longest >= self.config.cache_window:
            raise ValueError(
                f"lru-prompt-keep: cache_window {self.config.cache_window} leaves no room for "
                f"generated tokens after a {longest}-token prompt; use a larger --cache-window"
            )


class SlidingWindow(_WindowPolicy):
    """A plain window over everything: prompt tokens leave too, oldest first."""

    name = "sliding-window"

    def protected(self, cache: CacheView) -> torch.Tensor:
        return torch.zeros_like(cache.prompt_lengths)

    def windows(self, cache: CacheView, protected: torch.Tensor) -> torch.Tensor:
        if self.config.dynamic_window:
            return torch.full_like(protected, 2 * cache.max_prompt_length)
        return torch.full_like(protected, self.config.cache_window)


class StreamingLLM(_WindowPolicy):
    """Attention sinks (the first ``sink_tokens`` of each row) plus the most recent tokens."""

    name = "streaming-llm"

    def __init__(self, config: StreamingConfig):
        super().__init__(config)
        if not config.dynamic_window and config.sink_tokens >= config.cache_window:
            raise ValueError(
                f"streaming-llm: sink_tokens ({config.sink_tokens}) must be smaller than "
                f"cache_window ({config.cache_window})"
            )

    def protected(self, cache: CacheView) -> torch.Tensor:
        return torch.clamp(cache.lengths, max=self.config.sink_tokens)

    def prompt_band(self) -> tuple[int, int] | None:
        """``(sinks, window)`` when the prompt is streamed (``stream_prompt``), else None."""
        if not self.config.stream_prompt:
            return None
        return self.config.sink_tokens, self.config.cache_window - self.config.sink_tokens

    def most_protected(self, cache: CacheView) -> torch.Tensor:
        return torch.full_like(cache.prompt_lengths, self.config.sink_tokens)

    def windows(self, cache: CacheView, protected: torch.Tensor) -> torch.Tensor:
        if self.config.dynamic_window:
            return torch.full_like(protected, cache.max_prompt_length)
        return torch.full_like(protected, self.config.cache_window - self.config.sink_tokens)


class Full:
    """No eviction: the full-cache baseline."""

    name = "full"

    def __init__(self, config: FullConfig | None = None):
        self.config = config or FullConfig()

    def plan(self, cache: CacheView, incoming: int) -> torch.Tensor | None:
        return None

    def quiet_steps(self, cache: CacheView) -> int:
        return 1 << 62  # never evicts

    def check_prompts(self, prompt_lengths: list[int]) -> None:
        pass
