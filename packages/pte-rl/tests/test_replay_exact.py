"""Replay under the recorded schedule reproduces sampling log-probs; gradients reach only the adapter."""

import warnings

import pytest
import torch
from tiny_models import tiny_llama

from pte_cache import Full, LRUPromptKeep, PolicyConfig, SlidingWindow, StreamingConfig, StreamingLLM, cache_argument
from pte_rl import PTEModel, SamplingConfig, replay_logprobs, sample, teacher_forced
from pte_rl.replay import chunk_spans
from pte_thought import GlobalOnlyEncoder, IdentityConfig, IdentityEncoder, ProgressiveEncoder, ThoughtConfig

POLICIES = {
    "lru-prompt-keep": lambda: LRUPromptKeep(PolicyConfig(cache_window=20, evict_ratio=0.25)),
    "sliding-window": lambda: SlidingWindow(PolicyConfig(cache_window=14, evict_ratio=0.5)),
    "streaming-llm": lambda: StreamingLLM(StreamingConfig(cache_window=14, sink_tokens=2)),
    # the 9-token prompt is longer than sinks + window: its last tokens never see token 2
    "streaming-llm-streamed": lambda: StreamingLLM(StreamingConfig(cache_window=8, sink_tokens=2, stream_prompt=True)),
    "full": lambda: Full(),
}
ENCODERS = {
    "progressive": lambda: ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)),
    "bilinear": lambda: ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4, attention="bilinear")),
    "global-only": lambda: GlobalOnlyEncoder(ThoughtConfig(global_tokens=8, rank=4)),
    "none": lambda: IdentityEncoder(IdentityConfig(rank=4)),
}
PROMPTS = [[5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18], [20, 21, 22]]


def build(encoder_name, seed=0, dtype=torch.float32):
    model = tiny_llama(seed).to(dtype)  # as --dtype loads the base, before the adapter exists
    pte = PTEModel(model, ENCODERS[encoder_name]())
    torch.manual_seed(1)
    with torch.no_grad():  # non-zero adapter so the state actually matters
        for p in pte.lora.parameters():
            p.normal_(0, 0.2)
    return pte


def spans_an_event(comps, max_chunk) -> bool:
    steps = {step for c in comps for step, _ in c.schedule}
    return any(s < m < e for s, e in chunk_spans(comps, max_chunk) for m in steps)


@pytest.mark.parametrize("max_chunk", [1, 7, 40])
@pytest.mark.parametrize("encoder", sorted(ENCODERS))
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_replay_logprobs_equal_sampling_logprobs(policy, encoder, max_chunk):
    """max_chunk 1: one token per pass, the schedule as it happened; 7 and 40: passes that span
    eviction events (tokens evicted mid-pass, the state switching mid-pass)."""
    pte = build(encoder)
    cfg = SamplingConfig(max_new_tokens=40, temperature=1.0)
    g = torch.Generator().manual_seed(0)
    comps = sample(pte, PROMPTS * 2, POLICIES[policy](), cfg, eos_ids=[3], generator=g)
    if policy != "full":
        assert sum(c.num_evictions for c in comps) >= 6
    assert len({len(c.token_ids) for c in comps}) > 1 or all(len(c.token_ids) == 40 for c in comps)
    with torch.no_grad():
        lp, _ = replay_logprobs(pte, comps, temperature=1.0, max_chunk=max_chunk)
    assert spans_an_event(comps, max_chunk) == (policy != "full" and max_chunk > 1)
    for b, c in enumerate(comps):
        got = lp[b, : len(c.token_ids)]
        want = torch.tensor(c.logprobs)
        assert torch.allclose(got, want, atol=1e-4, rtol=0), (b, (got - want).abs().max())
        assert bool((lp[b, len(c.token_ids) :] == 0).all())


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_teacher_forced_records_the_schedule_sampling_recorded(policy):
    """Given the tokens sampling drew (rows of different lengths, some ending in EOS), teacher
    forcing records the same eviction schedule, prompt band and state updates, so replay of the
    forced rows gives the sampled log-probs: a supervised loss on given answers trains under
    exactly the cache that sampling would have used."""
    pte = build("progressive")
    g = torch.Generator().manual_seed(0)
    drawn = sample(pte, PROMPTS * 2, POLICIES[policy](), SamplingConfig(max_new_tokens=40, temperature=1.0),
                   eos_ids=[3], generator=g)
    assert len({len(c.token_ids) for c in drawn}) > 1
    forced = teacher_forced(pte, [c.prompt_ids for c in drawn], [c.token_ids for c in drawn], POLICIES[policy]())
    if policy != "full":
        assert sum(c.num_evictions for c in forced) >= 6
    for d, f in zip(drawn, forced):
        assert f.token_ids == d.token_ids and f.prompt_band == d.prompt_band
        assert f.schedule == d.schedule and f.num_state_updates == d.num_state_updates
    lp, _ = replay_logprobs(pte, forced, temperature=1.0, max_chunk=7)
    for b, c in enumerate(drawn):
        assert torch.allclose(lp[b, : len(c.token_ids)], torch.tensor(c.logprobs), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="one non-empty row"):
        teacher_forced(pte, PROMPTS, [[7, 3], [], [4]], POLICIES[policy]())


def test_model_calls_raise_no_deprecation_warning():
    """Our calls into transformers use its current API (e.g. ``cache=``, not ``past_key_values=``)."""
    pte = build("progressive")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        comps = sample(pte, PROMPTS, POLICIES["lru-prompt-keep"](), SamplingConfig(max_new_tokens=12), eos_ids=[])
        replay_logprobs(pte, comps, max_chunk=5, on_chunk=lambda lp, m, c: lp.sum(), graph="window")


def test_state_updates_counted_and_change_outputs():
    pte = build("progressive")
    cfg = SamplingConfig(max_new_tokens=30, temperature=0.0)
    comps = sample(pte, PROMPTS, POLICIES["lru-prompt-keep"](), cfg, eos_ids=[])
    assert [c.num_state_updates for c in comps] == [c.num_evictions for c in comps]
    assert all(c.num_evictions > 0 for c in comps)
    assert all(c.max_cache_tokens <= 20 for c in comps)
    # the same model with a frozen state (global-only) must decode differently once evictions start
    other = build("global-only")
    other.encoder.load_state_dict(pte.encoder.state_dict())
    for a, b in zip(other.lora.parameters(), pte.lora.parameters()):
        a.data.copy_(b.data)
    comps2 = sample(other, PROMPTS, POLICIES["lru-prompt-keep"](), cfg, eos_ids=[])
    assert any(x.token_ids != y.token_ids for x, y in zip(comps, comps2))


def test_chunked_backward_reaches_adapter_only():
    pte = build("progressive")
    comps = sample(pte, PROMPTS, POLICIES["lru-prompt-keep"](), SamplingConfig(max_new_tokens=30),
                   eos_ids=[], generator=torch.Generator().manual_seed(0))
    assert all(c.num_evictions >= 2 for c in comps)
    calls = []

    def on_chunk(lp, mask, cols):
        calls.append(cols)
        (-lp.sum()).backward()

    replay_logprobs(pte, comps, max_chunk=5, on_chunk=on_chunk, graph="chunk")
    assert len(calls) > 4
    enc = dict(pte.encoder.named_parameters())
    for name in ("h_g.0", "h_g.1", "w_q.0.weight", "w_k.1.weight", "w_v.0.weight"):
        assert enc[name].grad is not None and enc[name].grad.abs().sum() > 0, name
    for m in pte.lora.modules.values():
        assert m.lora_A.weight.grad.abs().sum() > 0 and m.lora_B.weight.grad.abs().sum() > 0
    base = [p for n, p in pte.model.named_parameters() if "lora_" not in n]
    assert base and all(p.grad is None and not p.requires_grad for p in base)


def test_replay_grad_matches_plain_transformers_with_detached_prompt_cache():
    """Oracle for the gradient semantics: the stored cache is context without a graph.

    One row, no eviction, one chunk: our replay's gradient must equal a plain transformers
    computation (DynamicCache) where the prompt but its last token runs without grad and all
    K/V are detached before the completion forward.
    """
    from transformers import DynamicCache

    pte = build("none")
    comps = sample(pte, PROMPTS[:1], Full(), SamplingConfig(max_new_tokens=12), eos_ids=[],
                   generator=torch.Generator().manual_seed(0))
    replay_logprobs(pte, comps, max_chunk=100, on_chunk=lambda lp, m, c: lp.sum().backward(), graph="chunk")
    ours = [p.grad.clone() for p in pte.lora.parameters()]
    for p in pte.lora.parameters():
        p.grad = None

    prompt = torch.tensor([comps[0].prompt_ids])
    tokens = torch.tensor([comps[0].token_ids])
    cache = DynamicCache(config=pte.model.config)
    pte.lora.set_states(None)
    with torch.no_grad():  # the prompt is context; only its last token runs with grad
        pte.model(prompt[:, :-1], **{cache_argument(pte.model): cache}, use_cache=True)
    n = prompt.shape[1]
    out = pte.model(prompt[:, -1:], **{cache_argument(pte.model): cache}, position_ids=torch.tensor([[n - 1]]), use_cache=True)
    lp0 = torch.log_softmax(out.logits[:, -1].float(), -1)[0, tokens[0, 0]]
    for layer in cache.layers:
        layer.keys, layer.values = layer.keys.detach(), layer.values.detach()
    pos = torch.arange(n, n + tokens.shape[1] - 1)[None]
    out = pte.model(tokens[:, :-1], **{cache_argument(pte.model): cache}, position_ids=pos, use_cache=True)
    lp = torch.log_softmax(out.logits.float(), -1).gather(2, tokens[:, 1:, None]).sum()
    (lp0 + lp).backward()
    for a, p in zip(ours, pte.lora.parameters()):
        # fp32 noise relative to the tensor's scale (measured ~3e-6); letting the gradient flow
        # through the whole prompt instead gives ~0.4, so 1e-5 separates the two cleanly
        assert (a - p.grad).abs().max() <= 1e-5 * p.grad.abs().max(), (a - p.grad).abs().max()


def test_untrained_adapter_equals_base_model():
    model = tiny_llama()
    pte = PTEModel(model, ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)))
    comps = sample(pte, PROMPTS, POLICIES["lru-prompt-keep"](), SamplingConfig(max_new_tokens=25),
                   eos_ids=[], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lp, _ = replay_logprobs(pte, comps)
        with pte.lora.disabled():
            base, _ = replay_logprobs(pte, comps)
    assert torch.equal(lp, base)


def test_min_new_tokens_keeps_policy_logprobs():
    """EOS masking for min_new_tokens is a sampling intervention; recorded log-probs stay the policy's."""
    pte = build("progressive")
    cfg = SamplingConfig(max_new_tokens=30, min_new_tokens=30, temperature=1.0)
    model_eos = int(torch.argmax(pte.logits(torch.zeros(1, 64))))  # a token the model likes
    comps = sample(pte, PROMPTS, POLICIES["lru-prompt-keep"](), cfg, eos_ids=[model_eos],
                   generator=torch.Generator().manual_seed(0))
    assert all(len(c.token_ids) == 30 and model_eos not in c.token_ids for c in comps)
    with torch.no_grad():
        lp, _ = replay_logprobs(pte, comps)
    for b, c in enumerate(comps):
        assert torch.allclose(lp[b], torch.tensor(c.logprobs), atol=1e-4)


def test_compiled_blocks_give_the_same_logprobs_and_grads():
    policy = lambda: LRUPromptKeep(PolicyConfig(cache_window=12))  # noqa: E731
    prompts = [[5, 6, 7, 8], [9, 10, 11]]
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        pte = PTEModel(tiny_llama(), ProgressiveEncoder(ThoughtConfig(global_tokens=4, rank=4)))
        with torch.no_grad():
            for p in pte.lora.parameters():
                p.normal_(0, 0.05)  # a trained adapter, so the grads below are not trivially zero
        assert pte.lean is not None  # a Llama: the lean forward by default
        if compiled:
            pte.compile()
            assert all(layer.mlp._compiled_call_impl is not None for layer in pte.model.model.layers)
            assert pte.lean is None  # transformers' forward, which calls the compiled norms and MLPs
        done = sample(pte, prompts, policy(), SamplingConfig(max_new_tokens=20, min_new_tokens=20), eos_ids=[3],
                      generator=torch.Generator().manual_seed(1))
        lp, _ = replay_logprobs(pte, done, max_chunk=8, on_chunk=lambda x, m, c: (x * m).sum().backward(),
                                graph="chunk")
        grads = [p.grad.clone() for p in pte.trainable_parameters()]
        assert any(g.abs().sum() > 0 for g in grads)
        results.append(([c.token_ids for c in done], lp, grads))
    (tokens_a, lp_a, g_a), (tokens_b, lp_b, g_b) = results
    assert tokens_a == tokens_b
    assert (lp_a - lp_b).abs().max() <= 1e-5
    for a, b in zip(g_a, g_b):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_bf16_base_keeps_fp32_adapter_and_close_replay():
    """The --dtype bfloat16 path: frozen base in bf16, adapter/encoder fp32 with fp32 grads."""
    fp32 = build("progressive")
    bf16 = build("progressive", dtype=torch.bfloat16)
    for p in bf16.trainable_parameters():
        assert p.dtype == torch.float32
    for name, p in bf16.model.named_parameters():
        assert p.dtype == (torch.float32 if "lora_" in name else torch.bfloat16), name
    policy = POLICIES["lru-prompt-keep"]
    done = sample(bf16, PROMPTS, policy(), SamplingConfig(max_new_tokens=30, min_new_tokens=30), eos_ids=[3],
                  generator=torch.Generator().manual_seed(2))
    assert sum(c.num_evictions for c in done) > 0
    lp, _ = replay_logprobs(bf16, done, max_chunk=8, on_chunk=lambda x, m, c: (x * m).sum().backward(),
                            graph="chunk")
    sampled = torch.zeros_like(lp)
    for b, c in enumerate(done):
        sampled[b, : len(c.logprobs)] = torch.tensor(c.logprobs)
    # bf16 has ~3 significant digits: replay agrees with sampling loosely, and with fp32 loosely
    assert (lp - sampled).abs().max() < 0.02  # measured 0.002
    exact, _ = replay_logprobs(fp32, done, max_chunk=8)
    assert (lp - exact).abs().mean() < 0.03  # measured 0.012 (log-probs ~ -4.5)
    grads = [p.grad for p in bf16.trainable_parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_head_logprobs_equal_autograd_through_the_logits(dtype):
    """The hand-written log-prob backward (pte_rl.policy._HeadLogprobs) against plain autograd
    through the full logits: log-probs, entropy and the gradient reaching the hidden states,
    over several token chunks, with a temperature."""
    from pte_rl import token_logprobs

    pte = build("none", dtype=dtype)
    torch.manual_seed(3)
    hidden = torch.randn(3, 7, pte.model.config.hidden_size, dtype=dtype, requires_grad=True)
    targets = torch.randint(0, pte.model.config.vocab_size, (3, 7))
    weights = torch.randn(3, 7)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    # the log-prob loss, an entropy bonus alone, and both: each gradient against autograd's
    for w_lp, w_ent in ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)):
        hidden.grad = None
        lp, ent = token_logprobs(pte, hidden, targets, temperature=0.7, chunk=5, with_entropy=True)
        loss = w_lp * (lp * weights).sum() if w_lp else 0.0
        ((ent * weights).sum() * w_ent + loss).backward()
        ours = hidden.grad.clone()
        hidden.grad = None

        logits = pte.model.lm_head(hidden).float() / 0.7
        ref = torch.log_softmax(logits, -1)
        ref_lp = ref.gather(2, targets[..., None]).squeeze(-1)
        ref_ent = -(ref.exp() * ref).sum(-1)
        (w_lp * (ref_lp * weights).sum() + w_ent * (ref_ent * weights).sum()).backward()
        assert torch.allclose(lp, ref_lp, atol=tol, rtol=0), (lp - ref_lp).abs().max()
        assert torch.allclose(ent, ref_ent.detach(), atol=tol, rtol=0), (ent - ref_ent).abs().max()
        scale = hidden.grad.float().abs().max()
        assert scale > 0
        diff = (ours.float() - hidden.grad.float()).abs().max()
        assert diff <= tol * scale, ((w_lp, w_ent), diff, scale)
        assert ours.dtype == dtype


def test_lean_mlp_product_keeps_two_intermediates_and_same_gradient():
    """pte_rl.lean._SiluGate: the same forward as transformers' MLP, the same gradient to
    fp32 round-off, and a third fewer intermediate-width bytes kept for backward."""
    from pte_rl.lean import LeanDecoder, _mlp

    model = tiny_llama()
    mlp = model.model.layers[0].mlp
    silu = LeanDecoder(model).silu[0]  # what the lean forward decided for this layer
    x = torch.randn(4, 9, mlp.gate_proj.in_features, requires_grad=True)
    g = torch.randn(4, 9, mlp.down_proj.out_features)

    def run(fn):
        kept = []
        x.grad = None
        with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
            y = fn(x)
        (y * g).sum().backward()
        inter = sum(t.numel() for t in kept if t.shape[-1] == mlp.gate_proj.out_features and t.dim() == 3)
        return y.detach(), x.grad.clone(), inter

    y_ref, g_ref, kept_ref = run(mlp)
    y, gx, kept = run(lambda t: _mlp(mlp, t, silu))
    assert torch.equal(y, y_ref)
    assert (gx - g_ref).abs().max() <= 1e-5 * g_ref.abs().max()
    assert kept_ref == 3 * 4 * 9 * mlp.gate_proj.out_features and kept == 2 * kept_ref // 3


def test_replay_reproduces_the_streamed_prompt_it_was_sampled_with():
    """The band is part of what sampling recorded: replay applies it without being told, and rows
    sampled with different bands are refused rather than replayed under the wrong one."""
    pte = build("progressive")
    cfg = SamplingConfig(max_new_tokens=20, temperature=1.0)
    streamed = sample(pte, PROMPTS, POLICIES["streaming-llm-streamed"](), cfg, eos_ids=[],
                      generator=torch.Generator().manual_seed(0))
    assert {c.prompt_band for c in streamed} == {(2, 6)}
    plain = sample(pte, PROMPTS, StreamingLLM(StreamingConfig(cache_window=8, sink_tokens=2)), cfg, eos_ids=[],
                   generator=torch.Generator().manual_seed(0))
    assert {c.prompt_band for c in plain} == {None}
    with torch.no_grad(), pytest.raises(ValueError, match="different prompt bands"):
        replay_logprobs(pte, [streamed[0], plain[0]])
