"""The lean forward (pte_rl.lean) on every architecture it admits, against transformers' forward.

SmolLM2 (a Llama) is checked on the real model in tests/test_default_model.py; here tiny random
Llama, Mistral and Qwen2 models (Qwen2: q/k/v biases; key/value head ratios 1, 2, 4, 7 and 8,
SmolLM2's 3 on the real model; tied embeddings; Llama 3 rope scaling), each with the progressive
thought encoder bound to its projections, make sure ``unsupported()`` lets through only what the lean
forward computes exactly: the same samples under evictions, log-probs and adapter gradients equal
to fp32 round-off, on every transformers version tox runs.
"""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

from pte_cache import LRUPromptKeep, PolicyConfig
from pte_rl import PTEModel, SamplingConfig, replay_logprobs, sample
from pte_rl.lean import unsupported
from pte_thought import ProgressiveEncoder, ThoughtConfig

SIZES = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512, eos_token_id=3, pad_token_id=0)
LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 64}


def _llama(**changes):
    return lambda: LlamaForCausalLM(LlamaConfig(**{**SIZES, **changes}))


MODELS = {
    "llama": _llama(),
    "mistral": lambda: MistralForCausalLM(MistralConfig(**SIZES, sliding_window=None)),
    "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(**SIZES)),
    # the shapes of the families users train (query heads per key/value head: Llama-3-8B 4, Qwen2.5-7B 7, Qwen2.5-3B 8; 1 = no grouping), tied embeddings as in small
    # Qwen2.5 and SmolLM2, and Llama 3's rope scaling
    "kv-ratio-1": _llama(num_key_value_heads=4),
    "kv-ratio-4": _llama(num_key_value_heads=1),
    "kv-ratio-7": _llama(hidden_size=112, num_attention_heads=7, num_key_value_heads=1, head_dim=16),
    "kv-ratio-8": _llama(num_attention_heads=8, num_key_value_heads=1),
    "qwen2-tied-kv-ratio-7": lambda: Qwen2ForCausalLM(Qwen2Config(**{
        **SIZES, "hidden_size": 112, "num_attention_heads": 14, "num_key_value_heads": 2, "head_dim": 8,
        "tie_word_embeddings": True})),
    "llama3-rope": _llama(rope_scaling=LLAMA3_ROPE, tie_word_embeddings=True),
}
PROMPTS = [[5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18], [20, 21, 22]]


def build(arch):
    torch.manual_seed(0)
    model = MODELS[arch]().eval()
    model.config._attn_implementation = "sdpa"
    pte = PTEModel(model, ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)))
    torch.manual_seed(1)
    with torch.no_grad():
        for p in pte.lora.parameters():
            p.normal_(0, 0.2)
        for name, p in model.named_parameters():
            if name.endswith("proj.bias"):
                p.normal_(0, 0.5)  # Qwen2's q/k/v biases start at zero: make them matter
    return pte


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_lean_forward_equals_transformers_forward(arch):
    pte = build(arch)
    assert unsupported(pte.model) is None and pte.lean is not None
    if "tied" in arch or "rope" in arch:
        assert pte.model.lm_head.weight is pte.model.model.embed_tokens.weight
    if "rope" in arch:  # the scaling is in force, not silently dropped by the config
        config = pte.model.config
        assert (getattr(config, "rope_parameters", None) or config.rope_scaling)["rope_type"] == "llama3"
    cfg = SamplingConfig(max_new_tokens=30, min_new_tokens=30, temperature=1.0)

    def run(lean):
        pte.lean = lean
        out = sample(pte, PROMPTS, LRUPromptKeep(PolicyConfig(cache_window=20)), cfg, eos_ids=[3],
                     generator=torch.Generator().manual_seed(0))
        for p in pte.trainable_parameters():
            p.grad = None
        lp, _ = replay_logprobs(pte, out, max_chunk=7, graph="window",
                                on_chunk=lambda lp, mask, cols: (lp * mask).sum())
        return out, lp, [p.grad.clone() for p in pte.trainable_parameters()]

    lean = pte.lean
    fast, lp_fast, g_fast = run(lean)
    slow, lp_slow, g_slow = run(None)
    assert min(c.num_evictions for c in fast) >= 2
    assert [c.token_ids for c in fast] == [c.token_ids for c in slow]
    # bit-identical on current transformers (the real-model test asserts that); transformers 5.0's
    # own decode sums in another order: measured 2-3e-6 there, a wrong path would be O(1)
    diff = max(abs(a - b) for cf, cs in zip(fast, slow) for a, b in zip(cf.logprobs, cs.logprobs))
    assert diff <= 1e-5, diff
    assert (lp_fast - lp_slow).abs().max() <= 1e-5
    for a, b in zip(g_fast, g_slow):
        assert (a - b).abs().max() <= 1e-4 * b.abs().max()


def test_lean_refuses_what_it_does_not_compute():
    torch.manual_seed(0)
    windowed = MistralForCausalLM(MistralConfig(**SIZES, sliding_window=16))
    windowed.config._attn_implementation = "sdpa"
    assert unsupported(windowed) == "sliding-window attention"
    eager = LlamaForCausalLM(LlamaConfig(**SIZES))
    eager.config._attn_implementation = "eager"
    assert unsupported(eager) == "attention eager"
