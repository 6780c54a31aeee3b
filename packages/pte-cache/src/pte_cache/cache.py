"""A bounded KV cache for transformers 5 decoder models.

Each row keeps its tokens compactly in slots ``[0, length)`` of a preallocated per-layer buffer
``[batch, kv_heads, capacity, head_dim]``, in arrival order. Keys are stored after RoPE, so they
keep the rotary phase of their absolute position; the caller feeds new tokens with explicit
``position_ids`` (true absolute positions) and the 4-D mask this cache builds, so slot order
never has to match position order and nothing is re-rotated after an eviction.

One forward pass is framed by :meth:`BoundedCache.step` (evict per the policy, then build the
mask and positions for the incoming tokens) and :meth:`BoundedCache.commit` (drop pad slots).
Buffers grow by doubling, so steady-state decoding never reallocates or concatenates.

Static shapes (``max_new_tokens=N``): the buffers are allocated once at prefill for the most
tokens a row can hold (the prompt plus N, or less where the policy bounds it: ``capacity``),
every forward pass attends over that whole capacity, and compaction writes back into the same
storage. A decode step then has one shape and fixed buffer addresses for the whole rollout,
across eviction events: what a compiled step (and a CUDA graph) needs. An event still compacts
(one gather per layer, every ``evict_ratio x window`` tokens), so slots stay in arrival order,
the simple contract policies rely on.

Decoding between eviction events reads nothing back from the device: the longest row is kept
on the host, a decode step says it is dense (every row takes its token), and a policy that can
tell how many one-token steps certainly evict nothing (``quiet_steps``, every built-in) is not
consulted for those steps. Host reads happen at prefill, at eviction events and on row changes.

An eviction can also be deferred into the next forward pass (``evict(..., at=j)``): listeners
hear it at once, the tokens stay visible to that pass's first ``j`` queries only, and leave at
its commit. A replay chunk then spans the event exactly as sampling lived through it, token by
token (the evicted K/V must already be stored, which the caller ensures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache


@dataclass
class EvictionEvent:
    """One eviction event of a batch.

    ``step`` counts the tokens fed after the prompt before this event (the event happens before
    generated-token input ``step`` is fed). ``positions`` is ``[batch, m]`` absolute positions
    that left, padded with -1; ``mask`` is ``[batch, m]``, True on real entries. ``keys`` /
    ``values`` hold, per layer, ``[batch, kv_heads, m, head_dim]`` (padding slots are zero)
    while listeners are called; afterwards they are emptied and ``cache.events`` keeps positions.
    """

    step: int
    positions: torch.Tensor
    mask: torch.Tensor
    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)

    def rows(self) -> list[int]:
        return [int(b) for b in torch.nonzero(self.mask.any(1)).flatten()]

    def positions_of(self, row: int) -> list[int]:
        return self.positions[row][self.mask[row]].tolist()


Listener = Callable[[EvictionEvent], None]


class BoundedCache(Cache):
    """KV cache holding at most the policy's budget per row.

    Args:
        policy: an eviction policy (``plan(cache, incoming)``), or None to never evict.
        num_layers: decoder layers of the model.
        listeners: called with every :class:`EvictionEvent` (e.g. a thought encoder).
        keep_graph: stored K/V keep their autograd graph (buffers are rebuilt out of place), so a
            loss reaches every earlier token, evicted ones through the listeners too. Memory grows
            with the sequence: the exact-gradient oracle of replay, not a training mode.
        max_new_tokens: static shapes (see the module docstring): room for the prompt plus this
            many tokens, or the policy's ``capacity`` when smaller; more raises.
        prompt_band: ``(sinks, window)``: the prompt is read as a stream (a query at position p
            attends to positions < sinks and in (p - window, p]); default: the policy's
            ``prompt_band()`` if it has one. Replay passes the one sampling recorded.
        tape: a recorder (``pte_rl.replay.GradTape``) given the stored K/V of every layer as leaves
            (``tape.leaf(layer, kind, view, positions)``, kind 0 = keys, 1 = values) and the new
            K/V with their graph (``tape.produced(layer, kind, new, positions)``), so gradients
            can be routed back to the forward pass that produced those tokens.
    """

    def __init__(self, policy=None, num_layers: int = 0, listeners: list[Listener] | None = None,
                 keep_graph: bool = False, tape=None, max_new_tokens: int | None = None,
                 prompt_band: tuple[int, int] | None = None):
        super().__init__(layers=[])
        if max_new_tokens is not None and keep_graph:
            raise ValueError("static shapes (max_new_tokens) write in place: not with keep_graph")
        self.max_new_tokens = max_new_tokens
        self.policy = policy
        band = getattr(policy, "prompt_band", None)
        self.prompt_band = prompt_band if prompt_band is not None else (band() if band is not None else None)
        self.keep_graph = keep_graph
        self.tape = tape
        self.num_layers = num_layers
        self.listeners: list[Listener] = list(listeners or [])
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.positions: torch.Tensor | None = None  # [B, C] long, -1 = empty
        self.lengths: torch.Tensor | None = None  # [B]
        self.prompt_lengths: torch.Tensor | None = None  # [B]
        # longest prompt of the batch at prefill; fixed for the whole rollout (rows that finish
        # and leave do not change it, so no row's schedule depends on when others stop)
        self.max_prompt_length: int = 0
        self.next_position: torch.Tensor | None = None  # [B]
        self.peak_lengths: torch.Tensor | None = None  # [B] most tokens held at once
        self.fed = 0  # tokens fed after the prompt
        self.events: list[EvictionEvent] = []
        self._pending: tuple[torch.Tensor, torch.Tensor, int] | None = None
        self._deferred: list[tuple[torch.Tensor, int]] = []  # (slots [B, capacity], first query hidden from)
        self._flat: tuple | None = None  # see _flat_slots
        self._prefilled = False
        self._max_length = 0  # int(lengths.max()), kept on the host (see the module docstring)
        self._quiet = 0  # decode steps the policy need not be asked about (see step())

    # ----------------------------------------------------------------- framing a forward pass
    def step(self, real: torch.Tensor, dtype: torch.dtype = torch.float32, dense: bool = False):
        """Prepare one forward pass of ``real.shape[1]`` new tokens per row.

        ``real`` is ``[batch, q]`` bool, False on pad tokens (left padding in the prompt, or
        rows that stopped). The first call is the prefill and fixes each row's prompt length.
        Applies the policy (possibly one eviction event), then returns ``(attention_mask,
        position_ids)`` to pass to the model together with the cache itself (keyword
        ``cache_argument(model)``). ``dense``: the caller promises ``real`` is all True (a
        decode step), so nothing has to be read back to know it.
        """
        if self.lengths is not None and self.policy is not None:  # the prefill (first call) never evicts
            q = real.shape[1]
            if dense and q == 1 and self._quiet > 0:
                self._quiet -= 1  # the policy said this step cannot evict: not asked
            else:
                plan = self.policy.plan(self, q)
                if plan is not None and bool(plan.any()):
                    self.evict(plan)
                quiet = getattr(self.policy, "quiet_steps", None)
                # free slots after this step's tokens: that many later one-token steps evict nothing
                self._quiet = max(quiet(self) - q, 0) if quiet is not None else 0
        return self.prepare(real, dtype, dense)

    def prepare(self, real: torch.Tensor, dtype: torch.dtype = torch.float32, dense: bool = False):
        """Mask and positions for ``q`` new tokens, without consulting the policy (``dense`` as
        in :meth:`step`)."""
        real = real.bool()
        if self.lengths is None:
            self._start(real)
        batch, q = real.shape
        device = self.lengths.device
        offs = torch.arange(q, device=device)
        write = self.lengths[:, None] + offs[None, :]  # [B, q] slot of each new token
        kv_len = self._max_length + q
        self._ensure_capacity(kv_len)
        if self.static:
            kv_len = self.positions.shape[1]  # one shape for every pass

        rel = torch.arange(kv_len, device=device)[None, :] - self.lengths[:, None]  # [B, kv]
        old = rel < 0
        in_chunk = (rel >= 0) & (rel < q)
        rel_c = rel.clamp(0, q - 1)
        real_at = torch.gather(real, 1, rel_c) & in_chunk  # [B, kv]
        i = offs[None, :, None]  # query index
        visible = old[:, None, :] | (real_at[:, None, :] & (rel[:, None, :] <= i))
        for slots, at in self._deferred:  # gone for queries at and after the event's step
            if at >= q:
                self._deferred = []
                raise ValueError(f"an eviction deferred to query {at} of a {q}-token forward pass")
            visible &= ~(slots[:, None, :kv_len] & (i >= at))
        position_ids = self.next_position[:, None] + torch.cumsum(real.long(), 1) - 1
        position_ids = torch.where(real, position_ids, torch.zeros_like(position_ids))
        if self.prompt_band is not None:
            # a streamed prompt: a query at position p sees the sinks and positions (p - window, p];
            # generated queries never hold more than that in the cache, so only prompt queries change
            sinks, window = self.prompt_band
            key_pos = torch.where(old, self.positions[:, :kv_len], torch.gather(position_ids, 1, rel_c))
            visible &= (key_pos < sinks)[:, None, :] | (position_ids[:, :, None] - key_pos[:, None, :] < window)
        visible |= rel[:, None, :] == i  # a pad query sees itself, so no row is all-masked
        mask = torch.zeros(visible.shape, dtype=dtype, device=device)
        mask.masked_fill_(~visible, torch.finfo(dtype).min)

        self.positions.scatter_(1, write, torch.where(real, position_ids, -1))
        self._pending = (write, real, kv_len, dense)
        self._flat = None
        return mask[:, None], position_ids

    def commit(self) -> None:
        """Finish the forward pass: account the new tokens and drop their pad slots."""
        write, real, _, dense = self._pending
        self._pending = None
        self.next_position = self.next_position + real.sum(1)
        if self._prefilled:
            self.fed += real.shape[1]
        self._prefilled = True
        if not self._deferred and (dense or bool(real.all())):
            self.lengths = self.lengths + real.shape[1]
            self._max_length += real.shape[1]
        else:
            capacity = self.positions.shape[1]
            slot = torch.arange(capacity, device=real.device)[None, :]
            keep = slot < self.lengths[:, None]
            if self._deferred:
                keep &= ~self._leaving()
            self._deferred = []
            keep.scatter_(1, write, real)
            self._compact(keep)
        self.peak_lengths = torch.maximum(self.peak_lengths, self.lengths)

    # ----------------------------------------------------------------- eviction
    def evict(self, slots: torch.Tensor, at: int = 0) -> EvictionEvent:
        """Evict ``slots`` ([batch, capacity-or-fewer] bool), notify listeners, return the event.

        ``at > 0`` defers it into the next forward pass: before that pass's query ``at`` (the
        event's step is ``fed + at``), as if the pass had been cut there.
        """
        if at == 0 and self._deferred:  # it would move the slots the deferred evictions name
            raise RuntimeError("an immediate eviction while another is deferred to the next pass")
        capacity = self.positions.shape[1]
        if slots.shape[1] < capacity:
            slots = F.pad(slots, (0, capacity - slots.shape[1]))
        slots = slots & (self.positions >= 0)
        if self._deferred:  # already leaving: not evicted twice
            slots = slots & ~self._leaving()
        counts = slots.sum(1)
        m = int(counts.max())
        order = torch.argsort((~slots).to(torch.int8), dim=1, stable=True)[:, :m]  # evicted first
        ev_mask = torch.arange(m, device=slots.device)[None, :] < counts[:, None]
        positions = torch.where(ev_mask, torch.gather(self.positions, 1, order), -1)
        event = EvictionEvent(step=self.fed + at, positions=positions, mask=ev_mask)
        if self.listeners:
            for buf_list, out in ((self.keys, event.keys), (self.values, event.values)):
                for buf in buf_list:
                    taken = _take_slots(buf, order)
                    out.append(taken * ev_mask[:, None, :, None].to(taken.dtype))
        if at > 0:
            self._deferred.append((slots, at))
        else:
            self._compact(~slots & (self.positions >= 0))
        for listener in self.listeners:
            listener(event)
        # Listeners consume the evicted K/V now; the stored record keeps positions only, so a
        # long rollout does not accumulate every evicted token (that would be a full cache).
        event.keys, event.values = [], []
        self.events.append(event)
        return event

    def evict_positions(self, positions: list[list[int]], at: int = 0) -> EvictionEvent | None:
        """Evict the given absolute positions per row (replaying a recorded schedule); ``at`` as
        in :meth:`evict`."""
        if not any(positions):
            return None
        width = max(len(p) for p in positions)
        wanted = torch.full((len(positions), width), -2, dtype=torch.long)
        for b, p in enumerate(positions):
            wanted[b, : len(p)] = torch.tensor(p, dtype=torch.long)
        wanted = wanted.to(self.positions.device)
        slots = (self.positions[:, :, None] == wanted[:, None, :]).any(-1)
        if self._deferred:  # asking for a token already leaving is a missing position
            slots &= ~self._leaving()
        missing = [b for b, p in enumerate(positions) if int(slots[b].sum()) != len(p)]
        if missing:
            raise ValueError(f"rows {missing}: positions to evict are not all in the cache")
        return self.evict(slots, at)

    def _leaving(self) -> torch.Tensor:
        """[B, capacity]: the slots of every deferred eviction (all masks have the capacity)."""
        return torch.stack([slots for slots, _ in self._deferred]).any(0)

    def _compact(self, keep: torch.Tensor) -> None:
        """Move kept slots to the front of every row, preserving arrival order."""
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
        self.positions = torch.where(
            torch.gather(keep, 1, order), torch.gather(self.positions, 1, order), -1
        )
        self.lengths = keep.sum(1)
        self._read_max_length()
        for buffers in (self.keys, self.values):
            for i, buf in enumerate(buffers):
                if buf is None:
                    continue
                if self.static:  # same storage, so a compiled step's buffers stay where they were
                    buf.copy_(_take_slots(buf, order))
                else:
                    buffers[i] = _take_slots(buf, order)

    # ----------------------------------------------------------------- transformers Cache API
    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        write, _, kv_len, _ = self._pending
        batch, heads, q, dim = key_states.shape
        if self.keys[layer_idx] is None:
            capacity = self.positions.shape[1]
            shape = (batch, heads, capacity, dim)
            self.keys[layer_idx] = key_states.new_zeros(shape)
            self.values[layer_idx] = value_states.new_zeros(shape)
        rows = None
        if self.keep_graph or key_states.requires_grad:
            rows = torch.arange(batch, device=write.device)[:, None].expand(batch, q)
        out = []
        for kind, (buffers, new) in enumerate(((self.keys, key_states), (self.values, value_states))):
            buf = buffers[layer_idx]
            if buf.shape[2] < self.positions.shape[1]:  # capacity grew since allocation
                grown = buf.new_zeros(batch, heads, self.positions.shape[1], dim)
                grown[:, :, : buf.shape[2]] = buf
                buffers[layer_idx] = buf = grown
            if self.keep_graph:
                buffers[layer_idx] = buf = buf.transpose(1, 2).index_put((rows, write), new.transpose(1, 2)).transpose(1, 2)
                out.append(buf[:, :, :kv_len])
                continue
            # one index_copy_ of whole head_dim rows into the contiguous buffer seen as
            # [B * H * C, D]: cheaper than index_put_ through a transposed view, and it has a
            # fast bf16 path on CPU (scatter_ has none: 25x slower there)
            buf.view(-1, dim).index_copy_(0, self._flat_slots(heads, q, buf.shape[2]), new.detach().reshape(-1, dim))
            view = buf[:, :, :kv_len]
            # The stored cache carries no graph; the new tokens keep theirs so a chunk's loss
            # reaches the adapter through them. A tape turns the stored part into a leaf whose
            # gradient it routes back to the forward pass that produced those tokens.
            if new.requires_grad:
                if self.tape is not None:
                    view = self.tape.leaf(layer_idx, kind, view, self.positions[:, :kv_len])
                view = view.transpose(1, 2).index_put((rows, write), new.transpose(1, 2)).transpose(1, 2)
                if self.tape is not None:
                    self.tape.produced(layer_idx, kind, new, torch.gather(self.positions, 1, write))
            out.append(view)
        return out[0], out[1]

    def _flat_slots(self, heads: int, q: int, capacity: int) -> torch.Tensor:
        """Row index in ``buf.view(-1, D)`` of every new (row, head, token), in ``new``'s order;
        made once per forward pass (every layer writes the same slots)."""
        key = (heads, q, capacity)
        if self._flat is None or self._flat[0] != key:
            write = self._pending[0]
            batch = write.shape[0]
            base = (torch.arange(batch, device=write.device)[:, None] * heads
                    + torch.arange(heads, device=write.device)[None, :]) * capacity  # [B, H]
            self._flat = (key, (base[:, :, None] + write[:, None, :]).reshape(-1))
        return self._flat[1]

    def write_slots(self, heads: int) -> torch.Tensor:
        """The flat buffer rows this pass's new K/V go to (see :meth:`update`), for a caller that
        writes them itself (a compiled decode step)."""
        return self._flat_slots(heads, self._pending[0].shape[1], self.positions.shape[1])

    @property
    def static(self) -> bool:
        return self.max_new_tokens is not None

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0 if self.lengths is None else self._max_length

    def get_max_cache_shape(self, layer_idx: int = 0) -> int:
        return -1

    def get_mask_sizes(self, query_length: int, layer_idx: int = 0):
        return self.get_seq_length() + query_length, 0

    def __len__(self) -> int:
        return self.num_layers

    @property
    def is_compileable(self) -> bool:
        return False

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` (e.g. drop finished sequences from a decode batch)."""
        if self._deferred:
            raise RuntimeError("select_rows while an eviction is deferred to the next pass")
        if self.static:
            raise RuntimeError("select_rows would change a static cache's shapes")
        for name in ("positions", "lengths", "prompt_lengths", "next_position", "peak_lengths"):
            setattr(self, name, getattr(self, name)[rows])
        self._read_max_length()
        for buffers in (self.keys, self.values):
            for i, buf in enumerate(buffers):
                if buf is not None:
                    buffers[i] = buf[rows]

    batch_select_indices = select_rows

    # ----------------------------------------------------------------- internals
    def _start(self, real: torch.Tensor) -> None:
        batch = real.shape[0]
        device = real.device
        self.prompt_lengths = real.sum(1)
        self.max_prompt_length = int(self.prompt_lengths.max()) if batch else 0
        if self.policy is not None and hasattr(self.policy, "check_prompts"):
            self.policy.check_prompts(self.prompt_lengths.tolist())
        self.lengths = torch.zeros(batch, dtype=torch.long, device=device)
        self.next_position = torch.zeros(batch, dtype=torch.long, device=device)
        self.peak_lengths = torch.zeros(batch, dtype=torch.long, device=device)
        width = real.shape[1]
        if self.static:
            width += self.max_new_tokens
            bound = getattr(self.policy, "capacity", None)
            if bound is not None:  # the prefill itself needs the padded prompt's width
                width = min(width, max(bound(self), real.shape[1]))
        self.positions = torch.full((batch, width), -1, dtype=torch.long, device=device)

    def _read_max_length(self) -> None:
        """Re-read the longest row from the device (after lengths changed other than by dense steps)."""
        self._max_length = int(self.lengths.max()) if len(self.lengths) else 0

    def _ensure_capacity(self, needed: int) -> None:
        capacity = self.positions.shape[1]
        if needed <= capacity:
            return
        if self.static:
            raise RuntimeError(f"a static cache of {capacity} slots per row needs {needed}: more tokens than "
                               "max_new_tokens, or a policy holding more than its capacity() says")
        new = max(needed, 2 * capacity)
        self.positions = F.pad(self.positions, (0, new - capacity), value=-1)
        # deferred slot masks keep the capacity's width, so they combine with any slot mask as is
        self._deferred = [(F.pad(slots, (0, new - capacity)), at) for slots, at in self._deferred]
        # Layer buffers grow lazily in update(), when the layer next runs.


def _take_slots(buf: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``buf[b, :, order[b, j]]`` as ``[B, H, len(order[b]), D]`` (contiguous)."""
    rows = torch.arange(buf.shape[0], device=buf.device)[:, None]
    return buf.transpose(1, 2)[rows, order].transpose(1, 2).contiguous()


def cache_argument(model) -> str:
    """The keyword a transformers model's ``forward`` takes its cache by: ``cache`` where it
    exists (transformers 5.x renamed it and warns on ``past_key_values``, to be removed in 5.40),
    else ``past_key_values`` (older releases)."""
    import inspect

    try:
        params = inspect.signature(type(model).forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"
