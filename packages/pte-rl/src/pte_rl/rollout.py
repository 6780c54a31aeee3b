"""Batched sampling under a bounded cache (no gradients).

Each row stops at EOS or ``max_new_tokens``; finished rows leave the batch (cache, states and
bookkeeping are compacted) so they stop costing compute. Every completion records the tokens,
their sampling log-probs (under the temperature-scaled distribution, as TRL does) and its
eviction schedule: ``[(step, [absolute positions]), ...]``, which :mod:`pte_rl.replay` replays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from pydantic import BaseModel, ConfigDict, Field

from .policy import PTEModel


class SamplingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(256, gt=0)
    min_new_tokens: int = Field(0, ge=0)
    temperature: float = Field(1.0, ge=0.0, description="0 means greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)


@dataclass
class Completion:
    prompt_ids: list[int]
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    schedule: list[tuple[int, list[int]]] = field(default_factory=list)
    finished: bool = False  # ended with EOS (False: truncated at max_new_tokens)
    num_state_updates: int = 0
    max_cache_tokens: int = 0

    @property
    def num_evictions(self) -> int:
        return len(self.schedule)

    @property
    def evicted_tokens(self) -> int:
        return sum(len(positions) for _, positions in self.schedule)


def rollout_columns(prompts: list, completions: list[Completion]) -> dict[str, list]:
    """Keyword columns every reward gets beside the data's own (TRL's names where it has them):
    ``prompts``, ``completion_ids``, ``completion_lengths`` (tokens) and ``truncated`` (cut at
    the length limit). They take precedence over data columns of the same name."""
    return {"prompts": list(prompts), "completion_ids": [list(c.token_ids) for c in completions],
            "completion_lengths": [len(c.token_ids) for c in completions],
            "truncated": [not c.finished for c in completions]}


def eviction_counts(completions: list[Completion]) -> dict[str, float]:
    """Sums over ``completions`` (ranks and steps can add them up): completions, eviction events,
    evicted tokens and thought-state updates."""
    return {"completions": float(len(completions)),
            "events": float(sum(c.num_evictions for c in completions)),
            "evicted_tokens": float(sum(c.evicted_tokens for c in completions)),
            "state_updates": float(sum(c.num_state_updates for c in completions))}


def eviction_rates(counts: dict[str, float]) -> dict[str, float]:
    """Per-completion and per-event rates of :func:`eviction_counts` sums (the logged names)."""
    n = max(counts["completions"], 1.0)
    return {"evictions_per_completion": counts["events"] / n,
            "state_updates_per_completion": counts["state_updates"] / n,
            "evicted_tokens_per_event": counts["evicted_tokens"] / max(counts["events"], 1.0)}


def idle_state_note(encoder, policy, rates: dict[str, float], longest_prompt: int, longest_row: int) -> str | None:
    """What to tell the user when an encoder that updates at eviction events saw fewer than one
    event per completion (the thought state then did next to nothing), or None."""
    if not getattr(encoder, "updates", False) or rates["evictions_per_completion"] >= 1.0:
        return None
    config = getattr(policy, "config", None)
    if getattr(config, "dynamic_window", False):
        window = f"window {longest_prompt} generated tokens (dynamic: the longest prompt)"
    elif getattr(config, "cache_window", None) is not None:
        window = f"window {config.cache_window} tokens, prompt included"
    else:
        window = f"policy {getattr(policy, 'name', type(policy).__name__)} does not evict"
    events = rates["evictions_per_completion"]
    head = ("the cache never filled: the thought state never updated" if events == 0 else
            f"the cache seldom filled: {events:.2f} eviction events per completion, so the thought state "
            "barely updated")
    return (f"{head} ({window}; longest row {longest_row} tokens). A smaller --cache-window or longer "
            "completions exercise it.")


def left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    real = torch.zeros(len(rows), width, dtype=torch.bool)
    for b, r in enumerate(rows):
        if r:
            ids[b, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            real[b, width - len(r) :] = True
    return ids.to(device), real.to(device)


def draw(probs: torch.Tensor, generator=None) -> torch.Tensor:
    """One index per row of ``probs`` ([B, V], rows need not sum to 1), by inverse CDF.

    Same distribution as ``torch.multinomial(probs, 1)`` but needs one uniform per row instead of
    one exponential per vocabulary entry (multinomial's CPU path spent ~7 ms/step at batch 8 on a
    49k vocabulary, ~9% of a decode step). Never returns a zero-probability index.
    """
    cdf = probs.float().cumsum(-1)
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device)
    index = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(1).clamp_(max=probs.shape[1] - 1)
    # rounding can put u * total on the last cdf value, past the last non-zero entry: take that one
    stray = probs.gather(1, index[:, None]).squeeze(1) <= 0
    if bool(stray.any()):
        last = probs.shape[1] - 1 - (probs > 0).flip(-1).int().argmax(-1)
        index = torch.where(stray, last, index)
    return index


def _sample(logits: torch.Tensor, config: SamplingConfig, generator) -> torch.Tensor:
    if config.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / config.temperature, dim=-1)
    if config.top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > config.top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        return order.gather(-1, draw(sorted_p, generator)[:, None]).squeeze(-1)
    return draw(probs, generator)


@torch.no_grad()
def sample(
    pte: PTEModel,
    prompts: list[list[int]],
    policy,
    config: SamplingConfig,
    eos_ids: list[int],
    pad_id: int = 0,
    generator: torch.Generator | None = None,
    progress=None,
) -> list[Completion]:
    """Sample one completion per prompt (repeat prompts for groups)."""
    device = pte.device
    ids, real = left_pad(prompts, pad_id, device)
    batch = len(prompts)
    out = [Completion(prompt_ids=list(p)) for p in prompts]
    state = pte.new_state(batch)
    cache = pte.new_cache(policy, state)
    rows = torch.arange(batch)  # original index of each live row
    eos = torch.tensor(eos_ids, device=device)
    temperature = config.temperature if config.temperature > 0 else 1.0
    seen_events = 0

    hidden = pte.forward(ids, real, cache, state)[:, -1]
    for step in range(config.max_new_tokens):
        logits = pte.logits(hidden)
        allowed = logits
        if step < config.min_new_tokens and len(eos):
            allowed = logits.clone()
            allowed[:, eos] = torch.finfo(logits.dtype).min
        token = _sample(allowed, config, generator)
        # log-probs of the policy itself (what replay recomputes), not of the EOS-masked sampler
        logp = torch.log_softmax(logits / temperature, -1).gather(1, token[:, None]).squeeze(1)
        for b, (t, lp) in enumerate(zip(token.tolist(), logp.tolist())):
            out[int(rows[b])].token_ids.append(t)
            out[int(rows[b])].logprobs.append(lp)
        if progress is not None:
            progress(len(rows))
        done = torch.isin(token, eos) if len(eos) else torch.zeros_like(token, dtype=torch.bool)
        last = step == config.max_new_tokens - 1
        if bool(done.any()) or last:
            _harvest(out, rows, cache, state, done if not last else torch.ones_like(done), done)
            keep = (~done).nonzero().flatten()
            if last or len(keep) == 0:
                break
            if len(keep) < len(rows):
                cache.select_rows(keep)
                state.select_rows(keep)
                rows = rows[keep.cpu()]
                token = token[keep]
        hidden = pte.forward(token[:, None], torch.ones(len(rows), 1, dtype=torch.bool, device=device),
                             cache, state)[:, -1]
        for event in cache.events[seen_events:]:
            for b in event.rows():
                out[int(rows[b])].schedule.append((event.step, event.positions_of(b)))
        seen_events = len(cache.events)
    return out


def _harvest(out, rows, cache, state, leaving, finished) -> None:
    for b in leaving.nonzero().flatten().tolist():
        c = out[int(rows[b])]
        c.finished = bool(finished[b])
        c.max_cache_tokens = int(cache.peak_lengths[b])
        c.num_state_updates = int(state.num_updates[b])
