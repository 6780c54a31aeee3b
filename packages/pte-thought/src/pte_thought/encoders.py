"""Thought encoders: fold evicted keys/values into a fixed-size state per decoder layer.

The state S of one layer is a ``[global_tokens, rank]`` matrix (batched: ``[batch, G, r]``) that
sits between the LoRA factors, y = W x + (alpha/r) A S B x (method.md §2). ``None`` stands for
the identity (plain LoRA).

Progressive encoder, for layer l with its own frozen projections W_Q, W_K, W_V:
    q_g, k_g, v_g = W_Q h_g, W_K h_g, W_V h_g         (h_g: G learnable global tokens)
    Q = W_Q^a q_g, K = W_K^a K_e, V = W_V^a V_e        (latent projections into r dims)
    S' = softmax(Q K^T / sqrt(r)) V                    (attention="softmax", default)
    S' = Q K^T V                                       (attention="bilinear", the paper's eq. 4)
    S  <- Normalize(S + S')                            at every eviction event
Normalize scales to Frobenius norm sqrt(min(G, r)), the norm of the identity, so a state moves
the adapter by about as much as plain LoRA does. The initial state applies the same map to
(k_g, v_g) ("global" init) or is zero ("zero" init). Evicted keys arrive after RoPE, as cached;
global tokens carry no position.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class ThoughtConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    global_tokens: int = Field(32, gt=0, description="G: learnable global tokens per layer.")
    rank: int = Field(32, gt=0, description="r: latent dimension (the LoRA rank).")
    init: Literal["global", "zero"] = Field("global", description="Initial state before eviction.")
    attention: Literal["softmax", "bilinear"] = Field(
        "softmax", description="softmax: scaled softmax over evicted tokens; bilinear: eq. 4 as printed."
    )


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(32, gt=0, description="LoRA rank; the state is the r x r identity.")


def normalize(state: torch.Tensor, target: float, eps: float = 1e-6) -> torch.Tensor:
    norm = state.flatten(-2).norm(dim=-1)[..., None, None]
    return state * (target / (norm + eps))


class ThoughtEncoder(nn.Module):
    """Base class. Subclasses define :meth:`initial` and :meth:`encode`."""

    name = "encoder"
    updates = True  # whether eviction events change the state

    def __init__(self, global_tokens: int, rank: int):
        super().__init__()
        self.global_tokens = global_tokens
        self.rank = rank
        self.projections: list[tuple[nn.Linear, nn.Linear, nn.Linear]] = []

    @property
    def core_shape(self) -> tuple[int, int]:
        """(G, r): shape of S, i.e. LoRA A is d_out x G and B is r x d_in."""
        return self.global_tokens, self.rank

    def bind(self, projections: list[tuple[nn.Linear, nn.Linear, nn.Linear]]) -> None:
        """Attach the frozen (q, k, v) projections of every decoder layer."""
        # Plain attribute, not submodules: these weights belong to the base model.
        object.__setattr__(self, "projections", list(projections))

    def initial(self, layer: int, batch: int) -> torch.Tensor | None:
        return None

    def encode(self, layer, state, keys, values, mask) -> torch.Tensor | None:
        return state


class IdentityEncoder(ThoughtEncoder):
    """S = I: plain LoRA (the LoRA / LoRA_c baselines)."""

    name = "none"
    updates = False

    def __init__(self, config: IdentityConfig | None = None):
        config = config or IdentityConfig()
        super().__init__(config.rank, config.rank)
        self.config = config


class ProgressiveEncoder(ThoughtEncoder):
    """The paper's progressive thought encoder (see the module docstring)."""

    name = "progressive"

    def __init__(self, config: ThoughtConfig | None = None):
        config = config or ThoughtConfig()
        super().__init__(config.global_tokens, config.rank)
        self.config = config
        self.target_norm = math.sqrt(min(config.global_tokens, config.rank))
        self.h_g = nn.ParameterList()
        self.w_q = nn.ModuleList()
        self.w_k = nn.ModuleList()
        self.w_v = nn.ModuleList()

    def bind(self, projections):
        super().bind(projections)
        if len(self.w_q):  # already built (e.g. loaded): only re-attach projections
            return
        g = torch.Generator().manual_seed(0)
        for q_proj, k_proj, _ in projections:
            hidden = q_proj.in_features
            h = torch.randn(self.global_tokens, hidden, generator=g)
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
        if self.config.attention == "bilinear":
            scores = q @ k.transpose(-1, -2)
            if mask is not None:
                scores = scores.masked_fill(~mask[:, None, :], 0.0)
            return scores @ v
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.rank)
        if mask is not None:
            # finite fill: a row with nothing evicted must not produce NaN gradients via where()
            scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
        return torch.softmax(scores, dim=-1) @ v

    def _query(self, layer):
        return self.w_q[layer](self._project(layer, 0))  # [G, r]

    def initial(self, layer: int, batch: int) -> torch.Tensor:
        if self.config.init == "zero":
            device = self.h_g[layer].device
            return torch.zeros(batch, self.global_tokens, self.rank, device=device)
        q = self._query(layer)
        k = self.w_k[layer](self._project(layer, 1))
        v = self.w_v[layer](self._project(layer, 2))
        s = normalize(self._attend(q, k, v), self.target_norm)
        return s.expand(batch, -1, -1)

    def encode(self, layer, state, keys, values, mask):
        """New state after evicting ``keys``/``values`` ([B, kv_heads, m, D]; ``mask`` [B, m])."""
        batch, heads, m, dim = keys.shape
        k_e = keys.permute(0, 2, 1, 3).reshape(batch, m, heads * dim).float()
        v_e = values.permute(0, 2, 1, 3).reshape(batch, m, heads * dim).float()
        q = self._query(layer)[None]
        update = self._attend(q, self.w_k[layer](k_e), self.w_v[layer](v_e), mask)
        rows = mask.any(1)[:, None, None]
        update = torch.where(rows, update, 0.0)  # rows with nothing evicted keep their state
        return torch.where(rows, normalize(state + update, self.target_norm), state)


class GlobalOnlyEncoder(ProgressiveEncoder):
    """The initial state from the global tokens, never updated (the paper's ablation)."""

    name = "global-only"
    updates = False

    def encode(self, layer, state, keys, values, mask):
        return state


class ThoughtState:
    """Per-layer states of one batch, updated by eviction events (an eviction listener).

    With ``replay=True`` each layer remembers the inputs of its last update (previous state,
    detached, and the evicted K/V), and :meth:`refresh` recomputes the states from them inside
    the current autograd graph. Replay calls it at every chunk, so a chunk's loss reaches the
    encoder through the state it used, while the chain to earlier states is cut at event
    boundaries and memory stays bounded by the window.
    """

    def __init__(self, encoder: ThoughtEncoder, num_layers: int, batch: int, replay: bool = False):
        self.encoder = encoder
        self.batch = batch
        self.replay = replay
        self.layers = [encoder.initial(i, batch) for i in range(num_layers)]
        self.inputs: list[tuple | None] = [None] * num_layers
        self.num_updates = torch.zeros(batch, dtype=torch.long)

    @property
    def wants_kv(self) -> bool:
        return self.encoder.updates

    def __call__(self, event) -> None:
        if not self.encoder.updates:
            return
        for i, (k, v) in enumerate(zip(event.keys, event.values)):
            prev = self.layers[i]
            if self.replay:
                prev = prev.detach()
                self.inputs[i] = (prev, k, v, event.mask)
            self.layers[i] = self.encoder.encode(i, prev, k, v, event.mask)
        self.num_updates += event.mask.any(1).cpu().long()

    def refresh(self) -> None:
        """Recompute every layer's state from its remembered inputs (replay mode)."""
        for i, inputs in enumerate(self.inputs):
            if inputs is None:
                self.layers[i] = self.encoder.initial(i, self.batch)
            else:
                self.layers[i] = self.encoder.encode(i, *inputs)

    def select_rows(self, rows: torch.Tensor) -> None:
        self.layers = [None if s is None else s[rows] for s in self.layers]
        self.num_updates = self.num_updates[rows.cpu()]
        self.batch = len(rows)
