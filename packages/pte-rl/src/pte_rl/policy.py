"""The trainable policy: a frozen base model + state-conditioned LoRA + a thought encoder.

One forward step over a bounded cache sets the LoRA states from the batch's :class:`ThoughtState`
and runs the decoder with the cache's mask and absolute positions. Logits are left to the caller
(:func:`token_logprobs` computes them in token chunks so [batch x length x vocab] never exists).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from pte_cache import BoundedCache, cache_argument
from pte_lora import LoRAConfig, LoRAModel, attach_lora
from pte_thought import ThoughtEncoder, ThoughtState

from .lean import LeanDecoder, unsupported


def decoder_layers(model):
    return model.model.layers


def _base(module):
    return getattr(module, "base", module)


def _input_scale(layer) -> float:
    """Typical RMS of the hidden states a layer's q/k/v projections see: its input norm's weight."""
    norm = getattr(layer, "input_layernorm", None)
    weight = getattr(norm, "weight", None)
    return 1.0 if weight is None else float(weight.detach().float().pow(2).mean().sqrt())


class PTEModel:
    def __init__(self, model, encoder: ThoughtEncoder, lora: LoRAModel | LoRAConfig | None = None):
        self.model = model
        if not isinstance(lora, LoRAModel):
            config = lora or LoRAConfig()
            g, r = encoder.core_shape
            config = config.model_copy(update={"r": r, "global_tokens": g})
            lora = attach_lora(model, config)
        self.lora = lora
        self.encoder = encoder
        self.state_watchers: list = []
        self.decode_step = None  # a CompiledDecode once compile_decode() is called
        self._cache_kw = cache_argument(model.model)  # "cache" on current transformers
        # the same forward with fewer ops where the architecture is exactly Llama's (see lean.py);
        # PTE_LEAN=0 runs transformers' own forward everywhere
        self.lean = LeanDecoder(model) if unsupported(model) is None and os.environ.get("PTE_LEAN", "1") != "0" else None
        layers = decoder_layers(model)
        encoder.bind(
            [(_base(layer.self_attn.q_proj), _base(layer.self_attn.k_proj), _base(layer.self_attn.v_proj))
             for layer in layers],
            input_scales=[_input_scale(layer) for layer in layers],
        )

    @property
    def num_layers(self) -> int:
        return len(decoder_layers(self.model))

    @property
    def device(self) -> torch.device:
        return self.model.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.lm_head.weight.dtype

    def compile(self, **options) -> None:
        """``torch.compile`` the cache-free blocks of every decoder layer (MLP and norms), in place.

        Attention stays eager: the bounded cache does data-dependent Python bookkeeping at every
        call (lengths, evictions), which would only produce graph breaks and recompiles.
        """
        options.setdefault("dynamic", True)  # batch and chunk length change from call to call
        # the lean forward applies the norms itself, past these modules: run transformers' forward,
        # which calls every compiled block
        self.lean = None
        for layer in decoder_layers(self.model):
            for name in ("mlp", "input_layernorm", "post_attention_layernorm"):
                block = getattr(layer, name, None)
                if block is not None:
                    block.compile(**options)

    def compile_decode(self, mode: str | None = None, **options) -> None:
        """Decode with one compiled step per rollout shape (:class:`pte_rl.compiled.CompiledDecode`):
        ``sample`` then keeps a static cache and never shrinks its batch. ``mode="reduce-overhead"``
        replays the step as a CUDA graph on a GPU."""
        from .compiled import CompiledDecode

        self.decode_step = CompiledDecode(self, mode=mode, **options)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.lora.parameters() + [p for p in self.encoder.parameters() if p.requires_grad]

    def new_state(self, batch: int, replay: bool = False) -> ThoughtState:
        return ThoughtState(self.encoder, self.num_layers, batch, replay=replay)

    def new_cache(self, policy, state: ThoughtState | None, **hooks) -> BoundedCache:
        """A cache for one rollout or replay; ``hooks`` (``keep_graph``, ``tape``) are replay's."""
        listeners = [state] if state is not None and state.wants_kv else []
        if state is not None and state.wants_kv:
            listeners += [watch(state) for watch in self.state_watchers]
        return BoundedCache(policy, self.num_layers, listeners=listeners, **hooks)

    def watch_states(self, make_listener) -> list:
        """Call ``make_listener(state)`` for every new thought state; its result hears the same
        eviction events right after the state (e.g. a ``pte_thought.StateProbe``). Returns the
        list the listeners are collected in."""
        made: list = []
        self.state_watchers.append(lambda state: made.append(make_listener(state)) or made[-1])
        return made

    def forward(self, ids, real, cache: BoundedCache, state: ThoughtState | None, evict=True, pieces=None,
                dense=False):
        """Hidden states ``[batch, q, hidden]`` of ``ids`` given the cache (updated in place).

        ``pieces``: token-dependent states instead of ``state.layers`` (see
        ``LoRAModel.set_state_pieces``), for a pass that spans eviction events deferred into it.
        ``dense``: every entry of ``real`` is True (a decode step; see ``BoundedCache.step``).
        """
        step = cache.step if evict else cache.prepare
        mask, positions = step(real, self.dtype, dense)
        if pieces is not None:
            self.lora.set_state_pieces(pieces)
        else:
            self.lora.set_states(None if state is None else state.layers)
        if self.lean is not None:
            hidden = self.lean(ids, mask, positions, cache)
        else:
            hidden = self.model.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                                      **{self._cache_kw: cache}).last_hidden_state
        cache.commit()
        return hidden

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(hidden).float()


class _HeadLogprobs(torch.autograd.Function):
    """Log-probs of ``targets`` under ``hidden @ W^T / T`` (and the entropy) for one chunk of
    tokens, with a hand-written backward.

    Keeps only ``hidden``, the targets, the log-normaliser and the entropy: the [tokens x vocab]
    logits are recomputed in backward, like a checkpoint, but the gradient is the closed form
    ``d logp / d z = onehot - p`` (and ``d H / d z = -p (log p + H)`` for the entropy, when the
    loss uses it: an entropy bonus) applied in place on the recomputed logits. Autograd through a
    checkpoint does the same with ~10 separate full-vocabulary passes (division, log-sum-exp and
    their backwards); this does four (matmul, scale + exp, scatter, matmul), ~1.6x faster per
    chunk on CPU. The lm head is never adapted (pte-lora targets decoder layers only), so no
    gradient to its weight is needed.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, temperature: float, with_entropy: bool):
        ctx.set_materialize_grads(False)  # an unused output (the entropy, mostly) costs nothing
        logits = F.linear(hidden, weight, bias).float()
        logits.div_(temperature)
        lse = torch.logsumexp(logits, dim=-1)
        logprobs = logits.gather(1, targets[:, None]).squeeze(1) - lse
        entropy = None
        if with_entropy:  # H = lse - sum p * logit, on the same logits (p overwrites a copy)
            p = (logits - lse[:, None]).exp_()
            entropy = lse - torch.bmm(p[:, None, :], logits[:, :, None]).view(-1)
        ctx.save_for_backward(hidden, weight, bias, targets, lse, entropy)
        ctx.temperature = temperature
        return logprobs, entropy

    @staticmethod
    def backward(ctx, grad, grad_entropy):
        hidden, weight, bias, targets, lse, entropy = ctx.saved_tensors
        if grad is None and grad_entropy is None:
            return None, None, None, None, None, None
        logp = F.linear(hidden, weight, bias).float()
        logp.div_(ctx.temperature).sub_(lse[:, None])  # log-softmax
        # d/dz of g * logp[target] + gH * H: g * onehot - p * (g + gH * (logp + H))
        g = grad.float() if grad is not None else torch.zeros_like(lse)
        if grad_entropy is None:  # the usual case: one [tokens x vocab] tensor, as before the bonus
            p = logp.exp_().mul_(-g[:, None])
        else:
            p = logp.exp()
            p.mul_(logp.add_(entropy[:, None]).mul_(grad_entropy.float()[:, None]).add_(g[:, None])).neg_()
        if grad is not None:
            p.scatter_add_(1, targets[:, None], g[:, None])
        p.div_(ctx.temperature)
        return p.to(weight.dtype) @ weight, None, None, None, None, None


def token_logprobs(pte: PTEModel, hidden, targets, temperature: float = 1.0, chunk: int = 1024,
                   with_entropy: bool = False):
    """Log-probs of ``targets`` ([B, L]) under ``hidden`` ([B, L, H]), ``chunk`` tokens at a time.

    No [tokens x vocab] tensor outlives its chunk, with or without grad (see
    :class:`_HeadLogprobs`). Returns ``(logprobs [B, L], entropy [B, L] or None)``, both with
    grad where grad is enabled.
    """
    batch, length, _ = hidden.shape
    flat_h = hidden.reshape(batch * length, -1)
    flat_t = targets.reshape(-1)
    head = pte.model.lm_head
    out, ent = [], []
    for s in range(0, flat_h.shape[0], chunk):
        lp, e = _HeadLogprobs.apply(flat_h[s : s + chunk], head.weight, head.bias, flat_t[s : s + chunk],
                                    temperature, with_entropy)
        out.append(lp)
        if with_entropy:
            ent.append(e)
    logprobs = torch.cat(out).view(batch, length)
    entropy = torch.cat(ent).view(batch, length) if with_entropy else None
    return logprobs, entropy
