"""Recompute completion log-probs chunk by chunk under a recorded eviction schedule.

A chunk is one teacher-forced forward over (kept cache + chunk). It may span eviction events
whose tokens were all fed before it: the cache hides them from the chunk's queries from the
event's step on and the LoRA layers switch to the new thought state there (token-dependent
states), exactly what sampling saw token by token; an event that evicts one of the chunk's own
tokens starts a new chunk. With unchanged weights this reproduces the sampling log-probs; with
gradients, ``on_chunk`` receives each chunk's log-probs and returns its loss. How far a chunk's
loss reaches back is the ``graph`` mode:

Each mode is a small class behind one interface (:class:`Graph`), picked by name from ``GRAPHS``.

- ``"window"`` (default, as ``TrainConfig.replay_graph``): the loss reaches every token the chunk attends to: the prompt and the
  generated tokens still in the cache. Each forward's graph is kept while its tokens are in the
  cache; the stored K/V enter later chunks as leaves whose gradients are routed back (by
  absolute position) to the forward that produced them, which runs its backward once its tokens
  are evicted (or at the end). Memory is bounded by the window, not the completion. Cut: paths
  through two evictions (a token's influence on a token that left before the loss was taken)
  and the thought state's inputs (the state sees evicted K/V as constants).
- ``"chunk"``: each chunk backpropagates alone; the prompt and every stored token are constants.
  Cheapest; on the default model its gradient has cosine ~0.7-0.8 to the exact one.
- ``"exact"``: every stored token, evicted ones and the thought state's inputs keep their graph,
  one backward at the end. Memory grows with the completion: the oracle for tests/benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal, NamedTuple

import torch

from .policy import PTEModel, token_logprobs
from .rollout import Completion, left_pad

ChunkFn = Callable[[torch.Tensor, torch.Tensor, slice], "torch.Tensor | None"]
GraphMode = Literal["window", "chunk", "exact"]


class Span(NamedTuple):
    """Inputs ``[start, end)`` of every row, replayed in one forward pass."""

    start: int
    end: int


def chunk_spans(completions: list[Completion], max_chunk: int) -> list[Span]:
    """The replay plan: input spans of at most ``max_chunk`` inputs each.

    The pieces between eviction events (cut every ``max_chunk``) are merged with the next while
    the two fit in ``max_chunk`` and every token the event between them evicts (in every row) was
    fed before the span, so its K/V are stored when the span runs. Merging whole pieces keeps the
    spans aligned with the events: a span cut at some other token would hold its graph until a
    later event evicts its last token (measured: +0.5 GB at 32-token spans on the default model)
    for no fewer passes. Input ``j`` of a row sits at absolute position ``len(prompt) + j``.
    """
    n_inputs = max(len(c.token_ids) for c in completions) - 1
    newest: dict[int, int] = {}  # event step -> the latest input it evicts, over rows (prompt: < 0)
    for c in completions:
        for step, positions in c.schedule:
            if not positions:
                continue
            newest[step] = max(newest.get(step, -len(c.prompt_ids)), max(positions) - len(c.prompt_ids))
    edges = sorted(s for s in {0} | set(newest) if s < n_inputs) + [n_inputs]
    spans: list[Span] = []
    for a, b in zip(edges, edges[1:]):
        for s in range(a, b, max_chunk):
            e = min(s + max_chunk, b)
            if spans and s == a and e - spans[-1].start <= max_chunk and newest.get(s, -1) < spans[-1].start:
                spans[-1] = Span(spans[-1].start, e)  # runs through the event at s
            else:
                spans.append(Span(s, e))
    return spans


class _Forward:
    """One replay forward pass: its new K/V (with graph) per (layer, k|v), where they sit, and
    the stored K/V it read as leaves (all at the same cache positions)."""

    def __init__(self):
        self.outs: dict[tuple[int, int], torch.Tensor] = {}
        self.grads: dict[tuple[int, int], torch.Tensor] = {}
        self.positions: torch.Tensor | None = None  # [B, q] absolute positions, -1 for pads
        self.leaves: dict[tuple[int, int], torch.Tensor] = {}
        self.leaf_positions: torch.Tensor | None = None  # [B, L] absolute positions of the leaves
        # per later forward: [B, q, L] one-hot map from its new tokens to these leaves (None: no
        # overlap); the same for every layer, so it is made once per pair, not once per leaf
        self.matches: dict[_Forward, torch.Tensor | None] = {}
        self.state_versions: set[int] = {0}  # the thought-state versions it used (see ThoughtState.flush)

    def match(self, target: _Forward) -> torch.Tensor | None:
        if target not in self.matches:
            t = target.positions
            m = (self.leaf_positions[:, None, :] == t[:, :, None]) & (t >= 0)[:, :, None]
            self.matches[target] = m.float() if bool(m.any()) else None
        return self.matches[target]


class GradTape:
    """Routes gradients of stored K/V back to the forward that produced them (``graph="window"``)."""

    def __init__(self):
        self.live: list[_Forward] = []
        self.current = _Forward()

    # ---- called by the cache inside a forward, per layer and kind (0 = keys, 1 = values)
    def leaf(self, layer: int, kind: int, view: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        key = (layer, kind)
        leaf = view.detach().requires_grad_(True)
        self.current.leaves[key] = leaf
        if self.current.leaf_positions is None:
            self.current.leaf_positions = positions.clone()
        return leaf

    def produced(self, layer: int, kind: int, new: torch.Tensor, positions: torch.Tensor) -> None:
        key = (layer, kind)
        self.current.outs[key] = new
        self.current.grads[key] = torch.zeros_like(new)
        if self.current.positions is None:
            self.current.positions = positions.clone()

    # ---- called by replay
    def close_forward(self, state_versions: set[int]) -> None:
        self.current.state_versions = set(state_versions)
        if self.current.outs:
            self.live.append(self.current)
        self.current = _Forward()

    def route(self) -> None:
        """Move every leaf gradient into the K/V gradients of the live forwards holding those tokens."""
        for fwd in self.live:
            pending = [(key, leaf.grad) for key, leaf in fwd.leaves.items() if leaf.grad is not None]
            for key, _ in pending:
                fwd.leaves[key].grad = None
            if not pending:
                continue
            for target in self.live:
                match = None if target is fwd else fwd.match(target)
                if match is None:
                    continue
                for key, g in pending:
                    if key in target.grads:
                        target.grads[key] += torch.einsum("bql,bhld->bhqd", match.to(g.dtype), g).to(
                            target.grads[key].dtype)

    def backward_forward(self, fwd: _Forward) -> None:
        """Backpropagate a forward's K/V with the gradient gathered for them, then free it."""
        self.route()
        keys = [k for k, out in fwd.outs.items() if out.requires_grad]
        grads = [fwd.grads[k] for k in keys]
        if keys and any(bool(g.any()) for g in grads):
            torch.autograd.backward([fwd.outs[k] for k in keys], grads)
            self.route()  # what it sent further back, to the forwards before it
        self.live.remove(fwd)
        for other in self.live:
            other.matches.pop(fwd, None)  # and let it be freed

    def release_evicted(self, cache) -> None:
        """Backpropagate (and free) every forward none of whose tokens is in the cache any more."""
        held = cache.positions
        for fwd in list(self.live):
            p = fwd.positions
            still = (held[:, :, None] == p[:, None, :]).any(1) & (p >= 0)
            if not bool(still.any()):
                self.backward_forward(fwd)

    def finish(self) -> None:
        """At the end: the remaining forwards, newest first (each one's gradient is then complete)."""
        for fwd in reversed(list(self.live)):
            self.backward_forward(fwd)


class Graph:
    """How far a chunk's loss reaches back (see the module docstring). Replay builds its cache
    with :meth:`cache_hooks`, hands it each chunk's loss, tells it when a forward pass closed and
    when tokens left the cache, and calls :meth:`finish` at the end."""

    name: ClassVar[str]
    prompt_grad: ClassVar[bool] = True  # the prompt's forward runs with grad
    state_replay: ClassVar[bool] = True  # the thought state detaches evicted K/V (see ThoughtState)

    def cache_hooks(self) -> dict:
        return {}

    def loss(self, loss: torch.Tensor) -> None:
        loss.backward()

    def closed(self, versions: set[int]) -> None:
        """A forward pass ended; it used these thought-state versions."""

    def evicted(self, cache) -> set[int]:
        """Tokens left the cache; returns the state versions a later backward may still need."""
        return set()

    def finish(self) -> None:
        pass


class ChunkGraph(Graph):
    """Each chunk backpropagates alone; the prompt and every stored token are constants."""

    name = "chunk"
    prompt_grad = False  # only the prompt's last position (which predicts token 0) runs with grad


class WindowGraph(Graph):
    """A chunk's loss reaches every token still cached, through :class:`GradTape`."""

    name = "window"

    def __init__(self):
        self.tape = GradTape()

    def cache_hooks(self) -> dict:
        return {"tape": self.tape}

    def loss(self, loss: torch.Tensor) -> None:
        loss.backward(retain_graph=True)  # the graph lives on while its tokens are cached
        self.tape.route()

    def closed(self, versions: set[int]) -> None:
        self.tape.close_forward(versions)

    def evicted(self, cache) -> set[int]:
        self.tape.release_evicted(cache)
        return set().union(*(f.state_versions for f in self.tape.live))

    def finish(self) -> None:
        self.tape.finish()


class ExactGraph(Graph):
    """Every token keeps its graph; one backward at the end (memory grows with the completion)."""

    name = "exact"
    state_replay = False

    def __init__(self):
        self.losses: list[torch.Tensor] = []

    def cache_hooks(self) -> dict:
        return {"keep_graph": True}

    def loss(self, loss: torch.Tensor) -> None:
        self.losses.append(loss)

    def finish(self) -> None:
        if self.losses:
            torch.stack(self.losses).sum().backward()


GRAPHS: dict[str, type[Graph]] = {g.name: g for g in (WindowGraph, ChunkGraph, ExactGraph)}
GRAPH_MODES = tuple(GRAPHS)


def replay_logprobs(
    pte: PTEModel,
    completions: list[Completion],
    temperature: float = 1.0,
    max_chunk: int = 64,
    on_chunk: ChunkFn | None = None,
    pad_id: int = 0,
    logit_chunk: int = 1024,
    with_entropy: bool = False,
    graph: GraphMode = "window",
):
    """Log-probs ``[B, T]`` of every completion token (zeros past each row's end).

    Runs in whatever grad mode is active. ``on_chunk(logprobs, mask, cols)`` receives each
    piece's ``[B, n]`` log-probs for token columns ``cols`` as soon as they exist (the prompt
    prefill predicts column 0; inputs ``[s, e)`` predict columns ``[s+1, e+1)``) and may return a
    scalar loss, which replay backpropagates as ``graph`` says (returning None and calling
    ``backward`` itself only works with ``graph="chunk"``); ``with_entropy`` also passes the
    chunk's token entropies, with grad, as ``entropy=`` (for an entropy bonus). Without grad the
    mode does not matter (every mode gives the same log-probs). The returned tensors are detached.
    Returns ``(logprobs, entropy or None)``.
    """
    if graph not in GRAPHS:
        raise ValueError(f"graph must be one of {GRAPH_MODES}, got {graph!r}")
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
    mode = GRAPHS[graph if grad else "chunk"]()
    state = pte.new_state(batch, replay=grad and mode.state_replay)
    bands = {c.prompt_band for c in completions}
    if len(bands) > 1:
        raise ValueError(f"completions sampled with different prompt bands {sorted(bands, key=str)} cannot "
                         "be replayed together")
    cache = pte.new_cache(None, state, prompt_band=bands.pop(), **mode.cache_hooks())
    logprobs = torch.zeros(batch, length, device=device)
    entropy = torch.zeros(batch, length, device=device) if with_entropy else None

    def emit(hidden, cols: slice):
        lp, ent = token_logprobs(pte, hidden, tokens[:, cols], temperature, logit_chunk, with_entropy)
        mask = valid[:, cols]
        lp = lp * mask
        ent = None if ent is None else ent * mask
        if on_chunk is not None:
            loss = on_chunk(lp, mask, cols) if ent is None else on_chunk(lp, mask, cols, entropy=ent)
            if loss is not None and loss.requires_grad:
                mode.loss(loss)
        logprobs[:, cols] = lp.detach()
        if entropy is not None:
            entropy[:, cols] = ent.detach()

    def forward(ids, real, pieces=None, versions=None):
        hidden = pte.forward(ids, real, cache, state, evict=False, pieces=pieces)
        mode.closed(versions or {state.version})
        return hidden

    def evicted():
        # the mode backpropagates what it can now; a state version's gradient is then complete
        # once no forward that used it can still be backpropagated
        state.flush(keep=mode.evicted(cache) | {state.version})

    ids, real = left_pad([c.prompt_ids for c in completions], pad_id, device)
    if ids.shape[1] > 1:
        # chunk mode: the prompt is context, like every stored token, so its activations are never kept
        with torch.set_grad_enabled(grad and mode.prompt_grad):
            forward(ids[:, :-1], real[:, :-1])
    emit(forward(ids[:, -1:], real[:, -1:]), slice(0, 1))
    steps = sorted(events)
    for s, e in chunk_spans(completions, max_chunk):
        if s in events:
            cache.evict_positions(events[s])
            evicted()
        # events inside the span: deferred to their step; the state each token uses, by version
        inside = [m for m in steps if s < m < e]
        pieces, versions = [(0, state.layers)], {state.version}
        for m in inside:
            cache.evict_positions(events[m], at=m - s)
            if state.version not in versions:
                pieces.append((m - s, state.layers))
                versions.add(state.version)
        # input j is fed only if token j+1 exists, exactly as during sampling
        hidden = forward(tokens[:, s:e], valid[:, s + 1 : e + 1], pieces, versions)
        emit(hidden, slice(s + 1, e + 1))
        if inside:  # those tokens left at the span's end
            evicted()
    mode.finish()
    state.flush()
    return logprobs, entropy
