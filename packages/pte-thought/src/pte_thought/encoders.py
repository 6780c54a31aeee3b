"""Thought encoders: fold evicted keys/values into a fixed-size state per decoder layer.

The state S of one layer is a ``[global_tokens, rank]`` matrix (batched: ``[batch, G, r]``) that
sits between the LoRA factors, y = W x + (alpha/r) A S B x (the paper's state-conditioned LoRA). ``None`` stands for
the identity (plain LoRA).

Progressive encoder, for layer l with its own frozen projections W_Q, W_K, W_V:
    q_g, k_g, v_g = W_Q h_g, W_K h_g, W_V h_g          (h_g: G learnable global tokens)
    Q = W_Q^a q_g, K = W_K^a K_e, V = W_V^a (V_e - ref)  (latent projections into r dims)
    U = softmax(t * rms(Q) rms(K)^T / sqrt(r)) V          (attention="softmax", default)
    U = Q K^T W_V^a V_e                                   (attention="bilinear", eq. 4 as printed)
    M <- C(M + w(m) N(U))  at every eviction event of m tokens (M starts at 0)
    S  = N(S_g + M)        S_g: the same map applied to the global tokens' own (k_g, v_g)
N scales to Frobenius norm sqrt(min(G, r)), the norm of the identity, so a state moves the
adapter by about as much as plain LoRA does; C scales down to that norm only when above it.
``ref`` is the running mean of every value vector the row has evicted so far, this event's
included, with one pseudo-token at zero; w(m) = m / (m + event_weight_tokens). Why each piece
(measured on SmolLM2-135M, see benchmarks/thought_state.py and docs/method.md):

- h_g is drawn at the scale of the hidden states the projections see (the RMS of the layer's
  input-norm weight: 0.04 in layer 0, 0.4 in layer 29), not N(0, 1), which saturated the latent
  softmax (top weight 0.86-0.97).
- rms(Q), rms(K) with a fixed sharpness t (default 3) bound the scores to +-t sqrt(r) whatever
  the scale of the evicted keys; attention neither saturates nor goes uniform.
- Centred values: a softmax average of raw values shares the tokens' mean vector in every row,
  so U was close to rank 1 (top singular value 46-58% of the energy). The reference is the
  running mean over the whole rollout, not the event's own mean: an event's own mean cancels a
  one-token event exactly (v - mean v = 0, the memory never moved) and reduces a two-token event
  to one direction; the pseudo-token keeps a first one-token event at v/2 instead of 0.
- Each update is normalised, then weighted by how many tokens it evicted (w: 0.2 for one token,
  0.5 for four, 0.89 for 32 at the default 4), so a one-token event moves the memory a fifth as
  much as a large one instead of as much; the memory keeps older events (C instead of N: a
  first small event is not blown up to the full norm) and fades them gradually.
- S_g is added back at every step (the paper's figure: Norm(S_g (+) S_e)), so the learned global
  component never fades (before: cosine with S_g ~0 after 15 events; now ~0.7).
Evicted keys arrive after RoPE, as cached; global tokens carry no position.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .config import IdentityConfig, ThoughtConfig


def normalize(state: torch.Tensor, target: float, eps: float = 1e-6) -> torch.Tensor:
    """Scale each ``[G, r]`` matrix to Frobenius norm ``target`` (a zero matrix stays zero)."""
    norm = state.flatten(-2).norm(dim=-1)[..., None, None]
    return state * (target / (norm + eps))


def clip_norm(state: torch.Tensor, target: float) -> torch.Tensor:
    """Scale each ``[G, r]`` matrix down to Frobenius norm ``target`` when it is above it."""
    norm = state.flatten(-2).norm(dim=-1)[..., None, None]
    return state * (target / norm.clamp(min=target))


class Memory(NamedTuple):
    """What the progressive encoder keeps of one layer's evicted tokens, per row."""

    thought: torch.Tensor  # [B, G, r]: the evicted tokens' part of the state (M)
    value_sum: torch.Tensor  # [B, kv_dim]: sum of every evicted value vector (the centring reference)
    count: torch.Tensor  # [B]: tokens evicted so far
    last: torch.Tensor  # [B, G, r]: the newest event's weighted update, w(m) N(U) (for diagnostics)


def map_memory(fn, memory):
    """``fn`` applied to every tensor of a memory (None, a tensor, or a tuple of tensors)."""
    if memory is None:
        return None
    if isinstance(memory, torch.Tensor):
        return fn(memory)
    return type(memory)(*(map_memory(fn, m) for m in memory))


def _rms(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


class ThoughtEncoder(nn.Module):
    """Base class: the state is the identity (None) and never changes.

    Subclasses that carry a state define :meth:`compose` (memory -> S) and, if eviction events
    change it, :meth:`update` (memory, evicted K/V -> memory) with ``updates = True``.
    """

    name = "encoder"
    updates = False  # whether eviction events change the state
    # whether S can differ from the identity: an adapter whose encoder carries a state is not a
    # plain LoRA, so it is never saved in a form PEFT or vLLM would load without that state
    carries_state = True

    def __init__(self, global_tokens: int, rank: int):
        super().__init__()
        self.global_tokens = global_tokens
        self.rank = rank
        self.projections: list[tuple[nn.Linear, nn.Linear, nn.Linear]] = []

    @property
    def core_shape(self) -> tuple[int, int]:
        """(G, r): shape of S, i.e. LoRA A is d_out x G and B is r x d_in."""
        return self.global_tokens, self.rank

    def bind(self, projections: list[tuple[nn.Linear, nn.Linear, nn.Linear]],
             input_scales: list[float] | None = None) -> None:
        """Attach the frozen (q, k, v) projections of every decoder layer.

        ``input_scales``: per layer, the typical RMS of the hidden states those projections see
        (the input norm's weight); a fresh encoder draws its global tokens at that scale.
        """
        # Plain attribute, not submodules: these weights belong to the base model.
        object.__setattr__(self, "projections", list(projections))

    def empty_memory(self, layer: int, batch: int) -> torch.Tensor | None:
        return None

    def update(self, layer, memory, keys, values, mask) -> torch.Tensor | None:
        return memory

    def compose(self, layer: int, memory: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        return None

    def initial(self, layer: int, batch: int) -> torch.Tensor | None:
        """The state before any eviction."""
        return self.compose(layer, self.empty_memory(layer, batch), batch)


class IdentityEncoder(ThoughtEncoder):
    """S = I: plain LoRA (the LoRA / LoRA_c baselines)."""

    name = "none"
    carries_state = False

    def __init__(self, config: IdentityConfig | None = None):
        config = config or IdentityConfig()
        super().__init__(config.rank, config.rank)
        self.config = config


class ProgressiveEncoder(ThoughtEncoder):
    """The paper's progressive thought encoder (see the module docstring)."""

    name = "progressive"
    updates = True

    def __init__(self, config: ThoughtConfig | None = None):
        config = config or ThoughtConfig()
        super().__init__(config.global_tokens, config.rank)
        self.config = config
        self.target_norm = math.sqrt(min(config.global_tokens, config.rank))
        self.h_g = nn.ParameterList()
        self.w_q = nn.ModuleList()
        self.w_k = nn.ModuleList()
        self.w_v = nn.ModuleList()

    def bind(self, projections, input_scales=None):
        super().bind(projections, input_scales)
        if len(self.w_q):  # already built (e.g. loaded): only re-attach projections
            return
        # the run's seed (torch.manual_seed sets initial_seed), on a generator of its own so the
        # draw does not depend on how much of the global stream model loading used
        g = torch.Generator().manual_seed(torch.initial_seed())
        scales = input_scales or [1.0] * len(projections)
        for (q_proj, k_proj, _), scale in zip(projections, scales):
            hidden = q_proj.in_features
            h = torch.randn(self.global_tokens, hidden, generator=g) * float(scale)
            self.h_g.append(nn.Parameter(h))
            for bank, width in ((self.w_q, q_proj.out_features), (self.w_k, k_proj.out_features),
                                (self.w_v, k_proj.out_features)):
                lin = nn.Linear(width, self.rank, bias=False)
                with torch.no_grad():
                    lin.weight.copy_(torch.randn(self.rank, width, generator=g) / math.sqrt(width))
                bank.append(lin)
        device = projections[0][0].weight.device
        self.to(device=device, dtype=torch.float32)

    def _project(self, layer: int, which: int) -> torch.Tensor:
        base = self.projections[layer][which]
        h = self.h_g[layer]
        return nn.functional.linear(h.to(base.weight.dtype), base.weight, base.bias).float()

    def _attend(self, q, k, v, mask=None):
        """``[B?, G, r]`` update from latent queries ``q`` [G, r], keys/values ``[B?, m, r]``
        (values already centred by the caller where the attention is softmax)."""
        if self.config.attention == "bilinear":
            scores = q @ k.transpose(-1, -2)
            if mask is not None:
                scores = scores.masked_fill(~mask[:, None, :], 0.0)
            return scores @ v
        scores = _rms(q) @ _rms(k).transpose(-1, -2) * (self.config.sharpness / math.sqrt(self.rank))
        if mask is not None:
            # finite fill: a row with nothing evicted must not produce NaN gradients via where()
            scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
        return torch.softmax(scores, dim=-1) @ v

    def _query(self, layer):
        return self.w_q[layer](self._project(layer, 0))  # [G, r]

    def global_state(self, layer: int) -> torch.Tensor:
        """S_g ([G, r], normalised): the state the global tokens give on their own."""
        q = self._query(layer)
        k = self.w_k[layer](self._project(layer, 1))
        v = self.w_v[layer](self._project(layer, 2))
        if self.config.attention == "softmax":
            v = v - v.mean(-2, keepdim=True)  # 32 global tokens: their own mean is a fine reference
        return normalize(self._attend(q, k, v), self.target_norm)

    def empty_memory(self, layer: int, batch: int) -> Memory:
        device = self.h_g[layer].device
        zeros = torch.zeros(batch, self.global_tokens, self.rank, device=device)
        width = self.projections[layer][2].out_features
        return Memory(zeros, torch.zeros(batch, width, device=device), torch.zeros(batch, device=device), zeros)

    def compose(self, layer, memory, batch):
        if self.config.init == "zero":
            return normalize(memory.thought, self.target_norm)
        return normalize(self.global_state(layer)[None] + memory.thought, self.target_norm)

    def event_weight(self, count: torch.Tensor) -> torch.Tensor:
        """w(m) = m / (m + event_weight_tokens): how much an event of ``count`` tokens moves the memory."""
        half = self.config.event_weight_tokens
        count = count.float()
        return count / (count + half) if half > 0 else (count > 0).float()

    def update(self, layer, memory: Memory, keys, values, mask) -> Memory:
        """New memory after evicting ``keys``/``values`` ([B, kv_heads, m, D]; ``mask`` [B, m])."""
        batch, heads, m, dim = keys.shape
        k_e = keys.permute(0, 2, 1, 3).reshape(batch, m, heads * dim).float()
        v_e = values.permute(0, 2, 1, 3).reshape(batch, m, heads * dim).float()
        w = mask[..., None].to(v_e.dtype)
        evicted = mask.sum(1)
        value_sum = memory.value_sum + (v_e * w).sum(1)
        count = memory.count + evicted
        if self.config.attention == "softmax":
            ref = value_sum / (count + 1.0)[:, None]  # running mean, one pseudo-token at zero
            v_e = v_e - ref[:, None, :]
        q = self._query(layer)[None]
        update = normalize(self._attend(q, self.w_k[layer](k_e), self.w_v[layer](v_e), mask), self.target_norm)
        update = self.event_weight(evicted)[:, None, None] * update  # zero where nothing was evicted
        rows = mask.any(1)[:, None, None]  # rows with nothing evicted keep their memory exactly
        thought = torch.where(rows, clip_norm(memory.thought + update, self.target_norm), memory.thought)
        return Memory(thought, value_sum, count, torch.where(rows, update, memory.last))


class GlobalOnlyEncoder(ProgressiveEncoder):
    """The initial state from the global tokens, never updated (the paper's ablation)."""

    name = "global-only"
    updates = False

    def update(self, layer, memory, keys, values, mask):
        return memory


class ThoughtState:
    """Per-layer states of one batch, updated by eviction events (an eviction listener).

    ``layers[i]`` is the state S the LoRA layers of decoder layer i use; ``memory[i]`` is what
    the encoder keeps of the evicted tokens.

    With ``replay=True`` (replay with gradients) each version of the states (the initial one,
    then one per eviction event) is computed once, with its graph to the encoder's weights, and
    ``layers`` holds detached leaves of it. Any number of forward passes can then use one
    version and be backpropagated separately, in any order: their gradients add up in the
    leaves, and :meth:`flush` sends the sum through the encoder once per version (replay calls
    it when no forward that used a version is left to backpropagate). Same gradient as
    recomputing the states inside every forward's graph, at one encoder pass per event instead
    of one per forward. An update's inputs (the previous memory, the evicted K/V) are constants:
    the chain to earlier memories is cut at event boundaries, so memory stays bounded.
    """

    def __init__(self, encoder: ThoughtEncoder, num_layers: int, batch: int, replay: bool = False):
        self.encoder = encoder
        self.batch = batch
        self.replay = replay
        self.memory = [encoder.empty_memory(i, batch) for i in range(num_layers)]
        self.layers = [encoder.compose(i, m, batch) for i, m in enumerate(self.memory)]
        self.num_updates = torch.zeros(batch, dtype=torch.long)
        self.version = 0  # bumped by every event that changes the states
        self._graphs: dict[int, tuple[list, list]] = {}  # version -> (states with graph, their leaves)
        self._publish()

    @property
    def wants_kv(self) -> bool:
        return self.encoder.updates

    def __call__(self, event) -> None:
        if not self.encoder.updates:
            return
        layers = []  # a new list: a published version keeps its own list of leaves
        for i, (k, v) in enumerate(zip(event.keys, event.values)):
            prev = map_memory(torch.Tensor.detach, self.memory[i]) if self.replay else self.memory[i]
            self.memory[i] = self.encoder.update(i, prev, k, v, event.mask)
            layers.append(self.encoder.compose(i, self.memory[i], self.batch))
        self.layers = layers
        self.num_updates += event.mask.any(1).cpu().long()
        self.version += 1
        self._publish()

    def _publish(self) -> None:
        if not self.replay:
            return
        graphs = self.layers
        self.layers = [None if s is None else s.detach().requires_grad_(s.requires_grad) for s in graphs]
        self._graphs[self.version] = (graphs, self.layers)

    def flush(self, keep: set[int] | frozenset[int] = frozenset()) -> None:
        """Backpropagate the gradient gathered in the leaves of every version not in ``keep``
        through the encoder, and free those versions (replay mode)."""
        for version in [v for v in self._graphs if v not in keep]:
            graphs, leaves = self._graphs.pop(version)
            pairs = [(g, leaf.grad) for g, leaf in zip(graphs, leaves)
                     if leaf is not None and leaf.grad is not None and g.requires_grad]
            if pairs:
                torch.autograd.backward([g for g, _ in pairs], [d for _, d in pairs])

    def select_rows(self, rows: torch.Tensor) -> None:
        self.layers = [None if s is None else s[rows] for s in self.layers]
        self.memory = [map_memory(lambda t: t[rows], m) for m in self.memory]
        self.num_updates = self.num_updates[rows.cpu()]
        self.batch = len(rows)
