"""The state-conditioned LoRA linear layer: y = W x + (alpha/r) A S B x.

The layer knows nothing about how it is attached or saved. ``state`` is ``[batch, G, r]`` or
None (identity, plain LoRA); :meth:`StateLoRALinear.set_pieces` gives token-dependent states
(a replay chunk that spans an eviction event). Factors are kept in fp32 whatever the base dtype.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class StateLoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int, global_tokens: int, scaling: float):
        super().__init__()
        self.base = base
        self.scaling = scaling
        device = base.weight.device
        # PEFT naming: lora_A maps d_in -> r (our B), lora_B maps G -> d_out (our A, zero-init).
        self.lora_A = nn.Linear(base.in_features, r, bias=False, device=device, dtype=torch.float32)
        self.lora_B = nn.Linear(global_tokens, base.out_features, bias=False, device=device,
                                dtype=torch.float32)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.state = None
        self.enabled = True
        self._plain_base = type(base) is nn.Linear  # call F.linear directly: no module-call overhead

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:  # some model code reads proj.weight (dtype/device checks)
        return self.base.weight

    @property
    def bias(self):
        return self.base.bias

    @property
    def state(self) -> torch.Tensor | None:
        """``[batch, G, r]``, or None for the identity (plain LoRA)."""
        return self._state

    @state.setter
    def state(self, value: torch.Tensor | None) -> None:
        self._state = value
        self._state_t = None  # never a stale transpose
        self._pieces = None

    def set_state(self, state: torch.Tensor | None, state_t: torch.Tensor | None = None) -> None:
        """Set ``state`` with its contiguous transpose S^T ([batch, r, G]) when the caller has it:
        made once per decoder layer and forward, shared by the layer's projections, so each
        projection's z S^T is one plain bmm."""
        self.state = state
        self._state_t = state_t

    def set_pieces(self, pieces: list[tuple[int, torch.Tensor | None, torch.Tensor | None]]) -> None:
        """Token-dependent states for ``[batch, q, d_in]`` inputs: ``pieces[v] = (first token,
        state, its transpose or None)``, starts increasing from 0; each token uses the last piece
        starting at or before it."""
        self.state = None
        ends = [start for start, _, _ in pieces[1:]] + [None]
        self._pieces = [(start, end, None if s is None else (st if st is not None else s.mT))
                        for (start, s, st), end in zip(pieces, ends)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.base.weight, self.base.bias) if self._plain_base else self.base(x)
        if not self.enabled:
            return y
        z = F.linear(x if x.dtype == torch.float32 else x.float(), self.lora_A.weight)  # [..., r]
        if self._pieces is not None:
            if z.dim() != 3:
                raise ValueError(f"token-dependent states need [batch, tokens, features] inputs, got {tuple(x.shape)}")
            z = torch.cat([z[:, a:b] if st is None else torch.matmul(z[:, a:b], st) for a, b, st in self._pieces], 1)
        elif self.state is not None:
            st = self._state_t if self._state_t is not None else self.state.mT
            z = torch.matmul(z, st) if z.dim() == 3 else torch.bmm(z[:, None], st)[:, 0]  # [..., G]
        if y.dtype == torch.float32:  # y + scaling * z B^T in one fused kernel
            out = torch.addmm(y.reshape(-1, y.shape[-1]), z.reshape(-1, z.shape[-1]), self.lora_B.weight.t(),
                              alpha=self.scaling)
            return out.view(y.shape)
        return y + (F.linear(z, self.lora_B.weight) * self.scaling).to(y.dtype)
