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
    s0 = enc.initial(0, 2)
    assert s0.shape == (2, 5, 4)
    for m in (1, 7, 50):
        k, v = kv(2, m)
        s = enc.encode(0, s0, k, v, torch.ones(2, m, dtype=torch.bool))
        assert s.shape == (2, 5, 4)
        assert torch.allclose(s.flatten(1).norm(dim=1), torch.full((2,), math.sqrt(4.0)), atol=1e-5)


def test_softmax_update_matches_formula():
    enc = encoder()
    prev = enc.initial(1, 1)
    k, v = kv(1, 6)
    got = enc.encode(1, prev, k, v, torch.ones(1, 6, dtype=torch.bool))
    q_proj, k_proj, v_proj = enc.projections[1]
    q = enc.w_q[1](q_proj(enc.h_g[1]))
    k_e = k.permute(0, 2, 1, 3).reshape(6, -1)
    v_e = v.permute(0, 2, 1, 3).reshape(6, -1)
    attn = torch.softmax(q @ enc.w_k[1](k_e).T / math.sqrt(4), -1)
    want = normalize(prev[0] + attn @ enc.w_v[1](v_e), math.sqrt(4))
    assert torch.allclose(got[0], want, atol=1e-6)


def test_bilinear_is_eq4_without_softmax():
    enc = encoder(attention="bilinear")
    prev = torch.zeros(1, 5, 4)
    k, v = kv(1, 3)
    got = enc.encode(0, prev, k, v, torch.ones(1, 3, dtype=torch.bool))
    q_proj = enc.projections[0][0]
    q = enc.w_q[0](q_proj(enc.h_g[0]))
    k_e = k.permute(0, 2, 1, 3).reshape(3, -1)
    v_e = v.permute(0, 2, 1, 3).reshape(3, -1)
    want = normalize((q @ enc.w_k[0](k_e).T) @ enc.w_v[0](v_e), 2.0)
    assert torch.allclose(got[0], want, atol=1e-5)


def test_padding_and_rows_without_eviction():
    """Masked evicted slots are ignored; a row with nothing evicted keeps its state exactly."""
    enc = encoder()
    prev = enc.initial(0, 2).clone()
    k, v = kv(2, 5)
    mask = torch.tensor([[True, True, True, False, False], [False] * 5])
    got = enc.encode(0, prev, k, v, mask)
    alone = enc.encode(0, prev[:1], k[:1, :, :3], v[:1, :, :3], torch.ones(1, 3, dtype=torch.bool))
    assert torch.allclose(got[0], alone[0], atol=1e-6)
    assert torch.equal(got[1], prev[1])


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


def test_thought_state_replay_refresh_gives_grads_to_all_encoder_weights():
    enc = encoder()
    state = ThoughtState(enc, LAYERS, 2, replay=True)
    k, v = kv(2, 4)
    state(Event([k] * LAYERS, [v] * LAYERS, torch.ones(2, 4, dtype=torch.bool)))
    assert state.num_updates.tolist() == [1, 1]
    sum(s.sum() for s in state.layers).backward()
    state.refresh()  # recompute inside a new graph after the first backward
    sum((s ** 2).sum() for s in state.layers).backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(not p.requires_grad for trio in enc.projections for m in trio for p in m.parameters())


def test_config_validation():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ThoughtConfig(attention="linear")
    with pytest.raises(ValidationError):
        ThoughtConfig(global_tokens=0)
