"""The state-conditioned LoRA linear layer: y = W x + (alpha/r) A S B x.

The layer knows nothing about how it is attached or saved. ``state`` is ``[batch, G, r]`` or
None (identity, plain LoRA). Factors are kept in fp32 whatever the base dtype.
"""

from __future__ import annotations

import math

import torch
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
        self.state: torch.Tensor | None = None
        self.enabled = True

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if not self.enabled:
            return y
        z = self.lora_A(x.float())  # [..., r]
        if self.state is not None:
            s = self.state
            if z.dim() == 3:
                z = torch.einsum("blr,bgr->blg", z, s)
            else:  # [B, r] (single position without a length dim)
                z = torch.einsum("br,bgr->bg", z, s)
        return y + (self.lora_B(z) * self.scaling).to(y.dtype)
