"""Bounded-cache decoding must equal one full forward pass with evicted positions masked."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from pte_cache import (
    BoundedCache,
    Full,
    LRUPromptKeep,
    PolicyConfig,
    SlidingWindow,
    StreamingConfig,
    StreamingLLM,
    cache_argument,
)

TINY = dict(
    vocab_size=97,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
)


def tiny(family: str, attn: str = "sdpa"):
    torch.manual_seed(0)
    if family == "llama":
        model = LlamaForCausalLM(LlamaConfig(**TINY))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**TINY))
    model.config._attn_implementation = attn
    return model.eval()


def left_padded(lengths, vocab=97, seed=1):
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros(len(lengths), width, dtype=torch.bool)
    for b, n in enumerate(lengths):
        ids[b, width - n :] = torch.randint(1, vocab, (n,), generator=g)
        mask[b, width - n :] = True
    return ids, mask


def decode(model, policy, ids, mask, gen, static=False):
    """Teacher-forced decode under the bounded cache; returns logits per column and evictions.
    ``static``: fixed shapes (room for ``gen``), checked to keep one shape and the same buffers."""
    cache = BoundedCache(policy, model.config.num_hidden_layers, max_new_tokens=gen.shape[1] if static else None)
    batch, width = ids.shape
    am, pos = cache.step(mask)
    out = model(ids, attention_mask=am, position_ids=pos, **{cache_argument(model): cache}).logits
    cache.commit()
    logits = {width - 1: out[:, -1]}
    shapes = {am.shape[-1]}
    storage = [b.data_ptr() for b in cache.keys + cache.values]
    hidden_before = {}  # column -> per-row set of positions evicted before that column ran
    for j in range(gen.shape[1]):
        col = width + j
        am, pos = cache.step(torch.ones(batch, 1, dtype=torch.bool))
        hidden_before[col] = [set() for _ in range(batch)]
        for ev in cache.events:
            for b in range(batch):
                hidden_before[col][b].update(ev.positions_of(b))
        out = model(gen[:, j : j + 1], attention_mask=am, position_ids=pos, **{cache_argument(model): cache})
        cache.commit()
        logits[col] = out.logits[:, -1]
        check_invariants(cache, policy)
        shapes.add(am.shape[-1])
    if static:
        assert len(shapes) == 1, f"a static cache changed its attention width: {sorted(shapes)}"
        assert [b.data_ptr() for b in cache.keys + cache.values] == storage, "a static cache moved its buffers"
        bound = getattr(policy, "capacity", None)
        if bound is not None:  # bounded memory: the policy's budget, not the prompt plus every new token
            assert cache.positions.shape[1] == max(bound(cache), width) < width + gen.shape[1]
    return logits, hidden_before, cache


def check_invariants(cache, policy):
    for b in range(cache.lengths.shape[0]):
        held = cache.positions[b, : cache.lengths[b]]
        assert bool((held >= 0).all()), "a pad or empty slot is held"
        if isinstance(policy, LRUPromptKeep):
            prompt = set(range(int(cache.prompt_lengths[b])))
            assert prompt <= set(held.tolist()), "a prompt token was evicted"
        if not isinstance(policy, Full):
            assert int(cache.lengths[b]) <= policy.config.cache_window


def oracle(model, ids, mask, gen, hidden_before, band=None):
    """One full forward with every query's evicted positions hidden; ``band=(sinks, window)``:
    prompt queries also see only positions < sinks or within ``window`` of their own."""
    full = torch.cat([ids, gen], 1)
    real = torch.cat([mask, torch.ones_like(gen, dtype=torch.bool)], 1)
    pos = (torch.cumsum(real.long(), 1) - 1).clamp(min=0)
    batch, seq = full.shape
    pad = (~mask).sum(1)
    visible = torch.tril(torch.ones(seq, seq, dtype=torch.bool)).repeat(batch, 1, 1)
    visible &= real[:, None, :]
    for col, rows in hidden_before.items():
        for b, hidden in enumerate(rows):
            for p in hidden:
                visible[b, col, int(pad[b]) + p] = False
    if band is not None:
        sinks, window = band
        near = (pos[:, :, None] - pos[:, None, :] < window) | (pos[:, None, :] < sinks)
        prompt_query = torch.zeros(seq, dtype=torch.bool)
        prompt_query[: ids.shape[1]] = True
        visible &= near | ~prompt_query[None, :, None]
    visible |= torch.eye(seq, dtype=torch.bool)  # pad queries see themselves
    am = torch.zeros(batch, 1, seq, seq).masked_fill(~visible[:, None], torch.finfo(torch.float32).min)
    return model(full, attention_mask=am, position_ids=pos).logits


POLICIES = {
    "lru-prompt-keep": lambda: LRUPromptKeep(PolicyConfig(cache_window=16, evict_ratio=0.25)),
    "sliding-window": lambda: SlidingWindow(PolicyConfig(cache_window=12, evict_ratio=0.5)),
    "streaming-llm": lambda: StreamingLLM(StreamingConfig(cache_window=12, sink_tokens=2)),
    "full": lambda: Full(),
    "lru-dynamic": lambda: LRUPromptKeep(PolicyConfig(evict_ratio=0.3, dynamic_window=True)),
}


@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("static", [False, True], ids=["growing", "static"])
@torch.no_grad()
def test_logits_equal_masked_full_forward(family, name, static):
    model = tiny(family)
    policy = POLICIES[name]()
    ids, mask = left_padded([5, 9, 7])
    gen = torch.randint(1, 97, (3, 30), generator=torch.Generator().manual_seed(2))
    logits, hidden_before, cache = decode(model, policy, ids, mask, gen, static)
    if name != "full":
        assert len(cache.events) >= 2, "test must exercise several eviction events"
    ref = oracle(model, ids, mask, gen, hidden_before)
    for col, got in logits.items():
        assert torch.allclose(got, ref[:, col], atol=1e-4, rtol=0), (col, (got - ref[:, col]).abs().max())


@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("static", [False, True], ids=["growing", "static"])
@torch.no_grad()
def test_streamed_prompt_equals_banded_full_forward(family, static):
    """stream_prompt: prompt tokens attend as if fed one by one through the window (sinks + the
    last window positions), generated tokens exactly as before; equal to one banded full forward."""
    model = tiny(family)
    policy = StreamingLLM(StreamingConfig(cache_window=10, sink_tokens=2, evict_ratio=0.25, stream_prompt=True))
    assert policy.prompt_band() == (2, 8)
    ids, mask = left_padded([12, 23, 9])
    gen = torch.randint(1, 97, (3, 20), generator=torch.Generator().manual_seed(2))
    logits, hidden_before, cache = decode(model, policy, ids, mask, gen, static)
    assert len(cache.events) >= 2
    ref = oracle(model, ids, mask, gen, hidden_before, band=(2, 8))
    for col, got in logits.items():
        assert torch.allclose(got, ref[:, col], atol=1e-4, rtol=0), (col, (got - ref[:, col]).abs().max())
    # the band changes what long prompts compute (and nothing for the 9-token prompt, whose every
    # token is within sinks + window of the last)
    plain, _, _ = decode(model, StreamingLLM(StreamingConfig(cache_window=10, sink_tokens=2, evict_ratio=0.25)),
                         ids, mask, gen, static)
    last = ids.shape[1] - 1
    moved = (logits[last] - plain[last]).abs().amax(-1)
    assert bool((moved[:2] > 1e-3).all()) and float(moved[2]) < 1e-5, moved


def test_stream_prompt_needs_a_fixed_window():
    with pytest.raises(ValueError, match="stream_prompt needs a fixed cache_window"):
        StreamingConfig(stream_prompt=True, dynamic_window=True)


@torch.no_grad()
def test_large_budget_equals_plain_forward_eager():
    model = tiny("llama", attn="eager")
    policy = LRUPromptKeep(PolicyConfig(cache_window=200))
    ids, mask = left_padded([4, 8])
    gen = torch.randint(1, 97, (2, 20), generator=torch.Generator().manual_seed(3))
    logits, _, cache = decode(model, policy, ids, mask, gen)
    assert cache.events == []
    full = torch.cat([ids, gen], 1)
    real = torch.cat([mask, torch.ones_like(gen, dtype=torch.bool)], 1)
    pos = (torch.cumsum(real.long(), 1) - 1).clamp(min=0)
    ref = model(full, attention_mask=real.long(), position_ids=pos).logits
    for col, got in logits.items():
        assert (got - ref[:, col]).abs().max() <= 1e-4


@torch.no_grad()
def test_lru_prompt_keep_events_record_generated_positions_only():
    model = tiny("llama")
    policy = LRUPromptKeep(PolicyConfig(cache_window=14, evict_ratio=0.25))
    ids, mask = left_padded([3, 8])
    gen = torch.randint(1, 97, (2, 25), generator=torch.Generator().manual_seed(4))
    _, _, cache = decode(model, policy, ids, mask, gen)
    for ev in cache.events:
        for b in ev.rows():
            assert min(ev.positions_of(b)) >= int(cache.prompt_lengths[b])
            # oldest generated tokens first: a contiguous run
            p = ev.positions_of(b)
            assert p == list(range(p[0], p[0] + len(p)))
        assert len(ev.keys) == 0  # nobody listened, so no K/V were gathered
    # row 0 has 11 generated slots, evicting ceil(0.25*11)=3 at a time; row 1 has 6, evicting 2
    counts = [sum(len(ev.positions_of(b)) for ev in cache.events if b in ev.rows()) for b in (0, 1)]
    assert counts[0] % 3 == 0 and counts[1] % 2 == 0 and all(c > 0 for c in counts)
    assert cache.peak_lengths.tolist() == [14, 14]


@torch.no_grad()
def test_listeners_receive_evicted_kv_that_was_cached():
    model = tiny("llama")
    seen = []

    def listener(event):  # K/V exist only while listeners run
        seen.append((event.positions.clone(), [k.clone() for k in event.keys]))

    policy = SlidingWindow(PolicyConfig(cache_window=10, evict_ratio=0.5))
    cache = BoundedCache(policy, 2, listeners=[listener])
    ids, mask = left_padded([6, 6])
    am, pos = cache.step(mask)
    model(ids, attention_mask=am, position_ids=pos, **{cache_argument(model): cache})
    cache.commit()
    snapshot = cache.keys[1][:, :, :6].clone()
    for _ in range(6):
        am, pos = cache.step(torch.ones(2, 1, dtype=torch.bool))
        model(torch.full((2, 1), 5), attention_mask=am, position_ids=pos, **{cache_argument(model): cache})
        cache.commit()
    positions, keys = seen[0]
    assert positions.tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]
    assert len(keys) == 2 and keys[1].shape == (2, 2, 5, 16)
    assert torch.equal(keys[1], snapshot[:, :, :5])
    assert all(ev.keys == [] and ev.values == [] for ev in cache.events)  # records keep positions only


def test_policy_validation():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="evict_ratio"):
        PolicyConfig(evict_ratio=1.5)
    with pytest.raises(ValidationError):
        PolicyConfig(cache_window=-4)
    with pytest.raises(ValueError, match="no room"):
        LRUPromptKeep(PolicyConfig(cache_window=8)).check_prompts([3, 8])
    with pytest.raises(ValueError, match="sink_tokens"):
        StreamingLLM(StreamingConfig(cache_window=4, sink_tokens=4))


def test_dynamic_window_is_frozen_at_prefill():
    """The dynamic window (longest prompt of the micro-batch) is fixed at prefill: a row's eviction
    schedule must not change when a longer-prompt row finishes and leaves the batch."""
    model = tiny("llama")
    ids, mask = left_padded([10, 4])
    feed = torch.randint(1, 97, (2, 30), generator=torch.Generator().manual_seed(3))

    def schedule_of_short_row(drop_after):
        policy = LRUPromptKeep(PolicyConfig(dynamic_window=True))
        cache = BoundedCache(policy, model.config.num_hidden_layers)
        am, pos = cache.step(mask)
        model(ids, attention_mask=am, position_ids=pos, **{cache_argument(model): cache})
        cache.commit()
        row, rows, out = 1, 2, []
        for j in range(feed.shape[1]):
            if j == drop_after:
                cache.select_rows(torch.tensor([1]))
                row, rows = 0, 1
            seen = len(cache.events)
            am, pos = cache.step(torch.ones(rows, 1, dtype=torch.bool))
            x = feed[1:, j : j + 1] if rows == 1 else feed[:, j : j + 1]
            model(x, attention_mask=am, position_ids=pos, **{cache_argument(model): cache})
            cache.commit()
            out += [(e.step, e.positions_of(row)) for e in cache.events[seen:] if row in e.rows()]
            assert cache.max_prompt_length == 10
        return out

    together = schedule_of_short_row(drop_after=None)
    assert len(together) >= 3  # window 10 over 30 generated tokens
    assert schedule_of_short_row(drop_after=5) == together


def test_deferred_eviction_equals_cutting_the_forward_at_the_event():
    """``evict(slots, at=j)`` then one q-token pass == q-token pass cut at j with the eviction
    between: the deferred tokens are visible to the first j queries only, listeners hear the same
    K/V, and they are gone afterwards (replay chunks span eviction events this way)."""
    model = tiny("llama")
    ids, mask = left_padded([6, 4])
    gen = torch.randint(1, 97, (2, 7), generator=torch.Generator().manual_seed(3))
    kw = cache_argument(model)
    heard = {}

    def run(defer: bool, evict: bool = True):
        cache = BoundedCache(None, model.config.num_hidden_layers,
                             listeners=[lambda ev: heard.setdefault(defer, []).append(ev.keys[1].clone())])
        am, pos = cache.step(mask)
        model(ids, attention_mask=am, position_ids=pos, **{kw: cache})
        cache.commit()
        # evict row 0's oldest two prompt tokens and row 1's newest one, 3 tokens into the pass
        slots = torch.zeros(2, cache.positions.shape[1], dtype=torch.bool)
        slots[0, :2] = True
        slots[1, 3] = evict
        slots[0, :2] = evict
        outs = []
        if defer:
            cache.evict(slots, at=3)
            am, pos = cache.prepare(torch.ones(2, 7, dtype=torch.bool))
            outs.append(model(gen, attention_mask=am, position_ids=pos, **{kw: cache}).logits)
            cache.commit()
        else:
            for piece, evict_first in ((gen[:, :3], False), (gen[:, 3:], True)):
                if evict_first:
                    cache.evict(slots)
                am, pos = cache.prepare(torch.ones_like(piece, dtype=torch.bool))
                outs.append(model(piece, attention_mask=am, position_ids=pos, **{kw: cache}).logits)
                cache.commit()
        return torch.cat(outs, 1), cache

    want, cut = run(False)
    got, deferred = run(True)
    assert torch.allclose(got, want, atol=1e-5, rtol=0), (got - want).abs().max()
    assert torch.equal(heard[True][0], heard[False][0])
    n = int(cut.lengths.max())  # capacities differ (the deferred pass held more tokens at once)
    assert torch.equal(deferred.lengths, cut.lengths) and torch.equal(deferred.positions[:, :n], cut.positions[:, :n])
    held = (cut.positions[:, :n] >= 0)[:, None, :, None]  # slots past a row's length are garbage
    for layer in range(2):
        assert torch.allclose(deferred.keys[layer][:, :, :n] * held, cut.keys[layer][:, :, :n] * held, atol=1e-6)
    assert [e.step for e in deferred.events] == [e.step for e in cut.events] == [3]
    # the oracle can tell: without the eviction the later queries' logits differ, the earlier not
    none, _ = run(True, evict=False)
    assert torch.allclose(none[:, :3], want[:, :3], atol=1e-5, rtol=0)
    assert (none[:, 3:] - want[:, 3:]).abs().amax((1, 2)).min() > 1e-3


def test_deferred_eviction_refuses_what_would_move_its_slots():
    """A deferred eviction names slots: an immediate eviction or a row selection before the pass
    would move them (silently hiding other tokens), and a pass too short to reach it is refused
    without leaving it pending."""
    model = tiny("llama")
    ids, mask = left_padded([5, 5])
    cache = BoundedCache(None, model.config.num_hidden_layers)
    am, pos = cache.step(mask)
    model(ids, attention_mask=am, position_ids=pos, **{cache_argument(model): cache})
    cache.commit()
    slots = torch.zeros(2, cache.positions.shape[1], dtype=torch.bool)
    slots[:, 0] = True
    cache.evict(slots, at=2)
    with pytest.raises(RuntimeError, match="deferred"):
        cache.evict(slots)
    with pytest.raises(RuntimeError, match="deferred"):
        cache.select_rows(torch.tensor([0]))
    with pytest.raises(ValueError, match="deferred to query 2 of a 2-token"):
        cache.prepare(torch.ones(2, 2, dtype=torch.bool))
    assert cache._deferred == []
