"""The per-rank memory estimate (`pte train --dry-run`): parameter counts exact against real
models, saved-activation bytes against what autograd actually keeps, phases composed as stated."""

import json
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from pte_cache import LRUPromptKeep
from pte_cache.config import PolicyConfig
from pte_lora.config import LoRAConfig
from pte_rl import PTEModel
from pte_rl.estimate import ModelShape, estimate_memory, model_shape, saved_bytes_per_token
from pte_thought import ProgressiveEncoder, ThoughtConfig

ROOT = Path(__file__).resolve().parents[3]
QKVO = ["q_proj", "k_proj", "v_proj", "o_proj"]


def test_qwen25_3b_parameters_match_the_published_count():
    shape = ModelShape.from_config(json.loads((ROOT / "examples/qwen2.5-3b-config/config.json").read_text()))
    # Qwen2.5-3B model card: 3.09B parameters, 2.77B non-embedding (tied embeddings, q/k/v biases)
    assert shape.parameters() == 3_085_938_688
    assert shape.parameters() - shape.vocab * shape.hidden == 2_774_773_760


def _autograd_saved_bytes(config, model_cls, dtype, targets, batch=2, tokens=32) -> float:
    """Bytes per token and layer that autograd saves in one replay-style forward, not counting
    the weights or the cache's own K/V storage (the estimate counts those separately)."""
    torch.manual_seed(0)
    pte = PTEModel(model_cls(config).to(dtype), ProgressiveEncoder(ThoughtConfig(rank=8, global_tokens=8)),
                   LoRAConfig(r=8, global_tokens=8, target_modules=targets))
    ids = torch.randint(3, 500, (batch, tokens))
    state = pte.new_state(batch, replay=True)
    cache = pte.new_cache(LRUPromptKeep(PolicyConfig(cache_window=1000)), state)
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        pte.forward(ids, torch.ones(batch, tokens, dtype=torch.bool), cache, state)
    skip = {p.untyped_storage().data_ptr() for p in [*pte.model.parameters(), *pte.encoder.parameters()]}
    skip |= {t.untyped_storage().data_ptr() for t in cache.keys + cache.values if t is not None}
    return sum(v for k, v in seen.items() if k not in skip) / (batch * tokens * config.num_hidden_layers)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("family,hidden,inter,heads,kv,targets", [
    ("llama", 64, 256, 4, 2, QKVO), ("llama", 128, 512, 8, 2, "all-linear"),
    ("qwen2", 128, 256, 4, 2, QKVO), ("llama", 64, 512, 4, 4, "all-linear"),
])
def test_saved_bytes_per_token_follow_autograd(dtype, family, hidden, inter, heads, kv, targets):
    config_cls, model_cls = (Qwen2Config, Qwen2ForCausalLM) if family == "qwen2" else (LlamaConfig, LlamaForCausalLM)
    config = config_cls(hidden_size=hidden, intermediate_size=inter, num_attention_heads=heads,
                        num_key_value_heads=kv, num_hidden_layers=2, vocab_size=512, tie_word_embeddings=True)
    measured = _autograd_saved_bytes(config, model_cls, dtype, targets)
    estimated = saved_bytes_per_token(ModelShape.from_config(config.to_dict()), targets, 8, 8, dtype.itemsize)
    assert estimated == pytest.approx(measured, rel=0.12)


def _estimate(**kw):
    shape = ModelShape.from_config(json.loads((ROOT / "examples/qwen2.5-3b-config/config.json").read_text()))
    args = dict(dtype_bytes=2, prompt_tokens=300, capacity=600, max_new_tokens=3072, rollout_rows=64,
                reference_rows=8, replay_rows=4, replay_chunk=64, replay_graph="window", beta=0.001,
                targets=QKVO, rank=32, global_tokens=32, encoder="progressive")
    return estimate_memory(shape, **{**args, **kw})


def test_phases_compose_into_the_peak():
    est = _estimate()
    assert est["peak_phase"] == max(("rollout", "reference", "replay"), key=est.get)
    assert est["peak_gib"] == pytest.approx(est["weights"] + est["adapter_and_optimizer"] + est[est["peak_phase"]],
                                            abs=0.02)
    assert est["weights"] == pytest.approx(3_085_938_688 * 2 / 2**30, abs=0.01)
    assert _estimate(replay_rows=8)["replay"] == pytest.approx(2 * est["replay"], rel=0.01)
    assert _estimate(beta=0.0)["reference"] == 0
    # exact replay keeps the whole completion's graph, the window only prompt + window + a chunk
    assert _estimate(replay_graph="exact")["replay"] > 4 * est["replay"]
    assert _estimate(dtype_bytes=4)["weights"] == pytest.approx(2 * est["weights"], abs=0.01)


def test_unreadable_model_is_a_value_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mystery", "hidden_size": 8}))
    with pytest.raises(ValueError, match="num_attention_heads"):
        model_shape(str(tmp_path))
