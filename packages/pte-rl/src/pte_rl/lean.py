"""A lean forward of Llama-architecture decoders (Llama, Mistral, Qwen2, SmolLM) for the bounded cache.

Decoding one token at batch 16 on a CPU is ~2x the weight-streaming floor; about 40% of the
step is per-op overhead outside the matmuls: transformers' decoder layer runs ~75 small ops
per layer (an RMSNorm alone is 8) plus its kwargs plumbing. This forward computes the same
function with fewer ops: ``F.rms_norm``, rotary embedding applied once per tensor, grouped
query attention packed so K/V heads are never repeated (for one query token transformers does
the same; for replay chunks it also keeps a third of the K/V for backward), and the model's
own modules for every projection and the MLP, so LoRA layers, their states and ``disabled()``
work unchanged. With gradients (replay) the MLP's SiLU-gated product keeps two of its three
intermediate tensors for backward (:class:`_SiluGate`). The rotary embedding is the model's own
module (any rope scaling it implements).

Used only where :func:`unsupported` finds nothing against the model (exactly this architecture); anything else
(another attention, sliding windows, q/k norms, eager attention) runs transformers' forward.
Tests compare both forwards on the same inputs: SmolLM2, and tiny Llama, Mistral and Qwen2
models (tests/test_lean.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")


def unsupported(model) -> str | None:
    """Why :class:`LeanDecoder` cannot stand in for ``model.model`` (a short reason), or None when it
    computes exactly what ``model.model`` does."""
    config = model.config
    arch = type(model).__name__
    if arch not in ARCHITECTURES:
        return f"architecture {arch}"
    if getattr(config, "_attn_implementation", None) != "sdpa":
        return f"attention {getattr(config, '_attn_implementation', None)}"
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", arch == "MistralForCausalLM"):
        return "sliding-window attention"
    if any(hasattr(model.model.layers[0].self_attn, n) for n in ("q_norm", "k_norm")):
        return "q/k norms"
    return None


def _rms_norm(norm, x: torch.Tensor) -> torch.Tensor:
    # transformers: fp32 normalisation, cast back to the input dtype, then times the weight
    return norm.weight * F.rms_norm(x.float(), (x.shape[-1],), eps=norm.variance_epsilon).to(x.dtype)


class _SiluGate(torch.autograd.Function):
    """``silu(gate) * up`` (the Llama MLP's product) keeping only ``gate`` and ``up`` for backward.

    Autograd through ``F.silu`` and the product also keeps ``silu(gate)``: three intermediate-
    width tensors per token and layer instead of two, about a fifth of all the activations a
    replay forward holds. The forward computes exactly what transformers does; the backward
    recomputes the sigmoid (one cheap elementwise pass).
    """

    @staticmethod
    def forward(ctx, gate, up):
        ctx.save_for_backward(gate, up)
        return F.silu(gate) * up

    @staticmethod
    def backward(ctx, grad):
        gate, up = ctx.saved_tensors
        sig = torch.sigmoid(gate)
        silu = gate * sig
        return grad * up * (sig * (1 + gate * (1 - sig))), grad * silu


_SILU = ("SiLUActivation", "SiLU")  # transformers' and torch's SiLU modules


def _mlp(mlp, x: torch.Tensor, silu: bool) -> torch.Tensor:
    """The model's MLP; with gradients and a SiLU activation, the same function through
    :class:`_SiluGate`."""
    if silu and torch.is_grad_enabled():
        return mlp.down_proj(_SiluGate.apply(mlp.gate_proj(x), mlp.up_proj(x)))
    return mlp(x)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


class LeanDecoder:
    """``model.model``'s forward over a bounded cache with fewer ops (see the module docstring)."""

    def __init__(self, model):
        inner = model.model
        config = model.config
        self.embed, self.rotary, self.norm = inner.embed_tokens, inner.rotary_emb, inner.norm
        self.layers = list(inner.layers)
        self.silu = [type(layer.mlp.act_fn).__name__ in _SILU for layer in self.layers]  # decided once
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.scaling = self.layers[0].self_attn.scaling

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache) -> torch.Tensor:
        h = self.embed(ids)
        cos, sin = self.rotary(h, positions)
        cos, sin = cos[:, None], sin[:, None]  # [B, 1, L, D]: broadcast over heads
        batch, length, _ = h.shape
        n_rep = self.heads // self.kv_heads
        # Grouped-query attention without repeating K/V: the n_rep query heads that share a K/V
        # head become n_rep x L rows of one query axis (transformers does this for L = 1), so
        # the mask repeats along that axis once per call, for all layers. Saves the repeated K/V
        # copies that sdpa would otherwise keep for backward in replay (3x the K/V).
        packed_mask = mask if length == 1 or n_rep == 1 else (
            mask[:, :, None].expand(batch, mask.shape[1], n_rep, length, mask.shape[-1]).reshape(batch, mask.shape[1], n_rep * length, -1))
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            x = _rms_norm(layer.input_layernorm, h)
            q = _rotate(attn.q_proj(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2), cos, sin)
            k = _rotate(attn.k_proj(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2), cos, sin)
            v = attn.v_proj(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
            k, v = cache.update(k, v, i)
            o = F.scaled_dot_product_attention(q.reshape(batch, self.kv_heads, n_rep * length, self.head_dim), k, v,
                                               attn_mask=packed_mask, scale=self.scaling)
            o = o.reshape(batch, self.heads, length, self.head_dim).transpose(1, 2).reshape(batch, length, -1)
            h = h + attn.o_proj(o)
            x = _rms_norm(layer.post_attention_layernorm, h)
            h = h + _mlp(layer.mlp, x, self.silu[i])
        return _rms_norm(self.norm, h)
