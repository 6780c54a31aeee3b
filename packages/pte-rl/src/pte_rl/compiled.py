"""A decode step compiled once per rollout shape: one token per row over a static cache.

Eager decoding on a GPU is launch-bound: a token of a 3B model is a few thousand small kernels,
each a host round trip, however little each does. A compiled step fuses them, and with
``mode="reduce-overhead"`` on CUDA replays the whole step as one CUDA graph.

What makes one graph serve a whole rollout, eviction events included:

- the cache is static (``BoundedCache(max_new_tokens=...)``): its buffers are allocated once at
  prefill and never move (compaction writes back into the same storage), and every step attends
  over the same capacity, so shapes and addresses do not change from step to step;
- the step is a function of tensors only: token ids, the mask and positions the cache computed
  (eviction planning and compaction stay outside, in the cache's own eager code), the flat slots
  the new K/V go to, the K/V buffers (written in place) and the thought states. An eviction event
  gives new state tensors of the same shape: new inputs, not a new graph;
- rows that finish stay in the batch (their tokens after EOS are dropped when harvested), so the
  batch never shrinks.

The step runs the lean forward (:mod:`pte_rl.lean`) with the LoRA layers given the states at the
start of the step, exactly the eager computation. A new rollout with another batch or prompt
length is a new shape: dynamo recompiles once, then marks the dimension dynamic.
"""

from __future__ import annotations

import weakref

import torch


class _StaticWrites:
    """Stands in for the cache inside the compiled step: writes the new K/V of a layer into its
    buffer at the step's slots and returns the whole buffers (the static cache's attention view)."""

    def __init__(self, slots: torch.Tensor, keys: list[torch.Tensor], values: list[torch.Tensor]):
        self.slots, self.keys, self.values = slots, keys, values

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer: int):
        for buf, new in ((self.keys[layer], key_states), (self.values[layer], value_states)):
            buf.view(-1, buf.shape[-1]).index_copy_(0, self.slots, new.reshape(-1, new.shape[-1]))
        return self.keys[layer], self.values[layer]


class CompiledDecode:
    """``torch.compile(fullgraph=True)`` of one decode step; call it in place of
    ``PTEModel.forward`` for one token per row on a static cache (``sample`` does when
    ``pte.decode_step`` is set, see :meth:`PTEModel.compile_decode`)."""

    def __init__(self, pte, mode: str | None = None, **options):
        if pte.lean is None:
            raise ValueError("a compiled decode step needs the lean forward (a Llama-architecture model "
                             "with sdpa attention, PTE_LEAN not 0)")
        self.pte = pte
        self.kv_heads = pte.lean.kv_heads
        self.cuda_graphs = mode in ("reduce-overhead", "max-autotune")
        # the cache whose buffers are marked static (they never move); weak, so a finished
        # rollout's cache is freed
        self._marked = lambda: None
        self._step = torch.compile(self._forward, fullgraph=True, mode=mode, **options)

    def _forward(self, ids, mask, positions, slots, keys, values, states):
        self.pte.lora.set_states(states)
        return self.pte.lean(ids, mask, positions, _StaticWrites(slots, keys, values))

    def __call__(self, token_ids: torch.Tensor, cache, state) -> torch.Tensor:
        """Hidden states ``[batch, 1, hidden]`` of ``token_ids`` ``[batch, 1]``; the cache is updated."""
        if not cache.static:
            raise ValueError("a compiled decode step needs a static cache (BoundedCache(max_new_tokens=...))")
        real = torch.ones_like(token_ids, dtype=torch.bool)
        mask, positions = cache.step(real, self.pte.dtype, dense=True)
        slots = cache.write_slots(self.kv_heads)
        states = None if state is None else list(state.layers)
        if self._marked() is not cache:  # once per rollout: a static cache's buffers never move
            for buf in cache.keys + cache.values:
                # written in place by the step: a static address, or CUDA graphs are skipped for
                # "mutated inputs"; guard=False so the next rollout's buffers are not a recompile
                # (CUDA graphs record once more for new addresses)
                torch._dynamo.mark_static_address(buf, guard=False)
            self._marked = weakref.ref(cache)
        if self.cuda_graphs:  # the previous step's outputs were consumed: their memory may be reused
            torch.compiler.cudagraph_mark_step_begin()
        hidden = self._step(token_ids, mask, positions, slots, cache.keys, cache.values, states)
        cache.commit()
        return hidden
