"""Thought encoders on synthetic projections and K/V (no model needed)."""

import math

import pytest
import torch
from torch import nn

from pte_thought import (
    GlobalOnlyEncoder,
    IdentityEncoder,
    ProgressiveEncoder,
    ThoughtConfig,
    ThoughtState,
    normalize,
)
from pte_thought.encoders import map_memory

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, LAYERS = 48, 6, 2, 8, 3


def projections(seed=0):
    torch.manual_seed(seed)
    out = []
    for _ in range(LAYERS):
        q = nn.Linear(HIDDEN, HEADS * HEAD_DIM, bias=False)
        k = nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=True)  # GQA: kv dims != q dims
        v = nn.Linear(HIDDEN, KV_HEADS * HEAD_DIM, bias=True)
        for m in (q, k, v):
            m.requires_grad_(False)
        out.append((q, k, v))
    return out


def encoder(**kw):
    enc = ProgressiveEncoder(ThoughtConfig(global_tokens=5, rank=4, **kw))
    enc.bind(projections())
    return enc


class Event:
    def __init__(self, keys, values, mask):
        self.keys, self.values, self.mask = keys, values, mask


def kv(batch, m, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, KV_HEADS, m, HEAD_DIM)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def test_state_shape_independent_of_evicted_count():
    enc = encoder()
    mem = enc.empty_memory(0, 2)
    assert enc.initial(0, 2).shape == (2, 5, 4)
    for m in (1, 7, 50):
        k, v = kv(2, m)
        new = enc.update(0, mem, k, v, torch.ones(2, m, dtype=torch.bool))
        s = enc.compose(0, new, 2)
        assert new.thought.shape == s.shape == (2, 5, 4)
        assert torch.allclose(s.flatten(1).norm(dim=1), torch.full((2,), math.sqrt(4.0)), atol=1e-5)


def _latent(enc, layer, k, v):
    q_proj = enc.projections[layer][0]
    q = enc.w_q[layer](q_proj(enc.h_g[layer]))
    k_e = enc.w_k[layer](k.permute(0, 2, 1, 3).reshape(k.shape[2], -1))
    v_e = enc.w_v[layer](v.permute(0, 2, 1, 3).reshape(v.shape[2], -1))
    return q, k_e, v_e


def test_softmax_update_matches_formula():
    """U = softmax(t rms(Q) rms(K)^T / sqrt(r)) W_V^a (V_e - ref), ref the running mean of every
    evicted value with one pseudo-token at zero; M' = C(M + w(m) N(U)), w(m) = m / (m + 4);
    S = N(S_g + M')."""
    enc = encoder()
    k0, v0 = kv(1, 3, seed=5)
    mem = enc.update(1, enc.empty_memory(1, 1), k0, v0, torch.ones(1, 3, dtype=torch.bool))
    k, v = kv(1, 6)
    got = enc.update(1, mem, k, v, torch.ones(1, 6, dtype=torch.bool))
    flat = lambda x: x.permute(0, 2, 1, 3).reshape(x.shape[2], -1)  # noqa: E731
    ref = torch.cat([flat(v0), flat(v)]).sum(0) / (9 + 1)
    q, k_e, _ = _latent(enc, 1, k, v)
    rms = lambda x: x / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()  # noqa: E731
    attn = torch.softmax(rms(q) @ rms(k_e).T * 3.0 / math.sqrt(4), -1)
    u = attn @ enc.w_v[1](flat(v) - ref)
    update = 6 / (6 + 4) * normalize(u, 2.0)
    total = mem.thought[0] + update
    want = total * min(1.0, 2.0 / float(total.norm()))
    assert torch.allclose(got.thought[0], want, atol=1e-5)
    assert torch.allclose(got.last[0], update, atol=1e-5) and float(got.count[0]) == 9
    assert torch.allclose(enc.compose(1, got, 1)[0], normalize(enc.global_state(1) + want, 2.0), atol=1e-5)


def test_every_event_size_moves_the_memory_by_what_it_evicted():
    """Events of 1, 2 and 8 tokens all change the memory (under the event's own mean a one-token
    event gave exactly zero); the change depends on the evicted values; a small event weighs
    less than a large one; and the first event of a row is not blown up to the full norm."""
    enc = encoder()
    for m in (1, 2, 8):
        ones = torch.ones(1, m, dtype=torch.bool)
        k, v = kv(1, m, seed=3)
        _, v_other = kv(1, m, seed=4)
        first = enc.update(0, enc.empty_memory(0, 1), k, v, ones)
        assert float(first.thought.norm()) > 0.1, m
        assert abs(float(first.thought.norm()) - 2.0 * m / (m + 4)) < 1e-4, m  # w(m) of the full norm
        assert not torch.allclose(first.thought, enc.update(0, enc.empty_memory(0, 1), k, v_other, ones).thought,
                                  atol=1e-3), m
        # a later event, after a different history, still moves it (and differently for other values)
        prev = enc.update(0, enc.empty_memory(0, 1), *kv(1, 5, seed=9), torch.ones(1, 5, dtype=torch.bool))
        later = enc.update(0, prev, k, v, ones)
        other = enc.update(0, prev, k, v_other, ones)
        assert float((later.thought - prev.thought).norm()) > 0.05, m
        assert not torch.allclose(later.thought, other.thought, atol=1e-3), m
    small = enc.update(0, prev, *kv(1, 1, seed=3), torch.ones(1, 1, dtype=torch.bool))
    large = enc.update(0, prev, *kv(1, 8, seed=3), torch.ones(1, 8, dtype=torch.bool))
    assert float(small.last.norm()) < 0.5 * float(large.last.norm())
    flat = ProgressiveEncoder(ThoughtConfig(global_tokens=5, rank=4, event_weight_tokens=0))
    flat.bind(projections())
    one = flat.update(0, flat.empty_memory(0, 1), *kv(1, 1, seed=3), torch.ones(1, 1, dtype=torch.bool))
    assert abs(float(one.last.norm()) - 2.0) < 1e-4  # event_weight_tokens=0: every event full weight


def test_bilinear_is_eq4_without_softmax():
    enc = encoder(attention="bilinear")
    k, v = kv(1, 3)
    got = enc.update(0, enc.empty_memory(0, 1), k, v, torch.ones(1, 3, dtype=torch.bool))
    q, k_e, v_e = _latent(enc, 0, k, v)
    want = 3 / (3 + 4) * normalize((q @ k_e.T) @ v_e, 2.0)
    assert torch.allclose(got.thought[0], want, atol=1e-5)


def test_events_decay_gradually_and_global_part_stays():
    """Write the state after each event as a S_g + sum_j w_j U_j (exact least squares, U_j the
    event's own weighted update): equal events weigh the same when they arrive, older ones fade
    gradually instead of being overwritten, and S_g keeps its share. (The old rule S <- N(S + U)
    with un-normalised U broke all three.)"""
    enc = ProgressiveEncoder(ThoughtConfig(global_tokens=16, rank=16))
    enc.bind(projections())
    ones = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        events = [kv(1, 4, seed=10 + e) for e in range(8)]
        basis = [enc.global_state(0).flatten()]
        mem = enc.empty_memory(0, 1)
        for e, (k, v) in enumerate(events):
            mem = enc.update(0, mem, k, v, ones)
            basis.append(mem.last[0].flatten())
            state = enc.compose(0, mem, 1)[0].flatten()
            b = torch.stack(basis, 1)
            coef = torch.linalg.lstsq(b, state[:, None]).solution.flatten()
            assert torch.allclose(b @ coef, state, atol=1e-4)  # exact decomposition
            g, w = float(coef[0]), coef[1:]
            assert 0.5 < g < 1.0  # S_g never fades
            assert (w > 0).all() and (w[1:] >= w[:-1] - 1e-5).all()  # newer events weigh more
            if e >= 3:
                assert float(w[e - 3] / w[e]) >= 0.1  # event e-3 still counts (gradual decay)
                assert float(w[e - 1] / w[e]) >= 0.4  # the newest event does not overwrite


def test_padding_and_rows_without_eviction():
    """Masked evicted slots are ignored; a row with nothing evicted keeps its state exactly."""
    enc = encoder()
    prev = enc.update(0, enc.empty_memory(0, 2), *kv(2, 3, seed=6), torch.ones(2, 3, dtype=torch.bool))
    k, v = kv(2, 5)
    mask = torch.tensor([[True, True, True, False, False], [False] * 5])
    got = enc.update(0, prev, k, v, mask)
    alone = enc.update(0, map_memory(lambda t: t[:1], prev), k[:1, :, :3], v[:1, :, :3],
                       torch.ones(1, 3, dtype=torch.bool))
    for a, b in zip(got, alone):
        assert torch.allclose(a[0], b[0], atol=1e-6)
    for a, b in zip(got, prev):
        assert torch.equal(a[1], b[1])


def test_zero_init_and_variants():
    assert torch.count_nonzero(encoder(init="zero").initial(0, 3)) == 0
    ident = IdentityEncoder()
    assert ident.initial(0, 2) is None and not ident.updates and ident.core_shape == (32, 32)
    go = GlobalOnlyEncoder(ThoughtConfig(global_tokens=5, rank=4))
    go.bind(projections())
    state = ThoughtState(go, LAYERS, 2)
    before = [s.clone() for s in state.layers]
    k, v = kv(2, 4)
    state(Event([k] * LAYERS, [v] * LAYERS, torch.ones(2, 4, dtype=torch.bool)))
    assert all(torch.equal(a, b) for a, b in zip(before, state.layers))


def test_thought_state_replay_leaves_and_flush_equal_direct_autograd():
    """Replay mode: losses on two versions of the states (two on the second, backpropagated
    separately into its leaves), flushed version by version, give every encoder weight the same
    gradient as autograd through the states themselves, with the memory chain cut at the event
    as replay defines it."""
    k, v = kv(2, 4)
    k2, v2 = kv(2, 3, seed=7)
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask2 = torch.tensor([[True, True, False], [True, False, False]])

    def losses(layers):
        return sum(s.sum() for s in layers), sum((s ** 2).sum() for s in layers)

    enc = encoder()
    direct = ThoughtState(enc, LAYERS, 2)
    direct(Event([k] * LAYERS, [v] * LAYERS, mask))
    total = losses(direct.layers)[1]
    direct.memory = [map_memory(torch.Tensor.detach, m) for m in direct.memory]  # replay's cut at the event
    direct(Event([k2] * LAYERS, [v2] * LAYERS, mask2))
    (total + sum(losses(direct.layers))).backward()
    expected = {n: p.grad.clone() for n, p in enc.named_parameters()}
    enc.zero_grad(set_to_none=True)

    state = ThoughtState(enc, LAYERS, 2, replay=True)
    assert state.version == 0 and all(s.is_leaf and s.requires_grad for s in state.layers)
    state(Event([k] * LAYERS, [v] * LAYERS, mask))
    assert state.num_updates.tolist() == [1, 1] and state.version == 1
    losses(state.layers)[1].backward()
    state(Event([k2] * LAYERS, [v2] * LAYERS, mask2))
    assert all(s.is_leaf for s in state.layers)
    first, second = losses(state.layers)
    first.backward()
    second.backward()  # a second pass over the same version: no graph was freed
    assert all(p.grad is None for p in enc.parameters())  # nothing reaches the encoder before flush
    state.flush(keep={0, 2})  # version 0 got no gradient; version 2 stays
    partial = {n: p.grad.clone() for n, p in enc.named_parameters()}
    state.flush()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert not torch.equal(partial[name], p.grad), name  # the second flush added version 2
        assert torch.allclose(p.grad, expected[name], rtol=1e-5, atol=1e-7), name
    assert all(not p.requires_grad for trio in enc.projections for m in trio for p in m.parameters())


def test_initialisation_follows_the_run_seed():
    def init(seed, burn=0):
        proj = projections()
        torch.manual_seed(seed)  # what `pte train --seed` does before building the model
        torch.rand(burn)  # model loading may use the global stream; the encoder's draw must not depend on it
        enc = ProgressiveEncoder(ThoughtConfig(global_tokens=5, rank=4))
        enc.bind(proj)
        return torch.cat([p.detach().flatten() for p in enc.parameters()])

    assert torch.equal(init(3), init(3, burn=100))
    assert not torch.allclose(init(3), init(4), atol=1e-3)


def test_config_validation():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ThoughtConfig(attention="linear")
    with pytest.raises(ValidationError):
        ThoughtConfig(global_tokens=0)
    from pte_thought import GlobalOnlyConfig

    with pytest.raises(ValidationError, match="keeps the state at S = 0 for good"):
        GlobalOnlyConfig(init="zero")  # inert: never updated, so S = 0 forever
    assert GlobalOnlyConfig().init == "global"
