"""Batched sampling under a bounded cache (no gradients).

Each row stops at EOS or ``max_new_tokens``. Every completion records the tokens, their sampling
log-probs (under the temperature-scaled distribution, as TRL does) and its eviction schedule:
``[(step, [absolute positions]), ...]`` (with the prompt's attention band, when the policy streams
the prompt), which :mod:`pte_rl.replay` replays.

A decode step reads nothing back from the device (on a GPU it never waits for the host):
tokens and log-probs collect in device buffers, and whether rows finished is looked at every
``finish_check_every`` steps; rows found finished then leave the batch (cache, states and
bookkeeping are compacted), and what they generated after their EOS is dropped. Each row draws its own uniform every step whatever the
batch holds, so the samples do not depend on when other rows leave.
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
    finish_check_every: int = Field(8, gt=0, description="Decode steps between looks at which rows "
                                    "finished (the only host read between eviction events).")


@dataclass
class Completion:
    prompt_ids: list[int]
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    schedule: list[tuple[int, list[int]]] = field(default_factory=list)
    finished: bool = False  # ended with EOS (False: truncated at max_new_tokens)
    num_state_updates: int = 0
    max_cache_tokens: int = 0
    prompt_band: tuple[int, int] | None = None  # (sinks, window) of a streamed prompt (the cache's), for replay

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


def draw(probs: torch.Tensor, generator=None, u: torch.Tensor | None = None) -> torch.Tensor:
    """One index per row of ``probs`` ([B, V], rows need not sum to 1), by inverse CDF.

    Same distribution as ``torch.multinomial(probs, 1)`` but needs one uniform per row (``u``,
    [B, 1], drawn here when not given) instead of one exponential per vocabulary entry
    (multinomial's CPU path spent ~7 ms/step at batch 8 on a 49k vocabulary, ~9% of a decode
    step). Never returns a zero-probability index. Reads nothing back from the device.
    """
    cdf = probs.float().cumsum(-1)
    if u is None:
        u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device)
    index = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(1).clamp_(max=probs.shape[1] - 1)
    # rounding can put u * total on the last cdf value, past the last non-zero entry: take that one
    stray = probs.gather(1, index[:, None]).squeeze(1) <= 0
    last = probs.shape[1] - 1 - (probs > 0).flip(-1).int().argmax(-1)
    return torch.where(stray, last, index)


def _sample(logits: torch.Tensor, config: SamplingConfig, generator, u: torch.Tensor | None = None) -> torch.Tensor:
    if config.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / config.temperature, dim=-1)
    if config.top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > config.top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        return order.gather(-1, draw(sorted_p, generator, u)[:, None]).squeeze(-1)
    return draw(probs, generator, u)


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
    batch, steps = len(prompts), config.max_new_tokens
    out = [Completion(prompt_ids=list(p)) for p in prompts]
    state = pte.new_state(batch)
    # a compiled step wants one shape for the whole rollout: a static cache, and rows that
    # finish stay in the batch (their tokens after EOS are dropped when harvested)
    compiled = pte.decode_step
    cache = pte.new_cache(policy, state, **({"max_new_tokens": steps} if compiled else {}))
    for c in out:
        c.prompt_band = cache.prompt_band
    rows = torch.arange(batch)  # original index of each live row (host)
    live = rows.to(device)  # the same, on the device
    eos = torch.tensor(eos_ids, device=device)
    temperature = config.temperature if config.temperature > 0 else 1.0
    tokens = torch.zeros(batch, steps, dtype=torch.long, device=device)
    logprobs = torch.zeros(batch, steps, device=device)
    end = torch.full((batch,), steps, dtype=torch.long, device=device)  # index of each row's EOS (steps: none)
    peak = torch.zeros(batch, dtype=torch.long, device=device)  # cache peak when the row hit EOS
    one = torch.ones(batch, 1, dtype=torch.bool, device=device)
    seen_events = 0

    hidden = pte.forward(ids, real, cache, state)[:, -1]
    for step in range(steps):
        logits = pte.logits(hidden)
        allowed = logits
        if step < config.min_new_tokens and len(eos):
            allowed = logits.clone()
            allowed[:, eos] = torch.finfo(logits.dtype).min
        u = None
        if config.temperature > 0:  # one uniform per original row, whoever is still in the batch
            u = torch.rand(batch, 1, generator=generator, device=device)[live]
        token = _sample(allowed, config, generator, u)
        # log-probs of the policy itself (what replay recomputes), not of the EOS-masked sampler
        logp = torch.log_softmax(logits / temperature, -1).gather(1, token[:, None]).squeeze(1)
        tokens[live, step] = token
        logprobs[live, step] = logp
        if len(eos):
            first = torch.isin(token, eos) & (end[live] == steps)
            end[live] = torch.where(first, step, end[live])
            peak[live] = torch.where(first, cache.peak_lengths, peak[live])
        if progress is not None:
            progress(len(rows))
        if step == steps - 1:
            break
        if len(eos) and (step + 1) % config.finish_check_every == 0:
            gone = (end[live] <= step).cpu()  # the one host read between eviction events
            if compiled is not None:
                if bool(gone.all()):
                    break
            elif bool(gone.any()):
                _harvest(out, rows[gone], tokens, logprobs, end, peak, state, steps)
                keep = (~gone).nonzero().flatten()
                if len(keep) == 0:
                    return out
                cache.select_rows(keep.to(device))
                state.select_rows(keep.to(device))
                rows, live = rows[keep], live[keep.to(device)]
                token = token[keep.to(device)]
        seen_events = len(cache.events)
        if compiled is not None:
            hidden = compiled(token[:, None], cache, state)[:, -1]
        else:
            hidden = pte.forward(token[:, None], one[: len(rows)], cache, state, dense=True)[:, -1]
        for event in cache.events[seen_events:]:
            for b in event.rows():
                out[int(rows[b])].schedule.append((event.step, event.positions_of(b)))
    _harvest(out, rows, tokens, logprobs, end, peak, state, steps, final_peak=cache.peak_lengths)
    return out


@torch.no_grad()
def teacher_forced(pte: PTEModel, prompts: list[list[int]], rows: list[list[int]], policy, pad_id: int = 0
                   ) -> list[Completion]:
    """Completions of given tokens (``rows[b]`` after ``prompts[b]``, e.g. reference answers
    ending in EOS) with the eviction schedule ``policy`` gives them: exactly what :func:`sample`
    records had it drawn these tokens, so :func:`pte_rl.replay_logprobs` trains on them under the
    bounded cache (a supervised warm start). Each row is taken as a complete answer
    (``finished``); one decode pass feeds every token but the last of each row; ``logprobs`` and
    ``max_cache_tokens`` stay empty. As in sampling, a ``dynamic_window`` policy sizes the window
    from the batch's longest prompt."""
    if len(prompts) != len(rows) or not all(rows):
        raise ValueError("teacher_forced needs one non-empty row of tokens per prompt")
    device = pte.device
    batch = len(prompts)
    out = [Completion(prompt_ids=list(p), token_ids=list(r), finished=True) for p, r in zip(prompts, rows)]
    state = pte.new_state(batch)
    cache = pte.new_cache(policy, state)
    ids, real = left_pad(prompts, pad_id, device)
    pte.forward(ids, real, cache, state)
    width = max(len(r) for r in rows) - 1
    feed = torch.full((batch, max(width, 0)), pad_id, dtype=torch.long)
    for b, r in enumerate(rows):  # right-padded: a row's events after its own last fed token are dropped
        feed[b, : len(r) - 1] = torch.tensor(r[:-1], dtype=torch.long)
    feed = feed.to(device)
    one = torch.ones(batch, 1, dtype=torch.bool, device=device)
    for step in range(width):
        seen = len(cache.events)
        pte.forward(feed[:, step : step + 1], one, cache, state, dense=True)
        for event in cache.events[seen:]:
            for b in event.rows():
                out[int(b)].schedule.append((event.step, event.positions_of(b)))
    counts_updates = getattr(state, "wants_kv", False)
    for c in out:
        c.prompt_band = cache.prompt_band
        c.schedule = [(s, p) for s, p in c.schedule if s < len(c.token_ids) - 1]
        c.num_state_updates = len(c.schedule) if counts_updates else 0
    return out


def _harvest(out, rows, tokens, logprobs, end, peak, state, steps, final_peak=None) -> None:
    """Fill the completions of ``rows`` (original indices) from the device buffers: each row's
    tokens up to and including its EOS, and only the eviction events of the forward passes it
    needed (a row keeps decoding until its finish is looked at; its EOS itself is never fed).
    ``final_peak``: the live batch's cache peaks at the end, for rows cut at the length limit."""
    index = rows.to(tokens.device)
    ends = end[index].tolist()
    toks, lps, peaks = tokens[index].tolist(), logprobs[index].tolist(), peak[index].tolist()
    finals = final_peak.tolist() if final_peak is not None else None
    counts_updates = state is not None and getattr(state, "wants_kv", False)
    for j, b in enumerate(rows.tolist()):
        c, e = out[b], ends[j]
        c.finished = e < steps
        c.token_ids, c.logprobs = toks[j][: e + 1], lps[j][: e + 1]  # e == steps: all of them
        c.schedule = [(s, p) for s, p in c.schedule if s < e]  # the event of step s came with input s
        c.num_state_updates = len(c.schedule) if counts_updates else 0
        c.max_cache_tokens = peaks[j] if c.finished or finals is None else finals[j]
