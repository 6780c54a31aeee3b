"""Recompute completion log-probs chunk by chunk under a recorded eviction schedule.

Between two eviction events the cache content and the thought state are fixed, so a chunk is
one teacher-forced forward over (kept cache + chunk). The prompt (but its last token) is fed
without grad: it is context, like every stored token. With unchanged weights this reproduces the
sampling log-probs; with gradients, ``on_chunk`` receives each chunk's log-probs and may call
``backward`` right away, so activation memory is bounded by window x chunk, not by length
(the stored cache is context without a graph, method.md §3).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .policy import PTEModel, token_logprobs
from .rollout import Completion, left_pad

ChunkFn = Callable[[torch.Tensor, torch.Tensor, slice], None]


def chunk_spans(completions: list[Completion], max_chunk: int) -> list[tuple[int, int]]:
    """``(start, end)`` input spans: a new span at every event step and every ``max_chunk``."""
    n_inputs = max(len(c.token_ids) for c in completions) - 1
    cuts = {0} | {step for c in completions for step, _ in c.schedule}
    edges = sorted(s for s in cuts if s < n_inputs) + [n_inputs]
    spans = []
    for a, b in zip(edges, edges[1:]):
        spans.extend((s, min(s + max_chunk, b)) for s in range(a, b, max_chunk))
    return spans


def replay_logprobs(
    pte: PTEModel,
    completions: list[Completion],
    temperature: float = 1.0,
    max_chunk: int = 64,
    on_chunk: ChunkFn | None = None,
    pad_id: int = 0,
    logit_chunk: int = 1024,
    with_entropy: bool = False,
):
    """Log-probs ``[B, T]`` of every completion token (zeros past each row's end).

    Runs in whatever grad mode is active. ``on_chunk(logprobs, mask, cols)`` receives each
    piece's ``[B, n]`` log-probs for token columns ``cols`` as soon as they exist (the prompt
    prefill predicts column 0; inputs ``[s, e)`` predict columns ``[s+1, e+1)``); the returned
    tensors are detached. Returns ``(logprobs, entropy or None)``.
    """
    device = pte.device
    batch = len(completions)
    length = max(len(c.token_ids) for c in completions)
    lengths = torch.tensor([len(c.token_ids) for c in completions], device=device)
    tokens = torch.zeros(batch, length, dtype=torch.long)
    for b, c in enumerate(completions):
        tokens[b, : len(c.token_ids)] = torch.tensor(c.token_ids, dtype=torch.long)
    tokens = tokens.to(device)
    valid = torch.arange(length, device=device)[None, :] < lengths[:, None]
    events: dict[int, list[list[int]]] = {}
    for b, c in enumerate(completions):
        for step, positions in c.schedule:
            events.setdefault(step, [[] for _ in range(batch)])[b] = positions

    grad = torch.is_grad_enabled()
    state = pte.new_state(batch, replay=grad)
    cache = pte.new_cache(None, state)
    logprobs = torch.zeros(batch, length, device=device)
    entropy = torch.zeros(batch, length, device=device) if with_entropy else None

    def emit(hidden, cols: slice):
        lp, ent = token_logprobs(pte, hidden, tokens[:, cols], temperature, logit_chunk, with_entropy)
        mask = valid[:, cols]
        lp = lp * mask
        if on_chunk is not None:
            on_chunk(lp, mask, cols)
        logprobs[:, cols] = lp.detach()
        if entropy is not None:
            entropy[:, cols] = ent * mask

    ids, real = left_pad([c.prompt_ids for c in completions], pad_id, device)
    if ids.shape[1] > 1:
        # the prompt is context, like every stored token: only its last position (which predicts
        # token 0) runs with grad, so prompt activations are never kept for backward
        with torch.no_grad():
            pte.forward(ids[:, :-1], real[:, :-1], cache, state, evict=False)
    emit(pte.forward(ids[:, -1:], real[:, -1:], cache, state, evict=False), slice(0, 1))
    for s, e in chunk_spans(completions, max_chunk):
        if s in events:
            cache.evict_positions(events[s])
        if grad:
            state.refresh()
        # input j is fed only if token j+1 exists, exactly as during sampling
        hidden = pte.forward(tokens[:, s:e], valid[:, s + 1 : e + 1], cache, state, evict=False)
        emit(hidden, slice(s + 1, e + 1))
    return logprobs, entropy
