import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def smollm2():
    from pte_rl import HFBackend, HFConfig

    # fp32 whatever the machine: the exactness tests below are about the cache, not bf16 kernels
    return HFBackend(HFConfig(dtype="float32")).load()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Llama with the real SmolLM2 tokenizer and chat template, saved to a folder."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from pte_rl import resolve_model

    folder, gguf = resolve_model("smollm2-135m-instruct")
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
